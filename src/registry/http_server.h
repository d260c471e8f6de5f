// HttpServer: the packaged cpp-httplib server with its connection loop
// replaced, for throughput on large request bodies and for many idle
// keep-alive connections.
//
// The library parses requests and writes responses; this class owns each
// connection: it reads the socket through a 256 KiB buffer (the packaged
// library reads bodies 4 KiB per recv, with a poll before each), waits for
// the next keep-alive request with one poll instead of a 10 ms polling
// loop, and wakes every idle connection at once when the server stops.
//
// Contract: the same as httplib::Server, plus Bind() raising the listen
// backlog (the library fixes it at 5). Stop() ends the accept loop; each
// connection finishes the request it is in and closes. Thread-safe as
// httplib::Server is: configure before Listen(), Stop() from any thread.
#pragma once

#include <httplib.h>

namespace ocib::registry {

class HttpServer : public httplib::Server {
 public:
  HttpServer();
  ~HttpServer() override;

  // Binds host:port (port 0: any free port). Returns the port, or -1.
  int Bind(const std::string& host, int port, int backlog);
  // Stops accepting, wakes idle keep-alive connections, and lets requests
  // in progress finish; Listen() (listen_after_bind) then returns.
  void Stop();

 private:
  bool process_and_close_socket(socket_t sock) override;

  int stop_fd_;  // eventfd, readable once Stop() is called
};

}  // namespace ocib::registry
