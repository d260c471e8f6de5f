// libFuzzer target: the Dockerfile parser and word expansion
// (build/dockerfile_parser.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "build/dockerfile_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto df = ocib::build::ParseDockerfile(in, "Dockerfile");
  ocib::build::Env env;
  env["A"] = "x y";
  (void)ocib::build::ExpandWord(in, env, '\\');
  (void)ocib::build::SplitWords(in, '`');
  return 0;
}
