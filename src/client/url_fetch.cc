#include "client/url_fetch.h"

#include <httplib.h>

#include <memory>
#include <regex>

namespace ocib::client {

namespace {

// A client for url's scheme and host (https verified with the system CAs),
// and the path to ask for.
struct Target {
  std::unique_ptr<httplib::Client> client;
  std::string path;
};

Result<Target> ClientFor(const std::string& url, int connect_timeout_seconds,
                         int read_timeout_seconds) {
  static const std::regex re("^(https?)://([^/?#]+)([/?][^#]*)?$");
  std::smatch m;
  if (!std::regex_match(url, m, re))
    return InvalidArgument("invalid URL " + url +
                           " (want http(s)://HOST/PATH)");
  Target t;
  t.client = std::make_unique<httplib::Client>(m[1].str() + "://" + m[2].str());
  t.client->set_connection_timeout(connect_timeout_seconds, 0);
  t.client->set_read_timeout(read_timeout_seconds, 0);
  t.client->set_write_timeout(read_timeout_seconds, 0);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  t.client->set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
  t.client->enable_server_certificate_verification(true);
#endif
  t.path = m[3].matched ? m[3].str() : "/";
  if (t.path[0] == '?') t.path = "/" + t.path;
  return t;
}

}  // namespace

Status FetchUrl(const std::string& url,
                const std::function<Status(const char*, size_t)>& sink,
                const UrlFetchOptions& options) {
  ASSIGN_OR_RETURN(Target t, ClientFor(url, options.connect_timeout_seconds,
                                       options.read_timeout_seconds));
  httplib::Client& c = *t.client;
  c.set_follow_location(true);
  const std::string& path = t.path;
  Hasher hasher;
  Status sink_status;
  int status = 0;
  auto r = c.Get(
      path.c_str(),
      [&](const httplib::Response& resp) {
        status = resp.status;
        return resp.status == 200;  // an error page is not the file
      },
      [&](const char* d, size_t n) {
        hasher.Update(d, n);
        sink_status = sink(d, n);
        return sink_status.ok();
      });
  if (!sink_status.ok()) return sink_status;
  if (status == 404 || status == 410)
    return NotFound(url + ": HTTP " + std::to_string(status));
  if (status != 0 && status != 200)
    return FailedPrecondition(url + ": HTTP " + std::to_string(status));
  if (!r)
    return Unavailable(url + ": cannot fetch (" +
                       httplib::to_string(r.error()) + ")");
  if (options.checksum) {
    Digest got = hasher.Finish();
    if (got != *options.checksum)
      return InvalidArgument(url + ": checksum mismatch: expected " +
                             options.checksum->str() + ", got " + got.str());
  }
  return Status::Ok();
}

Result<int> PostUrl(
    const std::string& url,
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body, const std::string& content_type,
    int timeout_seconds) {
  ASSIGN_OR_RETURN(Target t, ClientFor(url, timeout_seconds, timeout_seconds));
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  auto r = t.client->Post(t.path, h, body, content_type);
  if (!r) return Unavailable(httplib::to_string(r.error()));
  return r->status;
}

}  // namespace ocib::client
