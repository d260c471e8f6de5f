// The operator's HTTP endpoint on its own address (config "debug.listen"),
// never the public one:
//   GET /metrics   the server's metrics (server_metrics.h), Prometheus text
//   GET /healthz   200 while the process serves
//   GET /readyz    200 when the store is open and takes a write; else 503
// Anything else is 404; methods other than GET and HEAD are 405.
//
// Thread safety: Bind, then Serve on its own thread; Stop from any thread.
#pragma once

#include <memory>
#include <string>

#include "net/http_server.h"
#include "registry/server_metrics.h"
#include "store/blob_store.h"
#include "util/status.h"

namespace ocib::registry {

class DebugServer {
 public:
  DebugServer(const ServerMetrics* metrics, Store* store);
  // Binds HOST:PORT; returns the port.
  Result<int> Bind(const std::string& host, int port);
  Status Serve();
  void Stop();

 private:
  void Handle(const net::Request& req, net::Response& res);

  const ServerMetrics* metrics_;
  Store* store_;
  std::unique_ptr<net::HttpServer> svr_;
};

}  // namespace ocib::registry
