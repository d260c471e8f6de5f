#include "client/registry_client.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "client/base64.h"
#include "net/buffered_stream.h"
#include "oci/image_ref.h"

namespace ocib::client {
namespace {

const char* kAccept =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

bool IsLoopback(const std::string& host) {
  std::string h =
      host.substr(0, host.rfind(':') == std::string::npos || host[0] == '['
                         ? host.size()
                         : host.rfind(':'));
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "[::1]" ||
         h == "::1";
}

// The registry's error code and message, when the body is the spec's envelope.
std::string Reason(const httplib::Result& r) {
  if (!r) return httplib::to_string(r.error());
  std::string why = "HTTP " + std::to_string(r->status);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_discarded() && j.contains("errors") && j["errors"].is_array() &&
      !j["errors"].empty()) {
    const auto& e = j["errors"][0];
    if (e.contains("code") && e["code"].is_string())
      why += " " + e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string())
      why += ": " + e["message"].get<std::string>();
  }
  return why;
}

Status Failure(const std::string& what, const httplib::Result& r) {
  if (!r && r.error() == httplib::Error::SSLServerVerification)
    return FailedPrecondition(
        what +
        ": the registry's TLS certificate is not trusted "
        "(use --ca-cert FILE for a private CA, or --insecure)");
  if (!r && r.error() == httplib::Error::SSLConnection)
    return Unavailable(what +
                       ": TLS handshake with the registry failed (a plain HTTP "
                       "registry? use --insecure)");
  if (!r)
    return Unavailable(what + ": cannot reach the registry (" +
                       httplib::to_string(r.error()) + ")");
  if (r->status == 400 && r->body.find("HTTPS") != std::string::npos)
    return FailedPrecondition(
        what +
        ": the registry only speaks HTTPS (use --ca-cert FILE or --insecure)");
  if (r->status == 404) return NotFound(what + ": " + Reason(r));
  if (r->status == 401)
    return FailedPrecondition(what + ": authentication required (" + Reason(r) +
                              ")");
  if (r->status == 403)
    return FailedPrecondition(what + ": access denied (" + Reason(r) + ")");
  return FailedPrecondition(what + ": " + Reason(r));
}

}  // namespace

std::string RegistryHost(const std::string& name) { return oci::Domain(name); }

std::string RepositoryPath(const std::string& name) { return oci::Path(name); }

namespace {

// Parses `Bearer realm="...",service="...",scope="..."`.
std::map<std::string, std::string> ChallengeParams(const std::string& h) {
  std::map<std::string, std::string> out;
  size_t sp = h.find(' ');
  if (sp == std::string::npos) return out;
  std::string rest = h.substr(sp + 1);
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == ',')) ++i;
    size_t eq = rest.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = rest.substr(i, eq - i);
    std::string val;
    i = eq + 1;
    if (i < rest.size() && rest[i] == '"') {
      size_t end = rest.find('"', i + 1);
      if (end == std::string::npos) end = rest.size();
      val = rest.substr(i + 1, end - i - 1);
      i = end + 1;
    } else {
      size_t end = rest.find(',', i);
      if (end == std::string::npos) end = rest.size();
      val = rest.substr(i, end - i);
      i = end;
    }
    out[key] = val;
  }
  return out;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

namespace {

bool TlsFailure(const httplib::Result& r) {
  return !r && (r.error() == httplib::Error::SSLConnection ||
                r.error() == httplib::Error::SSLServerVerification);
}

}  // namespace

bool ClientSession::KnownPlain(const std::string& host) {
  MutexLock l(&mu_);
  return plain_.count(host) > 0;
}

void ClientSession::MarkPlain(const std::string& host) {
  MutexLock l(&mu_);
  plain_.insert(host);
}

