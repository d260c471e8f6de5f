#include "registry/http_server.h"

#include "net/buffered_stream.h"

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
  net::BufferedSocketStream strm(sock, net::ToMillis(read_timeout_sec_, read_timeout_usec_),
                        net::ToMillis(write_timeout_sec_, write_timeout_usec_));
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
