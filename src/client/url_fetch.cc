#include "client/url_fetch.h"

#include <httplib.h>

#include <regex>

namespace ocib::client {

Status FetchUrl(const std::string& url,
                const std::function<Status(const char*, size_t)>& sink,
                const UrlFetchOptions& options) {
  static const std::regex re("^(https?)://([^/?#]+)([/?][^#]*)?$");
  std::smatch m;
  if (!std::regex_match(url, m, re))
    return InvalidArgument("invalid URL " + url +
                           " (want http(s)://HOST/PATH)");
  httplib::Client c(m[1].str() + "://" + m[2].str());
  c.set_connection_timeout(options.connect_timeout_seconds, 0);
  c.set_read_timeout(options.read_timeout_seconds, 0);
  c.set_follow_location(true);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  c.set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
  c.enable_server_certificate_verification(true);
#endif
  std::string path = m[3].matched ? m[3].str() : "/";
  if (path[0] == '?') path = "/" + path;
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
  static const std::regex re("^(https?)://([^/?#]+)([/?][^#]*)?$");
  std::smatch m;
  if (!std::regex_match(url, m, re))
    return InvalidArgument("invalid URL " + url +
                           " (want http(s)://HOST/PATH)");
  httplib::Client c(m[1].str() + "://" + m[2].str());
  c.set_connection_timeout(timeout_seconds, 0);
  c.set_read_timeout(timeout_seconds, 0);
  c.set_write_timeout(timeout_seconds, 0);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  c.set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
  c.enable_server_certificate_verification(true);
#endif
  std::string path = m[3].matched ? m[3].str() : "/";
  if (path[0] == '?') path = "/" + path;
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  auto r = c.Post(path, h, body, content_type);
  if (!r) return Unavailable(httplib::to_string(r.error()));
  return r->status;
}

}  // namespace ocib::client
