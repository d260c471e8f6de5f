// Turning manifest bytes into what the store keeps, for every way a
// manifest arrives (a client's PUT, the mirror's upstream fetch): parse and
// check the document, hash it, and build the record with the fields the
// referrers API indexes (subject, artifactType, annotations) and the blobs
// and child manifests it references.
//
// Errors: kInvalidArgument for a document that is not a valid manifest of
// its media type (MANIFEST_INVALID); kDigestMismatch when it does not hash
// to `expected` (DIGEST_INVALID). Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/blob_store.h"

namespace ocib::registry {

struct PreparedManifest {
  ManifestRecord record;
  std::vector<Digest> blobs;     // config and distributable layers
  std::vector<Digest> children;  // an index's manifests
};

// content_type: the request's Content-Type (or the upstream's), used when
// the document names no mediaType of its own. `expected` also picks the
// digest algorithm.
Result<PreparedManifest> PrepareManifest(std::string content,
                                         std::string_view content_type,
                                         const std::optional<Digest>& expected);

}  // namespace ocib::registry
