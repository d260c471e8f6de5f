// The ocibuild command line: build, images, history, inspect, tag, rmi,
// import and run over the local store. Returns the process exit status;
// errors are one line on stderr ("ocibuild: ...") with a non-zero status.
#pragma once

namespace ocib::cli {

int RunCli(int argc, char** argv);

}  // namespace ocib::cli
