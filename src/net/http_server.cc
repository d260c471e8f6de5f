#include "net/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "util/mutex.h"

namespace ocib::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kWorkerBuffer = 256 << 10;  // body reads
constexpr size_t kLoopRead = 16 << 10;       // head reads on the event thread
constexpr size_t kInlineBody = 64 << 10;     // bodies sent with their head
// After an answer that ends the connection, what the client still sends
// is read and dropped (never parsed) for up to kLingerTime, while it comes
// at least every kLingerWait, as nginx's lingering close does: a client
// that writes its whole body before reading then still gets the answer.
constexpr auto kLingerTime = std::chrono::seconds(30);
constexpr auto kLingerWait = std::chrono::seconds(5);
constexpr int kMinWorkers = 2;
constexpr auto kWorkerIdle = std::chrono::seconds(10);

// A connection. Owned by the event thread while it waits for a head (or
// lingers before close), by one worker while a request is served; handed
// over through Impl's queues, never shared.
// Bytes moved on every connection of one server, for its Stats.
struct IoCounters {
  std::atomic<uint64_t> received{0}, sent{0};
};

struct Conn {
  ~Conn() {
    if (ssl) SSL_free(ssl);
  }
  int fd = -1;
  IoCounters* io = nullptr;
  SSL* ssl = nullptr;      // with TLS: the session over fd
  short want = POLLIN;     // what the last I/O that could not go on waits for
  bool watch_out = false;  // the event thread waits for fd to be writable
  std::string peer_cn;     // a verified client certificate's CN
  std::string remote_addr;
  int remote_port = 0;
  std::string
      in;  // bytes read and not consumed: a head, body or pipelined requests
  size_t scanned = 0;  // bytes of `in` already searched for a head's end
  enum State { kHandshake, kIdle, kHead, kLinger } state = kHead;
  Clock::time_point deadline;
  Clock::time_point linger_end;
  int served = 0;
  // The parsed head of the request handed to a worker.
  Request req;
  size_t head_size = 0;
  uint64_t body_length = 0;
  bool chunked = false;
  bool keep_alive = true;
};

// True if `in` may hold a complete head: a blank line after scanned-3.
bool MayHoldHead(Conn* c) {
  size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
  std::string_view v(c->in);
  bool found = v.find("\n\r\n", from) != std::string_view::npos ||
               v.find("\n\n", from) != std::string_view::npos;
  c->scanned = c->in.size();
  return found;
}

std::string HttpDate() {
  thread_local std::time_t last = 0;
  thread_local char buf[40];
  std::time_t now = std::time(nullptr);
  if (now != last) {
    std::tm tm;
    gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    last = now;
  }
  return buf;
}

// What a TLS call that returned r <= 0 means, as the socket calls say it:
// -1 with errno EAGAIN when it must wait (c->want says for what), 0 at a
// clean end, -1 with another errno on failure.
ssize_t TlsResult(Conn* c, int r) {
  switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
      c->want = POLLIN;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      c->want = POLLOUT;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      if (errno == 0) return 0;
      if (errno == EAGAIN || errno == EINTR) errno = ECONNRESET;
      return -1;
    default:
      errno = ECONNRESET;
      return -1;
  }
}