struct RegistryClient::Impl {
  std::shared_ptr<ClientSession> session;
  std::string host;
  std::unique_ptr<httplib::ClientImpl> http;
  std::string credentials;    // "user:password" or ""
  bool insecure_tls = false;  // HTTPS without verification, HTTP fallback
  std::string ca_cert;        // CA bundle for HTTPS; "" = the system's
  int retries = 6;
  httplib::Headers auth_headers;

  void Connect(bool tls, const Connection& conn) {
    // host[:port], [v6]:port
    std::string name = host;
    int port = tls ? 443 : 80;
    size_t colon = host.rfind(':');
    if (colon != std::string::npos &&
        host.find(']', colon) == std::string::npos) {
      name = host.substr(0, colon);
      port = std::atoi(host.c_str() + colon + 1);
    }
    if (name.size() > 2 && name.front() == '[' && name.back() == ']')
      name = name.substr(1, name.size() - 2);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    if (tls)
      http = std::make_unique<httplib::SSLClient>(name, port);
    else
#endif
      http = std::make_unique<net::BufferedClient>(name, port);
    http->set_connection_timeout(
        conn.timeout_seconds > 0 ? conn.timeout_seconds : 10, 0);
    http->set_read_timeout(
        conn.timeout_seconds > 0 ? conn.timeout_seconds : 300, 0);
    http->set_write_timeout(
        conn.timeout_seconds > 0 ? conn.timeout_seconds : 300, 0);
    http->set_keep_alive(true);
    http->set_follow_location(true);
    if (!auth_headers.empty()) http->set_default_headers(auth_headers);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    if (tls) {
      http->set_ca_cert_path(conn.ca_cert.empty()
                                 ? "/etc/ssl/certs/ca-certificates.crt"
                                 : conn.ca_cert);
      http->enable_server_certificate_verification(!insecure_tls);
    }
#endif
  }
  void SetAuth(const std::string& value) {
    auth_headers = {{"Authorization", value}};
    http->set_default_headers(auth_headers);
  }

