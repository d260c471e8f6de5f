// The API's route table: maps a request path to an endpoint, the
// repository name and the reference (digest, tag or upload id).
//
// Names may contain '/', so a path is matched from its end:
//   /v2/                                    kBase
//   /v2/_catalog                            kCatalog
//   /v2/<name>/tags/list                    kTagsList
//   /v2/<name>/manifests/<reference>        kManifest
//   /v2/<name>/blobs/uploads/               kUploads    (start an upload)
//   /v2/<name>/blobs/uploads/<id>           kUpload
//   /v2/<name>/blobs/<digest>               kBlob
//   /v2/<name>/referrers/<digest>           kReferrers
// Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace ocib::registry {

enum class Endpoint {
  kBase,
  kCatalog,
  kTagsList,
  kManifest,
  kUploads,
  kUpload,
  kBlob,
  kReferrers,
  kUnknown,
};

struct Route {
  Endpoint endpoint = Endpoint::kUnknown;
  std::string name;       // repository, not yet validated
  std::string reference;  // digest, tag or upload id
  bool name_valid = false;
};

Route MatchRoute(std::string_view path);

}  // namespace ocib::registry
