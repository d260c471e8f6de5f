// What ocireg tells its operator: the metrics served at /metrics on the
// debug address (debug_server.h), in Prometheus's text format.
//
// Families (prefix ocireg_, plus the standard process_*):
//  - http: requests by endpoint class, method and status; request
//    duration by endpoint class; bytes received and sent; open
//    connections; requests in flight;
//  - uploads: open sessions; started, committed and expired;
//  - store: blobs and their bytes; database size;
//  - mirror, per upstream namespace: hits, misses, stale serves, upstream
//    errors, upstream request latency;
//  - gc: runs by result; blobs, bytes and manifests reclaimed; the last
//    run's duration and end time;
//  - auth: credential checks by kind and result;
//  - notifications, per endpoint: events waiting, delivered, failed posts;
//  - build info: version and git commit.
// Label values come from fixed sets (endpoint classes, methods, status
// codes, configured upstreams): never a repository, tag or user name.
//
// Thread safety: Watch() once before serving; everything else from any
// thread.
#pragma once

#include <string>

#include "gc/garbage_collector.h"
#include "metrics/metrics.h"
#include "net/http.h"
#include "net/http_server.h"
#include "registry/routes.h"
#include "store/blob_store.h"
#include "util/status.h"

namespace ocib::registry {

class Mirror;
class Notifier;

class ServerMetrics {
 public:
  ServerMetrics();
  // Figures read at each scrape. mirror may be null.
  void Watch(const net::HttpServer* server, Store* store, const Mirror* mirror);
  void WatchNotifier(const Notifier* notifier);

  // A request answered on the public address.
  void Request(const net::Request& req, const net::Response& res, double ms);
  // A credential check: kind "basic", "bearer", "certificate" or "token"
  // (the token server's logins).
  void Login(const char* kind, bool ok);
  void UploadsExpired(uint64_t n);
  void GcRun(const Result<gc::GcStats>& st, bool dry_run);

  std::string Render() const;

 private:
  const uint64_t id_;  // keys the workers' caches of labelled metrics
  metrics::Registry r_;
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Family<metrics::Counter>& uploads_started_;
  metrics::Family<metrics::Counter>& uploads_committed_;
  metrics::Family<metrics::Counter>& uploads_expired_;
  metrics::Family<metrics::Counter>& gc_runs_;
  metrics::Family<metrics::Counter>& gc_blobs_;
  metrics::Family<metrics::Counter>& gc_bytes_;
  metrics::Family<metrics::Counter>& gc_manifests_;
  metrics::Family<metrics::Gauge>& gc_last_seconds_;
  metrics::Family<metrics::Gauge>& gc_last_end_;
  metrics::Family<metrics::Counter>& logins_;
  const net::HttpServer* server_ = nullptr;
  Store* store_ = nullptr;
  const Mirror* mirror_ = nullptr;
  const Notifier* notifier_ = nullptr;
};

// The endpoint class of a path, for labels: "base", "catalog", "tags",
// "manifest", "blob", "upload", "referrers", "token", "admin", "ui",
// "other".
// `matched`: MatchRoute(path).endpoint.
const char* EndpointClass(const std::string& path, Endpoint matched);

}  // namespace ocib::registry