  // After a 401: establishes Authorization from the challenge. Returns
  // false when it cannot (no usable challenge or credentials).
  bool Authorize(const httplib::Result& r, std::string* why) {
    std::string challenge = r->get_header_value("WWW-Authenticate");
    std::string scheme = challenge.substr(0, challenge.find(' '));
    for (char& c : scheme)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "basic") {
      if (credentials.empty()) {
        *why = "authentication required: run `ocibuild login " + host + "`";
        return false;
      }
      SetAuth("Basic " + Base64(credentials));
      return true;
    }
    if (scheme != "bearer") {
      *why = "unsupported authentication challenge \"" + challenge + "\"";
      return false;
    }
    auto p = ChallengeParams(challenge);
    std::string realm = p["realm"];
    std::regex re("^(https?://[^/]+)(/.*)?$");
    std::smatch m;
    if (!std::regex_match(realm, m, re)) {
      *why = "bad token realm \"" + realm + "\"";
      return false;
    }
    std::string cache_key =
        realm + "\n" + p["service"] + "\n" + p["scope"] + "\n" + credentials;
    {
      MutexLock l(&session->mu_);
      auto it = session->tokens_.find(cache_key);
      if (it != session->tokens_.end() &&
          it->second.expires > std::chrono::steady_clock::now()) {
        SetAuth("Bearer " + it->second.token);
        return true;
      }
    }
    httplib::Client tc(m[1].str());
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    // The token endpoint is trusted as the registry is (docker uses one
    // TLS configuration for both).
    tc.set_ca_cert_path(ca_cert.empty() ? "/etc/ssl/certs/ca-certificates.crt"
                                        : ca_cert);
    tc.enable_server_certificate_verification(!insecure_tls);
#endif
    tc.set_connection_timeout(10, 0);
    tc.set_read_timeout(30, 0);
    std::string path = m[2].matched ? m[2].str() : "/";
    std::string query;
    if (!p["service"].empty()) query += "service=" + UrlEncode(p["service"]);
    if (!p["scope"].empty())
      query += std::string(query.empty() ? "" : "&") +
               "scope=" + UrlEncode(p["scope"]);
    if (!query.empty())
      path += (path.find('?') == std::string::npos ? "?" : "&") + query;
    httplib::Headers hdrs;
    if (!credentials.empty())
      hdrs.emplace("Authorization", "Basic " + Base64(credentials));
    auto tr = tc.Get(path.c_str(), hdrs);
    if (!tr || tr->status != 200) {
      *why = "token request to " + realm + " failed: " + Reason(tr);
      return false;
    }
    auto j = nlohmann::json::parse(tr->body, nullptr, false);
    std::string token;
    if (!j.is_discarded() && j.is_object()) {
      if (j.contains("token") && j["token"].is_string())
        token = j["token"].get<std::string>();
      else if (j.contains("access_token") && j["access_token"].is_string())
        token = j["access_token"].get<std::string>();
    }
    if (token.empty()) {
      *why = "token endpoint " + realm + " returned no token";
      return false;
    }
    // The spec's default lifetime is 60 s; keep a margin for clock skew.
    int64_t ttl = 60;
    if (j.contains("expires_in") && j["expires_in"].is_number_integer())
      ttl = j["expires_in"].get<int64_t>();
    if (ttl > 10) {
      MutexLock l(&session->mu_);
      session->tokens_[cache_key] = {token, std::chrono::steady_clock::now() +
                                                std::chrono::seconds(ttl - 5)};
    }
    SetAuth("Bearer " + token);
    return true;
  }

  // Runs a request; on 401 authenticates once and runs it again. An
  // insecure registry that fails the TLS handshake is asked again over
  // plain HTTP.
  httplib::Result Do(const std::function<httplib::Result()>& f) {
    auto r = f();
    if (insecure_tls && TlsFailure(r)) {
      insecure_tls = false;
      session->MarkPlain(host);
      Connect(false, {});
      r = f();
    }
    if (r && r->status == 401) {
      std::string why;
      if (Authorize(r, &why)) return f();
      last_auth_error = why;
    }
    return r;
  }
  std::string last_auth_error;

  // Failure() with the reason authentication failed, when it did.
  Status Fail(const std::string& what, const httplib::Result& r) {
    if (r && r->status == 401 && !last_auth_error.empty())
      return FailedPrecondition(what + ": " + last_auth_error);
    return Failure(what, r);
  }

  // Turns a Location header into a path with query, on this host.
  std::string Path(const std::string& location) {
    std::string loc = location;
    if (loc.rfind("http://", 0) == 0 || loc.rfind("https://", 0) == 0) {
      size_t p = loc.find('/', loc.find("//") + 2);
      loc = p == std::string::npos ? "/" : loc.substr(p);
    }
    return loc;
  }
};

RegistryClient::RegistryClient(const std::string& host,
                               const std::string& credentials,
                               const Connection& conn)
    : impl_(std::make_unique<Impl>()) {
  impl_->session =
      conn.session ? conn.session : std::make_shared<ClientSession>();
  impl_->host = host;
  impl_->credentials = credentials;
  impl_->retries = conn.retries;
  impl_->ca_cert = conn.ca_cert;
  bool tls;
  if (!conn.scheme.empty()) {
    tls = conn.scheme == "https";
  } else if (!conn.ca_cert.empty()) {
    tls = true;  // a private CA means TLS, verified, even on loopback
  } else if (conn.insecure || conn.insecure_hosts.count(host)) {
    tls = !impl_->session->KnownPlain(host);
    impl_->insecure_tls = tls;
  } else {
    tls = !IsLoopback(host);
  }
  impl_->Connect(tls, conn);
}

RegistryClient::~RegistryClient() = default;

