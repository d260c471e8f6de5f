#include "registry/route_table.h"

namespace ocib::registry {

const std::vector<RouteSpec>& ApiRoutes() {
  static const std::vector<RouteSpec> routes = {
      {Endpoint::kBase, "GET", true, false, Base},
      {Endpoint::kCatalog, "GET", true, false, Catalog},
      {Endpoint::kTagsList, "GET", true, false, TagsList},
      {Endpoint::kManifest, "GET", true, false, GetManifest},
      {Endpoint::kManifest, "PUT", false, true, PutManifest},
      {Endpoint::kManifest, "DELETE", false, true, DeleteManifest},
      {Endpoint::kBlob, "GET", true, false, GetBlob},
      {Endpoint::kBlob, "DELETE", false, true, DeleteBlob},
      {Endpoint::kUploads, "POST", false, true, StartUpload},
      {Endpoint::kUpload, "GET", false, false, UploadStatus},
      {Endpoint::kUpload, "PATCH", false, true, PatchUpload},
      {Endpoint::kUpload, "PUT", false, true, PutUpload},
      {Endpoint::kUpload, "DELETE", false, true, CancelUpload},
      {Endpoint::kReferrers, "GET", true, false, Referrers},
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
