// Request handling for ocireg. Each handler parses the request, calls the
// store, and answers; every error goes out through SendError().
#include "registry/registry.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/reference.h"
#include "registry/errcode.h"
#include "net/http_parser.h"
#include "net/http_server.h"
#include "registry/mirror.h"
#include "registry/routes.h"

namespace ocib::registry {
namespace {

using net::Request;
using net::RequestBody;
using net::Response;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kIoChunk = 1 << 20;     // request body writes to the store
constexpr size_t kReadChunk = 256 << 10;  // blob reads for responses
constexpr size_t kMaxPage = 10000;

thread_local const char* t_cache = "";  // mirror outcome of the request, for the log

void SendError(Response& res, ErrorCode code, std::string_view detail = {}) {
  res.status = Info(code).http_status;
  // A server-side failure's text may name files: it goes to the server's
  // log, and the client gets no path.
  if (code == ErrorCode::kUnknown && detail.find('/') != std::string_view::npos) {
    std::fprintf(stderr, "ocireg: internal error: %s\n", net::EscapeForLog(detail).c_str());
    detail = "internal error (details in the server log)";
  }
  res.set_content(ErrorBody(code, detail), "application/json");
}

std::string UploadLocation(const std::string& name, const std::string& id) {
  return "/v2/" + name + "/blobs/uploads/" + id;
}

std::string BlobLocation(const std::string& name, const Digest& d) {
  return "/v2/" + name + "/blobs/" + d.str();
}

std::string RangeHeader(uint64_t offset) {
  return "0-" + std::to_string(offset == 0 ? 0 : offset - 1);
}

// A request body, read at most once.
struct Body {
  RequestBody& reader;
  bool consumed = false;

  bool present() const { return reader.present(); }
  bool declared_length(uint64_t* n) const {
    auto len = reader.declared_length();
    if (len) *n = *len;
    return len.has_value();
  }

  // Streams the body to `sink` in pieces of up to kIoChunk bytes. Returns
  // false if the client's stream broke; *sink_status holds a sink error.
  bool Stream(const std::function<Status(const char*, size_t)>& sink,
              Status* sink_status, uint64_t* received) {
    consumed = true;
    *received = 0;
    if (!present()) return true;
    std::string buf;
    buf.reserve(kIoChunk);
    bool ok = reader.Read([&](const char* data, size_t n) {
      *received += n;
      if (buf.size() + n > kIoChunk && !buf.empty()) {
        *sink_status = sink(buf.data(), buf.size());
        buf.clear();
        if (!sink_status->ok()) return false;
      }
      if (n >= kIoChunk) {
        *sink_status = sink(data, n);
        return sink_status->ok();
      }
      buf.append(data, n);
      return true;
    });
    if (sink_status->ok() && !buf.empty()) *sink_status = sink(buf.data(), buf.size());
    return ok;
  }
};

// Parses n and last for paginated listings. Returns false on a bad n.
bool PageParams(const Request& req, size_t* n, bool* has_n, std::string* last) {
  *has_n = req.has_param("n");
  *n = 0;
  if (*has_n) {
    std::string v = req.get_param_value("n");
    if (v.empty() || v.size() > 9) return false;
    for (char c : v)
      if (c < '0' || c > '9') return false;
    *n = std::stoul(v);
  }
  *last = req.get_param_value("last");
  return true;
}

std::string Iso8601Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

class Registry::Impl {
 public:
  Impl(Config cfg, Store* store) : cfg_(std::move(cfg)), store_(store) {
    if (!cfg_.upstreams.empty()) mirror_ = std::make_unique<Mirror>(cfg_.upstreams, store_);
  }