Status RegistryClient::Ping() {
  auto r = impl_->Do([&] { return impl_->http->Get("/v2/"); });
  if (r && r->status == 200) return Status::Ok();
  if (r && r->status == 401)
    return FailedPrecondition(
        "login to " + impl_->host + " failed: " +
        (impl_->last_auth_error.empty() ? Reason(r) : impl_->last_auth_error));
  return impl_->Fail("GET /v2/ of " + impl_->host, r);
}

Result<bool> RegistryClient::HasBlob(const std::string& repo, const Digest& d) {
  auto r = impl_->Do([&] {
    return impl_->http->Head(("/v2/" + repo + "/blobs/" + d.str()).c_str());
  });
  if (r && r->status == 200) return true;
  if (r && r->status == 404) return false;
  return impl_->Fail("HEAD blob " + d.str(), r);
}

Result<bool> RegistryClient::MountBlob(const std::string& repo,
                                       const std::string& from,
                                       const Digest& d) {
  auto r = impl_->Do([&] {
    return impl_->http->Post(
        ("/v2/" + repo + "/blobs/uploads/?mount=" + d.str() + "&from=" + from)
            .c_str(),
        "", "application/octet-stream");
  });
  if (r && r->status == 201) return true;
  if (r && r->status == 202) {
    impl_->Do([&] {
      return impl_->http->Delete(
          impl_->Path(r->get_header_value("Location")).c_str());
    });
    return false;
  }
  return impl_->Fail("mount " + d.str(), r);
}

namespace {

constexpr uint64_t kMonolithicMax = 32 << 20;
constexpr uint64_t kChunk = 16 << 20;

bool Retryable(const httplib::Result& r) {
  return !r || r->status >= 500 || r->status == 429;
}

void Backoff(int attempt) {
  std::this_thread::sleep_for(
      std::chrono::milliseconds(250 << std::min(attempt, 5)));
}

// Streams [start, start + length) of h.
httplib::ContentProvider Slice(std::shared_ptr<BlobReadHandle> h,
                               uint64_t start, uint64_t* sent,
                               const ProgressFn* progress) {
  return [h, start, sent, progress](size_t offset, size_t length,
                                    httplib::DataSink& sink) {
    std::vector<char> buf(std::min<size_t>(length, 1 << 20));
    auto n = h->ReadAt(start + offset, buf.data(), buf.size());
    if (!n.ok() || *n == 0) return false;
    *sent += *n;
    if (!sink.write(buf.data(), *n)) return false;
    if (*progress) (*progress)(start + offset + *n, h->size());
    return true;
  };
}

}  // namespace

