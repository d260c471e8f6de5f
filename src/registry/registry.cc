// ocireg's server: binds the HTTP server, dispatches each request through
// the route table (route_table.h) to its handler, and runs the janitor
// (access log flushes, expired upload reclaim).
#include "registry/registry.h"

#include <pthread.h>
#include <sched.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "auth/acl.h"
#include "net/http_server.h"
#include "registry/access_control.h"
#include "registry/access_log.h"
#include "registry/debug_server.h"
#include "registry/handlers.h"
#include "registry/mirror.h"
#include "registry/notifications.h"
#include "registry/route_table.h"
#include "registry/routes.h"
#include "registry/server_metrics.h"
#include "registry/usage.h"
#include "registry/web_ui.h"
#include "util/mutex.h"

namespace ocib::registry {

using Clock = std::chrono::steady_clock;

class Registry::Impl {
 public:
  Impl(Config cfg, Store* store)
      : cfg_(std::move(cfg)), store_(store), log_(cfg_.log_format) {
    if (!cfg_.upstreams.empty())
      mirror_ = std::make_unique<Mirror>(cfg_.upstreams, store_);
  }

  Result<int> Bind() {
    read_only_.store(cfg_.read_only);
    if (cfg_.auth.enabled()) {
      auto ac = AccessControl::Make(cfg_.auth);
      if (!ac.ok()) return ac.status();
      access_ = std::move(*ac);
    }
    if (cfg_.ui) ui_ = std::make_unique<WebUi>(store_, access_.get());
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
    o.default_headers.emplace("Docker-Distribution-API-Version",
                              "registry/2.0");
    const bool log = cfg_.log_format != "off";
    net::Logger logger = [this, log](const net::Request& req,
                                     const net::Response& res, double ms) {
      metrics_.Request(req, res, ms);
      if (log) log_.Log(req, res, ms);
    };
    svr_ = std::make_unique<net::HttpServer>(
        std::move(o),
        [this](const net::Request& req, net::Response& res,
               net::RequestBody& body) { Dispatch(req, res, body); },
        [](int status, const char* message, net::Response& res) {
          ErrorCode c = status == 413   ? ErrorCode::kSizeInvalid
                        : status == 503 ? ErrorCode::kUnavailable
                                        : ErrorCode::kUnknown;
          SendError(res, c, message);
          res.status = status;
        },
        std::move(logger));
    if (cfg_.tls.enabled())
      if (Status s = svr_->EnableTls(cfg_.tls); !s.ok()) return s;
    auto port = svr_->Bind(cfg_.host(), cfg_.port());
    if (!port.ok())
      return Internal("cannot bind " + cfg_.listen +
                      " (in use, or not a local address)");
    if (!cfg_.notifications.empty()) {
      notifier_ =
          std::make_unique<Notifier>(cfg_.notifications, store_,
                                     cfg_.host() + ":" + std::to_string(*port));
      metrics_.WatchNotifier(notifier_.get());
    }
    metrics_.Watch(svr_.get(), store_, mirror_.get());
    if (!cfg_.debug.listen.empty()) {
      debug_ = std::make_unique<DebugServer>(&metrics_, store_);
      auto dp =
          debug_->Bind(HostOf(cfg_.debug.listen), PortOf(cfg_.debug.listen));
      if (!dp.ok()) return dp.status();
      std::fprintf(stderr, "ocireg: metrics and health on http://%s:%d\n",
                   HostOf(cfg_.debug.listen).c_str(), *dp);
    }
    return *port;
  }

  Status Serve() {
    janitor_ = std::thread([this] { Janitor(); });
    if (cfg_.gc.interval_seconds > 0)
      gc_thread_ = std::thread([this] { GcLoop(); });
    if (notifier_) notifier_->Start();
    std::thread debug_thread;
    if (debug_) debug_thread = std::thread([this] { (void)debug_->Serve(); });
    Status served = svr_->Serve();
    if (debug_) {
      debug_->Stop();
      debug_thread.join();
    }
    if (notifier_) notifier_->Stop();
    {
      MutexLock l(&stop_mu_);
      stopping_ = true;
    }
    stop_cv_.SignalAll();
    janitor_.join();
    if (gc_thread_.joinable()) gc_thread_.join();
    log_.Flush();
    if (mirror_) {
      Mirror::Stats st = mirror_->stats();
      std::fprintf(
          stderr,
          "ocireg: mirror: %llu hits, %llu misses, %llu upstream errors\n",
          static_cast<unsigned long long>(st.hits),
          static_cast<unsigned long long>(st.misses),
          static_cast<unsigned long long>(st.upstream_errors));
    }
    return served;
  }