  Result<int> Bind() {
    net::ServerOptions o;
    o.max_workers = cfg_.threads;
    o.max_connections = cfg_.max_connections;
    o.header_timeout_ms = static_cast<int>(cfg_.header_timeout_seconds * 1000);
    o.keep_alive_timeout_ms = cfg_.keep_alive_timeout_seconds * 1000;
    o.keep_alive_max_requests = cfg_.keep_alive_max_requests;
    o.read_timeout_ms = cfg_.read_timeout_seconds * 1000;
    o.write_timeout_ms = cfg_.write_timeout_seconds * 1000;
    o.max_body_bytes = static_cast<uint64_t>(cfg_.max_body_bytes);
    o.head.max_header_bytes = static_cast<size_t>(cfg_.max_header_bytes);
    o.default_headers.emplace("Docker-Distribution-API-Version", "registry/2.0");
    net::Logger logger;
    if (cfg_.log_format != "off")
      logger = [this](const Request& req, const Response& res, double ms) { Log(req, res, ms); };
    svr_ = std::make_unique<net::HttpServer>(
        std::move(o), [this](const Request& req, Response& res, RequestBody& body) { Dispatch(req, res, body); },
        [](int status, const char* message, Response& res) {
          ErrorCode c = status == 413   ? ErrorCode::kSizeInvalid
                        : status == 503 ? ErrorCode::kUnavailable
                                        : ErrorCode::kUnknown;
          SendError(res, c, message);
          res.status = status;
        },
        std::move(logger));
    auto port = svr_->Bind(cfg_.host(), cfg_.port());
    if (!port.ok())
      return Internal("cannot bind " + cfg_.listen + " (in use, or not a local address)");
    return *port;
  }