Status RegistryClient::PushBlob(const std::string& repo, const Digest& d,
                                BlobReader& source,
                                const ProgressFn& progress) {
  ASSIGN_OR_RETURN(auto handle, source.OpenBlob(d));
  std::shared_ptr<BlobReadHandle> h(std::move(handle));
  const uint64_t size = h->size();
  auto note = [&](const std::string& s) {
    if (notes_) notes_(s);
  };
  auto with_digest = [&](std::string loc) {
    return loc + (loc.find('?') == std::string::npos ? "?" : "&") +
           "digest=" + d.str();
  };
  int attempt = 0;
  while (true) {  // one upload session per pass
    auto start = impl_->Do([&] {
      return impl_->http->Post(("/v2/" + repo + "/blobs/uploads/").c_str(), "",
                               "application/octet-stream");
    });
    if (!start || start->status != 202) {
      if (Retryable(start) && ++attempt <= impl_->retries) {
        note("retrying upload of " + d.str() + " (" + Reason(start) + ")");
        Backoff(attempt);
        continue;
      }
      return impl_->Fail("start upload of " + d.str(), start);
    }
    std::string loc = impl_->Path(start->get_header_value("Location"));
    if (size <= kMonolithicMax) {
      auto r = impl_->Do([&] {
        return impl_->http->Put(with_digest(loc).c_str(), {}, size,
                                Slice(h, 0, &bytes_sent_, &progress),
                                "application/octet-stream");
      });
      if (r && r->status == 201) return Status::Ok();
      if (Retryable(r) && ++attempt <= impl_->retries) {
        note("retrying upload of " + d.str() + " (" + Reason(r) + ")");
        Backoff(attempt);
        continue;
      }
      return impl_->Fail("upload of " + d.str(), r);
    }
    uint64_t offset = 0;
    bool restart = false;
    while (offset < size && !restart) {
      uint64_t n = std::min(kChunk, size - offset);
      auto r = impl_->Do([&] {
        return impl_->http->Patch(
            loc.c_str(),
            {{"Content-Range",
              std::to_string(offset) + "-" + std::to_string(offset + n - 1)}},
            n, Slice(h, offset, &bytes_sent_, &progress),
            "application/octet-stream");
      });
      if (r && r->status == 202) {
        loc = impl_->Path(r->get_header_value("Location"));
        offset += n;
        attempt = 0;
        continue;
      }
      if (r && !Retryable(r) && r->status != 416)
        return impl_->Fail("upload of " + d.str(), r);
      if (++attempt > impl_->retries)
        return impl_->Fail("upload of " + d.str(), r);
      Backoff(attempt);
      // Ask the registry how far it got, and go on from there.
      auto st = impl_->Do([&] { return impl_->http->Get(loc.c_str()); });
      if (st && st->status == 204) {
        std::string range = st->get_header_value("Range");
        size_t dash = range.find('-');
        uint64_t end =
            dash == std::string::npos
                ? 0
                : std::strtoull(range.c_str() + dash + 1, nullptr, 10);
        offset = end == 0 ? 0 : end + 1;
        if (!st->get_header_value("Location").empty())
          loc = impl_->Path(st->get_header_value("Location"));
        note("resuming upload of " + d.str() + " at offset " +
             std::to_string(offset) + " (" + Reason(r) + ")");
      } else if (st && st->status == 404) {
        note("upload session of " + d.str() + " is gone; starting again");
        restart = true;
      } else {
        note("registry unavailable (" + Reason(st) + "); retrying");
      }
    }
    if (restart) continue;
    while (true) {
      auto r = impl_->Do([&] {
        return impl_->http->Put(with_digest(loc).c_str(), "",
                                "application/octet-stream");
      });
      if (r && r->status == 201) return Status::Ok();
      if (!Retryable(r) || ++attempt > impl_->retries)
        return impl_->Fail("finish upload of " + d.str(), r);
      Backoff(attempt);
    }
  }
}

Status RegistryClient::PushManifest(const std::string& repo,
                                    const std::string& reference,
                                    const std::string& media_type,
                                    const std::string& content) {
  auto put = [&] {
    return impl_->Do([&] {
      return impl_->http->Put(
          ("/v2/" + repo + "/manifests/" + reference).c_str(), content,
          media_type.c_str());
    });
  };
  auto r = put();
  for (int attempt = 1; Retryable(r) && attempt <= impl_->retries; ++attempt) {
    if (notes_)
      notes_("retrying manifest PUT " + reference + " (" + Reason(r) + ")");
    Backoff(attempt);
    r = put();
  }
  if (!r || r->status != 201)
    return impl_->Fail("manifest PUT " + repo + ":" + reference, r);
  std::string answered = r->get_header_value("Docker-Content-Digest");
  if (!answered.empty() && answered != Digest::Of(content).str())
    return InvalidArgument("registry answered digest " + answered +
                           " for manifest " + Digest::Of(content).str());
  return Status::Ok();
}

