#include "oci/media_types.h"

namespace ocib::oci {

bool IsNonDistributable(std::string_view t) {
  return t == kDockerForeignLayer ||
         t.starts_with("application/vnd.oci.image.layer.nondistributable.");
}

bool IsManifestType(std::string_view t) {
  return t == kOciManifest || t == kOciIndex || t == kDockerManifest ||
         t == kDockerManifestList;
}

bool IsIndexType(std::string_view t) {
  return t == kOciIndex || t == kDockerManifestList;
}

}  // namespace ocib::oci
