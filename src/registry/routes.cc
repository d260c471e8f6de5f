#include "registry/routes.h"

#include <vector>

#include "oci/reference.h"

namespace ocib::registry {

Route MatchRoute(std::string_view path) {
  Route r;
  if (path == "/v2" || path == "/v2/") {
    r.endpoint = Endpoint::kBase;
    return r;
  }
  if (!path.starts_with("/v2/")) return r;
  std::string_view rest = path.substr(4);
  if (rest == "_catalog") {
    r.endpoint = Endpoint::kCatalog;
    return r;
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = rest.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(rest.substr(start));
      break;
    }
    parts.push_back(rest.substr(start, slash - start));
    start = slash + 1;
  }
  size_t n = parts.size();
  auto tail = [&](size_t k, std::initializer_list<std::string_view> want) {
    if (n < k + 1) return false;  // at least one name component
    size_t i = n - k;
    for (auto w : want) {
      if (!w.empty() && parts[i] != w) return false;
      ++i;
    }
    return true;
  };
  size_t name_parts = 0;
  if (tail(3, {"blobs", "uploads", ""}) && parts[n - 1].empty()) {
    r.endpoint = Endpoint::kUploads;
    name_parts = n - 3;
  } else if (tail(2, {"blobs", "uploads"})) {
    r.endpoint = Endpoint::kUploads;
    name_parts = n - 2;
  } else if (tail(3, {"blobs", "uploads", ""})) {
    r.endpoint = Endpoint::kUpload;
    r.reference = parts[n - 1];
    name_parts = n - 3;
  } else if (tail(2, {"blobs", ""}) && !parts[n - 1].empty()) {
    r.endpoint = Endpoint::kBlob;
    r.reference = parts[n - 1];
    name_parts = n - 2;
  } else if (tail(2, {"manifests", ""}) && !parts[n - 1].empty()) {
    r.endpoint = Endpoint::kManifest;
    r.reference = parts[n - 1];
    name_parts = n - 2;
  } else if (tail(2, {"tags", "list"})) {
    r.endpoint = Endpoint::kTagsList;
    name_parts = n - 2;
  } else if (tail(2, {"referrers", ""}) && !parts[n - 1].empty()) {
    r.endpoint = Endpoint::kReferrers;
    r.reference = parts[n - 1];
    name_parts = n - 2;
  } else {
    return r;
  }
  for (size_t i = 0; i < name_parts; ++i) {
    if (i) r.name += '/';
    r.name += parts[i];
  }
  r.name_valid = oci::ValidRepositoryName(r.name);
  return r;
}

}  // namespace ocib::registry
