// ocibuild: the builder and client. All the work is in the build library.
#include <signal.h>

#include "build/cli.h"

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return ocib::build::RunCli(argc, argv);
}
