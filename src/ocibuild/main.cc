// ocibuild: the builder and client. main only calls the command line
// (ocibuild/cli.h), which calls the build and image libraries.
#include <signal.h>

#include "ocibuild/cli.h"

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return ocib::cli::RunCli(argc, argv);
}
