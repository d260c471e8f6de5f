// GET, HEAD, PUT and DELETE of /v2/<name>/manifests/<reference>.
#include "oci/reference.h"
#include "registry/handlers.h"
#include "registry/manifest_service.h"

namespace ocib::registry {
namespace {

// Resolves a tag or digest reference. On failure the error is sent.
std::optional<Digest> Resolve(const Services& s, RequestContext& ctx) {
  const Route& r = ctx.route;
  if (r.reference.find(':') != std::string::npos) {
    auto d = Digest::Parse(r.reference);
    if (!d.ok()) {
      SendError(ctx.res, ErrorCode::kDigestInvalid, d.status().message());
      return std::nullopt;
    }
    return *d;
  }
  // No manifest can have a name that is not a tag: 404, as Distribution
  // and the OCI conformance suite have it.
  if (!oci::ValidTag(r.reference)) {
    SendError(ctx.res, ErrorCode::kManifestUnknown,
              "no tag \"" + r.reference + "\"");
    return std::nullopt;
  }
  auto d = s.store->ResolveTag(r.name, r.reference);
  if (!d.ok()) {
    SendNotFound(s, ctx, ErrorCode::kManifestUnknown, d.status());
    return std::nullopt;
  }
  return *d;
}

}  // namespace

void GetManifest(const Services& s, RequestContext& ctx) {
  auto d = Resolve(s, ctx);
  if (!d) return;
  auto m = s.store->GetManifest(ctx.route.name, *d);
  if (!m.ok())
    return SendNotFound(s, ctx, ErrorCode::kManifestUnknown, m.status());
  ctx.res.status = 200;
  ctx.res.set_header("Docker-Content-Digest", d->str());
  ctx.res.set_header("ETag", "\"" + d->str() + "\"");
  ctx.res.set_content(std::move(m->content), m->media_type);
}

void PutManifest(const Services& s, RequestContext& ctx) {
  const Route& r = ctx.route;
  const net::Request& req = ctx.req;
  net::Response& res = ctx.res;
  uint64_t declared;
  const uint64_t limit = s.cfg.max_manifest_bytes;
  if (ctx.body.declared_length(&declared) && declared > limit)
    return SendError(res, ErrorCode::kManifestTooLarge,
                     "limit is " + std::to_string(limit) + " bytes");
  std::string content;
  Status sink_status;
  uint64_t received;
  bool ok = ctx.body.Stream(
      [&](const char* d, size_t n) {
        if (content.size() + n > limit)
          return Status(Code::kSizeMismatch, "too large");
        content.append(d, n);
        return Status::Ok();
      },
      &sink_status, &received);
  if (!sink_status.ok()) {
    res.set_header("Connection", "close");
    return SendError(res, ErrorCode::kManifestTooLarge,
                     "limit is " + std::to_string(limit) + " bytes");
  }
  if (!ok)
    return SendError(res, ErrorCode::kManifestInvalid,
                     "request body ended early");

  std::vector<std::string> tags;
  std::optional<Digest> by_digest;
  if (r.reference.find(':') != std::string::npos) {
    auto d = Digest::Parse(r.reference);
    if (!d.ok())
      return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
    by_digest = *d;
  } else {
    if (!oci::ValidTag(r.reference))
      return SendError(res, ErrorCode::kManifestInvalid,
                       "invalid tag \"" + r.reference + "\"");
    tags.push_back(r.reference);
  }
  for (size_t i = 0; i < req.get_param_value_count("tag"); ++i) {
    std::string t = req.get_param_value("tag", i);
    if (!oci::ValidTag(t))
      return SendError(res, ErrorCode::kManifestInvalid,
                       "invalid tag \"" + t + "\"");
    tags.push_back(t);
  }
  auto prepared = PrepareManifest(
      std::move(content), req.get_header_value("Content-Type"), by_digest);
  if (!prepared.ok()) {
    ErrorCode code = prepared.status().code() == Code::kDigestMismatch
                         ? ErrorCode::kDigestInvalid
                         : ErrorCode::kManifestInvalid;
    return SendError(res, code, prepared.status().message());
  }
  const ManifestRecord& rec = prepared->record;
  Status st = s.store->PutManifest(r.name, rec, tags.empty() ? "" : tags[0],
                                   prepared->blobs, prepared->children);
  for (size_t i = 1; st.ok() && i < tags.size(); ++i)
    st = s.store->PutManifest(r.name, rec, tags[i], {}, {});
  if (!st.ok()) {
    if (st.code() == Code::kNotFound)
      return SendError(res, ErrorCode::kManifestBlobUnknown, st.message());
    return SendError(res, StatusToError(st, ErrorCode::kUnknown), st.message());
  }
  res.status = 201;
  res.set_header("Location",
                 "/v2/" + r.name + "/manifests/" + rec.digest.str());
  res.set_header("Docker-Content-Digest", rec.digest.str());
  if (rec.subject) res.set_header("OCI-Subject", rec.subject->str());
  if (by_digest)
    for (const auto& t : tags) res.headers.emplace("OCI-Tag", t);
  res.set_header("Content-Length", "0");
}

void DeleteManifest(const Services& s, RequestContext& ctx) {
  const Route& r = ctx.route;
  Status st;
  if (r.reference.find(':') != std::string::npos) {
    auto d = Digest::Parse(r.reference);
    if (!d.ok())
      return SendError(ctx.res, ErrorCode::kDigestInvalid,
                       d.status().message());
    st = s.store->DeleteManifest(r.name, *d);
  } else {
    if (!oci::ValidTag(r.reference))
      return SendError(ctx.res, ErrorCode::kManifestUnknown,
                       "no tag \"" + r.reference + "\"");
    st = s.store->DeleteTag(r.name, r.reference);
  }
  if (!st.ok()) return SendNotFound(s, ctx, ErrorCode::kManifestUnknown, st);
  ctx.res.status = 202;
  ctx.res.set_header("Content-Length", "0");
}

}  // namespace ocib::registry
