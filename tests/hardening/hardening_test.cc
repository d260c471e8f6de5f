// Hostile clients against the real ocireg on loopback: request smuggling,
// framing errors, header and body limits, slowloris, connection and
// upload-session caps, log injection (issue 10). Each case sends the
// bytes an attacker would and checks what the server did with them.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "registry_process.h"
#include "store/digest.h"
#include "temp_dir.h"

using namespace ocib;
using namespace ocib::testing;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kOciManifest =
    "application/vnd.oci.image.manifest.v1+json";

std::string ErrCode(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.contains("errors") || j["errors"].empty())
    return "<no envelope>";
  return j["errors"][0]["code"].get<std::string>();
}

// Status codes of the responses in a raw byte stream, in order, each
// framed by its Content-Length (interim 1xx answers have no body).
std::vector<int> Statuses(const std::string& raw) {
  std::vector<int> out;
  size_t p = 0;
  while (raw.compare(p, 9, "HTTP/1.1 ") == 0) {
    size_t end = raw.find("\r\n\r\n", p);
    if (end == std::string::npos) break;
    std::string head = raw.substr(p, end - p);
    int status = std::stoi(head.substr(9, 3));
    out.push_back(status);
    size_t len = 0, cl = head.find("\r\nContent-Length: ");
    if (cl != std::string::npos && status >= 200)
      len = std::stoul(head.substr(cl + 18));
    p = end + 4 + len;
  }
  return out;
}

// The body of the last response in a raw stream (after its blank line).
std::string LastBody(const std::string& raw) {
  size_t p = raw.rfind("\r\n\r\n");
  return p == std::string::npos ? "" : raw.substr(p + 4);
}

// Sends `bytes` on a new connection, ends the client's side, and reads
// every response until the server closes the connection. Whether the
// server answered one request or several shows in Statuses().
std::string Exchange(int port, const std::string& bytes) {
  int s = RawConnect(port);
  ::send(s, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  ::shutdown(s, SHUT_WR);
  std::string out = ReadUntilClose(s, 5000);
  ::close(s);
  return out;
}

// Pushes a one-blob image as repo:tag.
void PushImage(httplib::Client& c, const std::string& repo,
               const std::string& tag) {
  std::string config = R"({"architecture":"amd64","os":"linux"})";
  Digest d = Digest::Of(config);
  auto r = c.Post(("/v2/" + repo + "/blobs/uploads/?digest=" + d.str()).c_str(),
                  config, "application/octet-stream");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  json m = {{"schemaVersion", 2},
            {"mediaType", kOciManifest},
            {"config",
             {{"mediaType", "application/vnd.oci.image.config.v1+json"},
              {"digest", d.str()},
              {"size", config.size()}}},
            {"layers", json::array()}};
  r = c.Put(("/v2/" + repo + "/manifests/" + tag).c_str(), m.dump(),
            kOciManifest);
  REQUIRE(r);
  REQUIRE(r->status == 201);
}

std::string Config(const TempDir& dir, const std::string& text) {
  std::string path = dir.path() + "/c.json";
  std::ofstream(path) << text;
  return path;
}

const char kSmuggled[] =
    "DELETE /v2/victim/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n";

}  // namespace

