#include "net/buffered_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ocib::net {
namespace {

constexpr size_t kReadBuffer = 256 << 10;

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

}  // namespace

int ToMillis(time_t sec, time_t usec) {
  return static_cast<int>(sec * 1000 + usec / 1000);
}

BufferedSocketStream::BufferedSocketStream(socket_t sock, int read_timeout_ms,
                                           int write_timeout_ms, bool quickack)
    : sock_(sock),
      read_timeout_ms_(read_timeout_ms),
      write_timeout_ms_(write_timeout_ms),
      quickack_(quickack),
      buf_(new char[kReadBuffer]) {}

bool BufferedSocketStream::is_readable() const {
  return buffered() || Poll(POLLIN, read_timeout_ms_);
}

bool BufferedSocketStream::is_writable() const {
  return Poll(POLLOUT, write_timeout_ms_);
}

ssize_t BufferedSocketStream::read(char* ptr, size_t size) {
  if (!buffered()) {
    ssize_t n = Recv(buf_.get(), kReadBuffer);
    if (n <= 0) return n;
    pos_ = 0;
    end_ = static_cast<size_t>(n);
  }
  size_t n = std::min(size, end_ - pos_);
  std::memcpy(ptr, buf_.get() + pos_, n);
  pos_ += n;
  return static_cast<ssize_t>(n);
}

ssize_t BufferedSocketStream::write(const char* ptr, size_t size) {
  while (true) {
    ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!Poll(POLLOUT, write_timeout_ms_)) return -1;
  }
}

void BufferedSocketStream::get_remote_ip_and_port(std::string& ip,
                                                  int& port) const {
  AddressOf(sock_, true, ip, port);
}

void BufferedSocketStream::get_local_ip_and_port(std::string& ip,
                                                 int& port) const {
  AddressOf(sock_, false, ip, port);
}

ssize_t BufferedSocketStream::Recv(char* p, size_t n) {
  if (quickack_) {
    // Not sticky in the kernel: set before each read.
    int one = 1;
    ::setsockopt(sock_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  }
  while (true) {
    ssize_t r = ::recv(sock_, p, n, MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!Poll(POLLIN, read_timeout_ms_)) return -1;
  }
}

bool BufferedSocketStream::Poll(short events, int timeout_ms) const {
  pollfd p{sock_, events, 0};
  while (true) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0 && (p.revents & (events | POLLHUP | POLLERR));
  }
}

// A server answers only the request it was sent, so a stream per request
// never holds bytes that belong to the next one.
bool BufferedClient::process_socket(
    const Socket& socket, std::function<bool(httplib::Stream& strm)> callback) {
  BufferedSocketStream strm(socket.sock,
                            ToMillis(read_timeout_sec_, read_timeout_usec_),
                            ToMillis(write_timeout_sec_, write_timeout_usec_),
                            /*quickack=*/true);
  return callback(strm);
}

}  // namespace ocib::net
