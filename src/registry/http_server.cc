#include "registry/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace ocib::registry {
namespace {

constexpr size_t kReadBuffer = 256 << 10;

int ToMillis(time_t sec, time_t usec) {
  return static_cast<int>(sec * 1000 + usec / 1000);
}

void AddressOf(socket_t sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r = peer ? ::getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len)
               : ::getsockname(sock, reinterpret_cast<sockaddr*>(&ss), &len);
  if (r != 0) return;
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

// One connection's socket, read through a buffer. Reads and writes try the
// socket first and poll only when it would block, with the server's
// timeouts.
class ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(socket_t sock, int read_timeout_ms, int write_timeout_ms)
      : sock_(sock),
        read_timeout_ms_(read_timeout_ms),
        write_timeout_ms_(write_timeout_ms),
        buf_(kReadBuffer) {}

  bool buffered() const { return pos_ < end_; }

  bool is_readable() const override {
    return buffered() || Poll(POLLIN, read_timeout_ms_);
  }
  bool is_writable() const override { return Poll(POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      ssize_t n = Recv(buf_.data(), buf_.size());
      if (n <= 0) return n;
      pos_ = 0;
      end_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, end_ - pos_);
    std::memcpy(ptr, buf_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    while (true) {
      ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!Poll(POLLOUT, write_timeout_ms_)) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(sock_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(sock_, false, ip, port);
  }
  socket_t socket() const override { return sock_; }

 private:
  ssize_t Recv(char* p, size_t n) {
    while (true) {
      ssize_t r = ::recv(sock_, p, n, MSG_DONTWAIT);
      if (r >= 0) return r;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!Poll(POLLIN, read_timeout_ms_)) return -1;
    }
  }

  bool Poll(short events, int timeout_ms) const {
    pollfd p{sock_, events, 0};
    while (true) {
      int r = ::poll(&p, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 && (p.revents & (events | POLLHUP | POLLERR));
    }
  }

  socket_t sock_;
  int read_timeout_ms_;
  int write_timeout_ms_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
};

}  // namespace

HttpServer::HttpServer() : stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

HttpServer::~HttpServer() {
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

int HttpServer::Bind(const std::string& host, int port, int backlog) {
  if (port == 0) {
    port = bind_to_any_port(host);
    if (port < 0) return -1;
  } else if (!bind_to_port(host, port)) {
    return -1;
  }
  int fd = svr_sock_;
  if (fd >= 0) ::listen(fd, backlog);
  return port;
}

void HttpServer::Stop() {
  uint64_t one = 1;
  if (stop_fd_ >= 0) (void)!::write(stop_fd_, &one, sizeof one);
  stop();
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  ConnectionStream strm(sock, ToMillis(read_timeout_sec_, read_timeout_usec_),
                        ToMillis(write_timeout_sec_, write_timeout_usec_));
  // Waits for the next request: bytes already buffered (a pipelined
  // request), or the socket readable before the keep-alive timeout.
  auto next_request = [&] {
    if (strm.buffered()) return true;
    pollfd p[2] = {{sock, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::seconds(keep_alive_timeout_sec_);
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()).count();
      if (left < 0) left = 0;
      int r = ::poll(p, 2, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || (p[1].revents & POLLIN)) return false;
      return (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    }
  };
  bool ret = false;
  size_t count = keep_alive_max_count_;
  while (count > 0 && svr_sock_ != INVALID_SOCKET && next_request()) {
    bool close_connection = count == 1;
    bool connection_closed = false;
    ret = process_request(strm, close_connection, connection_closed, nullptr);
    if (!ret || connection_closed) break;
    count--;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace ocib::registry
