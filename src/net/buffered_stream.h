// HTTP/1.1 socket streams for the packaged cpp-httplib (0.11), which reads
// bodies 4 KiB per recv with a poll before each. Used by ocireg's server
// (registry/http_server.h) and the registry client (client/).
//
// BufferedSocketStream: an httplib::Stream over a connected socket that
// reads through a 256 KiB buffer and tries the socket before polling, with
// the given timeouts. One per connection (server) or request (client);
// used by one thread at a time.
//
// BufferedClient: httplib::ClientImpl for plain HTTP whose requests read
// through a BufferedSocketStream. Same API and thread-safety as
// httplib::ClientImpl.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

namespace ocib::net {

int ToMillis(time_t sec, time_t usec);

class BufferedSocketStream : public httplib::Stream {
 public:
  // quickack: acknowledge every segment at once (a client's choice: a
  // server that writes a response's head and body apart, with Nagle on,
  // would otherwise wait for this side's delayed ACK, 40 ms, on every
  // request of a long-lived keep-alive connection).
  BufferedSocketStream(socket_t sock, int read_timeout_ms, int write_timeout_ms,
                       bool quickack = false);

  // True if bytes already read from the socket wait in the buffer (a
  // pipelined request).
  bool buffered() const { return pos_ < end_; }

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return sock_; }

 private:
  ssize_t Recv(char* p, size_t n);
  bool Poll(short events, int timeout_ms) const;

  socket_t sock_;
  int read_timeout_ms_;
  int write_timeout_ms_;
  bool quickack_;
  // Not zeroed: pages of a large allocation stay untouched (and out of
  // RSS) until bytes arrive, so idle and small-request connections cost
  // little memory.
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
};

class BufferedClient : public httplib::ClientImpl {
 public:
  using httplib::ClientImpl::ClientImpl;

 private:
  bool process_socket(
      const Socket& socket,
      std::function<bool(httplib::Stream& strm)> callback) override;
};

}  // namespace ocib::net
