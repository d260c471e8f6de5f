// libFuzzer target: repository names, tags and digests (oci/reference.h,
// store/digest.h). A parsed digest must print back to its input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "oci/reference.h"
#include "store/digest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)ocib::oci::ValidRepositoryName(in);
  (void)ocib::oci::ValidTag(in);
  auto d = ocib::Digest::Parse(in);
  if (d.ok() && d->str() != in) __builtin_trap();
  return 0;
}
