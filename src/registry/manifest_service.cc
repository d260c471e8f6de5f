#include "registry/manifest_service.h"

#include "oci/manifest.h"
#include "oci/media_types.h"

namespace ocib::registry {

Result<PreparedManifest> PrepareManifest(
    std::string content, std::string_view content_type,
    const std::optional<Digest>& expected) {
  auto parsed = oci::ParseManifest(content, std::string(content_type));
  if (!parsed.ok()) return InvalidArgument(parsed.status().message());
  Digest digest = Digest::Of(
      content, expected ? expected->algorithm() : DigestAlgorithm::kSha256);
  if (expected && *expected != digest)
    return Status(Code::kDigestMismatch, "manifest hashes to " + digest.str() +
                                             ", not " + expected->str());
  PreparedManifest p;
  if (parsed->config) p.blobs.push_back(parsed->config->digest);
  for (const auto& l : parsed->layers)
    if (!oci::IsNonDistributable(l.media_type)) p.blobs.push_back(l.digest);
  for (const auto& c : parsed->manifests) p.children.push_back(c.digest);
  ManifestRecord& rec = p.record;
  rec.digest = digest;
  rec.media_type = parsed->media_type;
  rec.content = std::move(content);
  if (parsed->subject) rec.subject = parsed->subject->digest;
  rec.artifact_type = parsed->ReferrerArtifactType();
  rec.annotations = parsed->annotations;
  return p;
}

}  // namespace ocib::registry