// Reads up to n bytes without blocking: the count, 0 at the end of the
// stream, or -1 with errno (EAGAIN: nothing yet; wait for c->want).
ssize_t ConnRecv(Conn* c, char* p, size_t n) {
  c->want = POLLIN;
  if (!c->ssl) {
    ssize_t r;
    do r = ::recv(c->fd, p, n, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r > 0) c->io->received.fetch_add(r, std::memory_order_relaxed);
    return r;
  }
  ERR_clear_error();
  int r = SSL_read(c->ssl, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  if (r > 0) c->io->received.fetch_add(r, std::memory_order_relaxed);
  return r > 0 ? r : TlsResult(c, r);
}

// Writes up to n bytes without blocking, as ConnRecv.
ssize_t ConnSend(Conn* c, const char* p, size_t n) {
  c->want = POLLOUT;
  if (!c->ssl) {
    ssize_t w;
    do w = ::send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w > 0) c->io->sent.fetch_add(w, std::memory_order_relaxed);
    return w;
  }
  ERR_clear_error();
  int w = SSL_write(c->ssl, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  if (w > 0) c->io->sent.fetch_add(w, std::memory_order_relaxed);
  return w > 0 ? w : TlsResult(c, w);
}

// Waits up to timeout_ms for c->want; false on timeout or a broken socket.
bool WaitReady(Conn* c, int timeout_ms) {
  pollfd pf{c->fd, c->want, 0};
  int r;
  do r = ::poll(&pf, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r > 0 && !(pf.revents & POLLERR) &&
         (!(pf.revents & POLLHUP) || (pf.revents & POLLIN));
}

// Sends all of [p, p+n), waiting up to timeout_ms each time the socket is
// full.
bool SendAll(Conn* c, const char* p, size_t n, int timeout_ms) {
  while (n > 0) {
    ssize_t w = ConnSend(c, p, n);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
    if (!WaitReady(c, timeout_ms)) return false;
  }
  return true;
}

// Receives up to n bytes, waiting up to timeout_ms for the first. Returns
// the count, 0 at end of stream, -1 on error or timeout.
ssize_t RecvSome(Conn* c, char* p, size_t n, int timeout_ms) {
  while (true) {
    ssize_t r = ConnRecv(c, p, n);
    if (r >= 0) return r;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!WaitReady(c, timeout_ms)) return -1;
  }
}

// The CN of the client's verified certificate, or "".
std::string PeerCommonName(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string cn;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    char buf[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                      NID_commonName, buf, sizeof buf);
    if (n > 0) cn.assign(buf, static_cast<size_t>(n));
  }
  X509_free(cert);
  return cn;
}

// Closes c's socket (with TLS, after a close_notify) and frees it.
void Destroy(Conn* c) {
  if (c->ssl && SSL_is_init_finished(c->ssl)) {
    ERR_clear_error();
    SSL_shutdown(c->ssl);
  }
  ::close(c->fd);
  delete c;
}

}  // namespace

// The body of the request a worker serves.
class ConnBody : public RequestBody {
 public:
  ConnBody(Conn* c, const ServerOptions& o, char* buf, bool expect_continue)
      : c_(c),
        o_(o),
        buf_(buf),
        expect_continue_(expect_continue),
        left_(c->body_length) {
    finished_ = !present();
  }

  bool present() const override { return c_->chunked || c_->body_length > 0; }
  std::optional<uint64_t> declared_length() const override {
    if (c_->chunked || !c_->req.has_header("Content-Length"))
      return std::nullopt;
    return c_->body_length;
  }
  bool too_large() const override { return too_large_; }

