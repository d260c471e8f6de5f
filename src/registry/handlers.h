// Internal to the registry library: what every API handler is given, and
// the handlers themselves, one file per resource as Distribution's
// registry/handlers: blob_handlers.cc, upload_handlers.cc,
// manifest_handlers.cc, tag_handlers.cc (tags, catalog, referrers),
// mirror_handlers.cc. registry.cc dispatches to them from the route table
// (route_table.h).
//
// A handler reads ctx.req (and at most once ctx.body), calls the store,
// and answers in ctx.res; every error goes out through SendError. Handlers
// keep no state between requests; they run on many threads at once (the
// Store, ManifestService and Mirror are thread-safe).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "net/http.h"
#include "registry/config.h"
#include "registry/errcode.h"
#include "registry/mirror.h"
#include "registry/quota.h"
#include "registry/routes.h"
#include "store/blob_store.h"

namespace ocib::registry {

inline constexpr size_t kIoChunk = 1 << 20;  // request body writes to the store
inline constexpr size_t kMaxPage = 10000;    // listing page cap

// A request body, read at most once.
struct Body {
  net::RequestBody& reader;
  bool consumed = false;

  bool present() const { return reader.present(); }
  bool declared_length(uint64_t* n) const;
  // Streams the body to `sink` in pieces of up to kIoChunk bytes. Returns
  // false if the client's stream broke; *sink_status holds a sink error.
  bool Stream(const std::function<Status(const char*, size_t)>& sink,
              Status* sink_status, uint64_t* received);
};

// What the registry gives every handler: long-lived services.
struct Services {
  const Config& cfg;
  Store* store;
  Mirror* mirror;        // null unless upstreams are configured
  const Quotas* quotas;  // null unless quotas are configured
};

// 403 DENIED with `message` as the error's message (clients print it:
// docker shows "denied: <message>").
void SendDenied(net::Response& res, const std::string& message);

class AccessControl;
struct Principal;

// Who is asking, for handlers whose answer depends on it (the catalog
// lists what the caller may pull; a mount needs pull on its source).
struct Caller {
  AccessControl* access = nullptr;  // null: no authentication configured
  const Principal* who = nullptr;
  // True if the caller holds `actions` (auth::Action bits) on `repository`.
  bool May(std::string_view repository, unsigned actions) const;
  // True if the catalog shows `repository` to the caller.
  bool Lists(std::string_view repository) const;
};

// One request in flight: the matched route, the request, its body, the
// caller and the response being built. Lives on the worker's stack for
// the request.
struct RequestContext {
  const Route& route;
  const net::Request& req;
  net::Response& res;
  Body& body;
  const Caller& caller;
};

using Handler = void (*)(const Services&, RequestContext&);

// Sends the spec's error body. A server-side failure whose text may name
// files goes to the server's log; the client gets no path.
void SendError(net::Response& res, ErrorCode code,
               std::string_view detail = {});
// NAME_UNKNOWN for a repository that does not exist, else `code`.
void SendNotFound(const Services& s, RequestContext& ctx, ErrorCode code,
                  const Status& st);
// Parses n and last of a paginated listing; false on a bad n.
bool PageParams(const net::Request& req, size_t* n, bool* has_n,
                std::string* last);
std::string UploadLocation(const std::string& name, const std::string& id);

// Blobs (blob_handlers.cc).
void GetBlob(const Services& s, RequestContext& ctx);
void DeleteBlob(const Services& s, RequestContext& ctx);
// Answers a blob GET or HEAD from h: headers, a single Range, streamed body.
void ServeBlob(std::shared_ptr<BlobReadHandle> h, const Digest& d,
               const net::Request& req, net::Response& res);

// Uploads (upload_handlers.cc).
void StartUpload(const Services& s, RequestContext& ctx);
void PatchUpload(const Services& s, RequestContext& ctx);
void PutUpload(const Services& s, RequestContext& ctx);
void UploadStatus(const Services& s, RequestContext& ctx);
void CancelUpload(const Services& s, RequestContext& ctx);

// Manifests (manifest_handlers.cc).
void GetManifest(const Services& s, RequestContext& ctx);
void PutManifest(const Services& s, RequestContext& ctx);
void DeleteManifest(const Services& s, RequestContext& ctx);

// Content discovery (tag_handlers.cc).
void Base(const Services& s, RequestContext& ctx);
void Catalog(const Services& s, RequestContext& ctx);
void TagsList(const Services& s, RequestContext& ctx);
void Referrers(const Services& s, RequestContext& ctx);
// Answers a tag list with n, last and Link from `list(limit, last)`
// (limit 0: all), for local and mirrored repositories alike.
void TagsPage(
    RequestContext& ctx,
    const std::function<Result<Page>(size_t, const std::string&)>& list);

// A repository the mirror serves (mirror_handlers.cc): GET and HEAD of
// manifests, blobs, tags and referrers; anything else is refused.
// The outcome goes to ctx.res.log_note for the access log.
void Mirrored(const Services& s, RequestContext& ctx,
              const Mirror::Target& target);

}  // namespace ocib::registry
