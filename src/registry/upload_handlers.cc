// Blob uploads: POST /v2/<name>/blobs/uploads/ (monolithic with ?digest=,
// cross-repository mount with ?mount=&from=, or a session), and PATCH,
// PUT, GET and DELETE of /v2/<name>/blobs/uploads/<id>.
#include "auth/acl.h"
#include "net/http_parser.h"
#include "oci/reference.h"
#include "registry/handlers.h"

namespace ocib::registry {
namespace {

std::string RangeHeader(uint64_t offset) {
  return "0-" + std::to_string(offset == 0 ? 0 : offset - 1);
}

void BlobCreated(RequestContext& ctx, const Digest& d) {
  ctx.res.status = 201;
  ctx.res.set_header("Location", "/v2/" + ctx.route.name + "/blobs/" + d.str());
  ctx.res.set_header("Docker-Content-Digest", d.str());
  ctx.res.set_header("Content-Length", "0");
}

void UploadAccepted(RequestContext& ctx, const std::string& id, uint64_t offset,
                    int status) {
  ctx.res.status = status;
  ctx.res.set_header("Location", UploadLocation(ctx.route.name, id));
  ctx.res.set_header("Docker-Upload-UUID", id);
  ctx.res.set_header("Range", RangeHeader(offset));
  ctx.res.set_header("Content-Length", "0");
}

// Streams the body into w; on failure sends the error and returns false.
bool ReceiveInto(BlobWriter& w, RequestContext& ctx) {
  Status sink_status;
  uint64_t received;
  bool ok =
      ctx.body.Stream([&](const char* d, size_t n) { return w.Write(d, n); },
                      &sink_status, &received);
  if (!sink_status.ok()) {
    SendError(ctx.res, StatusToError(sink_status, ErrorCode::kUnknown),
              sink_status.message());
    ctx.res.set_header("Connection", "close");
    return false;
  }
  if (!ok) {
    SendError(
        ctx.res, ErrorCode::kBlobUploadInvalid,
        "request body ended after " + std::to_string(received) + " bytes");
    ctx.res.set_header("Connection", "close");
    return false;
  }
  uint64_t declared;
  if (ctx.body.declared_length(&declared) && declared != received) {
    SendError(ctx.res, ErrorCode::kSizeInvalid,
              "Content-Length does not match the body");
    return false;
  }
  return true;
}

// Opens the session the route names for writing, checking that it belongs
// to this repository. On failure sends the error.
std::unique_ptr<BlobWriter> OpenSession(const Services& s,
                                        RequestContext& ctx) {
  const Route& r = ctx.route;
  auto st = s.store->GetUpload(r.reference);
  if (!st.ok() || st->repo != r.name) {
    SendError(ctx.res, ErrorCode::kBlobUploadUnknown, r.reference);
    return nullptr;
  }
  auto w = s.store->ResumeUpload(r.reference);
  if (!w.ok()) {
    SendError(ctx.res, StatusToError(w.status(), ErrorCode::kBlobUploadUnknown),
              w.status().message());
    if (w.status().code() == Code::kUnavailable)
      ctx.res.set_header("Retry-After", "1");
    return nullptr;
  }
  return std::move(*w);
}

// True if the repository's namespace has room for a blob of `size` bytes
// (quota.h); else sends 403 DENIED naming usage and limit.
bool QuotaAllows(const Services& s, RequestContext& ctx, const Digest* d,
                 uint64_t size) {
  if (!s.quotas) return true;
  Status q = s.quotas->Check(s.store, ctx.route.name, d, size);
  if (q.ok()) return true;
  if (q.code() == Code::kFailedPrecondition)
    SendDenied(ctx.res, q.message());
  else
    SendError(ctx.res, ErrorCode::kUnknown, q.message());
  return false;
}

// Checks Content-Range (if any) against the session's offset.
bool CheckRange(RequestContext& ctx, BlobWriter& w) {
  const net::Request& req = ctx.req;
  if (!req.has_header("Content-Range")) return true;
  auto refuse = [&](const std::string& why) {
    SendError(ctx.res, ErrorCode::kRangeInvalid, why);
    ctx.res.set_header("Location",
                       UploadLocation(ctx.route.name, ctx.route.reference));
    ctx.res.set_header("Range", RangeHeader(w.offset()));
    return false;
  };
  uint64_t start, end;
  if (!net::ParseContentRange(req.get_header_value("Content-Range"), &start,
                              &end) ||
      !w.ExpectOffset(start).ok())
    return refuse("upload is at offset " + std::to_string(w.offset()));
  uint64_t declared;
  if (ctx.body.declared_length(&declared) && declared != end - start + 1)
    return refuse("Content-Range and Content-Length disagree");
  return true;
}

}  // namespace

void StartUpload(const Services& s, RequestContext& ctx) {
  const net::Request& req = ctx.req;
  net::Response& res = ctx.res;
  const Route& r = ctx.route;
  if (req.has_param("digest-algorithm")) {
    std::string a = req.get_param_value("digest-algorithm");
    if (a != "sha256" && a != "sha512")
      return SendError(res, ErrorCode::kDigestInvalid,
                       "unsupported digest algorithm " + a);
  }
  if (req.has_param("mount")) {
    auto d = Digest::Parse(req.get_param_value("mount"));
    if (!d.ok())
      return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
    std::string from = req.get_param_value("from");
    if (!from.empty() && !oci::ValidRepositoryName(from))
      return SendError(res, ErrorCode::kNameInvalid, from);
    // Mount only from a repository that holds the blob and that the
    // caller may pull; otherwise fall back to an upload session (202), as
    // the spec allows.
    auto held = from.empty() || !ctx.caller.May(from, auth::kPull)
                    ? Result<BlobInfo>(Status(Code::kNotFound, ""))
                    : s.store->StatLinkedBlob(from, *d);
    if (held.ok()) {
      if (!QuotaAllows(s, ctx, &*d, held->size)) return;
      if (s.store->LinkBlob(r.name, *d).ok()) return BlobCreated(ctx, *d);
    }
  } else if (req.has_param("digest")) {
    auto d = Digest::Parse(req.get_param_value("digest"));
    if (!d.ok())
      return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
    uint64_t declared;
    if (ctx.body.declared_length(&declared) &&
        !QuotaAllows(s, ctx, &*d, declared))
      return;
    auto w = s.store->NewWriter();
    if (!w.ok())
      return SendError(res, ErrorCode::kUnknown, w.status().message());
    if (!ReceiveInto(**w, ctx)) return;
    if (!QuotaAllows(s, ctx, &*d, (*w)->offset())) return;
    auto info = (*w)->Commit(*d, std::nullopt, r.name);
    if (!info.ok())
      return SendError(res,
                       StatusToError(info.status(), ErrorCode::kBlobUnknown),
                       info.status().message());
    return BlobCreated(ctx, *d);
  }
  auto id = s.store->BeginUpload(r.name);
  if (!id.ok()) {
    // Too many open sessions: 429 with a hint when to retry.
    if (id.status().code() == Code::kUnavailable)
      res.set_header("Retry-After", "60");
    return SendError(res, StatusToError(id.status(), ErrorCode::kUnknown),
                     id.status().message());
  }
  UploadAccepted(ctx, *id, 0, 202);
}

void PatchUpload(const Services& s, RequestContext& ctx) {
  auto w = OpenSession(s, ctx);
  if (!w || !CheckRange(ctx, *w) || !ReceiveInto(*w, ctx)) return;
  // The bytes are acknowledged only once they survive this request.
  if (Status f = w->Flush(); !f.ok())
    return SendError(ctx.res, StatusToError(f, ErrorCode::kUnknown),
                     f.message());
  UploadAccepted(ctx, ctx.route.reference, w->offset(), 202);
}

void PutUpload(const Services& s, RequestContext& ctx) {
  auto d = Digest::Parse(ctx.req.get_param_value("digest"));
  if (!d.ok())
    return SendError(ctx.res, ErrorCode::kDigestInvalid, d.status().message());
  auto w = OpenSession(s, ctx);
  if (!w || !CheckRange(ctx, *w)) return;
  uint64_t declared;
  if (ctx.body.declared_length(&declared) &&
      !QuotaAllows(s, ctx, &*d, w->offset() + declared))
    return;
  if (!ReceiveInto(*w, ctx)) return;
  if (!QuotaAllows(s, ctx, &*d, w->offset())) {
    // Over quota at commit: the session's bytes are discarded.
    w.reset();
    s.store->AbortUpload(ctx.route.reference).IgnoreError();
    return;
  }
  auto info = w->Commit(*d, std::nullopt, ctx.route.name);
  if (!info.ok())
    return SendError(
        ctx.res, StatusToError(info.status(), ErrorCode::kBlobUploadUnknown),
        info.status().message());
  BlobCreated(ctx, *d);
}

void UploadStatus(const Services& s, RequestContext& ctx) {
  auto st = s.store->GetUpload(ctx.route.reference);
  if (!st.ok() || st->repo != ctx.route.name)
    return SendError(ctx.res, ErrorCode::kBlobUploadUnknown,
                     ctx.route.reference);
  UploadAccepted(ctx, ctx.route.reference, st->offset, 204);
}

void CancelUpload(const Services& s, RequestContext& ctx) {
  auto st = s.store->GetUpload(ctx.route.reference);
  if (!st.ok() || st->repo != ctx.route.name)
    return SendError(ctx.res, ErrorCode::kBlobUploadUnknown,
                     ctx.route.reference);
  Status a = s.store->AbortUpload(ctx.route.reference);
  if (!a.ok())
    return SendError(ctx.res, StatusToError(a, ErrorCode::kBlobUploadUnknown),
                     a.message());
  ctx.res.status = 204;
}

}  // namespace ocib::registry
