// Parsing and validation of image manifests and indexes (OCI image
// manifest, OCI image index, Docker v2 schema 2, Docker manifest list).
//
// ParseManifest never throws; malformed input returns kInvalidArgument with
// a message fit for a MANIFEST_INVALID error. Thread-safe (pure).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/digest.h"
#include "util/status.h"

namespace ocib::oci {

struct Descriptor {
  std::string media_type;
  Digest digest = Digest::Of("");
  int64_t size = 0;
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;
  std::optional<std::string> platform_os;
  std::optional<std::string> platform_arch;
  std::optional<std::string> platform_variant;
};

struct Manifest {
  std::string media_type;  // resolved: content's mediaType or Content-Type
  bool is_index = false;
  std::optional<Descriptor> config;   // image manifests
  std::vector<Descriptor> layers;     // image manifests
  std::vector<Descriptor> manifests;  // indexes
  std::optional<Descriptor> subject;
  std::string artifact_type;
  std::map<std::string, std::string> annotations;

  // The artifactType a referrers response lists for this manifest: its
  // artifactType, else (image manifests) the config media type.
  std::string ReferrerArtifactType() const;
};

// The index entry for platform "os/arch[/variant]" (a missing variant in
// the query matches any), or nullptr. Entries without a platform are
// skipped (attestations, artifacts).
const Descriptor* PickPlatform(const Manifest& index,
                               std::string_view platform);

// content_type: the request's Content-Type (parameters ignored); may be
// empty. The content's own mediaType wins when present; if both are present
// they must agree.
Result<Manifest> ParseManifest(std::string_view content,
                               std::string_view content_type);

}  // namespace ocib::oci