TEST_CASE(
    "smuggling: the body of a rejected request is never parsed as a request") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  auto c = reg.Client();
  PushImage(*c, "victim/app", "v1");
  std::string small = kSmuggled;
  std::string large =
      std::string(400 << 10, 'x') + kSmuggled;  // past the drain limit
  struct Case {
    const char* what;
    std::string head;
    std::string body;
  } cases[] = {
      {"bad digest, small body",
       "POST /v2/a/blobs/uploads/?digest=sha256:bad HTTP/1.1\r\nHost: x\r\n",
       small},
      {"bad digest, large body",
       "POST /v2/a/blobs/uploads/?digest=sha256:bad HTTP/1.1\r\nHost: x\r\n",
       large},
      {"unknown session",
       "PATCH /v2/a/blobs/uploads/0123456789abcdef0123456789abcdef "
       "HTTP/1.1\r\nHost: x\r\n",
       small},
      {"GET with a body", "GET /v2/ HTTP/1.1\r\nHost: x\r\n", large},
  };
  for (const auto& k : cases) {
    CAPTURE(k.what);
    std::string req = k.head +
                      "Content-Length: " + std::to_string(k.body.size()) +
                      "\r\n\r\n" + k.body;
    std::string out = Exchange(reg.port(), req);
    CHECK(Statuses(out).size() == 1);
    // And chunked, the body in one chunk.
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx", k.body.size());
    req = k.head + "Transfer-Encoding: chunked\r\n\r\n" + hex + "\r\n" +
          k.body + "\r\n0\r\n\r\n";
    out = Exchange(reg.port(), req);
    CHECK(Statuses(out).size() == 1);
  }
  auto r = c->Get("/v2/victim/app/manifests/v1");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE(
    "smuggling: a small unread body is drained and the connection stays "
    "usable") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  int s = RawConnect(reg.port());
  std::string body = "0123456789";
  std::string req =
      "POST /v2/a/blobs/uploads/?digest=sha256:bad HTTP/1.1\r\nHost: "
      "x\r\nContent-Length: 10\r\n\r\n" +
      body + "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(s, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out = ReadUntilClose(s, 1000);
  CHECK(Statuses(out) == std::vector<int>{400, 200});
  ::close(s);
}

TEST_CASE(
    "framing: malformed Content-Length or Transfer-Encoding gets 400 or 501 "
    "and a closed connection") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  struct Case {
    std::string headers;
    int status;
  } cases[] = {
      {"Content-Length: -1\r\n", 400},
      {"Content-Length: abc\r\n", 400},
      {"Content-Length: 5\r\nContent-Length: 6\r\n", 400},
      {"Content-Length: 5, 6\r\n", 400},
      {"Content-Length: 99999999999999999999\r\n", 400},
      {"Content-Length: +5\r\n", 400},
      {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400},
      {"Transfer-Encoding: gzip, chunked\r\n", 501},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 501},
      {"Content-Length : 5\r\n", 400},    // space before the colon
      {"X-A: 1\r\n continued\r\n", 400},  // obsolete folding
      {"X-A: 1\rX-B: 2\r\n", 400},        // bare CR
  };
  for (const auto& k : cases) {
    CAPTURE(k.headers);
    // One answer, closing: the GET that follows is never served.
    std::string out = Exchange(
        reg.port(), "POST /v2/r/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n" +
                        k.headers +
                        "\r\nhelloGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(Statuses(out) == std::vector<int>{k.status});
    CHECK(out.find("Connection: close") != std::string::npos);
  }
  // Equal repeated values are one length: the body is read, then the next
  // request.
  std::string out = Exchange(reg.port(),
                             "POST /v2/r/blobs/uploads/ HTTP/1.1\r\nHost: "
                             "x\r\nContent-Length: 5, 5\r\n\r\nhello"
                             "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(Statuses(out) == std::vector<int>{202, 200});
  // Other request-line and header errors.
  CHECK(Statuses(Exchange(reg.port(), "GET /v2/ HTTP/1.1\r\n\r\n")) ==
        std::vector<int>{400});  // no Host
  CHECK(
      Statuses(Exchange(reg.port(), "GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n")) ==
      std::vector<int>{505});
  CHECK(
      Statuses(Exchange(reg.port(), "GET  /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")) ==
      std::vector<int>{400});
  CHECK(Statuses(Exchange(reg.port(),
                          "GET http://x/v2/ HTTP/1.1\r\nHost: x\r\n\r\n")) ==
        std::vector<int>{400});
  CHECK(Statuses(
            Exchange(reg.port(), "GET /v2/\x01 HTTP/1.1\r\nHost: x\r\n\r\n")) ==
        std::vector<int>{400});
  // A TLS ClientHello on the plain port is refused at once, not at the
  // header deadline (clients that try HTTPS first fall back sooner).
  {
    int t = RawConnect(reg.port());
    const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    auto t0 = Clock::now();
    ::send(t, hello, sizeof hello - 1, MSG_NOSIGNAL);
    std::string got = ReadUntilClose(t, 1000);  // returns 1 s after the answer
    ::close(t);
    CHECK(Statuses(got) == std::vector<int>{400});
    CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 2.5);
  }
  // An HTTP/1.0 client gets its answer and a closed connection.
  int s = RawConnect(reg.port());
  std::string http10 = "GET /v2/ HTTP/1.0\r\n\r\n";
  ::send(s, http10.data(), http10.size(), MSG_NOSIGNAL);
  bool closed;
  out = ReadUntilClose(s, 3000, &closed);
  ::close(s);
  CHECK(Statuses(out) == std::vector<int>{200});
  CHECK(closed);
}