  void Shutdown() {
    if (svr_) svr_->Stop();
  }

  Status Reload(const Config& cfg) {
    read_only_.store(cfg.read_only);
    Status result;
    if (svr_ && cfg_.tls.enabled())
      if (Status s = svr_->ReloadTls(); !s.ok()) result = s;
    if (access_)
      if (Status s = access_->Reload(); !s.ok() && result.ok()) result = s;
    return result;
  }

 private:
  // Flushes the access log every 100 ms and reclaims expired uploads every
  // minute, until Serve ends.
  void Janitor() EXCLUDES(stop_mu_) {
    auto next_purge = Clock::now() + std::chrono::seconds(60);
    while (true) {
      {
        MutexLock l(&stop_mu_);
        if (!stopping_)
          stop_cv_.WaitFor(&stop_mu_, std::chrono::milliseconds(100));
        if (stopping_) break;
      }
      log_.Flush();
      if (Clock::now() < next_purge) continue;
      next_purge = Clock::now() + std::chrono::seconds(60);
      auto n = store_->PurgeExpiredUploads(std::chrono::system_clock::now());
      if (n.ok() && *n > 0) {
        metrics_.UploadsExpired(*n);
        std::fprintf(stderr, "ocireg: reclaimed %zu expired uploads\n", *n);
      }
      if (!n.ok())
        std::fprintf(stderr, "ocireg: upload expiry: %s\n",
                     n.status().ToString().c_str());
    }
  }

  // Runs GC every gc.interval until Serve ends.
  void GcLoop() EXCLUDES(stop_mu_) {
    while (true) {
      {
        MutexLock l(&stop_mu_);
        auto until =
            Clock::now() + std::chrono::seconds(cfg_.gc.interval_seconds);
        while (!stopping_ && Clock::now() < until)
          stop_cv_.WaitFor(&stop_mu_, until - Clock::now());
        if (stopping_) return;
      }
      GcOptions o;
      o.min_age_seconds = cfg_.gc.min_age_seconds;
      o.delete_untagged = cfg_.gc.delete_untagged;
      o.retention = cfg_.retention;
      o.pace = true;  // requests come first
      (void)RunGc(o);
    }
  }

