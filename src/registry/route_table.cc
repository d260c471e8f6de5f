#include "registry/route_table.h"

#include "auth/acl.h"

namespace ocib::registry {

const std::vector<RouteSpec>& ApiRoutes() {
  static const std::vector<RouteSpec> routes = {
      {Endpoint::kBase, "GET", true, false, 0, Base},
      {Endpoint::kCatalog, "GET", true, false, auth::kCatalog, Catalog},
      {Endpoint::kTagsList, "GET", true, false, auth::kPull, TagsList},
      {Endpoint::kManifest, "GET", true, false, auth::kPull, GetManifest},
      {Endpoint::kManifest, "PUT", false, true, auth::kPush, PutManifest},
      {Endpoint::kManifest, "DELETE", false, true, auth::kDelete,
       DeleteManifest},
      {Endpoint::kBlob, "GET", true, false, auth::kPull, GetBlob},
      {Endpoint::kBlob, "DELETE", false, true, auth::kDelete, DeleteBlob},
      {Endpoint::kUploads, "POST", false, true, auth::kPush, StartUpload},
      {Endpoint::kUpload, "GET", false, false, auth::kPush, UploadStatus},
      {Endpoint::kUpload, "PATCH", false, true, auth::kPush, PatchUpload},
      {Endpoint::kUpload, "PUT", false, true, auth::kPush, PutUpload},
      {Endpoint::kUpload, "DELETE", false, true, auth::kPush, CancelUpload},
      {Endpoint::kReferrers, "GET", true, false, auth::kPull, Referrers},
  };
  return routes;
}

const RouteSpec* FindRoute(Endpoint endpoint, std::string_view method) {
  for (const auto& r : ApiRoutes())
    if (r.endpoint == endpoint &&
        (r.method == method || (r.head && method == "HEAD")))
      return &r;
  return nullptr;
}

}  // namespace ocib::registry