TEST_CASE(
    "framing: broken chunked bodies get 400 and a closed connection, and store "
    "nothing") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  std::string data = "a";
  Digest d = Digest::Of(data);
  std::string head =
      "POST /v2/ch/blobs/uploads/?digest=" + d.str() +
      " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string trailers;
  for (int i = 0; i < 5000; ++i) trailers += "X: y\r\n";
  const std::string bodies[] = {
      "fffffffffffffff\r\nabc",  // huge size, cut short
      "1;" + std::string(5000, 'e') +
          "\r\na\r\n0\r\n\r\n",               // extension too long
      "1\r\na\r\n0\r\n" + trailers + "\r\n",  // trailer flood
      "zz\r\n",                               // not hex
      "1\r\naXY0\r\n\r\n",                    // no CRLF after the data
  };
  for (const auto& b : bodies) {
    CAPTURE(b.substr(0, 40));
    std::string out =
        Exchange(reg.port(), head + b + "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(Statuses(out) == std::vector<int>{400});
    CHECK(out.find("Connection: close") != std::string::npos);
  }
  CHECK(reg.Client()->Head(("/v2/ch/blobs/" + d.str()).c_str())->status == 404);
}

TEST_CASE(
    "header limits: 431 or 414 past max_header_bytes, and memory stays "
    "bounded") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  // Many short lines.
  std::string h = "GET /v2/ HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 2000; ++i)
    h += "X-Filler-" + std::to_string(i) + ": " + std::string(60, 'a') + "\r\n";
  CHECK(Statuses(Exchange(reg.port(), h + "\r\n")) == std::vector<int>{431});
  // Too many fields, each small.
  h = "GET /v2/ HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 300; ++i) h += "A: b\r\n";
  CHECK(Statuses(Exchange(reg.port(), h + "\r\n")) == std::vector<int>{431});
  // One long request line.
  CHECK(Statuses(Exchange(reg.port(), "GET /v2/" + std::string(100 << 10, 'a') +
                                          " HTTP/1.1\r\nHost: x\r\n\r\n")) ==
        std::vector<int>{414});
  // 8 connections streaming 32 MiB of header lines each: refused after
  // the limit, so the server's memory does not follow.
  long before = RssKiB(reg.pid());
  std::vector<std::thread> ts;
  std::atomic<int> refused{0};
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&] {
      int s = RawConnect(reg.port());
      std::string line = "X-Big: " + std::string(8000, 'b') + "\r\n";
      std::string chunk = "GET /v2/ HTTP/1.1\r\nHost: x\r\n";
      for (int i = 0; i < 128; ++i) chunk += line;
      ::send(s, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      std::string more;
      for (int i = 0; i < 128; ++i) more += line;
      for (int i = 0;
           i < 32 && ::send(s, more.data(), more.size(), MSG_NOSIGNAL) > 0;
           ++i) {
      }
      std::string got = ReadUntilClose(s, 3000);
      if (Statuses(got) == std::vector<int>{431}) ++refused;
      ::close(s);
    });
  }
  for (auto& t : ts) t.join();
  CHECK(refused.load() == 8);
  long after = RssKiB(reg.pid());
  CHECK(after - before < 64 * 1024);
  CHECK(reg.Client()->Get("/v2/")->status == 200);
}

