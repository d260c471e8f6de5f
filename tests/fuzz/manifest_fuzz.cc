// libFuzzer target: manifest and index parsing (oci/manifest.h), with
// each content type the registry accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "oci/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kTypes[] = {
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json",
      "application/vnd.docker.distribution.manifest.list.v2+json",
      "",
  };
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto m = ocib::oci::ParseManifest(in, kTypes[data[0] % 5]);
  if (m.ok()) (void)m->ReferrerArtifactType();
  return 0;
}