Result<FetchedManifest> RegistryClient::GetManifest(
    const std::string& repo, const std::string& reference) {
  auto get = [&] {
    return impl_->Do([&] {
      return impl_->http->Get(
          ("/v2/" + repo + "/manifests/" + reference).c_str(),
          {{"Accept", kAccept}});
    });
  };
  auto r = get();
  for (int attempt = 1; Retryable(r) && attempt <= impl_->retries; ++attempt) {
    if (notes_)
      notes_("retrying manifest " + reference + " (" + Reason(r) + ")");
    Backoff(attempt);
    r = get();
  }
  if (!r || r->status != 200)
    return impl_->Fail("manifest " + repo + ":" + reference, r);
  FetchedManifest m;
  m.content = r->body;
  m.media_type = r->get_header_value("Content-Type");
  if (size_t semi = m.media_type.find(';'); semi != std::string::npos)
    m.media_type.resize(semi);
  if (reference.find(':') != std::string::npos) {
    auto want = Digest::Parse(reference);
    if (!want.ok()) return want.status();
    m.digest = Digest::Of(m.content, want->algorithm());
    if (m.digest != *want)
      return InvalidArgument("manifest " + reference +
                             " from the registry hashes to " + m.digest.str());
  } else {
    m.digest = Digest::Of(m.content);
  }
  std::string answered = r->get_header_value("Docker-Content-Digest");
  if (!answered.empty()) {
    auto a = Digest::Parse(answered);
    if (!a.ok() || Digest::Of(m.content, a->algorithm()) != *a)
      return InvalidArgument("manifest " + repo + ":" + reference +
                             " from the registry hashes to " + m.digest.str() +
                             ", not the Docker-Content-Digest it sent (" +
                             answered + ")");
  }
  return m;
}

// Downloads into w, resuming with Range. If the registry answers a Range
// with 200, restart (when set) supplies a fresh writer, else it is an error.
Status RegistryClient::FetchBlobInto(const std::string& repo, const Digest& d,
                                     uint64_t size, BlobWriter& w,
                                     const ProgressFn& progress) {
  return Fetch(repo, d, size, &w, nullptr, progress);
}

Status RegistryClient::Fetch(
    const std::string& repo, const Digest& d, uint64_t size, BlobWriter* wp,
    const std::function<Result<BlobWriter*>()>& restart,
    const ProgressFn& progress) {
  const std::string path = "/v2/" + repo + "/blobs/" + d.str();
  // The library hands the body over 4 KiB at a time: gather 1 MiB per
  // write (fewer system calls, hashing on another core).
  constexpr size_t kGather = 1 << 20;
  std::string pending;
  pending.reserve(kGather);
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::Ok();
    Status s = wp->WriteTake(pending);  // leaves pending empty
    if (s.ok() && progress) progress(wp->offset(), size);
    return s;
  };
  int attempt = 0;
  while (true) {
    Status write_status;
    int status = 0;
    httplib::Headers hdrs;
    if (wp->offset() > 0)
      hdrs.emplace("Range", "bytes=" + std::to_string(wp->offset()) + "-");
    // Only a 200's or 206's body goes to the writer; a 401's is dropped so
    // that Do() can authenticate and ask again.
    auto r = impl_->Do([&] {
      return impl_->http->Get(
          path.c_str(), hdrs,
          [&](const httplib::Response& resp) {
            status = resp.status;
            if (status == 200 && wp->offset() > 0) {
              // The registry ignored the Range: start over.
              if (!restart) {
                write_status = InvalidArgument(
                    "registry ignored a Range request for blob " + d.str());
                return false;
              }
              auto fresh = restart();
              if (!fresh.ok()) {
                write_status = fresh.status();
                return false;
              }
              wp = *fresh;
            }
            if (status == 206) {
              std::string cr = resp.get_header_value("Content-Range");
              if (cr.rfind("bytes " + std::to_string(wp->offset()) + "-", 0) !=
                  0) {
                write_status = InvalidArgument(
                    "registry answered a range request for blob " + d.str() +
                    " with Content-Range \"" + cr + "\"");
                return false;
              }
            }
            return status == 200 || status == 206 || status == 401;
          },
          [&](const char* data, size_t n) {
            if (status != 200 && status != 206) return true;
            if (wp->offset() + pending.size() + n > size) {
              write_status = InvalidArgument("registry sent more than the " +
                                             std::to_string(size) +
                                             " bytes of blob " + d.str());
              return false;
            }
            pending.append(data, n);
            if (pending.size() >= kGather) write_status = flush();
            return write_status.ok();
          });
    });
    // What arrived is a valid prefix even when the transfer was cut: keep
    // it, so a retry asks for the rest.
    if (write_status.ok() && (status == 200 || status == 206))
      write_status = flush();
    pending.clear();
    if (!write_status.ok()) return write_status;
    if (r && (status == 200 || status == 206)) return Status::Ok();
    if (r && !Retryable(r)) return impl_->Fail("blob " + d.str(), r);
    if (++attempt > impl_->retries) return impl_->Fail("blob " + d.str(), r);
    if (notes_)
      notes_("retrying download of " + d.str() + " from byte " +
             std::to_string(wp->offset()) + " (" + Reason(r) + ")");
    Backoff(attempt);
  }
}