TEST_CASE(
    "body limits: max_body_bytes answers 413 SIZE_INVALID at once, chunked "
    "bodies too") {
  TempDir dir;
  RegistryProcess reg(
      dir.path() + "/store",
      {"--config", Config(dir, R"({"max_body_bytes": 1048576})")});
  std::string data(2 << 20, 'z');
  Digest d = Digest::Of(data);
  std::string path = "/v2/lim/blobs/uploads/?digest=" + d.str();
  // Declared too large: answered before any body byte is sent.
  int s = RawConnect(reg.port());
  std::string head =
      "POST " + path +
      " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(data.size()) +
      "\r\n\r\n";
  ::send(s, head.data(), head.size(), MSG_NOSIGNAL);
  auto t0 = Clock::now();
  std::string out = ReadUntilClose(s, 1000);
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 2.5);
  ::close(s);
  CHECK(Statuses(out) == std::vector<int>{413});
  CHECK(out.find("Connection: close") != std::string::npos);
  CHECK(ErrCode(LastBody(out)) == "SIZE_INVALID");
  // Chunked: refused when it crosses the limit; nothing is stored.
  std::string req =
      "POST " + path +
      " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t off = 0; off < data.size(); off += 65536)
    req += "10000\r\n" + data.substr(off, 65536) + "\r\n";
  req += "0\r\n\r\n";
  out = Exchange(reg.port(), req);
  CHECK(Statuses(out) == std::vector<int>{413});
  CHECK(ErrCode(LastBody(out)) == "SIZE_INVALID");
  auto c = reg.Client();
  CHECK(c->Head(("/v2/lim/blobs/" + d.str()).c_str())->status == 404);
  // Under the limit, chunked works.
  std::string ok(512 << 10, 'o');
  Digest od = Digest::Of(ok);
  req = "POST /v2/lim/blobs/uploads/?digest=" + od.str() +
        " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  req += "80000\r\n" + ok + "\r\n0\r\n\r\n";
  CHECK(Statuses(Exchange(reg.port(), req)) == std::vector<int>{201});
  CHECK(c->Head(("/v2/lim/blobs/" + od.str()).c_str())->status == 200);
}