  bool Read(const std::function<bool(const char*, size_t)>& receiver) override {
    if (started_) return false;
    started_ = true;
    if (finished_) return true;
    if (expect_continue_ && !continue_sent_) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      continue_sent_ = true;
      if (!SendAll(c_, kContinue, sizeof kContinue - 1, o_.write_timeout_ms)) {
        broken_ = true;
        return false;
      }
    }
    return Pump(receiver, false);
  }

  // After the handler: reads and drops what it left, if that is at most
  // drain_limit bytes. True if the connection can carry another request.
  bool Drain() {
    if (finished_) return true;
    if (broken_ || too_large_ || stopped_chunked_) return false;
    // A client that waits for 100 Continue may never send the body.
    if (expect_continue_ && !continue_sent_) return false;
    if (!c_->chunked && left_ > o_.drain_limit) return false;
    started_ = true;
    dropped_ = 0;
    return Pump([](const char*, size_t) { return true; }, true);
  }

  bool finished() const { return finished_; }
  bool broken() const { return broken_; }

 private:
  // Feeds body bytes (buffered ones first) to `receiver` until the body
  // ends, the receiver stops, or the stream fails.
  bool Pump(const std::function<bool(const char*, size_t)>& receiver,
            bool draining) {
    bool stopped = false;
    auto deliver = [&](const char* p, size_t n) {
      if (o_.max_body_bytes > 0 && received_ + n > o_.max_body_bytes) {
        too_large_ = true;
        return false;
      }
      received_ += n;
      if (draining && (dropped_ += n) > o_.drain_limit) return false;
      if (!receiver(p, n)) {
        stopped = true;
        return false;
      }
      return true;
    };
    while (!finished_) {
      const char* p;
      size_t n;
      bool from_in = !c_->in.empty();
      if (from_in) {
        p = c_->in.data();
        n = c_->in.size();
      } else {
        // With TLS the read takes a whole record, so that no bytes of a
        // pipelined request stay inside the TLS session (the event thread
        // waits on the socket only); what is past the body is kept.
        size_t want =
            c_->chunked || c_->ssl
                ? kWorkerBuffer
                : static_cast<size_t>(std::min<uint64_t>(left_, kWorkerBuffer));
        ssize_t r = RecvSome(c_, buf_, want, o_.read_timeout_ms);
        if (r <= 0) {
          broken_ = true;
          return false;
        }
        p = buf_;
        n = static_cast<size_t>(r);
      }
      size_t used;
      bool ok;
      if (!c_->chunked) {
        used = static_cast<size_t>(std::min<uint64_t>(left_, n));
        ok = deliver(p, used);
        if (ok || stopped) {
          // The receiver saw (and may have refused) these bytes.
          left_ -= used;
          if (left_ == 0) finished_ = true;
        } else {
          used = 0;
        }
      } else {
        auto st = decoder_.Feed(p, n, &used, deliver);
        ok = st != ChunkedDecoder::kError;
        if (st == ChunkedDecoder::kDone) finished_ = true;
        if (!ok) {
          if (decoder_.stopped())
            stopped_chunked_ = true;
          else
            broken_ = true;  // malformed chunk framing
        }
      }
      if (from_in) {
        c_->in.erase(0, used);
      } else if (used < n && ok) {
        c_->in.assign(p + used, n - used);  // the next request's bytes
      }
      if (!ok) return false;
    }
    return !stopped;
  }

  Conn* c_;
  const ServerOptions& o_;
  char* buf_;
  bool expect_continue_;
  bool continue_sent_ = false;
  bool started_ = false;
  bool finished_ = false;
  bool broken_ = false;
  bool too_large_ = false;
  bool stopped_chunked_ = false;
  uint64_t left_;  // Content-Length bytes not yet read
  uint64_t received_ = 0;
  uint64_t dropped_ = 0;
  ChunkedDecoder decoder_;
};

