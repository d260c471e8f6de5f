#include "registry/config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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
    return InvalidArgument("config key \"" + std::string(key) + "\" must be in [" +
                           std::to_string(lo) + ", " + std::to_string(hi) +
                           "], got " + std::to_string(v));
  *out = v;
  return Status::Ok();
}

Status IntField(const json& j, const char* key, int64_t lo, int64_t hi, int* out) {
  int64_t v;
  RETURN_IF_ERROR(IntField(j, key, lo, hi, &v));
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status StrField(const json& j, const char* key, std::string* out) {
  if (!j.is_string())
    return InvalidArgument("config key \"" + std::string(key) + "\" must be a string");
  *out = j.get<std::string>();
  return Status::Ok();
}

}  // namespace

std::string Config::host() const {
  size_t colon = listen.rfind(':');
  std::string h = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
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
    return InvalidArgument("config key \"listen\" must be HOST:PORT, got \"" + c.listen + "\"");
  if (c.root.empty()) return InvalidArgument("config key \"root\" must not be empty");
  if (c.log_format != "text" && c.log_format != "json" && c.log_format != "off")
    return InvalidArgument("config key \"log_format\" must be text, json or off");
  if (c.threads < 4) return InvalidArgument("config key \"threads\" must be at least 4");
  return Status::Ok();
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false, /*ignore_comments=*/true);
  if (j.is_discarded()) return InvalidArgument(path + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument(path + ": must be a JSON object");
  Config c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    Status s;
    if (k == "listen") s = StrField(v, "listen", &c.listen);
    else if (k == "root") s = StrField(v, "root", &c.root);
    else if (k == "upload_expiry_seconds") s = IntField(v, "upload_expiry_seconds", 60, 365LL * 86400, &c.upload_expiry_seconds);
    else if (k == "max_manifest_bytes") s = IntField(v, "max_manifest_bytes", 1024, 64LL << 20, &c.max_manifest_bytes);
    else if (k == "max_body_bytes") s = IntField(v, "max_body_bytes", 0, INT64_MAX, &c.max_body_bytes);
    else if (k == "threads") s = IntField(v, "threads", 4, 4096, &c.threads);
    else if (k == "keep_alive_timeout_seconds") s = IntField(v, "keep_alive_timeout_seconds", 1, 3600, &c.keep_alive_timeout_seconds);
    else if (k == "keep_alive_max_requests") s = IntField(v, "keep_alive_max_requests", 1, 100000000, &c.keep_alive_max_requests);
    else if (k == "read_timeout_seconds") s = IntField(v, "read_timeout_seconds", 1, 3600, &c.read_timeout_seconds);
    else if (k == "write_timeout_seconds") s = IntField(v, "write_timeout_seconds", 1, 3600, &c.write_timeout_seconds);
    else if (k == "written_cache_mib") s = IntField(v, "written_cache_mib", 0, 1LL << 30, &c.written_cache_mib);
    else if (k == "log_format") s = StrField(v, "log_format", &c.log_format);
    else if (k == "sync") {
      if (!v.is_boolean()) s = InvalidArgument("config key \"sync\" must be true or false");
      else c.sync = v.get<bool>();
    } else {
      s = InvalidArgument("unknown config key \"" + k + "\"");
    }
    RETURN_IF_ERROR(s.WithContext(path));
  }
  RETURN_IF_ERROR(Validate(c).WithContext(path));
  return c;
}

}  // namespace ocib::registry