TEST_CASE(
    "slowloris: hundreds of trickling clients neither starve new ones nor stay "
    "past the header deadline") {
  TempDir dir;
  RegistryProcess reg(
      dir.path() + "/store",
      {"--config",
       Config(dir, R"({"header_timeout_seconds": 2, "threads": 8})")});
  constexpr int kSlow = 400;
  std::vector<int> slow;
  for (int i = 0; i < kSlow; ++i) {
    int s = RawConnect(reg.port());
    ::send(s, "GET /v2/ HTTP/1.1\r\n", 19, MSG_NOSIGNAL);
    slow.push_back(s);
  }
  // While they trickle a header line every 300 ms, fresh clients are served.
  auto c = reg.Client();
  double worst = 0;
  auto t0 = Clock::now();
  for (int round = 0; round < 10; ++round) {
    for (int s : slow)
      ::send(s, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL | MSG_DONTWAIT);
    auto a = Clock::now();
    auto r = reg.Client()->Get("/v2/");
    worst = std::max(worst,
                     std::chrono::duration<double>(Clock::now() - a).count());
    REQUIRE(r);
    CHECK(r->status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  CHECK(worst < 0.5);
  // The deadline (2 s from the first byte) closed every slow connection.
  int closed_count = 0;
  for (int s : slow) {
    bool closed;
    ReadUntilClose(s, 3000, &closed);
    closed_count += closed;
    ::close(s);
  }
  CHECK(closed_count == kSlow);
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 10);
}

TEST_CASE(
    "connections: past max_connections new ones get 503, idle ones count, and "
    "room comes back") {
  TempDir dir;
  RegistryProcess reg(
      dir.path() + "/store",
      {"--config",
       Config(dir,
              R"({"max_connections": 32, "keep_alive_timeout_seconds": 60})")});
  // 32 keep-alive connections, each answered once (so surely accepted),
  // then idle.
  std::vector<int> held;
  for (int i = 0; i < 32; ++i) {
    held.push_back(RawConnect(reg.port()));
    ::send(held.back(), "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", 30,
           MSG_NOSIGNAL);
    REQUIRE(Statuses(ReadUntilClose(held.back(), 200)) ==
            std::vector<int>{200});
  }
  // Answered at once, before the client sends anything, and closed.
  int s = RawConnect(reg.port());
  bool closed;
  std::string out = ReadUntilClose(s, 3000, &closed);
  ::close(s);
  CAPTURE(out);
  CHECK(Statuses(out) == std::vector<int>{503});
  CHECK(out.find("Retry-After:") != std::string::npos);
  CHECK(closed);
  for (int i = 0; i < 4; ++i) ::close(held[i]);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(
      Statuses(Exchange(reg.port(), "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")) ==
      std::vector<int>{200});
  for (size_t i = 4; i < held.size(); ++i) ::close(held[i]);
}

TEST_CASE(
    "bodies: multipart and Expect are answered with 4xx, never an exception") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  std::string mp =
      "--x\r\nContent-Disposition: form-data; "
      "name=\"a\"\r\n\r\n{}\r\n--x--\r\n";
  auto c = reg.Client();
  auto r = c->Put("/v2/mp/manifests/v1", mp, "multipart/form-data; boundary=x");
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(ErrCode(r->body) == "MANIFEST_INVALID");
  r = c->Post(
      ("/v2/mp/blobs/uploads/?digest=" + Digest::Of("other").str()).c_str(), mp,
      "multipart/form-data; boundary=x");
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(ErrCode(r->body) == "DIGEST_INVALID");
  r = c->Post(("/v2/mp/blobs/uploads/?digest=" + Digest::Of(mp).str()).c_str(),
              mp, "multipart/form-data; boundary=x");
  REQUIRE(r);
  CHECK(r->status == 201);  // stored as the bytes it is
  // Expect: 100-continue gets its interim answer; other expectations 417.
  int s = RawConnect(reg.port());
  std::string data = "abc";
  std::string head =
      "POST /v2/mp/blobs/uploads/?digest=" + Digest::Of(data).str() +
      " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "
      "3\r\n\r\n";
  ::send(s, head.data(), head.size(), MSG_NOSIGNAL);
  std::string got = ReadUntilClose(s, 500);
  CHECK(got.starts_with("HTTP/1.1 100 Continue\r\n\r\n"));
  ::send(s, data.data(), data.size(), MSG_NOSIGNAL);
  got = ReadUntilClose(s, 500);
  CHECK(Statuses(got) == std::vector<int>{201});
  ::close(s);
  CHECK(Statuses(Exchange(
            reg.port(),
            "GET /v2/ HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n")) ==
        std::vector<int>{417});
  // No error body anywhere carries exception text.
  std::ifstream log(reg.log_path());
  std::stringstream all;
  all << log.rdbuf();
  CHECK(all.str().find("bad_function_call") == std::string::npos);
}

TEST_CASE("ranges: an empty blob satisfies no range") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  auto c = reg.Client();
  Digest d = Digest::Of("");
  REQUIRE(c->Post(("/v2/e/blobs/uploads/?digest=" + d.str()).c_str(), "",
                  "application/octet-stream")
              ->status == 201);
  for (const char* range : {"bytes=-5", "bytes=0-", "bytes=0-0"}) {
    CAPTURE(range);
    auto r = c->Get(("/v2/e/blobs/" + d.str()).c_str(), {{"Range", range}});
    REQUIRE(r);
    CHECK(r->status == 416);
    CHECK(r->get_header_value("Content-Range") == "bytes */0");
    CHECK(ErrCode(r->body) ==
          "BLOB_UPLOAD_INVALID");  // the spec's code for 416
  }
  auto r = c->Get(("/v2/e/blobs/" + d.str()).c_str());
  CHECK(r->status == 200);
  CHECK(r->body.empty());
}

TEST_CASE(
    "ranges: a range that ends before it starts is 416, as the OCI suite "
    "expects") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  auto c = reg.Client();
  std::string data(2048, 'r');
  Digest d = Digest::Of(data);
  REQUIRE(c->Post(("/v2/rg/blobs/uploads/?digest=" + d.str()).c_str(), data,
                  "application/octet-stream")
              ->status == 201);
  auto r =
      c->Get(("/v2/rg/blobs/" + d.str()).c_str(), {{"Range", "bytes=500-0"}});
  REQUIRE(r);
  CHECK(r->status == 416);
  CHECK(r->get_header_value("Content-Range") == "bytes */2048");
  r = c->Get(("/v2/rg/blobs/" + d.str()).c_str(),
             {{"Range", "bytes=2000-5000"}});
  CHECK(r->status == 206);
  CHECK(r->get_header_value("Content-Range") == "bytes 2000-2047/2048");
  r = c->Get(("/v2/rg/blobs/" + d.str()).c_str(),
             {{"Range", "bytes=5000-10000"}});
  CHECK(r->status == 416);
  // A header that is not a byte range is ignored (RFC 9110 §14.2).
  r = c->Get(("/v2/rg/blobs/" + d.str()).c_str(), {{"Range", "lines=1-2"}});
  CHECK(r->status == 200);
  CHECK(r->body == data);
}

