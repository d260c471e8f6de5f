#include "registry/debug_server.h"

namespace ocib::registry {

DebugServer::DebugServer(const ServerMetrics* metrics, Store* store)
    : metrics_(metrics), store_(store) {
  net::ServerOptions o;
  o.max_workers = 4;  // scrapes and probes: few at a time
  o.max_connections = 64;
  o.max_body_bytes = 1 << 10;
  svr_ = std::make_unique<net::HttpServer>(
      std::move(o),
      [this](const net::Request& req, net::Response& res, net::RequestBody&) {
        Handle(req, res);
      },
      [](int status, const char* message, net::Response& res) {
        res.status = status;
        res.set_content(std::string(message) + "\n", "text/plain");
      },
      nullptr);
}

Result<int> DebugServer::Bind(const std::string& host, int port) {
  auto p = svr_->Bind(host, port);
  if (!p.ok())
    return Internal("cannot bind the debug address " + host + ":" +
                    std::to_string(port) + " (in use, or not a local address)");
  return p;
}

Status DebugServer::Serve() { return svr_->Serve(); }
void DebugServer::Stop() { svr_->Stop(); }

void DebugServer::Handle(const net::Request& req, net::Response& res) {
  const std::string& p = req.path;
  if (p != "/metrics" && p != "/healthz" && p != "/readyz") {
    res.status = 404;
    res.set_content("not found\n", "text/plain");
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("method not allowed\n", "text/plain");
    return;
  }
  if (p == "/metrics") {
    res.status = 200;
    res.set_content(metrics_->Render(),
                    "text/plain; version=0.0.4; charset=utf-8");
  } else if (p == "/healthz") {
    res.status = 200;
    res.set_content("ok\n", "text/plain");
  } else {
    Status s = store_->ProbeWritable();
    res.status = s.ok() ? 200 : 503;
    // The reason is a fixed phrase: no paths or database messages.
    res.set_content(s.ok() ? "ready\n"
                           : "not ready: the store does not take writes (disk "
                             "full or database error)\n",
                    "text/plain");
  }
}

}  // namespace ocib::registry
