// http-load: a small keep-alive HTTP/1.1 load client for scripts/bench.sh.
// wrk 4.1 hangs on HEAD responses that carry a Content-Length, so HEAD
// load (and the small-blob push workload, which needs each response's
// Location) run here. One thread and one connection per client.
//
//   http-load head|get URL [-c CONNS] [-d SECONDS]
//       prints: requests, req/s, p50/p99 latency, errors
//   http-load push-small URL_BASE REPO [-c WORKERS] [-n BLOBS] [-s SIZE]
//       POST + PUT ?digest= per blob, as clients push small blobs
//       prints: blobs, blobs/s, errors
//   http-load populate URL_BASE [-c WORKERS] [-r REPOS] [-m MANIFESTS]
//       [-l LAYERS] [-t TAGS] [-o ORPHANS] [-s SIZE]   (per repository)
//       a registry's content for the GC benchmark
//       prints: blobs, manifests, errors, seconds
//   http-load push-chunked URL_BASE REPO FILE DIGEST [-s CHUNK_BYTES]
//       POST, PATCH chunks (default 16 MiB) with Content-Range, PUT
//       ?digest=, on one keep-alive connection, as docker and containerd do
//       prints: seconds
// URLs may be https:// (TLS, certificate not verified: loopback only);
// -H 'Name: value' adds a header to every request (e.g. Authorization).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/digest.h"

using Clock = std::chrono::steady_clock;

namespace {

struct Url {
  std::string host;
  int port = 80;
  std::string path;
  bool tls = false;
};

std::string g_headers;  // -H lines, each ending in CRLF

bool ParseUrl(const std::string& u, Url* out) {
  out->tls = u.rfind("https://", 0) == 0;
  if (out->tls) out->port = 443;
  if (u.rfind("http://", 0) != 0 && !out->tls) return false;
  std::string rest = u.substr(out->tls ? 8 : 7);
  size_t slash = rest.find('/');
  std::string hp = rest.substr(0, slash);
  out->path = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = hp.rfind(':');
  out->host = hp.substr(0, colon);
  if (colon != std::string::npos) out->port = std::atoi(hp.c_str() + colon + 1);
  return true;
}

class Conn {
 public:
  explicit Conn(const Url& u) : url_(u) {}
  ~Conn() { Close(); }
  void Close() {
    if (ssl_) SSL_free(ssl_);
    ssl_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  bool Connect() {
    Close();
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(url_.port);
    inet_pton(AF_INET, url_.host.c_str(), &a.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return false;
    if (!url_.tls) return true;
    static SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }
  // Sends a request and reads the whole response. Returns the status, or
  // -1 on a connection error (the connection is then reopened next time).
  int Do(const std::string& method, const std::string& target,
         std::string_view body, std::string* location = nullptr,
         const std::string& extra_headers = "") {
    if (fd_ < 0 && !Connect()) return -1;
    std::string req = method + " " + target +
                      " HTTP/1.1\r\nHost: " + url_.host + "\r\n" +
                      (extra_headers.find("Content-Type:") == std::string::npos
                           ? "Content-Type: application/octet-stream\r\n"
                           : "") +
                      g_headers + extra_headers;
    if (method == "POST" || method == "PUT" || method == "PATCH")
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n";
    // Small bodies go in the same send; large ones are not copied.
    if (body.size() <= 65536) {
      req += body;
      body = {};
    }
    if (!SendAll(req) || !SendAll(body)) return Fail();
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!Fill()) return Fail();
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    int status = std::atoi(head.c_str() + 9);
    size_t len = 0;
    bool close = false;
    for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
      size_t next = head.find("\r\n", pos + 2);
      std::string line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos
                                                         : next - pos - 2);
      std::string lower = line;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (lower.rfind("content-length:", 0) == 0)
        len = std::strtoull(line.c_str() + 15, nullptr, 10);
      if (lower.rfind("location:", 0) == 0 && location) {
        *location = line.substr(9);
        while (!location->empty() && location->front() == ' ')
          location->erase(0, 1);
      }
      if (lower.rfind("connection: close", 0) == 0) close = true;
      pos = next;
    }
    if (method != "HEAD") {
      while (buf_.size() < len)
        if (!Fill()) return Fail();
      buf_.erase(0, len);
    }
    if (close) Close();
    return status;
  }

 private:
  int Fail() {
    Close();
    return -1;
  }
  bool SendAll(std::string_view s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n =
          ssl_
              ? SSL_write(
                    ssl_, s.data() + off,
                    static_cast<int>(std::min<size_t>(s.size() - off, 1 << 30)))
              : ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += n;
    }
    return true;
  }
  bool Fill() {
    char tmp[65536];
    ssize_t n = ssl_ ? SSL_read(ssl_, tmp, sizeof tmp)
                     : ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, n);
    return true;
  }
  Url url_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

