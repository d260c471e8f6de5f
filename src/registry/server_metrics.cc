#include "registry/server_metrics.h"

#include <atomic>
#include <chrono>
#include <map>
#include <tuple>

#include "registry/mirror.h"
#include "registry/notifications.h"
#include "registry/routes.h"
#include "util/version.h"

namespace ocib::registry {
namespace {

const char* MethodLabel(const std::string& m) {
  for (const char* known :
       {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
    if (m == known) return known;
  return "other";
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t NextId() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

}  // namespace

const char* EndpointClass(const std::string& path, Endpoint matched) {
  if (path == "/token") return "token";
  if (path.rfind("/admin/", 0) == 0) return "admin";
  if (path == "/" || path.rfind("/ui/", 0) == 0 || path == "/ui") return "ui";
  if (path.rfind("/v2", 0) != 0) return "other";
  switch (matched) {
    case Endpoint::kBase:
      return "base";
    case Endpoint::kCatalog:
      return "catalog";
    case Endpoint::kTagsList:
      return "tags";
    case Endpoint::kManifest:
      return "manifest";
    case Endpoint::kUploads:
    case Endpoint::kUpload:
      return "upload";
    case Endpoint::kBlob:
      return "blob";
    case Endpoint::kReferrers:
      return "referrers";
    case Endpoint::kUnknown:
      break;
  }
  return "other";
}

ServerMetrics::ServerMetrics()
    : id_(NextId()),
      requests_(r_.AddCounter("ocireg_http_requests_total",
                              "HTTP requests answered, by endpoint class, "
                              "method and status code.",
                              {"endpoint", "method", "code"})),
      duration_(r_.AddHistogram(
          "ocireg_http_request_duration_seconds",
          "Time from a request's head to the end of its response.",
          {"endpoint"}, metrics::DefaultSecondsBuckets())),
      uploads_started_(r_.AddCounter("ocireg_uploads_started_total",
                                     "Blob uploads started (POST).")),
      uploads_committed_(r_.AddCounter(
          "ocireg_uploads_committed_total",
          "Blob uploads committed (PUT with the digest, or monolithic POST).")),
      uploads_expired_(r_.AddCounter(
          "ocireg_uploads_expired_total",
          "Idle upload sessions reclaimed after upload_expiry_seconds.")),
      gc_runs_(r_.AddCounter("ocireg_gc_runs_total",
                             "Garbage collection runs, by result.",
                             {"result"})),
      gc_blobs_(r_.AddCounter("ocireg_gc_blobs_reclaimed_total",
                              "Blobs deleted by garbage collection.")),
      gc_bytes_(r_.AddCounter("ocireg_gc_bytes_reclaimed_total",
                              "Bytes freed by garbage collection.")),
      gc_manifests_(r_.AddCounter("ocireg_gc_manifests_deleted_total",
                                  "Manifests deleted by garbage collection.")),
      gc_last_seconds_(r_.AddGauge("ocireg_gc_last_duration_seconds",
                                   "How long the last garbage collection "
                                   "run took.")),
      gc_last_end_(r_.AddGauge("ocireg_gc_last_run_timestamp_seconds",
                               "When the last garbage collection run "
                               "ended, since the Unix epoch.")),
      logins_(r_.AddCounter("ocireg_auth_checks_total",
                            "Credential checks, by kind (basic, bearer, "
                            "certificate, token) and result.",
                            {"kind", "result"})) {
  // Families without labels show 0 from the start.
  for (auto* f : {&uploads_started_, &uploads_committed_, &uploads_expired_,
                  &gc_blobs_, &gc_bytes_, &gc_manifests_})
    f->With();
  r_.AddCollector([this](metrics::Exposition& e) {
    if (!server_) return;
    net::HttpServer::Stats s = server_->stats();
    e.Family("ocireg_http_received_bytes_total", "counter",
             "Bytes received on the public address (heads and bodies).");
    e.Sample("ocireg_http_received_bytes_total", s.bytes_received);
    e.Family("ocireg_http_sent_bytes_total", "counter",
             "Bytes sent on the public address.");
    e.Sample("ocireg_http_sent_bytes_total", s.bytes_sent);
    e.Family("ocireg_http_connections_open", "gauge",
             "Open connections, idle keep-alive ones included.");
    e.Sample("ocireg_http_connections_open", s.connections_open);
    e.Family("ocireg_http_requests_in_flight", "gauge",
             "Requests read and not yet answered.");
    e.Sample("ocireg_http_requests_in_flight", s.requests_in_flight);
  });
  r_.AddCollector([this](metrics::Exposition& e) {
    if (!store_) return;
    auto s = store_->Stats();
    if (!s.ok()) return;
    e.Family("ocireg_uploads_open", "gauge", "Open upload sessions.");
    e.Sample("ocireg_uploads_open", s->uploads_open);
    e.Family("ocireg_store_blobs", "gauge", "Blobs in the store.");
    e.Sample("ocireg_store_blobs", s->blobs);
    e.Family("ocireg_store_blob_bytes", "gauge", "Bytes of the store's blobs.");
    e.Sample("ocireg_store_blob_bytes", s->blob_bytes);
    e.Family("ocireg_store_database_bytes", "gauge",
             "Size of the store's database (tables and memtables).");
    e.Sample("ocireg_store_database_bytes", s->database_bytes);
  });
  r_.AddCollector([this](metrics::Exposition& e) {
    if (!mirror_) return;
    Mirror::Stats s = mirror_->stats();
    const std::vector<std::string> up = {"upstream"};
    const std::vector<std::string> up_outcome = {"upstream", "outcome"};
    e.Family("ocireg_mirror_requests_total", "counter",
             "Mirrored requests by upstream and outcome (hit: from the "
             "cache; miss: fetched; stale: cached copy served while the "
             "upstream failed).");
    for (const auto& u : s.upstreams) {
      e.Sample("ocireg_mirror_requests_total", up_outcome, {u.ns, "hit"},
               u.hits);
      e.Sample("ocireg_mirror_requests_total", up_outcome, {u.ns, "miss"},
               u.misses);
      e.Sample("ocireg_mirror_requests_total", up_outcome, {u.ns, "stale"},
               u.stale);
    }
    e.Family("ocireg_mirror_upstream_errors_total", "counter",
             "Requests to an upstream that failed (unreachable, timed out "
             "or 5xx).");
    for (const auto& u : s.upstreams)
      e.Sample("ocireg_mirror_upstream_errors_total", up, {u.ns}, u.errors);
    e.Family("ocireg_mirror_upstream_request_duration_seconds", "histogram",
             "Latency of manifest, tag and blob-size requests upstream.");
    const auto& bounds = metrics::DefaultSecondsBuckets();
    for (const auto& u : s.upstreams) {
      for (size_t i = 0; i <= bounds.size(); ++i) {
        char le[32];
        if (i < bounds.size())
          std::snprintf(le, sizeof le, "%g", bounds[i]);
        else
          std::snprintf(le, sizeof le, "+Inf");
        e.Sample("ocireg_mirror_upstream_request_duration_seconds_bucket",
                 {"upstream", "le"}, {u.ns, le},
                 i < u.latency.cumulative.size() ? u.latency.cumulative[i] : 0);
      }
      e.Sample("ocireg_mirror_upstream_request_duration_seconds_sum", up,
               {u.ns}, u.latency.sum);
      e.Sample("ocireg_mirror_upstream_request_duration_seconds_count", up,
               {u.ns}, u.latency.count);
    }
  });
  r_.AddCollector([this](metrics::Exposition& e) {
    if (!notifier_) return;
    auto st = notifier_->stats();
    const std::vector<std::string> ep = {"endpoint"};
    e.Family("ocireg_notifications_pending", "gauge",
             "Events queued for an endpoint and not yet delivered.");
    for (const auto& s : st)
      e.Sample("ocireg_notifications_pending", ep, {s.name}, s.pending);
    e.Family("ocireg_notifications_delivered_total", "counter",
             "Events an endpoint accepted.");
    for (const auto& s : st)
      e.Sample("ocireg_notifications_delivered_total", ep, {s.name},
               s.delivered);
    e.Family("ocireg_notifications_failures_total", "counter",
             "Deliveries that failed (error, timeout or non-2xx/3xx), each "
             "retried.");
    for (const auto& s : st)
      e.Sample("ocireg_notifications_failures_total", ep, {s.name}, s.failures);
    e.Family("ocireg_notifications_dropped_total", "counter",
             "Events not queued because the endpoint already held "
             "max_pending.");
    for (const auto& s : st)
      e.Sample("ocireg_notifications_dropped_total", ep, {s.name}, s.dropped);
  });
  r_.AddCollector(metrics::ProcessCollector());
  r_.AddCollector([](metrics::Exposition& e) {
    e.Family("ocireg_build_info", "gauge",
             "Always 1; the labels give the version and git commit.");
    e.Sample("ocireg_build_info", {"version", "commit"},
             {Version(), GitCommit()}, 1);
  });
}

void ServerMetrics::Watch(const net::HttpServer* server, Store* store,
                          const Mirror* mirror) {
  server_ = server;
  store_ = store;
  mirror_ = mirror;
}

void ServerMetrics::WatchNotifier(const Notifier* notifier) {
  notifier_ = notifier;
}

void ServerMetrics::Request(const net::Request& req, const net::Response& res,
                            double ms) {
  Endpoint e = MatchRoute(req.path).endpoint;
  const char* endpoint = EndpointClass(req.path, e);
  const char* method = MethodLabel(req.method);
  // The label values are from fixed sets, so each worker keeps the
  // metrics it used: the family's lock and label strings are paid once
  // per combination and thread, not per request.
  struct Key {
    uint64_t self;  // id_: never reused, unlike an address
    const char* endpoint;
    const char* method;
    int status;
    bool operator<(const Key& o) const {
      return std::tie(self, endpoint, method, status) <
             std::tie(o.self, o.endpoint, o.method, o.status);
    }
  };
  thread_local std::map<Key, std::pair<metrics::Counter*, metrics::Histogram*>>
      cache;
  auto& hit = cache[Key{id_, endpoint, method, res.status}];
  if (!hit.first)
    hit = {&requests_.With({endpoint, method, std::to_string(res.status)}),
           &duration_.With({endpoint})};
  hit.first->Inc();
  hit.second->Observe(ms / 1000);
  bool monolithic = e == Endpoint::kUploads && req.method == "POST" &&
                    res.status == 201 && !req.has_param("mount");
  if ((e == Endpoint::kUploads && req.method == "POST" && res.status == 202) ||
      monolithic)
    uploads_started_.With().Inc();
  if ((e == Endpoint::kUpload && req.method == "PUT" && res.status == 201) ||
      monolithic)
    uploads_committed_.With().Inc();
}

void ServerMetrics::Login(const char* kind, bool ok) {
  logins_.With({kind, ok ? "success" : "failure"}).Inc();
}

void ServerMetrics::UploadsExpired(uint64_t n) {
  uploads_expired_.With().Inc(n);
}

void ServerMetrics::GcRun(const Result<gc::GcStats>& st, bool dry_run) {
  // "skipped": another replica sharing the index was collecting.
  gc_runs_
      .With({st.ok() ? (dry_run ? "dry_run" : "ok")
             : st.status().code() == Code::kUnavailable ? "skipped"
                                                        : "error"})
      .Inc();
  if (!st.ok() && st.status().code() == Code::kUnavailable) return;
  gc_last_end_.With().Set(Now());
  if (!st.ok()) return;
  gc_last_seconds_.With().Set(st->seconds);
  if (dry_run) return;
  gc_blobs_.With().Inc(st->blobs_deleted + st->orphan_blobs);
  gc_bytes_.With().Inc(st->bytes_reclaimed);
  gc_manifests_.With().Inc(st->manifests_deleted);
}

std::string ServerMetrics::Render() const { return r_.Render(); }

}  // namespace ocib::registry
