#include "registry/config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "oci/image_ref.h"

namespace ocib::registry {
namespace {

using json = nlohmann::json;

Status IntField(const json& j, const char* key, int64_t lo, int64_t hi,
                int64_t* out) {
  if (!j.is_number_integer())
    return InvalidArgument("config key \"" + std::string(key) +
                           "\" must be an integer");
  int64_t v = j.get<int64_t>();
  if (v < lo || v > hi)
    return InvalidArgument("config key \"" + std::string(key) +
                           "\" must be in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got " + std::to_string(v));
  *out = v;
  return Status::Ok();
}

Status IntField(const json& j, const char* key, int64_t lo, int64_t hi,
                int* out) {
  int64_t v;
  RETURN_IF_ERROR(IntField(j, key, lo, hi, &v));
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status StrField(const json& j, const char* key, std::string* out) {
  if (!j.is_string())
    return InvalidArgument("config key \"" + std::string(key) +
                           "\" must be a string");
  *out = j.get<std::string>();
  return Status::Ok();
}

Status BoolField(const json& j, const char* key, bool* out) {
  if (!j.is_boolean())
    return InvalidArgument("config key \"" + std::string(key) +
                           "\" must be true or false");
  *out = j.get<bool>();
  return Status::Ok();
}

Status ValidUpstream(const Upstream& u, const std::string& where) {
  if (u.url.rfind("http://", 0) != 0 && u.url.rfind("https://", 0) != 0)
    return InvalidArgument(
        where + " \"url\" must start with http:// or https://, got \"" + u.url +
        "\"");
  if (u.host().empty()) return InvalidArgument(where + " \"url\" has no host");
  if (u.ns.empty() || u.ns.find('/') != std::string::npos)
    return InvalidArgument(
        where + " \"namespace\" must be one path component, like docker.io");
  return Status::Ok();
}

Status ParseUpstreams(const json& v, std::vector<Upstream>* out) {
  if (!v.is_object())
    return InvalidArgument(
        "config key \"proxy\" must be an object with \"upstreams\"");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() != "upstreams")
      return InvalidArgument("unknown config key \"proxy." + it.key() + "\"");
    if (!it.value().is_array())
      return InvalidArgument("config key \"proxy.upstreams\" must be a list");
    for (size_t i = 0; i < it.value().size(); ++i) {
      const json& e = it.value()[i];
      std::string where =
          "config key \"proxy.upstreams[" + std::to_string(i) + "]";
      if (!e.is_object())
        return InvalidArgument(where + "\" must be an object");
      Upstream u;
      bool unqualified_set = false;
      for (auto f = e.begin(); f != e.end(); ++f) {
        const std::string& k = f.key();
        std::string key = "proxy.upstreams[" + std::to_string(i) + "]." + k;
        Status s;
        if (k == "url")
          s = StrField(f.value(), key.c_str(), &u.url);
        else if (k == "namespace")
          s = StrField(f.value(), key.c_str(), &u.ns);
        else if (k == "unqualified") {
          s = BoolField(f.value(), key.c_str(), &u.unqualified);
          unqualified_set = true;
        } else if (k == "username")
          s = StrField(f.value(), key.c_str(), &u.username);
        else if (k == "password")
          s = StrField(f.value(), key.c_str(), &u.password);
        else if (k == "credentials_file")
          s = StrField(f.value(), key.c_str(), &u.credentials_file);
        else if (k == "tag_freshness_seconds")
          s = IntField(f.value(), key.c_str(), 0, 365LL * 86400,
                       &u.tag_freshness_seconds);
        else if (k == "timeout_seconds")
          s = IntField(f.value(), key.c_str(), 1, 3600, &u.timeout_seconds);
        else
          s = InvalidArgument("unknown config key \"" + key + "\"");
        RETURN_IF_ERROR(s);
      }
      if (!unqualified_set) u.unqualified = u.ns == oci::kDockerHubDomain;
      RETURN_IF_ERROR(ValidUpstream(u, where + "\""));
      out->push_back(std::move(u));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string Upstream::host() const {
  size_t p = url.find("://");
  std::string rest = p == std::string::npos ? url : url.substr(p + 3);
  return rest.substr(0, rest.find('/'));
}

std::string Upstream::scheme() const {
  return url.rfind("https://", 0) == 0 ? "https" : "http";
}

Result<Upstream> ParseMirrorFlag(const std::string& value) {
  Upstream u;
  size_t eq = value.find('=');
  if (eq != std::string::npos && value.find("://") > eq) {
    u.ns = value.substr(0, eq);
    u.url = value.substr(eq + 1);
  } else {
    u.url = value;
  }
  u.unqualified = u.ns == oci::kDockerHubDomain;
  RETURN_IF_ERROR(ValidUpstream(u, "--mirror"));
  return u;
}

std::string Config::host() const {
  size_t colon = listen.rfind(':');
  std::string h = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
    h = h.substr(1, h.size() - 2);
  return h;
}

int Config::port() const {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 >= listen.size()) return -1;
  int p = 0;
  for (char c : listen.substr(colon + 1)) {
    if (c < '0' || c > '9') return -1;
    p = p * 10 + (c - '0');
    if (p > 65535) return -1;
  }
  return p;
}

Status Validate(const Config& c) {
  if (c.port() < 0 || c.host().empty())
    return InvalidArgument("config key \"listen\" must be HOST:PORT, got \"" +
                           c.listen + "\"");
  if (c.root.empty())
    return InvalidArgument("config key \"root\" must not be empty");
  if (c.log_format != "text" && c.log_format != "json" && c.log_format != "off")
    return InvalidArgument(
        "config key \"log_format\" must be text, json or off");
  if (c.threads < 4)
    return InvalidArgument("config key \"threads\" must be at least 4");
  int unqualified = 0;
  for (size_t i = 0; i < c.upstreams.size(); ++i) {
    unqualified += c.upstreams[i].unqualified;
    for (size_t j = 0; j < i; ++j)
      if (c.upstreams[j].ns == c.upstreams[i].ns)
        return InvalidArgument("two upstreams serve namespace \"" +
                               c.upstreams[i].ns + "\"");
  }
  if (unqualified > 1)
    return InvalidArgument("only one upstream may serve unqualified names");
  return Status::Ok();
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

Result<Config> ParseConfig(std::string_view text, const std::string& path) {
  json j = json::parse(text, nullptr, false, /*ignore_comments=*/true);
  if (j.is_discarded()) return InvalidArgument(path + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument(path + ": must be a JSON object");
  Config c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    Status s;
    if (k == "listen")
      s = StrField(v, "listen", &c.listen);
    else if (k == "root")
      s = StrField(v, "root", &c.root);
    else if (k == "upload_expiry_seconds")
      s = IntField(v, "upload_expiry_seconds", 60, 365LL * 86400,
                   &c.upload_expiry_seconds);
    else if (k == "max_uploads")
      s = IntField(v, "max_uploads", 0, 100000000, &c.max_uploads);
    else if (k == "max_uploads_per_repository")
      s = IntField(v, "max_uploads_per_repository", 0, 100000000,
                   &c.max_uploads_per_repository);
    else if (k == "max_manifest_bytes")
      s = IntField(v, "max_manifest_bytes", 1024, 64LL << 20,
                   &c.max_manifest_bytes);
    else if (k == "max_body_bytes")
      s = IntField(v, "max_body_bytes", 0, INT64_MAX, &c.max_body_bytes);
    else if (k == "threads")
      s = IntField(v, "threads", 4, 4096, &c.threads);
    else if (k == "max_connections")
      s = IntField(v, "max_connections", 16, 1000000, &c.max_connections);
    else if (k == "header_timeout_seconds")
      s = IntField(v, "header_timeout_seconds", 1, 3600,
                   &c.header_timeout_seconds);
    else if (k == "max_header_bytes")
      s = IntField(v, "max_header_bytes", 4096, 16LL << 20,
                   &c.max_header_bytes);
    else if (k == "keep_alive_timeout_seconds")
      s = IntField(v, "keep_alive_timeout_seconds", 1, 3600,
                   &c.keep_alive_timeout_seconds);
    else if (k == "keep_alive_max_requests")
      s = IntField(v, "keep_alive_max_requests", 1, 100000000,
                   &c.keep_alive_max_requests);
    else if (k == "read_timeout_seconds")
      s = IntField(v, "read_timeout_seconds", 1, 3600, &c.read_timeout_seconds);
    else if (k == "write_timeout_seconds")
      s = IntField(v, "write_timeout_seconds", 1, 3600,
                   &c.write_timeout_seconds);
    else if (k == "proxy")
      s = ParseUpstreams(v, &c.upstreams);
    else if (k == "reserved_space_mib")
      s = IntField(v, "reserved_space_mib", 0, 1LL << 30,
                   &c.reserved_space_mib);
    else if (k == "written_cache_mib")
      s = IntField(v, "written_cache_mib", 0, 1LL << 30, &c.written_cache_mib);
    else if (k == "log_format")
      s = StrField(v, "log_format", &c.log_format);
    else if (k == "sync") {
      if (!v.is_boolean())
        s = InvalidArgument("config key \"sync\" must be true or false");
      else
        c.sync = v.get<bool>();
    } else {
      s = InvalidArgument("unknown config key \"" + k + "\"");
    }
    RETURN_IF_ERROR(s.WithContext(path));
  }
  RETURN_IF_ERROR(Validate(c).WithContext(path));
  return c;
}

}  // namespace ocib::registry
