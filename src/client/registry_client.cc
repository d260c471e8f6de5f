#include "client/registry_client.h"

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

namespace ocib::client {
namespace {

const char* kAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

bool IsLoopback(const std::string& host) {
  std::string h = host.substr(0, host.rfind(':') == std::string::npos || host[0] == '[' ? host.size() : host.rfind(':'));
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "[::1]" || h == "::1";
}

// The registry's error code and message, when the body is the spec's envelope.
std::string Reason(const httplib::Result& r) {
  if (!r) return httplib::to_string(r.error());
  std::string why = "HTTP " + std::to_string(r->status);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_discarded() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
    const auto& e = j["errors"][0];
    if (e.contains("code") && e["code"].is_string()) why += " " + e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string()) why += ": " + e["message"].get<std::string>();
  }
  return why;
}

Status Failure(const std::string& what, const httplib::Result& r) {
  if (!r) return Unavailable(what + ": cannot reach the registry (" + httplib::to_string(r.error()) + ")");
  if (r->status == 404) return NotFound(what + ": " + Reason(r));
  if (r->status == 401 || r->status == 403) return FailedPrecondition(what + ": access denied (" + Reason(r) + ")");
  return FailedPrecondition(what + ": " + Reason(r));
}

}  // namespace

std::string RegistryHost(const std::string& name) {
  size_t slash = name.find('/');
  if (slash == std::string::npos) return "";
  std::string first = name.substr(0, slash);
  if (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost")
    return first;
  return "";
}

std::string RepositoryPath(const std::string& name) {
  std::string host = RegistryHost(name);
  return host.empty() ? name : name.substr(host.size() + 1);
}

struct RegistryClient::Impl {
  std::string host;
  std::unique_ptr<httplib::Client> http;

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

RegistryClient::RegistryClient(const std::string& host) : impl_(std::make_unique<Impl>()) {
  impl_->host = host;
  std::string scheme = IsLoopback(host) ? "http://" : "https://";
  impl_->http = std::make_unique<httplib::Client>(scheme + host);
  impl_->http->set_connection_timeout(10, 0);
  impl_->http->set_read_timeout(300, 0);
  impl_->http->set_write_timeout(300, 0);
  impl_->http->set_keep_alive(true);
  impl_->http->set_follow_location(true);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  impl_->http->set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
#endif
}

RegistryClient::~RegistryClient() = default;

Result<bool> RegistryClient::HasBlob(const std::string& repo, const Digest& d) {
  auto r = impl_->http->Head(("/v2/" + repo + "/blobs/" + d.str()).c_str());
  if (r && r->status == 200) return true;
  if (r && r->status == 404) return false;
  return Failure("HEAD blob " + d.str(), r);
}

Result<bool> RegistryClient::MountBlob(const std::string& repo, const std::string& from, const Digest& d) {
  auto r = impl_->http->Post(("/v2/" + repo + "/blobs/uploads/?mount=" + d.str() + "&from=" + from).c_str(), "",
                             "application/octet-stream");
  if (r && r->status == 201) return true;
  if (r && r->status == 202) {
    impl_->http->Delete(impl_->Path(r->get_header_value("Location")).c_str());
    return false;
  }
  return Failure("mount " + d.str(), r);
}

namespace {

constexpr uint64_t kMonolithicMax = 32 << 20;
constexpr uint64_t kChunk = 16 << 20;
constexpr int kRetries = 6;

bool Retryable(const httplib::Result& r) { return !r || r->status >= 500 || r->status == 429; }

void Backoff(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(250 << std::min(attempt, 5)));
}

// Streams [start, start + length) of h.
httplib::ContentProvider Slice(std::shared_ptr<BlobReadHandle> h, uint64_t start, uint64_t* sent) {
  return [h, start, sent](size_t offset, size_t length, httplib::DataSink& sink) {
    std::vector<char> buf(std::min<size_t>(length, 1 << 20));
    auto n = h->ReadAt(start + offset, buf.data(), buf.size());
    if (!n.ok() || *n == 0) return false;
    *sent += *n;
    return sink.write(buf.data(), *n);
  };
}

}  // namespace

Status RegistryClient::PushBlob(const std::string& repo, const Digest& d, BlobReader& source) {
  ASSIGN_OR_RETURN(auto handle, source.OpenBlob(d));
  std::shared_ptr<BlobReadHandle> h(std::move(handle));
  const uint64_t size = h->size();
  auto note = [&](const std::string& s) {
    if (notes_) notes_(s);
  };
  auto with_digest = [&](std::string loc) {
    return loc + (loc.find('?') == std::string::npos ? "?" : "&") + "digest=" + d.str();
  };
  int attempt = 0;
  while (true) {  // one upload session per pass
    auto start = impl_->http->Post(("/v2/" + repo + "/blobs/uploads/").c_str(), "", "application/octet-stream");
    if (!start || start->status != 202) {
      if (Retryable(start) && ++attempt <= kRetries) {
        note("retrying upload of " + d.str() + " (" + Reason(start) + ")");
        Backoff(attempt);
        continue;
      }
      return Failure("start upload of " + d.str(), start);
    }
    std::string loc = impl_->Path(start->get_header_value("Location"));
    if (size <= kMonolithicMax) {
      auto r = impl_->http->Put(with_digest(loc).c_str(), {}, size, Slice(h, 0, &bytes_sent_),
                                "application/octet-stream");
      if (r && r->status == 201) return Status::Ok();
      if (Retryable(r) && ++attempt <= kRetries) {
        note("retrying upload of " + d.str() + " (" + Reason(r) + ")");
        Backoff(attempt);
        continue;
      }
      return Failure("upload of " + d.str(), r);
    }
    uint64_t offset = 0;
    bool restart = false;
    while (offset < size && !restart) {
      uint64_t n = std::min(kChunk, size - offset);
      auto r = impl_->http->Patch(
          loc.c_str(), {{"Content-Range", std::to_string(offset) + "-" + std::to_string(offset + n - 1)}}, n,
          Slice(h, offset, &bytes_sent_), "application/octet-stream");
      if (r && r->status == 202) {
        loc = impl_->Path(r->get_header_value("Location"));
        offset += n;
        attempt = 0;
        continue;
      }
      if (r && !Retryable(r) && r->status != 416) return Failure("upload of " + d.str(), r);
      if (++attempt > kRetries) return Failure("upload of " + d.str(), r);
      Backoff(attempt);
      // Ask the registry how far it got, and go on from there.
      auto st = impl_->http->Get(loc.c_str());
      if (st && st->status == 204) {
        std::string range = st->get_header_value("Range");
        size_t dash = range.find('-');
        uint64_t end = dash == std::string::npos ? 0 : std::strtoull(range.c_str() + dash + 1, nullptr, 10);
        offset = end == 0 ? 0 : end + 1;
        if (!st->get_header_value("Location").empty()) loc = impl_->Path(st->get_header_value("Location"));
        note("resuming upload of " + d.str() + " at offset " + std::to_string(offset) + " (" + Reason(r) + ")");
      } else if (st && st->status == 404) {
        note("upload session of " + d.str() + " is gone; starting again");
        restart = true;
      } else {
        note("registry unavailable (" + Reason(st) + "); retrying");
      }
    }
    if (restart) continue;
    while (true) {
      auto r = impl_->http->Put(with_digest(loc).c_str(), "", "application/octet-stream");
      if (r && r->status == 201) return Status::Ok();
      if (!Retryable(r) || ++attempt > kRetries) return Failure("finish upload of " + d.str(), r);
      Backoff(attempt);
    }
  }
}

Status RegistryClient::PushManifest(const std::string& repo, const std::string& reference,
                                    const std::string& media_type, const std::string& content) {
  auto r = impl_->http->Put(("/v2/" + repo + "/manifests/" + reference).c_str(), content, media_type.c_str());
  if (!r || r->status != 201) return Failure("manifest PUT " + repo + ":" + reference, r);
  std::string answered = r->get_header_value("Docker-Content-Digest");
  if (!answered.empty() && answered != Digest::Of(content).str())
    return InvalidArgument("registry answered digest " + answered + " for manifest " + Digest::Of(content).str());
  return Status::Ok();
}

Result<FetchedManifest> RegistryClient::GetManifest(const std::string& repo, const std::string& reference) {
  auto r = impl_->http->Get(("/v2/" + repo + "/manifests/" + reference).c_str(), {{"Accept", kAccept}});
  if (!r || r->status != 200) return Failure("manifest " + repo + ":" + reference, r);
  FetchedManifest m;
  m.content = r->body;
  m.media_type = r->get_header_value("Content-Type");
  if (size_t semi = m.media_type.find(';'); semi != std::string::npos) m.media_type.resize(semi);
  if (reference.find(':') != std::string::npos) {
    auto want = Digest::Parse(reference);
    if (!want.ok()) return want.status();
    m.digest = Digest::Of(m.content, want->algorithm());
    if (m.digest != *want)
      return InvalidArgument("manifest " + reference + " from the registry hashes to " + m.digest.str());
  } else {
    m.digest = Digest::Of(m.content);
  }
  return m;
}

Status RegistryClient::FetchBlob(const std::string& repo, const Digest& d, uint64_t size, Ingester& store,
                                 const std::string& link_repo) {
  ASSIGN_OR_RETURN(auto w, store.NewWriter());
  Status write_status;
  int status = 0;
  auto r = impl_->http->Get(
      ("/v2/" + repo + "/blobs/" + d.str()).c_str(), httplib::Headers{},
      [&](const httplib::Response& resp) {
        status = resp.status;
        return resp.status == 200;
      },
      [&](const char* data, size_t n) {
        write_status = w->Write(data, n);
        return write_status.ok();
      });
  if (!write_status.ok()) return write_status;
  if (!r || status != 200) return Failure("blob " + d.str(), r);
  auto info = w->Commit(d, size, link_repo);
  if (!info.ok()) return info.status().WithContext("blob " + d.str() + " from the registry");
  return Status::Ok();
}

}  // namespace ocib::client
