// libFuzzer target: ocireg's config loader (registry/config.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "registry/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto c = ocib::registry::ParseConfig(in, "fuzz.json");
  if (c.ok() && !ocib::registry::Validate(*c).ok()) __builtin_trap();
  return 0;
}