int Load(const std::string& method, const Url& url, int conns, double seconds) {
  std::vector<std::vector<float>> lat(conns);
  std::atomic<long> errors{0};
  auto stop_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(seconds));
  std::vector<std::thread> ts;
  auto t0 = Clock::now();
  for (int i = 0; i < conns; ++i) {
    ts.emplace_back([&, i] {
      Conn c(url);
      lat[i].reserve(1 << 16);
      while (Clock::now() < stop_at) {
        auto a = Clock::now();
        int st = c.Do(method, url.path, "");
        auto b = Clock::now();
        if (st != 200)
          ++errors;
        else
          lat[i].push_back(
              std::chrono::duration<float, std::milli>(b - a).count());
      }
    });
  }
  for (auto& t : ts) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<float> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1, size_t(p * all.size()))];
  };
  std::printf("requests %zu req/s %.0f p50_ms %.2f p99_ms %.2f errors %ld\n",
              all.size(), all.size() / elapsed, pct(0.50), pct(0.99),
              errors.load());
  return 0;
}

int PushSmall(const Url& base, const std::string& repo, int workers, int blobs,
              size_t size) {
  std::atomic<int> next{0};
  std::atomic<long> errors{0}, done{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  std::vector<std::vector<float>> lat(workers);
  unsigned long long seed =
      std::chrono::system_clock::now().time_since_epoch().count();
  for (int w = 0; w < workers; ++w) {
    ts.emplace_back([&, w] {
      Conn c(base);
      std::string body(size, '\0');
      for (int i; (i = next++) < blobs;) {
        auto a = Clock::now();
        std::snprintf(body.data(), size, "blob %d of run %llu ", i, seed);
        std::string d = ocib::Digest::Of(body).str();
        std::string loc;
        int st = c.Do("POST", "/v2/" + repo + "/blobs/uploads/", "", &loc);
        if (st != 202 || loc.empty()) {
          ++errors;
          continue;
        }
        if (loc.rfind("http", 0) == 0) loc = loc.substr(loc.find('/', 8));
        loc += (loc.find('?') == std::string::npos ? "?" : "&");
        st = c.Do("PUT", loc + "digest=" + d, body);
        if (st != 201) {
          ++errors;
        } else {
          ++done;
          lat[w].push_back(
              std::chrono::duration<float, std::milli>(Clock::now() - a)
                  .count());
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<float> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  double p99 =
      all.empty() ? 0 : all[std::min(all.size() - 1, all.size() * 99 / 100)];
  std::printf("blobs %ld blobs/s %.0f errors %ld p99_ms %.2f\n", done.load(),
              done / elapsed, errors.load(), p99);
  return errors ? 1 : 0;
}

// populate: per repository, `manifests` images of one config and `layers`
// layer blobs each (all distinct), the first `tags` tagged, the rest put
// by digest; then `orphans` blobs no manifest names. Repositories are
// bench/r<N>, shared out among the workers.
int Populate(const Url& base, int workers, int repos, int manifests, int layers,
             int tags, int orphans, size_t size) {
  std::atomic<int> next{0};
  std::atomic<long> errors{0}, blobs{0}, mans{0};
  auto t0 = Clock::now();
  unsigned long long seed =
      std::chrono::system_clock::now().time_since_epoch().count();
  auto push_blob = [&](Conn& c, const std::string& repo,
                       const std::string& body) -> std::string {
    std::string d = ocib::Digest::Of(body).str();
    std::string loc;
    if (c.Do("POST", "/v2/" + repo + "/blobs/uploads/", "", &loc) != 202 ||
        loc.empty()) {
      ++errors;
      return d;
    }
    if (loc.rfind("http", 0) == 0) loc = loc.substr(loc.find('/', 8));
    loc += (loc.find('?') == std::string::npos ? "?" : "&");
    if (c.Do("PUT", loc + "digest=" + d, body) != 201)
      ++errors;
    else
      ++blobs;
    return d;
  };
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w) {
    ts.emplace_back([&] {
      Conn c(base);
      std::string body(size, '\0');
      for (int r; (r = next++) < repos;) {
        std::string repo = "bench/r" + std::to_string(r);
        for (int m = 0; m < manifests; ++m) {
          char cfg[256];
          std::snprintf(
              cfg, sizeof cfg,
              "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":"
              "{\"type\":\"layers\",\"diff_ids\":[]},\"comment\":\"%llu %d "
              "%d\"}",
              seed, r, m);
          std::string cd = push_blob(c, repo, cfg);
          std::string man =
              "{\"schemaVersion\":2,\"mediaType\":\"application/"
              "vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
              "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" +
              cd + "\",\"size\":" + std::to_string(std::strlen(cfg)) +
              "},\"layers\":[";
          for (int l = 0; l < layers; ++l) {
            std::snprintf(body.data(), size, "layer %llu %d %d %d ", seed, r, m,
                          l);
            std::string ld = push_blob(c, repo, body);
            man += std::string(l ? "," : "") +
                   "{\"mediaType\":\"application/"
                   "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" +
                   ld + "\",\"size\":" + std::to_string(size) + "}";
          }
          man += "]}";
          std::string ref =
              m < tags ? "t" + std::to_string(m) : ocib::Digest::Of(man).str();
          if (c.Do("PUT", "/v2/" + repo + "/manifests/" + ref, man, nullptr,
                   "Content-Type: "
                   "application/vnd.oci.image.manifest.v1+json\r\n") != 201)
            ++errors;
          else
            ++mans;
        }
        for (int o = 0; o < orphans; ++o) {
          std::snprintf(body.data(), size, "orphan %llu %d %d ", seed, r, o);
          push_blob(c, repo, body);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  std::printf("blobs %ld manifests %ld errors %ld seconds %.1f\n", blobs.load(),
              mans.load(), errors.load(),
              std::chrono::duration<double>(Clock::now() - t0).count());
  return errors ? 1 : 0;
}

// Keeps the path and query of a Location and adds "?" or "&".
std::string UploadTarget(std::string loc) {
  if (loc.rfind("http", 0) == 0) loc = loc.substr(loc.find('/', 8));
  return loc;
}

int PushChunked(const Url& base, const std::string& repo,
                const std::string& file, const std::string& digest,
                size_t chunk) {
  FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) {
    std::perror(file.c_str());
    return 1;
  }
  std::string buf(chunk, '\0');
  Conn c(base);
  auto t0 = Clock::now();
  std::string loc;
  if (c.Do("POST", "/v2/" + repo + "/blobs/uploads/", "", &loc) != 202 ||
      loc.empty()) {
    std::fprintf(stderr, "POST failed\n");
    return 1;
  }
  uint64_t off = 0;
  while (true) {
    size_t n = std::fread(buf.data(), 1, chunk, f);
    if (n == 0) break;
    std::string range = "Content-Range: " + std::to_string(off) + "-" +
                        std::to_string(off + n - 1) + "\r\n";
    int st = c.Do("PATCH", UploadTarget(loc), std::string_view(buf.data(), n),
                  &loc, range);
    if (st != 202) {
      std::fprintf(stderr, "PATCH at %llu answered %d\n",
                   (unsigned long long)off, st);
      return 1;
    }
    off += n;
  }
  std::fclose(f);
  std::string target = UploadTarget(loc);
  target += target.find('?') == std::string::npos ? "?" : "&";
  int st = c.Do("PUT", target + "digest=" + digest, "");
  if (st != 201) {
    std::fprintf(stderr, "closing PUT answered %d\n", st);
    return 1;
  }
  std::printf("%.6f\n",
              std::chrono::duration<double>(Clock::now() - t0).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a closed TLS connection is an error, not exit
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: http-load head|get URL [-c N] [-d S] | push-small URL "
                 "REPO [-c N] [-n N] [-s BYTES]"
                 " | push-chunked URL REPO FILE DIGEST [-s CHUNK_BYTES]\n");
    return 2;
  }
  std::string mode = argv[1];
  Url url;
  if (!ParseUrl(argv[2], &url)) return 2;
  int conns = mode == "push-small" ? 8 : 64, blobs = 2000;
  double seconds = 10;
  size_t size = 1024;
  int first = mode == "push-small" ? 4 : mode == "push-chunked" ? 6 : 3;
  if (mode == "push-chunked") {
    if (argc < 6) return 2;
    size = 16 << 20;
  }
  std::string repo = mode != "head" && mode != "get" && argc > 3 ? argv[3] : "";
  for (int i = first; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "-c")
      conns = std::atoi(argv[i + 1]);
    else if (f == "-d")
      seconds = std::atof(argv[i + 1]);
    else if (f == "-n")
      blobs = std::atoi(argv[i + 1]);
    else if (f == "-s")
      size = std::strtoull(argv[i + 1], nullptr, 10);
    else if (f == "-H")
      g_headers += std::string(argv[i + 1]) + "\r\n";
  }
  if (mode == "head") return Load("HEAD", url, conns, seconds);
  if (mode == "get") return Load("GET", url, conns, seconds);
  if (mode == "push-small") return PushSmall(url, repo, conns, blobs, size);
  if (mode == "push-chunked")
    return PushChunked(url, repo, argv[4], argv[5], size);
  if (mode == "populate") {
    auto num = [&](const char* flag, int dflt) {
      for (int i = 3; i + 1 < argc; ++i)
        if (std::string(argv[i]) == flag) return std::atoi(argv[i + 1]);
      return dflt;
    };
    return Populate(url, num("-c", 4), num("-r", 100), num("-m", 100),
                    num("-l", 4), num("-t", 20), num("-o", 500),
                    static_cast<size_t>(num("-s", 1024)));
  }
  return 2;
}
