#include "registry/routes.h"

#include <doctest/doctest.h>

using namespace ocib::registry;

TEST_CASE("routes are matched from the end of the path") {
  auto r = MatchRoute("/v2/");
  CHECK(r.endpoint == Endpoint::kBase);
  CHECK(MatchRoute("/v2").endpoint == Endpoint::kBase);
  CHECK(MatchRoute("/v2/_catalog").endpoint == Endpoint::kCatalog);
  r = MatchRoute("/v2/library/busybox/manifests/latest");
  CHECK(r.endpoint == Endpoint::kManifest);
  CHECK(r.name == "library/busybox");
  CHECK(r.reference == "latest");
  CHECK(r.name_valid);
  r = MatchRoute("/v2/a/blobs/uploads/");
  CHECK(r.endpoint == Endpoint::kUploads);
  CHECK(r.name == "a");
  r = MatchRoute("/v2/a/blobs/uploads");
  CHECK(r.endpoint == Endpoint::kUploads);
  r = MatchRoute("/v2/a/b/blobs/uploads/abc");
  CHECK(r.endpoint == Endpoint::kUpload);
  CHECK(r.reference == "abc");
  CHECK(r.name == "a/b");
  r = MatchRoute("/v2/x/blobs/sha256:abc");
  CHECK(r.endpoint == Endpoint::kBlob);
  CHECK(r.reference == "sha256:abc");
  // A repository may itself be called "blobs" or "manifests".
  r = MatchRoute("/v2/blobs/manifests/blobs/blobs/uploads/");
  CHECK(r.endpoint == Endpoint::kUploads);
  CHECK(r.name == "blobs/manifests/blobs");
  r = MatchRoute("/v2/r/tags/list");
  CHECK(r.endpoint == Endpoint::kTagsList);
  CHECK(r.name == "r");
  r = MatchRoute("/v2/r/referrers/sha256:abc");
  CHECK(r.endpoint == Endpoint::kReferrers);
  CHECK(MatchRoute("/v2/manifests/x").endpoint == Endpoint::kUnknown);
  CHECK(MatchRoute("/v2/r/manifests/").endpoint == Endpoint::kUnknown);
  CHECK(MatchRoute("/v1/r/manifests/x").endpoint == Endpoint::kUnknown);
  CHECK(MatchRoute("/v2/R/manifests/x").name_valid == false);
  CHECK(MatchRoute("/v2//x/manifests/y").name_valid == false);
}