class HttpServer::Impl {
 public:
  Impl(ServerOptions o, Handler h, ErrorPage e, Logger l)
      : o_(std::move(o)),
        handler_(std::move(h)),
        error_page_(std::move(e)),
        logger_(std::move(l)) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }

  ~Impl() {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    if (return_fd_ >= 0) ::close(return_fd_);
    if (ep_ >= 0) ::close(ep_);
  }

  Result<int> Bind(const std::string& host, int port) {
    addrinfo hints{}, *ai = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    std::string service = std::to_string(port);
    if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                      &hints, &ai) != 0)
      return Status(Code::kInvalidArgument, "cannot resolve " + host);
    int fd = -1;
    for (addrinfo* a = ai; a; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    a->ai_protocol);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 &&
          ::listen(fd, o_.listen_backlog) == 0)
        break;
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(ai);
    if (fd < 0) return Status(Code::kUnavailable, std::strerror(errno));
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    listen_fd_ = fd;
    return ss.ss_family == AF_INET6
               ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
               : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }

  Status EnableTls(const TlsConfig& cfg) {
    auto ctx = MakeTlsContext(cfg);
    if (!ctx.ok()) return ctx.status();
    MutexLock l(&tls_mu_);
    tls_cfg_ = cfg;
    tls_ = *ctx;
    return Status::Ok();
  }

  Status ReloadTls() {
    TlsConfig cfg;
    {
      MutexLock l(&tls_mu_);
      if (!tls_) return Status(Code::kFailedPrecondition, "TLS is not enabled");
      cfg = tls_cfg_;
    }
    auto ctx = MakeTlsContext(cfg);
    if (!ctx.ok()) return ctx.status();
    MutexLock l(&tls_mu_);
    tls_ = *ctx;
    return Status::Ok();
  }

  void Stop() {
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
  }

  Stats stats() const {
    MutexLock l(&mu_);
    Stats s;
    s.connections_open = static_cast<uint64_t>(open_.load());
    s.workers = static_cast<uint64_t>(workers_);
    s.requests_in_flight = static_cast<uint64_t>(in_flight_.load());
    s.bytes_received = io_.received.load(std::memory_order_relaxed);
    s.bytes_sent = io_.sent.load(std::memory_order_relaxed);
    return s;
  }

  Status Serve() {
    {
      Response busy;
      error_page_(503, "too many connections", busy);
      busy.set_header("Retry-After", "1");
      busy_response_ = Serialize(busy, false, true, nullptr);
    }
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0 || listen_fd_ < 0)
      return Status(Code::kInternal, "server not bound");
    Watch(listen_fd_, &listen_tag_);
    Watch(stop_fd_, &stop_tag_);
    Watch(return_fd_, &return_tag_);
    std::vector<epoll_event> events(256);
    bool stopping = false;
    auto next_sweep = Clock::now();
    while (true) {
      int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                           100);
      if (n < 0 && errno != EINTR)
        return Status(Code::kInternal, std::strerror(errno));
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &listen_tag_) {
          if (!stopping) Accept();
        } else if (tag == &stop_tag_) {
          if (!stopping) {
            stopping = true;
            stopping_.store(true);
            ::epoll_ctl(ep_, EPOLL_CTL_DEL, listen_fd_, nullptr);
            ::close(listen_fd_);
            listen_fd_ = -1;
            for (Conn* c : std::vector<Conn*>(loop_.begin(), loop_.end()))
              Close(c);
          }
          uint64_t v;
          (void)!::read(stop_fd_, &v, sizeof v);
        } else if (tag == &return_tag_) {
          uint64_t v;
          (void)!::read(return_fd_, &v, sizeof v);
          TakeReturned(stopping);
        } else {
          OnReadable(static_cast<Conn*>(tag), events[i].events);
        }
      }
      auto now = Clock::now();
      if (now >= next_sweep) {
        next_sweep = now + std::chrono::milliseconds(100);
        for (Conn* c : std::vector<Conn*>(loop_.begin(), loop_.end()))
          if (now >= c->deadline) Close(c);
      }
      if (stopping) {
        TakeReturned(true);
        if (away_.load() == 0 && loop_.empty()) break;
      }
    }
    // Every connection is closed; let the workers go.
    MutexLock l(&mu_);
    pool_stop_ = true;
    work_cv_.SignalAll();
    while (workers_ != 0) done_cv_.Wait(&mu_);
    return Status::Ok();
  }

 private:
  void Watch(int fd, void* tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = tag;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void Accept() {
    std::shared_ptr<TlsContext> tls;
    {
      MutexLock l(&tls_mu_);
      tls = tls_;
    }
    while (true) {
      sockaddr_storage ss;
      socklen_t len = sizeof ss;
      int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors: the next event retries
      }
      if (open_.load() >= o_.max_connections) {
        // (With TLS nothing can be said before a handshake.)
        if (!tls)
          (void)!::send(fd, busy_response_.data(), busy_response_.size(),
                        MSG_NOSIGNAL | MSG_DONTWAIT);
        ::shutdown(fd, SHUT_RDWR);
        ::close(fd);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto* c = new Conn;
      c->fd = fd;
      c->io = &io_;
      char buf[INET6_ADDRSTRLEN] = {0};
      if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
        c->remote_port = ntohs(a->sin_port);
      } else if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
        c->remote_port = ntohs(a->sin6_port);
      }
      c->remote_addr = buf;
      c->state = Conn::kHead;
      if (tls) {
        c->ssl = SSL_new(tls->get());
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
          ERR_clear_error();
          Destroy(c);
          continue;
        }
        SSL_set_accept_state(c->ssl);
        c->state = Conn::kHandshake;
      }
      c->deadline =
          Clock::now() + std::chrono::milliseconds(o_.header_timeout_ms);
      ++open_;
      Adopt(c);
    }
  }

  // The event thread takes c: waits for it to be readable.
  void Adopt(Conn* c) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, c->fd, &ev);
    loop_.insert(c);
  }

  void Close(Conn* c) {
    if (loop_.erase(c)) ::epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
    Destroy(c);
    --open_;
  }

  // Waits for c to be writable (TLS needs to send before it can read
  // on) or, again, readable.
  void WatchOut(Conn* c, bool out) {
    if (c->watch_out == out) return;
    c->watch_out = out;
    epoll_event ev{};
    ev.events = (out ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP;
    ev.data.ptr = c;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
  }

  // Goes on with c's TLS handshake. False once c is closed.
  bool Handshake(Conn* c) {
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
      c->peer_cn = PeerCommonName(c->ssl);
      c->state = Conn::kHead;
      WatchOut(c, false);
      return true;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      WatchOut(c, e == SSL_ERROR_WANT_WRITE);
      return true;
    }
    ERR_clear_error();
    Close(c);  // not TLS, or a failed handshake: nothing to answer
    return false;
  }

  void OnReadable(Conn* c, uint32_t events) {
    if (c->state == Conn::kHandshake) {
      if (!Handshake(c) || c->state == Conn::kHandshake) return;
    }
    if (c->state == Conn::kLinger) {
      char buf[kLoopRead];
      for (int i = 0; i < 64; ++i) {
        ssize_t r = ::recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r < 0 && errno == EINTR) continue;
        return Close(c);  // the client is done (or gone)
      }
      c->deadline = std::min(c->linger_end, Clock::now() + kLingerWait);
      return;
    }
    // Read what is there, up to one byte past the head limit.
    bool eof = false;
    while (c->in.size() <= o_.head.max_header_bytes) {
      size_t old = c->in.size();
      c->in.resize(old + kLoopRead);
      ssize_t r = ConnRecv(c, c->in.data() + old, kLoopRead);
      c->in.resize(old + static_cast<size_t>(std::max<ssize_t>(r, 0)));
      if (r > 0) {
        // A TLS session is read until it wants more: a record it has
        // taken in would not wake epoll again.
        if (static_cast<size_t>(r) < kLoopRead && !c->ssl) break;
        continue;
      }
      if (r == 0)
        eof = true;
      else if (errno != EAGAIN && errno != EWOULDBLOCK)
        eof = true;
      break;
    }
    if (c->ssl && !eof) WatchOut(c, c->want == POLLOUT);
    (void)events;
    if (!c->in.empty() && c->state == Conn::kIdle) {
      c->state = Conn::kHead;
      c->deadline =
          Clock::now() + std::chrono::milliseconds(o_.header_timeout_ms);
    }
    // Parsed when a head may be complete, past the limit, or at its first
    // bytes (so what cannot be HTTP is refused at once).
    bool first = c->scanned == 0;
    if (!c->in.empty() &&
        (MayHoldHead(c) || first || c->in.size() > o_.head.max_header_bytes)) {
      switch (ParseHead(c, 0)) {
        case kDispatch:
          loop_.erase(c);
          ::epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
          ++away_;
          Submit(c);
          return;
        case kRejected:  // answered; linger before close
          BeginLinger(c);
          return;
        case kWait:
          break;
      }
    }
    if (eof) Close(c);
  }

  // Stops sending, then reads and drops what the client still sends for a
  // moment, so the answer is not lost to a reset.
  void BeginLinger(Conn* c) {
    if (c->ssl && SSL_is_init_finished(c->ssl)) {
      ERR_clear_error();
      SSL_shutdown(c->ssl);
    }
    WatchOut(c, false);
    ::shutdown(c->fd, SHUT_WR);
    c->state = Conn::kLinger;
    c->in.clear();
    c->linger_end = Clock::now() + kLingerTime;
    c->deadline = Clock::now() + kLingerWait;
  }

  enum HeadOutcome { kWait, kDispatch, kRejected };

  // Parses a head from c->in. On an error, answers it and returns
  // kRejected; the answer waits up to send_timeout_ms for room in the
  // socket (0 on the event thread: a client that never reads must not
  // stall everyone else, so there it is best effort).
  HeadOutcome ParseHead(Conn* c, int send_timeout_ms) {
    c->req = Request();
    auto r = ParseRequestHead(c->in, o_.head, &c->req, &c->body_length,
                              &c->chunked, &c->keep_alive);
    if (r.kind == HeadResult::kIncomplete) return kWait;
    c->req.remote_addr = c->remote_addr;
    c->req.remote_port = c->remote_port;
    c->req.tls = c->ssl != nullptr;
    c->req.client_cert_cn = c->peer_cn;
    if (r.kind == HeadResult::kError) {
      Response res;
      error_page_(r.status, r.message, res);
      res.status = r.status;
      std::string out = Serialize(res, false, true, nullptr);
      (void)SendAll(c, out.data(), out.size(), send_timeout_ms);
      if (logger_) logger_(c->req, res, 0);
      return kRejected;
    }
    c->head_size = r.consumed;
    return kDispatch;
  }

  void TakeReturned(bool stopping) {
    std::vector<std::pair<Conn*, bool>> back;
    {
      MutexLock l(&mu_);
      back.swap(returned_);
    }
    for (auto [c, linger] : back) {
      --away_;
      if (stopping) {  // no lingering either: the server is going away
        Destroy(c);
        --open_;
      } else if (linger) {
        BeginLinger(c);
        Adopt(c);
      } else {
        c->watch_out = false;
        Adopt(c);
        // Bytes the TLS session holds already would not wake epoll.
        if (c->ssl && SSL_pending(c->ssl) > 0) OnReadable(c, EPOLLIN);
      }
    }
  }

  // A worker gives c back to the event thread.
  void Return(Conn* c, bool linger) {
    {
      MutexLock l(&mu_);
      returned_.emplace_back(c, linger);
    }
    uint64_t one = 1;
    (void)!::write(return_fd_, &one, sizeof one);
  }

  void Submit(Conn* c) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    queue_.push_back(c);
    if (queue_.size() > static_cast<size_t>(idle_) &&
        workers_ < o_.max_workers) {
      ++workers_;
      std::thread([this] { WorkerMain(); }).detach();
    } else {
      work_cv_.Signal();
    }
  }

  void WorkerMain() EXCLUDES(mu_) {
    std::unique_ptr<char[]> buf(new char[kWorkerBuffer]);
    mu_.Lock();
    while (true) {
      if (queue_.empty()) {
        if (pool_stop_) break;
        ++idle_;
        auto deadline = Clock::now() + kWorkerIdle;
        while (queue_.empty() && !pool_stop_ && Clock::now() < deadline)
          work_cv_.WaitFor(&mu_, deadline - Clock::now());
        bool woke = !queue_.empty() || pool_stop_;
        --idle_;
        if (!woke && workers_ > kMinWorkers) break;
        continue;
      }
      Conn* c = queue_.front();
      queue_.pop_front();
      mu_.Unlock();
      Serve(c, buf.get());
      mu_.Lock();
    }
    --workers_;
    done_cv_.SignalAll();
    mu_.Unlock();
  }

  // Serves requests on c while complete heads are at hand, then hands c
  // back to the event thread (or closes it).
  void Serve(Conn* c, char* buf) {
    while (true) {
      auto t0 = Clock::now();
      ++in_flight_;
      ++c->served;
      c->in.erase(0, c->head_size);
      c->scanned = 0;
      const Request& req = c->req;
      Response res;
      bool close = !c->keep_alive || c->served >= o_.keep_alive_max_requests ||
                   stopping_.load();
      bool expect = req.has_header("Expect");
      bool unread =
          c->chunked || c->body_length > 0;  // body bytes may be pending
      if (expect && ::strcasecmp(req.get_header_value("Expect").c_str(),
                                 "100-continue") != 0) {
        error_page_(417, "unsupported expectation", res);
        res.status = 417;
        close = true;
      } else if (o_.max_body_bytes > 0 && !c->chunked &&
                 c->body_length > o_.max_body_bytes) {
        error_page_(413, "request body too large", res);
        res.status = 413;
        close = true;
      } else {
        ConnBody body(c, o_, buf, expect);
        try {
          handler_(req, res, body);
        } catch (...) {
          res = Response();
          error_page_(500, "internal error", res);
          res.status = 500;
          close = true;
        }
        if (body.too_large()) {
          res = Response();
          error_page_(413, "request body too large", res);
          res.status = 413;
        }
        if (!body.Drain()) close = true;
        unread = !body.finished();
      }
      if (::strcasecmp(res.get_header_value("Connection").c_str(), "close") ==
          0)
        close = true;
      bool ok = WriteResponse(c, res, close);
      --in_flight_;
      if (logger_)
        logger_(req, res,
                std::chrono::duration<double, std::milli>(Clock::now() - t0)
                    .count());
      // Lingers only if the client may still be sending; else closes now.
      if (close && (unread || !c->in.empty()) && ok) return Return(c, true);
      if (!ok || close) {
        Destroy(c);
        --open_;
        --away_;
        uint64_t one = 1;
        (void)!::write(return_fd_, &one, sizeof one);  // wakes a stopping loop
        return;
      }
      c->state = Conn::kIdle;
      c->deadline =
          Clock::now() + std::chrono::milliseconds(o_.keep_alive_timeout_ms);
      if (!c->in.empty()) {
        // Pipelined bytes: serve the next request now if it is complete.
        c->state = Conn::kHead;
        c->deadline =
            Clock::now() + std::chrono::milliseconds(o_.header_timeout_ms);
        if (MayHoldHead(c) || c->in.size() > o_.head.max_header_bytes) {
          switch (ParseHead(c, o_.write_timeout_ms)) {
            case kDispatch:
              continue;
            case kRejected:
              return Return(c, true);
            case kWait:
              break;
          }
        }
      }
      return Return(c, false);
    }
  }

  // The status line and headers of res; the body too when `inline_body`
  // and it is held in memory.
  std::string Serialize(const Response& res, bool head_only, bool close,
                        const Request* req) const {
    int status = res.status;
    std::string out;
    out.reserve(256 + res.body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += ReasonPhrase(status);
    out += "\r\n";
    for (const auto& [k, v] : o_.default_headers)
      if (!res.has_header(k))
        out.append(k).append(": ").append(v).append("\r\n");
    for (const auto& [k, v] : res.headers) {
      if (::strcasecmp(k.c_str(), "Content-Length") == 0 ||
          ::strcasecmp(k.c_str(), "Connection") == 0)
        continue;
      out.append(k).append(": ").append(v).append("\r\n");
    }
    out += "Date: ";
    out += HttpDate();
    out += "\r\n";
    bool no_body = status == 204 || status == 304 || status < 200;
    if (!no_body) {
      out += "Content-Length: ";
      // A HEAD answer may state the length of the body it does not send.
      if (!res.provider && res.body.empty() && res.has_header("Content-Length"))
        out += res.get_header_value("Content-Length");
      else
        out += std::to_string(res.body_length());
      out += "\r\n";
    }
    if (close)
      out += "Connection: close\r\n";
    else if (req && req->minor_version == 0)
      out += "Connection: keep-alive\r\n";
    out += "\r\n";
    if (!head_only && !no_body && !res.provider) out += res.body;
    return out;
  }

  bool WriteResponse(Conn* c, const Response& res, bool close) {
    bool head_only =
        c->req.method == "HEAD" || res.status == 204 || res.status == 304;
    bool stream = res.provider && !head_only;
    std::string out = Serialize(res, head_only || res.body.size() > kInlineBody,
                                close, &c->req);
    if (!SendAll(c, out.data(), out.size(), o_.write_timeout_ms)) return false;
    if (!head_only && !res.provider && res.body.size() > kInlineBody)
      return SendAll(c, res.body.data(), res.body.size(), o_.write_timeout_ms);
    if (!stream) return true;
    uint64_t offset = 0, length = res.provider_length;
    BodyWriter write = [&](const char* p, size_t n) {
      if (n > length - offset || !SendAll(c, p, n, o_.write_timeout_ms))
        return false;
      offset += n;
      return true;
    };
    while (offset < length) {
      uint64_t before = offset;
      if (!res.provider(offset, length - offset, write) || offset == before)
        return false;
    }
    return true;
  }

  const ServerOptions o_;
  const Handler handler_;
  const ErrorPage error_page_;
  const Logger logger_;
  int listen_fd_ = -1, stop_fd_ = -1, return_fd_ = -1, ep_ = -1;
  char listen_tag_ = 0, stop_tag_ = 0, return_tag_ = 0;
  std::string busy_response_;
  std::atomic<int> open_{0};       // connections open
  std::atomic<int> away_{0};       // connections with the workers
  std::atomic<int> in_flight_{0};  // requests between head and response
  IoCounters io_;
  std::atomic<bool> stopping_{false};

  mutable Mutex tls_mu_;
  TlsConfig tls_cfg_ GUARDED_BY(tls_mu_);
  std::shared_ptr<TlsContext> tls_ GUARDED_BY(tls_mu_);  // null: plain HTTP

  // Owned by the event thread.
  std::unordered_set<Conn*> loop_;

  mutable Mutex mu_;
  CondVar work_cv_, done_cv_;
  std::deque<Conn*> queue_ GUARDED_BY(mu_);
  std::vector<std::pair<Conn*, bool>> returned_ GUARDED_BY(mu_);
  int workers_ GUARDED_BY(mu_) = 0;
  int idle_ GUARDED_BY(mu_) = 0;
  bool pool_stop_ GUARDED_BY(mu_) = false;
};

HttpServer::HttpServer(ServerOptions options, Handler handler,
                       ErrorPage error_page, Logger logger)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler),
                                   std::move(error_page), std::move(logger))) {}
HttpServer::~HttpServer() = default;
Result<int> HttpServer::Bind(const std::string& host, int port) {
  return impl_->Bind(host, port);
}
Status HttpServer::Serve() { return impl_->Serve(); }
void HttpServer::Stop() { impl_->Stop(); }
HttpServer::Stats HttpServer::stats() const { return impl_->stats(); }
Status HttpServer::EnableTls(const TlsConfig& tls) {
  return impl_->EnableTls(tls);
}
Status HttpServer::ReloadTls() { return impl_->ReloadTls(); }

}  // namespace ocib::net