  // One GC run at a time; the outcome goes to the server log and the
  // metrics. A paced (online) run has a thread of its own in the idle
  // scheduling class, so requests come first on a busy machine.
  Result<GcStats> RunGc(const GcOptions& o) EXCLUDES(gc_mu_) {
    MutexLock l(&gc_mu_);
    Result<GcStats> st = Status(Code::kInternal, "gc did not run");
    if (o.pace) {
      std::thread t([&] {
        // SCHED_IDLE: any request thread that wakes up preempts it at
        // once (nice 10 alone still let pushes wait up to 2.5x their idle
        // p99). Its lock holds are one batch of 32, so a request that
        // waits on one frees the CPU for it. Nice 10 where not allowed.
        sched_param sp{};
        if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
          (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
        st = CollectGarbage(store_, o);
      });
      t.join();
    } else {
      st = CollectGarbage(store_, o);
    }
    metrics_.GcRun(st, o.dry_run);
    if (st.ok())
      std::fprintf(stderr, "ocireg: gc%s: %s\n", o.dry_run ? " (dry run)" : "",
                   st->Summary().c_str());
    else if (st.status().code() == Code::kUnavailable)
      std::fprintf(stderr, "ocireg: gc: skipped: %s\n",
                   st.status().message().c_str());
    else
      std::fprintf(stderr, "ocireg: gc: %s\n", st.status().ToString().c_str());
    return st;
  }

  // POST /admin/gc[?dry_run=true&min_age=0s&delete_untagged=true]: runs
  // GC now and answers its counters as JSON. Admins only.
  void AdminGc(const net::Request& req, net::Response& res) {
    if (!Admin(req, res)) return;
    if (req.method != "POST")
      return SendError(res, ErrorCode::kMethodNotAllowed, "POST /admin/gc");
    GcOptions o;
    o.min_age_seconds = cfg_.gc.min_age_seconds;
    o.delete_untagged = cfg_.gc.delete_untagged;
    o.dry_run = req.get_param_value("dry_run") == "true";
    o.retention = cfg_.retention;
    o.pace = req.get_param_value("pace") != "false";
    // Tests widen the race window between mark and sweep with this.
    if (const char* d = std::getenv("OCIREG_GC_TEST_SWEEP_DELAY_MS"))
      o.sweep_delay_ms = std::atoi(d);
    if (req.has_param("delete_untagged"))
      o.delete_untagged = req.get_param_value("delete_untagged") == "true";
    if (req.has_param("min_age")) {
      auto d = ParseDurationSeconds(req.get_param_value("min_age"));
      if (!d.ok())
        return SendError(res, ErrorCode::kUnsupported, d.status().message());
      o.min_age_seconds = *d;
    }
    auto st = RunGc(o);
    if (!st.ok() && st.status().code() == Code::kUnavailable)
      return SendError(res, ErrorCode::kStorageUnavailable,
                       "another replica is collecting garbage; retry later");
    if (!st.ok()) return SendError(res, ErrorCode::kUnknown, "gc failed");
    char body[512];
    std::snprintf(
        body, sizeof body,
        "{\"dry_run\":%s,\"repositories\":%llu,\"manifests_deleted\":%llu,"
        "\"links_removed\":%llu,\"blobs_deleted\":%llu,"
        "\"bytes_reclaimed\":%llu,\"orphan_blobs\":%llu,"
        "\"repositories_removed\":%llu,\"tags_removed\":%llu,"
        "\"seconds\":%.3f}",
        o.dry_run ? "true" : "false", (unsigned long long)st->repositories,
        (unsigned long long)st->manifests_deleted,
        (unsigned long long)st->links_removed,
        (unsigned long long)st->blobs_deleted,
        (unsigned long long)st->bytes_reclaimed,
        (unsigned long long)st->orphan_blobs,
        (unsigned long long)st->repositories_removed,
        (unsigned long long)st->tags_removed, st->seconds);
    res.status = 200;
    res.set_content(body, "application/json");
  }

  // True if the caller may use /admin/ endpoints; else answers 401/403.
  bool Admin(const net::Request& req, net::Response& res) {
    if (!access_) return true;
    Principal who;
    if (!Authenticate(req, "", &who, res)) return false;
    res.log_user = who.user;
    if (access_->IsAdmin(who)) return true;
    if (who.user.empty())
      access_->Refuse(req, who, "", 0, "", res);
    else
      SendError(res, ErrorCode::kDenied, "admin only");
    return false;
  }

  // GET /admin/usage: bytes per repository and namespace (usage.h).
  void AdminUsage(const net::Request& req, net::Response& res) {
    if (!Admin(req, res)) return;
    if (req.method != "GET" && req.method != "HEAD")
      return SendError(res, ErrorCode::kMethodNotAllowed, "GET /admin/usage");
    auto u = ComputeUsage(store_);
    if (!u.ok()) return SendError(res, ErrorCode::kUnknown, "usage failed");
    res.status = 200;
    res.set_content(u->Json(), "application/json");
  }

  void Dispatch(const net::Request& req, net::Response& res,
                net::RequestBody& reader) {
    Principal who;
    Handle(req, res, reader, &who);
    if (notifier_) Notify(req, res, who);
  }

  // The event a request makes (notifications.h), queued before it is
  // answered: manifest and blob pushes, pulls (GET), mounts, deletions.
  void Notify(const net::Request& req, const net::Response& res,
              const Principal& who) {
    Route r = MatchRoute(req.path);
    if (!r.name_valid) return;
    Event e;
    const std::string& m = req.method;
    const int st = res.status;
    std::string digest = res.get_header_value("Docker-Content-Digest");
    bool reference_is_digest = r.reference.find(':') != std::string::npos;
    if (r.endpoint == Endpoint::kManifest) {
      if (m == "PUT" && st == 201)
        e.action = "push";
      else if (m == "GET" && st == 200)
        e.action = "pull";
      else if (m == "DELETE" && st == 202)
        e.action = "delete";
      else
        return;
      if (!reference_is_digest) e.tag = r.reference;
      if (e.action == "delete") {
        if (reference_is_digest) e.digest = r.reference;
      } else {
        e.digest = digest;
        auto d = Digest::Parse(digest);
        if (d.ok())
          if (auto rec = store_->GetManifest(r.name, *d); rec.ok()) {
            e.media_type = rec->media_type;
            e.size = static_cast<int64_t>(rec->content.size());
          }
        e.url = PublicUrl(req, "/v2/" + r.name + "/manifests/" + digest);
      }
    } else if (r.endpoint == Endpoint::kBlob) {
      if (m == "GET" && (st == 200 || st == 206))
        e.action = "pull";
      else if (m == "DELETE" && st == 202)
        e.action = "delete";
      else
        return;
      e.digest = r.reference;
    } else if ((r.endpoint == Endpoint::kUpload && m == "PUT" && st == 201) ||
               (r.endpoint == Endpoint::kUploads && m == "POST" && st == 201)) {
      e.action = req.has_param("mount") ? "mount" : "push";
      if (e.action == "mount") e.from_repository = req.get_param_value("from");
      e.digest = digest;
    } else {
      return;
    }
    if (r.endpoint != Endpoint::kManifest && e.action != "delete") {
      e.media_type = "application/octet-stream";
      if (auto d = Digest::Parse(e.digest); d.ok())
        if (auto info = store_->StatBlob(*d); info.ok())
          e.size = static_cast<int64_t>(info->size);
      e.url = PublicUrl(req, "/v2/" + r.name + "/blobs/" + e.digest);
    }
    e.repository = r.name;
    e.request_addr = req.remote_addr + ":" + std::to_string(req.remote_port);
    e.request_host = req.get_header_value("Host");
    e.request_method = m;
    e.user_agent = req.get_header_value("User-Agent");
    e.actor = who.user;
    if (Status s = notifier_->Emit(e); !s.ok())
      std::fprintf(stderr,
                   "ocireg: notifications: an event was not queued: %s\n",
                   s.message().c_str());
  }

  std::string PublicUrl(const net::Request& req, const std::string& path) {
    std::string host = req.get_header_value("Host");
    if (host.empty()) host = cfg_.listen;
    return std::string(cfg_.tls.enabled() ? "https://" : "http://") + host +
           path;
  }

  void Handle(const net::Request& req, net::Response& res,
              net::RequestBody& reader, Principal* who_out) {
    if (access_ && access_->token_server() && req.path == "/token") {
      access_->ServeToken(req, reader, res);
      // Logins (credentials exchanged for a token), not anonymous tokens.
      if (req.has_header("Authorization") || req.method == "POST")
        metrics_.Login("token", res.status == 200);
      return;
    }
    if (req.path == "/admin/gc") return AdminGc(req, res);
    if (ui_ && ui_->Handle(req, res)) return;
    if (req.path == "/admin/usage") return AdminUsage(req, res);
    Body body{reader};
    Route r = MatchRoute(req.path);
    Principal& who = *who_out;
    Caller caller{access_.get(), &who};
    RequestContext ctx{r, req, res, body, caller};
    Services services{cfg_, store_, mirror_.get(),
                      quotas_.empty() ? nullptr : &quotas_};
    if (r.endpoint == Endpoint::kUnknown)
      return SendError(res, ErrorCode::kNotFound, req.path);
    bool repository =
        r.endpoint != Endpoint::kBase && r.endpoint != Endpoint::kCatalog;
    if (repository && !r.name_valid)
      return SendError(res, ErrorCode::kNameInvalid, r.name);
    const RouteSpec* spec = FindRoute(r.endpoint, req.method);
    if (access_ && !Authorize(r, spec, req, &who, res)) return;
    if (repository && mirror_)
      if (auto t = mirror_->Resolve(r.name, req.get_param_value("ns")))
        return Mirrored(services, ctx, *t);
    if (!spec)
      return SendError(res, ErrorCode::kMethodNotAllowed,
                       repository ? req.method + " " + req.path : "");
    if (spec->writes && read_only_.load())
      return SendError(res, ErrorCode::kUnsupported,
                       "the registry is read-only for maintenance");
    spec->handler(services, ctx);
    if (spec->writes) Audit(r, req, who, res);
  }

  // access_->Authenticate, counted in the metrics when credentials came.
  bool Authenticate(const net::Request& req, const std::string& scope,
                    Principal* who, net::Response& res) {
    bool ok = access_->Authenticate(req, scope, who, res);
    std::string h = req.get_header_value("Authorization");
    const char* kind = who->via == Principal::Via::kBasic    ? "basic"
                       : who->via == Principal::Via::kBearer ? "bearer"
                       : who->via == Principal::Via::kCertificate
                           ? "certificate"
                       : strncasecmp(h.c_str(), "Basic ", 6) == 0  ? "basic"
                       : strncasecmp(h.c_str(), "Bearer ", 7) == 0 ? "bearer"
                                                                   : nullptr;
    if (kind) metrics_.Login(kind, ok);
    return ok;
  }

  // Authenticates the caller and checks the action the route needs. On a
  // refusal the answer is in `res` and the result is false.
  bool Authorize(const Route& r, const RouteSpec* spec, const net::Request& req,
                 Principal* who, net::Response& res) {
    unsigned action = spec ? spec->action : auth::kPull;
    std::string scope;
    if (r.endpoint == Endpoint::kCatalog) {
      scope = "registry:catalog:*";
    } else if (r.endpoint != Endpoint::kBase) {
      scope = RepositoryScope(
          r.name, action == auth::kPush ? auth::kPull | auth::kPush : action);
      std::string from = req.get_param_value("from");
      if (r.endpoint == Endpoint::kUploads && req.has_param("mount") &&
          !from.empty() && from != r.name)
        scope += " " + RepositoryScope(from, auth::kPull);
    }
    if (!Authenticate(req, scope, who, res)) return false;
    res.log_user = who->user;
    bool ok;
    if (r.endpoint == Endpoint::kBase)
      ok = !who->user.empty() || who->via == Principal::Via::kBearer;
    else if (r.endpoint == Endpoint::kCatalog)
      ok = access_->MayListCatalog(*who);
    else
      ok = (access_->Granted(*who, r.name) & action) == action;
    if (!ok)
      access_->Refuse(req, *who, scope, action,
                      r.endpoint == Endpoint::kBase ? "" : r.name, res);
    return ok;
  }

  // An audit line for a write that changed the store: a pushed manifest
  // (tag change) or blob, a deleted manifest, tag or blob.
  void Audit(const Route& r, const net::Request& req, const Principal& who,
             const net::Response& res) {
    if (res.status != 201 && !(req.method == "DELETE" && res.status == 202))
      return;
    const char* what =
        r.endpoint == Endpoint::kManifest
            ? (req.method == "DELETE" ? "delete-manifest" : "push-manifest")
        : r.endpoint == Endpoint::kBlob ? "delete-blob"
                                        : "push-blob";
    std::string reference =
        r.endpoint == Endpoint::kManifest || r.endpoint == Endpoint::kBlob
            ? r.reference
            : "";
    log_.Audit(req, who.user, what, r.name, reference,
               res.get_header_value("Docker-Content-Digest"));
  }

  const Config cfg_;
  Store* const store_;
  AccessLog log_;
  ServerMetrics metrics_;
  std::unique_ptr<DebugServer> debug_;     // when debug.listen is set
  std::unique_ptr<Notifier> notifier_;     // when endpoints are configured
  std::unique_ptr<WebUi> ui_;              // unless "ui": false
  std::unique_ptr<Mirror> mirror_;         // when upstreams are configured
  std::unique_ptr<AccessControl> access_;  // when auth is configured
  std::atomic<bool> read_only_{false};
  const Quotas quotas_{cfg_.quotas};
  std::thread gc_thread_;
  Mutex gc_mu_;  // one GC run at a time
  std::unique_ptr<net::HttpServer> svr_;
  std::thread janitor_;
  Mutex stop_mu_;
  CondVar stop_cv_;
  bool stopping_ GUARDED_BY(stop_mu_) = false;
};

Registry::Registry(Config config, Store* store)
    : impl_(std::make_unique<Impl>(std::move(config), store)) {}
Registry::~Registry() = default;
Result<int> Registry::Bind() { return impl_->Bind(); }
Status Registry::Serve() { return impl_->Serve(); }
void Registry::Shutdown() { impl_->Shutdown(); }
Status Registry::Reload(const Config& cfg) { return impl_->Reload(cfg); }

}  // namespace ocib::registry