TEST_CASE(
    "access log: control characters a client sends are escaped, so no line can "
    "be forged") {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  auto c = reg.Client();
  std::string forged =
      "2000-01-01T00:00:00Z 10.6.6.6 \"DELETE /v2/prod/app/manifests/latest\" "
      "202";
  std::string path = "/v2/x%0a";
  for (char ch : forged)
    path += ch == ' '   ? std::string("%20")
            : ch == '"' ? std::string("%22")
                        : std::string(1, ch);
  auto r = c->Get(path.c_str());
  REQUIRE(r);
  CHECK(r->status == 400);  // NAME_INVALID
  CHECK(r->body.find('\n') == std::string::npos);
  reg.Stop();  // flushes the log
  std::ifstream log(reg.log_path());
  std::string line;
  int lines_with_path = 0;
  while (std::getline(log, line)) {
    CHECK_FALSE(line.starts_with("2000-01-01"));
    if (line.find("/v2/x\\x0a2000-01-01") != std::string::npos)
      ++lines_with_path;
  }
  CHECK(lines_with_path == 1);
}

TEST_CASE(
    "upload sessions: capped per repository and in all, 429 TOOMANYREQUESTS "
    "with Retry-After") {
  TempDir dir;
  std::string conf =
      Config(dir, R"({"max_uploads_per_repository": 5, "max_uploads": 8})");
  std::vector<std::string> in_a;
  {
    RegistryProcess reg(dir.path() + "/store", {"--config", conf});
    auto c = reg.Client();
    for (int i = 0; i < 5; ++i) {
      auto r = c->Post("/v2/a/blobs/uploads/", "", "application/octet-stream");
      REQUIRE(r->status == 202);
      in_a.push_back(r->get_header_value("Location"));
    }
    auto r = c->Post("/v2/a/blobs/uploads/", "", "application/octet-stream");
    CHECK(r->status == 429);
    CHECK(ErrCode(r->body) == "TOOMANYREQUESTS");
    CHECK(!r->get_header_value("Retry-After").empty());
    for (int i = 0; i < 3; ++i)
      CHECK(c->Post("/v2/b/blobs/uploads/", "", "application/octet-stream")
                ->status == 202);
    CHECK(c->Post("/v2/c/blobs/uploads/", "", "application/octet-stream")
              ->status == 429);  // 8 in all
    // Ending a session (cancel, or commit) makes room.
    CHECK(c->Delete(in_a[0].c_str())->status == 204);
    in_a.erase(in_a.begin());
    r = c->Post("/v2/a/blobs/uploads/", "", "application/octet-stream");
    REQUIRE(r->status == 202);
    std::string data = "committed";
    CHECK(c->Put((r->get_header_value("Location") +
                  "?digest=" + Digest::Of(data).str())
                     .c_str(),
                 data, "application/octet-stream")
              ->status == 201);
    CHECK(c->Post("/v2/c/blobs/uploads/", "", "application/octet-stream")
              ->status == 202);
    // Monolithic pushes open no session and are never refused.
    CHECK(c->Post(
               ("/v2/a/blobs/uploads/?digest=" + Digest::Of("m").str()).c_str(),
               "m", "application/octet-stream")
              ->status == 201);
    reg.Stop();
  }
  // Open sessions are counted again after a restart.
  RegistryProcess reg(dir.path() + "/store", {"--config", conf});
  CHECK(reg.Client()
            ->Post("/v2/d/blobs/uploads/", "", "application/octet-stream")
            ->status == 429);
}