  Status Serve() {
    janitor_ = std::thread([this] { Janitor(); });
    Status served = svr_->Serve();
    {
      std::lock_guard<std::mutex> l(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    janitor_.join();
    FlushLog();
    if (mirror_) {
      Mirror::Stats st = mirror_->stats();
      std::fprintf(stderr, "ocireg: mirror: %llu hits, %llu misses, %llu upstream errors\n",
                   static_cast<unsigned long long>(st.hits), static_cast<unsigned long long>(st.misses),
                   static_cast<unsigned long long>(st.upstream_errors));
    }
    return served;
  }

  void Shutdown() {
    shutdown_requested_ = true;
    if (svr_) svr_->Stop();
  }

 private:
  void Log(const Request& req, const Response& res, double ms) {
    uint64_t bytes = req.method == "HEAD" ? 0 : res.body_length();
    std::string cache = t_cache;
    t_cache = "";
    if (cfg_.log_format == "json") {
      json j = {{"time", Iso8601Now()}, {"client", req.remote_addr}, {"method", req.method},
                {"path", req.path}, {"status", res.status}, {"bytes", bytes},
                {"duration_ms", std::round(ms * 1000) / 1000}};
      if (!cache.empty()) j["cache"] = cache;
      std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace) + "\n";
      std::lock_guard<std::mutex> l(log_mu_);
      std::fwrite(s.data(), 1, s.size(), stdout);
      return;
    }
    // Every field a client chose is escaped: no request can forge a line.
    std::string path = net::EscapeForLog(req.path.substr(0, 1500));
    std::string method = net::EscapeForLog(req.method);
    char line[2048];
    int n = std::snprintf(line, sizeof line, "%s %s \"%s %s\" %d %llu %.3fms%s%s\n",
                          Iso8601Now().c_str(), req.remote_addr.empty() ? "-" : req.remote_addr.c_str(),
                          method.empty() ? "-" : method.c_str(), path.empty() ? "-" : path.c_str(),
                          res.status, static_cast<unsigned long long>(bytes), ms,
                          cache.empty() ? "" : " cache=", cache.c_str());
    if (n < 0) return;
    std::lock_guard<std::mutex> l(log_mu_);
    std::fwrite(line, 1, std::min<size_t>(n, sizeof line - 1), stdout);
  }

  void FlushLog() {
    std::lock_guard<std::mutex> l(log_mu_);
    std::fflush(stdout);
  }

  // Flushes the access log every 100 ms and reclaims expired uploads every
  // minute, until Serve ends.
  void Janitor() {
    std::unique_lock<std::mutex> l(stop_mu_);
    auto next_purge = Clock::now() + std::chrono::seconds(60);
    while (!stopping_) {
      stop_cv_.wait_for(l, std::chrono::milliseconds(100));
      if (stopping_) break;
      l.unlock();
      FlushLog();
      if (Clock::now() < next_purge) {
        l.lock();
        continue;
      }
      next_purge = Clock::now() + std::chrono::seconds(60);
      auto n = store_->PurgeExpiredUploads(std::chrono::system_clock::now());
      if (n.ok() && *n > 0) std::fprintf(stderr, "ocireg: reclaimed %zu expired uploads\n", *n);
      if (!n.ok()) std::fprintf(stderr, "ocireg: upload expiry: %s\n", n.status().ToString().c_str());
      l.lock();
    }
  }

  void Dispatch(const Request& req, Response& res, RequestBody& reader) {
    Body body{reader};
    Route r = MatchRoute(req.path);
    const std::string& m = req.method;
    bool get = m == "GET" || m == "HEAD";
    switch (r.endpoint) {
      case Endpoint::kBase:
        if (get) {
          res.status = 200;
          res.set_content("{}", "application/json");
        } else {
          SendError(res, ErrorCode::kMethodNotAllowed);
        }
        break;
      case Endpoint::kCatalog:
        if (get) Catalog(req, res);
        else SendError(res, ErrorCode::kMethodNotAllowed);
        break;
      case Endpoint::kUnknown:
        SendError(res, ErrorCode::kNotFound, req.path);
        break;
      default:
        if (!r.name_valid) {
          SendError(res, ErrorCode::kNameInvalid, r.name);
          break;
        }
        Repository(r, req, res, body);
    }
  }

  void Repository(const Route& r, const Request& req, Response& res, Body& body) {
    const std::string& m = req.method;
    bool get = m == "GET" || m == "HEAD";
    if (mirror_) {
      if (auto t = mirror_->Resolve(r.name, req.get_param_value("ns"))) return Mirrored(*t, r, req, res);
    }
    switch (r.endpoint) {
      case Endpoint::kTagsList:
        if (get) return TagsList(r, req, res);
        break;
      case Endpoint::kManifest:
        if (get) return GetManifest(r, req, res);
        if (m == "PUT") return PutManifest(r, req, res, body);
        if (m == "DELETE") return DeleteManifest(r, res);
        break;
      case Endpoint::kBlob:
        if (get) return GetBlob(r, req, res);
        if (m == "DELETE") return DeleteBlob(r, res);
        break;
      case Endpoint::kUploads:
        if (m == "POST") return StartUpload(r, req, res, body);
        break;
      case Endpoint::kUpload:
        if (m == "GET") return UploadStatusOf(r, res);
        if (m == "PATCH") return PatchUpload(r, req, res, body);
        if (m == "PUT") return PutUpload(r, req, res, body);
        if (m == "DELETE") return CancelUpload(r, res);
        break;
      case Endpoint::kReferrers:
        if (get) return Referrers(r, req, res);
        break;
      default:
        break;
    }
    SendError(res, ErrorCode::kMethodNotAllowed, m + " " + req.path);
  }

  // --- the pull-through mirror (mirror.h) ---

  void Mirrored(const Mirror::Target& t, const Route& r, const Request& req, Response& res) {
    const std::string& m = req.method;
    bool get = m == "GET" || m == "HEAD";
    CacheOutcome outcome = CacheOutcome::kNone;
    Route local = r;
    local.name = t.local_repo;
    auto fail = [&](const Status& s, ErrorCode not_found) {
      if (s.code() == Code::kUnavailable) return SendError(res, ErrorCode::kUpstreamUnavailable, s.message());
      SendError(res, StatusToError(s, not_found), s.message());
    };
    if (!get) {
      SendError(res, ErrorCode::kUnsupported,
                r.name + " is a mirror of " + t.upstream->url + " (namespace " + t.upstream->ns +
                    "): push there, or to a repository outside the mirrored namespaces");
    } else if (r.endpoint == Endpoint::kManifest) {
      auto rec = mirror_->Manifest(t, r.reference, &outcome);
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
        auto size = mirror_->BlobSize(t, *d, &outcome);
        if (!size.ok()) {
          fail(size.status(), ErrorCode::kBlobUnknown);
        } else {
          res.status = 200;
          res.set_header("Docker-Content-Digest", d->str());
          res.set_header("Content-Length", std::to_string(*size));
          res.set_header("Accept-Ranges", "bytes");
        }
      } else {
        auto h = mirror_->Blob(t, *d, &outcome);
        if (!h.ok()) fail(h.status(), ErrorCode::kBlobUnknown);
        else ServeBlob(*h, *d, req, res);
      }
    } else if (r.endpoint == Endpoint::kTagsList) {
      auto tags = mirror_->Tags(t, &outcome);
      if (!tags.ok()) {
        fail(tags.status(), ErrorCode::kNameUnknown);
      } else {
        // The same pages as a local repository's, cut from upstream's list.
        TagsList(r, req, res, [&](size_t limit, const std::string& last) -> Result<Page> {
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
      Referrers(local, req, res);
    } else {
      SendError(res, ErrorCode::kMethodNotAllowed, m + " " + req.path);
    }
    t_cache = OutcomeName(outcome);
  }

  // --- content discovery ---

  void Catalog(const Request& req, Response& res) {
    size_t n;
    bool has_n;
    std::string last;
    if (!PageParams(req, &n, &has_n, &last))
      return SendError(res, ErrorCode::kPaginationNumberInvalid);
    json body = {{"repositories", json::array()}};
    if (!has_n || n > 0) {
      auto page = store_->ListRepositories(has_n ? std::min(n, kMaxPage) : 0, last);
      if (!page.ok()) return SendError(res, ErrorCode::kUnknown, page.status().message());
      for (auto& name : page->items) body["repositories"].push_back(name);
      if (page->more)
        res.set_header("Link", "</v2/_catalog?last=" + page->items.back() + "&n=" +
                                   std::to_string(std::min(n, kMaxPage)) + ">; rel=\"next\"");
    }
    res.status = 200;
    res.set_content(body.dump(), "application/json");
  }

  void TagsList(const Route& r, const Request& req, Response& res) {
    if (!store_->RepositoryExists(r.name)) return SendError(res, ErrorCode::kNameUnknown, r.name);
    TagsList(r, req, res, [&](size_t limit, const std::string& last) { return store_->ListTags(r.name, limit, last); });
  }

  // Answers a tag list with n, last and Link from `list(limit, last)`
  // (limit 0: all).
  void TagsList(const Route& r, const Request& req, Response& res,
                const std::function<Result<Page>(size_t, const std::string&)>& list) {
    size_t n;
    bool has_n;
    std::string last;
    if (!PageParams(req, &n, &has_n, &last))
      return SendError(res, ErrorCode::kPaginationNumberInvalid);
    json body = {{"name", r.name}, {"tags", json::array()}};
    if (!has_n || n > 0) {
      size_t limit = has_n ? std::min(n, kMaxPage) : 0;
      auto page = list(limit, last);
      if (!page.ok()) return SendError(res, ErrorCode::kUnknown, page.status().message());
      for (auto& t : page->items) body["tags"].push_back(t);
      if (page->more)
        res.set_header("Link", "</v2/" + r.name + "/tags/list?last=" + page->items.back() +
                                   "&n=" + std::to_string(limit) + ">; rel=\"next\"");
    }
    res.status = 200;
    res.set_content(body.dump(), "application/json");
  }

  void Referrers(const Route& r, const Request& req, Response& res) {
    auto subject = Digest::Parse(r.reference);
    if (!subject.ok()) return SendError(res, ErrorCode::kDigestInvalid, subject.status().message());
    auto refs = store_->ListReferrers(r.name, *subject);
    if (!refs.ok()) return SendError(res, ErrorCode::kUnknown, refs.status().message());
    std::string filter = req.get_param_value("artifactType");
    json manifests = json::array();
    for (const auto& ref : *refs) {
      if (!filter.empty() && ref.artifact_type != filter) continue;
      json d = {{"mediaType", ref.media_type}, {"size", ref.size}, {"digest", ref.digest.str()}};
      if (!ref.artifact_type.empty()) d["artifactType"] = ref.artifact_type;
      if (!ref.annotations.empty()) d["annotations"] = ref.annotations;
      manifests.push_back(std::move(d));
    }
    if (!filter.empty()) res.set_header("OCI-Filters-Applied", "artifactType");
    json body = {{"schemaVersion", 2},
                 {"mediaType", oci::kOciIndex},
                 {"manifests", std::move(manifests)}};
    res.status = 200;
    res.set_content(body.dump(), std::string(oci::kOciIndex));
  }

  // --- manifests ---

  // Resolves a tag or digest reference. On failure the error is sent.
  std::optional<Digest> Resolve(const Route& r, Response& res) {
    if (r.reference.find(':') != std::string::npos) {
      auto d = Digest::Parse(r.reference);
      if (!d.ok()) {
        SendError(res, ErrorCode::kDigestInvalid, d.status().message());
        return std::nullopt;
      }
      return *d;
    }
    // No manifest can have a name that is not a tag: 404, as Distribution
    // and the OCI conformance suite have it.
    if (!oci::ValidTag(r.reference)) {
      SendError(res, ErrorCode::kManifestUnknown, "no tag \"" + r.reference + "\"");
      return std::nullopt;
    }
    auto d = store_->ResolveTag(r.name, r.reference);
    if (!d.ok()) {
      NotFound(r, res, ErrorCode::kManifestUnknown, d.status());
      return std::nullopt;
    }
    return *d;
  }

  // Sends NAME_UNKNOWN for a repository that does not exist, else `code`.
  void NotFound(const Route& r, Response& res, ErrorCode code, const Status& s) {
    if (s.code() != Code::kNotFound) return SendError(res, StatusToError(s, code), s.message());
    if (!store_->RepositoryExists(r.name)) return SendError(res, ErrorCode::kNameUnknown, r.name);
    SendError(res, code, s.message());
  }

  void GetManifest(const Route& r, const Request&, Response& res) {
    auto d = Resolve(r, res);
    if (!d) return;
    auto m = store_->GetManifest(r.name, *d);
    if (!m.ok()) return NotFound(r, res, ErrorCode::kManifestUnknown, m.status());
    res.status = 200;
    res.set_header("Docker-Content-Digest", d->str());
    res.set_header("ETag", "\"" + d->str() + "\"");
    res.set_content(std::move(m->content), m->media_type);
  }

  void PutManifest(const Route& r, const Request& req, Response& res, Body& body) {
    uint64_t declared;
    const uint64_t limit = cfg_.max_manifest_bytes;
    if (body.declared_length(&declared) && declared > limit)
      return SendError(res, ErrorCode::kManifestTooLarge,
                       "limit is " + std::to_string(limit) + " bytes");
    std::string content;
    Status sink_status;
    uint64_t received;
    bool ok = body.Stream(
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
    if (!ok) return SendError(res, ErrorCode::kManifestInvalid, "request body ended early");

    std::vector<std::string> tags;
    std::optional<Digest> by_digest;
    if (r.reference.find(':') != std::string::npos) {
      auto d = Digest::Parse(r.reference);
      if (!d.ok()) return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
      by_digest = *d;
    } else {
      if (!oci::ValidTag(r.reference))
        return SendError(res, ErrorCode::kManifestInvalid, "invalid tag \"" + r.reference + "\"");
      tags.push_back(r.reference);
    }
    for (size_t i = 0; i < req.get_param_value_count("tag"); ++i) {
      std::string t = req.get_param_value("tag", i);
      if (!oci::ValidTag(t))
        return SendError(res, ErrorCode::kManifestInvalid, "invalid tag \"" + t + "\"");
      tags.push_back(t);
    }
    auto parsed = oci::ParseManifest(content, req.get_header_value("Content-Type"));
    if (!parsed.ok()) return SendError(res, ErrorCode::kManifestInvalid, parsed.status().message());
    Digest digest = Digest::Of(content, by_digest ? by_digest->algorithm() : DigestAlgorithm::kSha256);
    if (by_digest && *by_digest != digest)
      return SendError(res, ErrorCode::kDigestInvalid,
                       "manifest hashes to " + digest.str() + ", not " + by_digest->str());

    std::vector<Digest> blobs, children;
    if (parsed->config) blobs.push_back(parsed->config->digest);
    for (const auto& l : parsed->layers)
      if (!oci::IsNonDistributable(l.media_type)) blobs.push_back(l.digest);
    for (const auto& c : parsed->manifests) children.push_back(c.digest);

    ManifestRecord rec;
    rec.digest = digest;
    rec.media_type = parsed->media_type;
    rec.content = std::move(content);
    if (parsed->subject) rec.subject = parsed->subject->digest;
    rec.artifact_type = parsed->ReferrerArtifactType();
    rec.annotations = parsed->annotations;
    Status s = store_->PutManifest(r.name, rec, tags.empty() ? "" : tags[0], blobs, children);
    for (size_t i = 1; s.ok() && i < tags.size(); ++i)
      s = store_->PutManifest(r.name, rec, tags[i], {}, {});
    if (!s.ok()) {
      if (s.code() == Code::kNotFound)
        return SendError(res, ErrorCode::kManifestBlobUnknown, s.message());
      return SendError(res, StatusToError(s, ErrorCode::kUnknown), s.message());
    }
    res.status = 201;
    res.set_header("Location", "/v2/" + r.name + "/manifests/" + digest.str());
    res.set_header("Docker-Content-Digest", digest.str());
    if (rec.subject) res.set_header("OCI-Subject", rec.subject->str());
    if (by_digest)
      for (const auto& t : tags) res.headers.emplace("OCI-Tag", t);
    res.set_header("Content-Length", "0");
  }

  void DeleteManifest(const Route& r, Response& res) {
    Status s;
    if (r.reference.find(':') != std::string::npos) {
      auto d = Digest::Parse(r.reference);
      if (!d.ok()) return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
      s = store_->DeleteManifest(r.name, *d);
    } else {
      if (!oci::ValidTag(r.reference))
        return SendError(res, ErrorCode::kManifestUnknown, "no tag \"" + r.reference + "\"");
      s = store_->DeleteTag(r.name, r.reference);
    }
    if (!s.ok()) return NotFound(r, res, ErrorCode::kManifestUnknown, s);
    res.status = 202;
    res.set_header("Content-Length", "0");
  }

  // --- blobs ---

  void GetBlob(const Route& r, const Request& req, Response& res) {
    auto d = Digest::Parse(r.reference);
    if (!d.ok()) return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
    auto info = store_->StatLinkedBlob(r.name, *d);
    if (!info.ok()) {
      // Manifests are content too: serve them by digest on the blob route.
      auto m = store_->GetManifest(r.name, *d);
      if (m.ok()) {
        res.status = 200;
        res.set_header("Docker-Content-Digest", d->str());
        res.set_content(std::move(m->content), m->media_type);
        return;
      }
      return NotFound(r, res, ErrorCode::kBlobUnknown, info.status());
    }
    auto handle = store_->OpenBlob(*d);
    if (!handle.ok()) return NotFound(r, res, ErrorCode::kBlobUnknown, handle.status());
    ServeBlob(std::shared_ptr<BlobReadHandle>(std::move(*handle)), *d, req, res);
  }

  // Answers a blob GET or HEAD from h: headers, a single Range, streamed body.
  void ServeBlob(std::shared_ptr<BlobReadHandle> h, const Digest& digest, const Request& req, Response& res) {
    const Digest* d = &digest;
    uint64_t size = h->size();
    uint64_t start = 0, len = size;
    res.status = 200;
    res.set_header("Docker-Content-Digest", d->str());
    res.set_header("ETag", "\"" + d->str() + "\"");
    res.set_header("Accept-Ranges", "bytes");
    res.set_header("Cache-Control", "max-age=31536000");
    // One range is served as asked; several get the whole blob (allowed by
    // RFC 9110 §14.2). An empty blob satisfies no range.
    if (req.ranges.size() == 1) {
      auto [a, b] = req.ranges[0];
      bool ok = size > 0;
      if (ok && a < 0) {  // suffix: last b bytes
        if (b <= 0) ok = false;
        else {
          len = std::min<uint64_t>(b, size);
          start = size - len;
        }
      } else if (ok) {
        if (static_cast<uint64_t>(a) >= size || (b >= 0 && b < a)) ok = false;
        else {
          start = a;
          uint64_t end = (b < 0 || static_cast<uint64_t>(b) >= size) ? size - 1 : b;
          len = end - start + 1;
        }
      }
      if (!ok) {
        SendError(res, ErrorCode::kRangeInvalid, "blob has " + std::to_string(size) + " bytes");
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
    auto buf = std::make_shared<std::vector<char>>();
    res.set_content_provider(
        len, "application/octet-stream",
        [h, buf, start](uint64_t offset, uint64_t length, const net::BodyWriter& write) {
          if (buf->empty()) buf->resize(kReadChunk);
          auto n = h->ReadAt(start + offset, buf->data(), std::min<uint64_t>(length, kReadChunk));
          if (!n.ok() || *n == 0) return false;
          return write(buf->data(), *n);
        });
  }

  void DeleteBlob(const Route& r, Response& res) {
    auto d = Digest::Parse(r.reference);
    if (!d.ok()) return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
    Status s = store_->UnlinkBlob(r.name, *d);
    if (!s.ok()) return NotFound(r, res, ErrorCode::kBlobUnknown, s);
    res.status = 202;
    res.set_header("Content-Length", "0");
  }

  // --- uploads ---

  void BlobCreated(const Route& r, Response& res, const Digest& d) {
    res.status = 201;
    res.set_header("Location", BlobLocation(r.name, d));
    res.set_header("Docker-Content-Digest", d.str());
    res.set_header("Content-Length", "0");
  }

  void UploadAccepted(const Route& r, Response& res, const std::string& id, uint64_t offset,
                      int status) {
    res.status = status;
    res.set_header("Location", UploadLocation(r.name, id));
    res.set_header("Docker-Upload-UUID", id);
    res.set_header("Range", RangeHeader(offset));
    res.set_header("Content-Length", "0");
  }

  // Streams the body into w; on failure sends the error and returns false.
  bool ReceiveInto(BlobWriter& w, Body& body, Response& res) {
    Status sink_status;
    uint64_t received;
    bool ok = body.Stream([&](const char* d, size_t n) { return w.Write(d, n); },
                          &sink_status, &received);
    if (!sink_status.ok()) {
      SendError(res, ErrorCode::kUnknown, sink_status.message());
      res.set_header("Connection", "close");
      return false;
    }
    if (!ok) {
      SendError(res, ErrorCode::kBlobUploadInvalid,
                "request body ended after " + std::to_string(received) + " bytes");
      res.set_header("Connection", "close");
      return false;
    }
    uint64_t declared;
    if (body.declared_length(&declared) && declared != received) {
      SendError(res, ErrorCode::kSizeInvalid, "Content-Length does not match the body");
      return false;
    }
    return true;
  }

  void StartUpload(const Route& r, const Request& req, Response& res, Body& body) {
    if (req.has_param("digest-algorithm")) {
      std::string a = req.get_param_value("digest-algorithm");
      if (a != "sha256" && a != "sha512")
        return SendError(res, ErrorCode::kDigestInvalid, "unsupported digest algorithm " + a);
    }
    if (req.has_param("mount")) {
      auto d = Digest::Parse(req.get_param_value("mount"));
      if (!d.ok()) return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
      std::string from = req.get_param_value("from");
      if (!from.empty() && !oci::ValidRepositoryName(from))
        return SendError(res, ErrorCode::kNameInvalid, from);
      // Mount only from a repository that holds the blob; otherwise fall
      // back to an upload session (202), as the spec allows.
      if (!from.empty() && store_->StatLinkedBlob(from, *d).ok() &&
          store_->LinkBlob(r.name, *d).ok())
        return BlobCreated(r, res, *d);
    } else if (req.has_param("digest")) {
      auto d = Digest::Parse(req.get_param_value("digest"));
      if (!d.ok()) return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
      auto w = store_->NewWriter();
      if (!w.ok()) return SendError(res, ErrorCode::kUnknown, w.status().message());
      if (!ReceiveInto(**w, body, res)) return;
      auto info = (*w)->Commit(*d, std::nullopt, r.name);
      if (!info.ok())
        return SendError(res, StatusToError(info.status(), ErrorCode::kBlobUnknown),
                         info.status().message());
      return BlobCreated(r, res, *d);
    }
    auto id = store_->BeginUpload(r.name);
    if (!id.ok()) {
      // Too many open sessions: 429 with a hint when to retry.
      if (id.status().code() == Code::kUnavailable) res.set_header("Retry-After", "60");
      return SendError(res, StatusToError(id.status(), ErrorCode::kUnknown), id.status().message());
    }
    UploadAccepted(r, res, *id, 0, 202);
  }

  // Opens the session named by the route for writing, checking that it
  // belongs to this repository. On failure sends the error.
  std::unique_ptr<BlobWriter> OpenSession(const Route& r, Response& res) {
    auto st = store_->GetUpload(r.reference);
    if (!st.ok() || st->repo != r.name) {
      SendError(res, ErrorCode::kBlobUploadUnknown, r.reference);
      return nullptr;
    }
    auto w = store_->ResumeUpload(r.reference);
    if (!w.ok()) {
      SendError(res, StatusToError(w.status(), ErrorCode::kBlobUploadUnknown), w.status().message());
      if (w.status().code() == Code::kUnavailable) res.set_header("Retry-After", "1");
      return nullptr;
    }
    return std::move(*w);
  }

  // Checks Content-Range (if any) against the session's offset.
  bool CheckRange(const Request& req, Body& body, Response& res, BlobWriter& w, const Route& r) {
    if (!req.has_header("Content-Range")) return true;
    uint64_t start, end;
    if (!net::ParseContentRange(req.get_header_value("Content-Range"), &start, &end) ||
        !w.ExpectOffset(start).ok()) {
      SendError(res, ErrorCode::kRangeInvalid,
                "upload is at offset " + std::to_string(w.offset()));
      res.set_header("Location", UploadLocation(r.name, r.reference));
      res.set_header("Range", RangeHeader(w.offset()));
      return false;
    }
    uint64_t declared;
    if (body.declared_length(&declared) && declared != end - start + 1) {
      SendError(res, ErrorCode::kRangeInvalid, "Content-Range and Content-Length disagree");
      res.set_header("Location", UploadLocation(r.name, r.reference));
      res.set_header("Range", RangeHeader(w.offset()));
      return false;
    }
    return true;
  }

  void PatchUpload(const Route& r, const Request& req, Response& res, Body& body) {
    auto w = OpenSession(r, res);
    if (!w) return;
    if (!CheckRange(req, body, res, *w, r)) return;
    if (!ReceiveInto(*w, body, res)) return;
    UploadAccepted(r, res, r.reference, w->offset(), 202);
  }

  void PutUpload(const Route& r, const Request& req, Response& res, Body& body) {
    auto d = Digest::Parse(req.get_param_value("digest"));
    if (!d.ok()) return SendError(res, ErrorCode::kDigestInvalid, d.status().message());
    auto w = OpenSession(r, res);
    if (!w) return;
    if (!CheckRange(req, body, res, *w, r)) return;
    if (!ReceiveInto(*w, body, res)) return;
    auto info = w->Commit(*d, std::nullopt, r.name);
    if (!info.ok())
      return SendError(res, StatusToError(info.status(), ErrorCode::kBlobUploadUnknown),
                       info.status().message());
    BlobCreated(r, res, *d);
  }

  void UploadStatusOf(const Route& r, Response& res) {
    auto st = store_->GetUpload(r.reference);
    if (!st.ok() || st->repo != r.name)
      return SendError(res, ErrorCode::kBlobUploadUnknown, r.reference);
    UploadAccepted(r, res, r.reference, st->offset, 204);
  }

  void CancelUpload(const Route& r, Response& res) {
    auto st = store_->GetUpload(r.reference);
    if (!st.ok() || st->repo != r.name)
      return SendError(res, ErrorCode::kBlobUploadUnknown, r.reference);
    Status s = store_->AbortUpload(r.reference);
    if (!s.ok())
      return SendError(res, StatusToError(s, ErrorCode::kBlobUploadUnknown), s.message());
    res.status = 204;
  }

  const Config cfg_;
  Store* const store_;
  std::unique_ptr<Mirror> mirror_;  // when upstreams are configured
  std::unique_ptr<net::HttpServer> svr_;
  std::thread janitor_;
  std::atomic<bool> shutdown_requested_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  std::mutex log_mu_;
};

Registry::Registry(Config config, Store* store)
    : impl_(std::make_unique<Impl>(std::move(config), store)) {}
Registry::~Registry() = default;
Result<int> Registry::Bind() { return impl_->Bind(); }
Status Registry::Serve() { return impl_->Serve(); }
void Registry::Shutdown() { impl_->Shutdown(); }

}  // namespace ocib::registry
