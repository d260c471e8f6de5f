// GET, HEAD and DELETE of /v2/<name>/blobs/<digest>.
#include "registry/handlers.h"

namespace ocib::registry {

void GetBlob(const Services& s, RequestContext& ctx) {
  const Route& r = ctx.route;
  net::Response& res = ctx.res;
  auto d = Digest::Parse(r.reference);
  if (!d.ok())
    return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
  auto info = s.store->StatLinkedBlob(r.name, *d);
  if (!info.ok()) {
    // Manifests are content too: serve them by digest on the blob route.
    auto m = s.store->GetManifest(r.name, *d);
    if (m.ok()) {
      res.status = 200;
      res.set_header("Docker-Content-Digest", d->str());
      res.set_content(std::move(m->content), m->media_type);
      return;
    }
    return SendNotFound(s, ctx, ErrorCode::kBlobUnknown, info.status());
  }
  // storage.s3.redirect: the client fetches the bytes from the object
  // store (small blobs kept in the index are served here).
  if (s.cfg.s3.redirect && ctx.req.method == "GET") {
    auto url = s.store->BlobURL(*d, 1200);
    if (url.ok()) {
      res.status = 307;
      res.set_header("Location", *url);
      res.set_header("Docker-Content-Digest", d->str());
      res.set_content("", "application/octet-stream");
      return;
    }
  }
  auto handle = s.store->OpenBlob(*d);
  if (!handle.ok())
    return SendNotFound(s, ctx, ErrorCode::kBlobUnknown, handle.status());
  ServeBlob(std::shared_ptr<BlobReadHandle>(std::move(*handle)), *d, ctx.req,
            res);
}

void ServeBlob(std::shared_ptr<BlobReadHandle> h, const Digest& d,
               const net::Request& req, net::Response& res) {
  uint64_t size = h->size();
  uint64_t start = 0, len = size;
  res.status = 200;
  res.set_header("Docker-Content-Digest", d.str());
  res.set_header("ETag", "\"" + d.str() + "\"");
  res.set_header("Accept-Ranges", "bytes");
  res.set_header("Cache-Control", "max-age=31536000");
  // One range is served as asked; several get the whole blob (allowed by
  // RFC 9110 §14.2). An empty blob satisfies no range.
  if (req.ranges.size() == 1) {
    auto [a, b] = req.ranges[0];
    bool ok = size > 0;
    if (ok && a < 0) {  // suffix: last b bytes
      if (b <= 0) {
        ok = false;
      } else {
        len = std::min<uint64_t>(b, size);
        start = size - len;
      }
    } else if (ok) {
      if (static_cast<uint64_t>(a) >= size || (b >= 0 && b < a)) {
        ok = false;
      } else {
        start = a;
        uint64_t end =
            (b < 0 || static_cast<uint64_t>(b) >= size) ? size - 1 : b;
        len = end - start + 1;
      }
    }
    if (!ok) {
      SendError(res, ErrorCode::kRangeInvalid,
                "blob has " + std::to_string(size) + " bytes");
      res.set_header("Content-Range", "bytes */" + std::to_string(size));
      return;
    }
    res.status = 206;
    res.set_header("Content-Range", "bytes " + std::to_string(start) + "-" +
                                        std::to_string(start + len - 1) + "/" +
                                        std::to_string(size));
  }
  if (len == 0) {
    res.set_content("", "application/octet-stream");
    return;
  }
  res.set_content_provider(
      len, "application/octet-stream",
      [h, start](uint64_t offset, uint64_t length,
                 const net::BodyWriter& write) {
        return h->StreamRange(start + offset, length, write).ok();
      });
}

void DeleteBlob(const Services& s, RequestContext& ctx) {
  auto d = Digest::Parse(ctx.route.reference);
  if (!d.ok())
    return SendError(ctx.res, ErrorCode::kDigestInvalid, d.status().message());
  Status st = s.store->UnlinkBlob(ctx.route.name, *d);
  if (!st.ok()) return SendNotFound(s, ctx, ErrorCode::kBlobUnknown, st);
  ctx.res.status = 202;
  ctx.res.set_header("Content-Length", "0");
}

}  // namespace ocib::registry
