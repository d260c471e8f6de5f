// Repositories the pull-through mirror serves (mirror.h): GET and HEAD of
// manifests, blobs and tags come from the local copy or upstream;
// referrers are the local index (mirrored manifests are indexed as they
// arrive); writes are refused.
#include "registry/handlers.h"

namespace ocib::registry {

void Mirrored(const Services& s, RequestContext& ctx, const Mirror::Target& t) {
  const Route& r = ctx.route;
  const net::Request& req = ctx.req;
  net::Response& res = ctx.res;
  const std::string& m = req.method;
  bool get = m == "GET" || m == "HEAD";
  CacheOutcome outcome = CacheOutcome::kNone;
  auto fail = [&](const Status& st, ErrorCode not_found) {
    if (st.code() == Code::kUnavailable)
      return SendError(res, ErrorCode::kUpstreamUnavailable, st.message());
    SendError(res, StatusToError(st, not_found), st.message());
  };
  if (!get) {
    SendError(res, ErrorCode::kUnsupported,
              r.name + " is a mirror of " + t.upstream->url + " (namespace " +
                  t.upstream->ns +
                  "): push there, or to a repository outside the mirrored "
                  "namespaces");
  } else if (r.endpoint == Endpoint::kManifest) {
    auto rec = s.mirror->Manifest(t, r.reference, &outcome);
    if (!rec.ok()) {
      fail(rec.status(), ErrorCode::kManifestUnknown);
    } else {
      res.status = 200;
      res.set_header("Docker-Content-Digest", rec->digest.str());
      res.set_header("ETag", "\"" + rec->digest.str() + "\"");
      res.set_content(std::move(rec->content), rec->media_type);
    }
  } else if (r.endpoint == Endpoint::kBlob) {
    auto d = Digest::Parse(r.reference);
    if (!d.ok()) {
      SendError(res, ErrorCode::kDigestInvalid, d.status().message());
    } else if (m == "HEAD") {
      auto size = s.mirror->BlobSize(t, *d, &outcome);
      if (!size.ok()) {
        fail(size.status(), ErrorCode::kBlobUnknown);
      } else {
        res.status = 200;
        res.set_header("Docker-Content-Digest", d->str());
        res.set_header("Content-Length", std::to_string(*size));
        res.set_header("Accept-Ranges", "bytes");
      }
    } else {
      auto h = s.mirror->Blob(t, *d, &outcome);
      if (!h.ok())
        fail(h.status(), ErrorCode::kBlobUnknown);
      else
        ServeBlob(*h, *d, req, res);
    }
  } else if (r.endpoint == Endpoint::kTagsList) {
    auto tags = s.mirror->Tags(t, &outcome);
    if (!tags.ok()) {
      fail(tags.status(), ErrorCode::kNameUnknown);
    } else {
      // The same pages as a local repository's, cut from upstream's list.
      TagsPage(ctx, [&](size_t limit, const std::string& last) -> Result<Page> {
        Page page;
        for (const auto& tag : *tags) {
          if (!last.empty() && tag <= last) continue;
          if (limit > 0 && page.items.size() == limit) {
            page.more = true;
            break;
          }
          page.items.push_back(tag);
        }
        return page;
      });
    }
  } else if (r.endpoint == Endpoint::kReferrers) {
    Route local = r;
    local.name = t.local_repo;
    RequestContext lctx{local, req, res, ctx.body, ctx.caller};
    Referrers(s, lctx);
  } else {
    SendError(res, ErrorCode::kMethodNotAllowed, m + " " + req.path);
  }
  res.log_note = OutcomeName(outcome);
}

}  // namespace ocib::registry
