// Content discovery: /v2/ (the API version check), /v2/_catalog,
// /v2/<name>/tags/list and /v2/<name>/referrers/<digest>.
#include <nlohmann/json.hpp>

#include "auth/acl.h"
#include "oci/media_types.h"
#include "registry/handlers.h"

namespace ocib::registry {

using json = nlohmann::json;

void Base(const Services&, RequestContext& ctx) {
  ctx.res.status = 200;
  ctx.res.set_content("{}", "application/json");
}

void Catalog(const Services& s, RequestContext& ctx) {
  size_t n;
  bool has_n;
  std::string last;
  if (!PageParams(ctx.req, &n, &has_n, &last))
    return SendError(ctx.res, ErrorCode::kPaginationNumberInvalid);
  json body = {{"repositories", json::array()}};
  size_t limit = has_n ? std::min(n, kMaxPage) : 0;
  if (!has_n || n > 0) {
    // Only repositories the caller may pull are listed: pages are read
    // from the store until `limit` of those are found.
    std::string after = last;
    bool more = false;
    std::vector<std::string> shown;
    while (true) {
      auto page = s.store->ListRepositories(limit, after);
      if (!page.ok())
        return SendError(ctx.res, ErrorCode::kUnknown, page.status().message());
      for (auto& name : page->items) {
        if (limit > 0 && shown.size() == limit) {
          more = true;
          break;
        }
        if (ctx.caller.Lists(name)) shown.push_back(name);
      }
      if (more || !page->more || page->items.empty()) break;
      if (limit > 0 && shown.size() == limit) {
        more = true;
        break;
      }
      after = page->items.back();
    }
    for (auto& name : shown) body["repositories"].push_back(name);
    if (more && !shown.empty())
      ctx.res.set_header("Link", "</v2/_catalog?last=" + shown.back() + "&n=" +
                                     std::to_string(limit) + ">; rel=\"next\"");
  }
  ctx.res.status = 200;
  ctx.res.set_content(body.dump(), "application/json");
}

void TagsList(const Services& s, RequestContext& ctx) {
  const std::string& name = ctx.route.name;
  if (!s.store->RepositoryExists(name))
    return SendError(ctx.res, ErrorCode::kNameUnknown, name);
  TagsPage(ctx, [&](size_t limit, const std::string& last) {
    return s.store->ListTags(name, limit, last);
  });
}

void TagsPage(
    RequestContext& ctx,
    const std::function<Result<Page>(size_t, const std::string&)>& list) {
  size_t n;
  bool has_n;
  std::string last;
  if (!PageParams(ctx.req, &n, &has_n, &last))
    return SendError(ctx.res, ErrorCode::kPaginationNumberInvalid);
  json body = {{"name", ctx.route.name}, {"tags", json::array()}};
  if (!has_n || n > 0) {
    size_t limit = has_n ? std::min(n, kMaxPage) : 0;
    auto page = list(limit, last);
    if (!page.ok())
      return SendError(ctx.res, ErrorCode::kUnknown, page.status().message());
    for (auto& t : page->items) body["tags"].push_back(t);
    if (page->more)
      ctx.res.set_header("Link", "</v2/" + ctx.route.name +
                                     "/tags/list?last=" + page->items.back() +
                                     "&n=" + std::to_string(limit) +
                                     ">; rel=\"next\"");
  }
  ctx.res.status = 200;
  ctx.res.set_content(body.dump(), "application/json");
}

void Referrers(const Services& s, RequestContext& ctx) {
  auto subject = Digest::Parse(ctx.route.reference);
  if (!subject.ok())
    return SendError(ctx.res, ErrorCode::kDigestInvalid,
                     subject.status().message());
  auto refs = s.store->ListReferrers(ctx.route.name, *subject);
  if (!refs.ok())
    return SendError(ctx.res, ErrorCode::kUnknown, refs.status().message());
  std::string filter = ctx.req.get_param_value("artifactType");
  json manifests = json::array();
  for (const auto& ref : *refs) {
    if (!filter.empty() && ref.artifact_type != filter) continue;
    json d = {{"mediaType", ref.media_type},
              {"size", ref.size},
              {"digest", ref.digest.str()}};
    if (!ref.artifact_type.empty()) d["artifactType"] = ref.artifact_type;
    if (!ref.annotations.empty()) d["annotations"] = ref.annotations;
    manifests.push_back(std::move(d));
  }
  if (!filter.empty())
    ctx.res.set_header("OCI-Filters-Applied", "artifactType");
  json body = {{"schemaVersion", 2},
               {"mediaType", oci::kOciIndex},
               {"manifests", std::move(manifests)}};
  ctx.res.status = 200;
  ctx.res.set_content(body.dump(), std::string(oci::kOciIndex));
}

}  // namespace ocib::registry