Status RegistryClient::FetchBlob(const std::string& repo, const Digest& d,
                                 uint64_t size, Ingester& store,
                                 const std::string& link_repo,
                                 const ProgressFn& progress) {
  ASSIGN_OR_RETURN(auto w, store.NewWriter());
  auto restart = [&]() -> Result<BlobWriter*> {
    ASSIGN_OR_RETURN(auto fresh, store.NewWriter());
    w = std::move(fresh);
    return w.get();
  };
  RETURN_IF_ERROR(Fetch(repo, d, size, w.get(), restart, progress));
  auto info = w->Commit(d, size, link_repo);
  if (!info.ok())
    return info.status().WithContext("blob " + d.str() + " from the registry");
  return Status::Ok();
}

Result<uint64_t> RegistryClient::BlobSize(const std::string& repo,
                                          const Digest& d) {
  auto r = impl_->Do([&] {
    return impl_->http->Head(("/v2/" + repo + "/blobs/" + d.str()).c_str());
  });
  if (!r || r->status != 200) return impl_->Fail("HEAD blob " + d.str(), r);
  if (!r->has_header("Content-Length"))
    return InvalidArgument("registry gave no size for blob " + d.str());
  return r->get_header_value<uint64_t>("Content-Length");
}

Result<Digest> RegistryClient::HeadManifest(const std::string& repo,
                                            const std::string& reference) {
  auto r = impl_->Do([&] {
    return impl_->http->Head(
        ("/v2/" + repo + "/manifests/" + reference).c_str(),
        {{"Accept", kAccept}});
  });
  if (!r || r->status != 200)
    return impl_->Fail("HEAD manifest " + repo + ":" + reference, r);
  auto d = Digest::Parse(r->get_header_value("Docker-Content-Digest"));
  if (!d.ok())
    return InvalidArgument("registry sent no Docker-Content-Digest for " +
                           repo + ":" + reference);
  return *d;
}

Result<std::vector<std::string>> RegistryClient::ListTags(
    const std::string& repo) {
  std::vector<std::string> tags;
  std::string path = "/v2/" + repo + "/tags/list";
  for (int page = 0; page < 1000 && !path.empty(); ++page) {
    auto r = impl_->Do([&] { return impl_->http->Get(path.c_str()); });
    if (!r || r->status != 200) return impl_->Fail("tags of " + repo, r);
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return InvalidArgument("registry sent a malformed tag list for " + repo);
    if (j.contains("tags") && j["tags"].is_array())
      for (const auto& t : j["tags"])
        if (t.is_string()) tags.push_back(t.get<std::string>());
    // Link: </v2/...?last=x&n=y>; rel="next"
    std::string link = r->get_header_value("Link");
    size_t lt = link.find('<'), gt = link.find('>');
    path = (lt != std::string::npos && gt != std::string::npos && gt > lt)
               ? impl_->Path(link.substr(lt + 1, gt - lt - 1))
               : "";
  }
  return tags;
}

}  // namespace ocib::client
