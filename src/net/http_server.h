// HttpServer: an HTTP/1.1 server for a network that may be hostile.
//
// One event thread (the caller of Serve) accepts connections and reads
// request heads with epoll; only a complete, valid head goes to a worker
// thread, which reads the body, runs the handler and writes the response.
// So idle keep-alive connections and clients that trickle their headers
// (slowloris) hold no thread, and a fresh client is answered while
// thousands of slow ones are connected. Workers are started on demand up
// to max_workers and stop after 10 s idle.
//
// Invariants, each a limit in ServerOptions:
//  - a head must arrive within header_timeout_ms of its first byte (or of
//    the connection's accept), and within max_header_bytes (else 431/414);
//  - at most max_connections connections, idle and half-read ones
//    included; others get 503 and are closed;
//  - a body larger than max_body_bytes gets 413 at once (Content-Length)
//    or when it crosses the limit (chunked), and the connection closes;
//  - malformed framing (bad or conflicting Content-Length, an unknown
//    Transfer-Encoding, both) gets 400/501 and the connection closes;
//  - after a response whose body was not read in full, the rest is read
//    and dropped if at most drain_limit bytes, else the connection
//    closes: body bytes are never parsed as a request.
// With TLS enabled, every connection first completes a TLS handshake,
// within header_timeout_ms of its accept; anything else is closed.
// Errors the server answers itself go through error_page, so the API's
// JSON envelope is kept; nothing of the request is echoed.
//
// Thread safety: configure before Bind(); Serve() on one thread; Stop()
// from any thread (also a signal-handling thread). The handler and the
// logger run on worker threads, concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/http.h"
#include "net/http_parser.h"
#include "net/tls.h"
#include "util/status.h"

namespace ocib::net {

struct ServerOptions {
  int max_workers = 256;             // requests in progress at once
  int max_connections = 4096;        // open connections, idle ones included
  int header_timeout_ms = 10000;     // for a whole request head
  int keep_alive_timeout_ms = 5000;  // idle between requests
  int keep_alive_max_requests = 100000;
  int read_timeout_ms = 60000;   // body: longest wait for the next bytes
  int write_timeout_ms = 60000;  // response: longest wait to send more
  uint64_t max_body_bytes = 0;   // 0: no limit
  uint64_t drain_limit = 256 << 10;
  HeadLimits head;
  Headers default_headers;  // added to every response
  int listen_backlog = 4096;
};

using Handler = std::function<void(const Request&, Response&, RequestBody&)>;
// Fills `res` for an error the server answers itself (status 400, 408,
// 413, 414, 431, 500, 501, 503, 505). `message` is a fixed text.
using ErrorPage =
    std::function<void(int status, const char* message, Response& res)>;
// Called after each response is written (or failed), on the worker.
using Logger =
    std::function<void(const Request&, const Response&, double duration_ms)>;

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler, ErrorPage error_page,
             Logger logger);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves HTTPS with these settings. Call before Serve(); errors name
  // the file that could not be used.
  Status EnableTls(const TlsConfig& tls);
  // Reads the certificate and key again (SIGHUP): new connections use
  // them, open ones keep theirs. On an error the old ones stay in use.
  // Any thread.
  Status ReloadTls();

  // Binds host:port (port 0: any free port). Returns the bound port.
  Result<int> Bind(const std::string& host, int port);
  // Serves until Stop(); in-flight requests finish first, idle
  // connections close at once. REQUIRES: Bind() succeeded.
  Status Serve();
  void Stop();

  // Counters, for tests and the operator.
  struct Stats {
    uint64_t connections_open = 0;
    uint64_t workers = 0;
    uint64_t requests_in_flight = 0;  // heads read, responses not yet sent
    uint64_t bytes_received = 0;      // since start, all connections
    uint64_t bytes_sent = 0;
  };
  Stats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ocib::net
