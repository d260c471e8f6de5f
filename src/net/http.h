// HTTP/1.1 messages as ocireg's handlers see them: a parsed request, its
// body as a stream, and the response a handler fills in.
//
// Request and Response are plain values, filled by one thread (the worker
// serving the connection). RequestBody is the connection's body stream for
// one request; it is valid only during the handler call and is used by
// that one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ocib::net {

// Header names compare case-insensitively (RFC 9110 §5.1).
struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::multimap<std::string, std::string, CaseInsensitiveLess>;

// One range of a Range header: {first, last} inclusive; {first, -1} is
// "first-"; {-1, n} is the suffix "-n".
using ByteRange = std::pair<int64_t, int64_t>;

struct Request {
  std::string method;     // as sent, e.g. "GET"
  std::string target;     // the request-target as sent
  std::string path;       // target's path, percent-decoded
  std::string query;      // target's query, undecoded, without '?'
  int minor_version = 1;  // HTTP/1.<minor>
  Headers headers;
  std::multimap<std::string, std::string> params;  // query, decoded
  std::vector<ByteRange> ranges;  // a valid bytes Range header, else empty
  std::string remote_addr;
  int remote_port = 0;
  bool tls = false;  // arrived over TLS
  // The subject CN of the client's certificate, when the server requires
  // one (mTLS) and it verified; else empty.
  std::string client_cert_cn;

  bool has_header(const std::string& key) const {
    return headers.count(key) > 0;
  }
  std::string get_header_value(const std::string& key) const;
  bool has_param(const std::string& key) const { return params.count(key) > 0; }
  std::string get_param_value(const std::string& key, size_t i = 0) const;
  size_t get_param_value_count(const std::string& key) const {
    return params.count(key);
  }
};

// Writes `n` bytes of a streamed body; false when the client is gone.
using BodyWriter = std::function<bool(const char* data, size_t n)>;
// Produces the body bytes [offset, offset + length) in one or more writes
// of at most `length` bytes. Returns false to abort the response (the
// connection is then closed, as the client cannot tell the body is short).
using ContentProvider = std::function<bool(uint64_t offset, uint64_t length,
                                           const BodyWriter& write)>;

struct Response {
  int status = 200;
  Headers headers;
  std::string body;  // unless a provider streams it
  uint64_t provider_length = 0;
  ContentProvider provider;

  bool has_header(const std::string& key) const {
    return headers.count(key) > 0;
  }
  std::string get_header_value(const std::string& key) const;
  // Replaces every value of `key`.
  void set_header(const std::string& key, std::string value);
  void set_content(std::string body, const std::string& content_type);
  void set_content_provider(uint64_t length, const std::string& content_type,
                            ContentProvider p);
  // The bytes of body the response carries (for the access log).
  uint64_t body_length() const {
    return provider ? provider_length : body.size();
  }
  // A note for the access log about how the request was served (the
  // mirror's "hit", "miss", "stale"); never sent to the client.
  std::string log_note;
  // The authenticated user, for the access log ("" = anonymous).
  std::string log_user;
};

// The request body as a stream. present() is false for requests without
// one; Read() may be called once.
class RequestBody {
 public:
  virtual ~RequestBody() = default;
  virtual bool present() const = 0;
  // The Content-Length, if the request framed its body with one.
  virtual std::optional<uint64_t> declared_length() const = 0;
  // Streams the body to `receiver` (which returns false to stop). Returns
  // true when the whole body arrived and every call returned true; false
  // when the client's stream broke, timed out, exceeded the server's body
  // limit (too_large()) or the receiver stopped.
  virtual bool Read(
      const std::function<bool(const char*, size_t)>& receiver) = 0;
  // True once the body exceeded the server's limit; the server then
  // answers 413 whatever the handler set.
  virtual bool too_large() const = 0;
};

// "200" -> "OK" (RFC 9110 reason phrases; "" for codes it does not name).
const char* ReasonPhrase(int status);

// Escapes a client-supplied string for a one-line log: control bytes,
// bytes >= 0x7f, '"' and '\' become \xHH, so no input can forge a line.
std::string EscapeForLog(std::string_view s);

}  // namespace ocib::net
