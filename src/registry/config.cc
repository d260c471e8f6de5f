#include "registry/config.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gc/garbage_collector.h"
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

using FieldParser = std::function<Status(const json& v, const char* key)>;

// Parses the object v, whose keys are "<prefix>.<name>" for the names in
// `fields`; any other key is an error.
Status ParseObject(const json& v, const std::string& prefix,
                   const std::map<std::string, FieldParser>& fields) {
  if (!v.is_object())
    return InvalidArgument("config key \"" + prefix + "\" must be an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    std::string key = prefix + "." + it.key();
    auto f = fields.find(it.key());
    if (f == fields.end())
      return InvalidArgument("unknown config key \"" + key + "\"");
    RETURN_IF_ERROR(f->second(it.value(), key.c_str()));
  }
  return Status::Ok();
}

FieldParser Str(std::string* out) {
  return [out](const json& v, const char* k) { return StrField(v, k, out); };
}
FieldParser Bool(bool* out) {
  return [out](const json& v, const char* k) { return BoolField(v, k, out); };
}
FieldParser Int(int64_t lo, int64_t hi, int64_t* out) {
  return
      [=](const json& v, const char* k) { return IntField(v, k, lo, hi, out); };
}
FieldParser Int(int64_t lo, int64_t hi, int* out) {
  return
      [=](const json& v, const char* k) { return IntField(v, k, lo, hi, out); };
}

Status ParseTls(const json& v, net::TlsConfig* t) {
  return ParseObject(v, "tls",
                     {{"cert_file", Str(&t->cert_file)},
                      {"key_file", Str(&t->key_file)},
                      {"client_ca_file", Str(&t->client_ca_file)},
                      {"min_version", Str(&t->min_version)}});
}

Status ParseAuth(const json& v, AuthConfig* a) {
  auto& t = a->token;
  auto& ts = a->token_server;
  return ParseObject(
      v, "auth",
      {{"realm", Str(&a->realm)},
       {"htpasswd",
        [a](const json& v, const char*) {
          return ParseObject(v, "auth.htpasswd", {{"path", Str(&a->htpasswd)}});
        }},
       {"token",
        [&t](const json& v, const char*) {
          return ParseObject(
              v, "auth.token",
              {{"realm", Str(&t.realm)},
               {"service", Str(&t.service)},
               {"issuer", Str(&t.issuer)},
               {"rootcertbundle", Str(&t.rootcertbundle)},
               {"jwks", Str(&t.jwks)},
               {"algorithms", [&t](const json& v, const char* k) {
                  if (!v.is_array() || v.empty())
                    return InvalidArgument("config key \"" + std::string(k) +
                                           "\" must list algorithms");
                  t.algorithms.clear();
                  for (const auto& e : v) {
                    if (!e.is_string() ||
                        (e != "RS256" && e != "ES256" && e != "EdDSA"))
                      return InvalidArgument("config key \"" + std::string(k) +
                                             "\" takes RS256, ES256 and EdDSA");
                    t.algorithms.push_back(e.get<std::string>());
                  }
                  return Status::Ok();
                }}});
        }},
       {"token_server",
        [&ts](const json& v, const char*) {
          ts.enabled = true;
          return ParseObject(
              v, "auth.token_server",
              {{"enabled", Bool(&ts.enabled)},
               {"key_file", Str(&ts.key_file)},
               {"cert_file", Str(&ts.cert_file)},
               {"issuer", Str(&ts.issuer)},
               {"service", Str(&ts.service)},
               {"realm", Str(&ts.realm)},
               {"expiration_seconds", Int(10, 86400, &ts.expiration_seconds)},
               {"refresh_expiration_seconds",
                Int(60, 365LL * 86400, &ts.refresh_expiration_seconds)}});
        }},
       {"acl_file", Str(&a->acl_file)},
       {"acl",
        [a](const json& v, const char*) {
          if (!v.is_object())
            return InvalidArgument("config key \"auth.acl\" must be an object");
          a->acl = v.dump();
          return Status::Ok();
        }},
       {"max_failures", Int(1, 1000000, &a->max_failures)},
       {"failure_window_seconds", Int(1, 86400, &a->failure_window_seconds)},
       {"lockout_seconds", Int(1, 86400, &a->lockout_seconds)}});
}

FieldParser Duration(int64_t* out) {
  return [out](const json& v, const char* k) {
    std::string text;
    RETURN_IF_ERROR(StrField(v, k, &text));
    auto d = ParseDurationSeconds(text);
    if (!d.ok())
      return InvalidArgument("config key \"" + std::string(k) +
                             "\": " + d.status().message());
    *out = *d;
    return Status::Ok();
  };
}

Status ParseRetention(const json& v, std::vector<RetentionRule>* out) {
  if (!v.is_array())
    return InvalidArgument("config key \"retention\" must be a list of rules");
  for (size_t i = 0; i < v.size(); ++i) {
    RetentionRule r;
    std::string where = "retention[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(
        ParseObject(v[i], where,
                    {{"repository", Str(&r.repository)},
                     {"keep_newest", Int(0, 1000000, &r.keep_newest)},
                     {"keep_tags", Str(&r.keep_tags)},
                     {"remove_older_than", Duration(&r.remove_older_than)},
                     {"keep_untagged_for", Duration(&r.keep_untagged_for)}}));
    if (Status s = ValidateRetention(r); !s.ok())
      return InvalidArgument("config key \"" + where + "\": " + s.message());
    out->push_back(std::move(r));
  }
  return Status::Ok();
}

Status ParseQuotas(const json& v, std::vector<QuotaRule>* out) {
  if (!v.is_array())
    return InvalidArgument("config key \"quotas\" must be a list");
  for (size_t i = 0; i < v.size(); ++i) {
    QuotaRule q;
    int64_t bytes = -1;
    std::string where = "quotas[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(ParseObject(
        v[i], where,
        {{"namespace", Str(&q.ns)}, {"bytes", Int(0, INT64_MAX, &bytes)}}));
    if (q.ns.empty() || bytes < 0 || q.ns.back() == '/')
      return InvalidArgument("config key \"" + where +
                             "\" needs a namespace and bytes");
    q.bytes = static_cast<uint64_t>(bytes);
    out->push_back(std::move(q));
  }
  return Status::Ok();
}

Status StrList(const json& v, const std::string& key,
               std::vector<std::string>* out) {
  if (!v.is_array())
    return InvalidArgument("config key \"" + key +
                           "\" must be a list of strings");
  for (const auto& e : v) {
    if (!e.is_string())
      return InvalidArgument("config key \"" + key +
                             "\" must be a list of strings");
    out->push_back(e.get<std::string>());
  }
  return Status::Ok();
}

Status ParseNotifications(const json& v,
                          std::vector<NotificationEndpoint>* out) {
  if (!v.is_object())
    return InvalidArgument("config key \"notifications\" must be an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() == "events") continue;  // Distribution's; nothing to set
    if (it.key() != "endpoints")
      return InvalidArgument("unknown config key \"notifications." + it.key() +
                             "\"");
    if (!it.value().is_array())
      return InvalidArgument(
          "config key \"notifications.endpoints\" must be a list");
    for (const auto& ej : it.value()) {
      NotificationEndpoint e;
      auto headers = [&e](const json& h, const char* k) -> Status {
        if (!h.is_object())
          return InvalidArgument(std::string("config key \"") + k +
                                 "\" must be an object of lists");
        for (auto hi = h.begin(); hi != h.end(); ++hi) {
          std::vector<std::string> values;
          if (hi.value().is_string())
            values.push_back(hi.value().get<std::string>());
          else
            RETURN_IF_ERROR(StrList(hi.value(), k, &values));
          for (auto& value : values) {
            if (value.find_first_of("\r\n") != std::string::npos ||
                hi.key().find_first_of("\r\n: ") != std::string::npos)
              return InvalidArgument(std::string("config key \"") + k +
                                     "\" has a bad header");
            e.headers.emplace_back(hi.key(), value);
          }
        }
        return Status::Ok();
      };
      auto list = [](std::vector<std::string>* out) {
        return
            [out](const json& l, const char* k) { return StrList(l, k, out); };
      };
      auto ignore = [&](const json& ig, const char* k) {
        return ParseObject(ig, k,
                           {{"mediatypes", list(&e.ignored_media_types)},
                            {"actions", list(&e.ignored_actions)}});
      };
      RETURN_IF_ERROR(
          ParseObject(ej, "notifications.endpoints[]",
                      {{"name", Str(&e.name)},
                       {"url", Str(&e.url)},
                       {"disabled", Bool(&e.disabled)},
                       {"headers", headers},
                       {"timeout", Duration(&e.timeout_seconds)},
                       {"backoff", Duration(&e.backoff_seconds)},
                       {"threshold", Int(0, 1000000, &e.threshold)},
                       {"max_pending", Int(1, 1000000000, &e.max_pending)},
                       {"ignoredmediatypes", list(&e.ignored_media_types)},
                       {"ignore", ignore},
                       {"repositories", list(&e.repositories)},
                       {"actions", list(&e.actions)}}));
      if (e.name.empty() || e.name.find('\0') != std::string::npos)
        return InvalidArgument(
            "config key \"notifications.endpoints[].name\" is required");
      if (e.url.rfind("http://", 0) != 0 && e.url.rfind("https://", 0) != 0)
        return InvalidArgument("notification endpoint \"" + e.name +
                               "\": url must be http:// or https://");
      for (const auto& a : e.actions)
        if (a != "push" && a != "pull" && a != "delete" && a != "mount")
          return InvalidArgument("notification endpoint \"" + e.name +
                                 "\": unknown action \"" + a + "\"");
      if (e.timeout_seconds < 1) e.timeout_seconds = 1;
      if (e.backoff_seconds < 1) e.backoff_seconds = 1;
      for (const auto& o : *out)
        if (o.name == e.name)
          return InvalidArgument("notification endpoint \"" + e.name +
                                 "\" is named twice");
      out->push_back(std::move(e));
    }
  }
  return Status::Ok();
}

Status ParseGc(const json& v, Config::Gc* g) {
  return ParseObject(v, "gc",
                     {{"interval", Duration(&g->interval_seconds)},
                      {"min_age", Duration(&g->min_age_seconds)},
                      {"delete_untagged", Bool(&g->delete_untagged)}});
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

std::string Config::host() const { return HostOf(listen); }
int Config::port() const { return PortOf(listen); }

std::string HostOf(const std::string& listen) {
  size_t colon = listen.rfind(':');
  std::string h = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
    h = h.substr(1, h.size() - 2);
  return h;
}

int PortOf(const std::string& listen) {
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
  if (!c.debug.listen.empty()) {
    if (PortOf(c.debug.listen) < 0 || HostOf(c.debug.listen).empty())
      return InvalidArgument(
          "config key \"debug.listen\" must be HOST:PORT, got \"" +
          c.debug.listen + "\"");
    if (c.debug.listen == c.listen && c.port() != 0)
      return InvalidArgument(
          "config key \"debug.listen\" must differ from \"listen\": "
          "metrics are never served on the public address");
  }
  if (c.root.empty())
    return InvalidArgument("config key \"root\" must not be empty");
  if (c.s3.enabled() && c.s3.bucket.empty())
    return InvalidArgument("config key \"storage.s3.bucket\" must be set");
  if (c.database.enabled) {
    if (c.database.dbname.empty() || c.database.user.empty())
      return InvalidArgument(
          "config keys \"database.dbname\" and \"database.user\" must be set");
    static const char* const kModes[] = {"disable", "allow",     "prefer",
                                         "require", "verify-ca", "verify-full"};
    if (std::find(std::begin(kModes), std::end(kModes), c.database.sslmode) ==
        std::end(kModes))
      return InvalidArgument(
          "config key \"database.sslmode\" must be one of disable, allow, "
          "prefer, require, verify-ca, verify-full");
    const std::string& sc = c.database.schema;
    bool ok = !sc.empty() && sc.size() <= 63 && !(sc[0] >= '0' && sc[0] <= '9');
    for (char ch : sc)
      ok = ok &&
           ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
    if (!ok)
      return InvalidArgument(
          "config key \"database.schema\" must be [a-z_][a-z0-9_]*, at most "
          "63 characters");
  }
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
  if (c.tls.cert_file.empty() != c.tls.key_file.empty())
    return InvalidArgument(
        "config keys \"tls.cert_file\" and \"tls.key_file\" go together");
  if (!c.tls.client_ca_file.empty() && c.tls.cert_file.empty())
    return InvalidArgument("config key \"tls.client_ca_file\" needs TLS");
  if (c.tls.min_version != "1.2" && c.tls.min_version != "1.3")
    return InvalidArgument("config key \"tls.min_version\" must be 1.2 or 1.3");
  const AuthConfig& a = c.auth;
  if (a.token.enabled() && a.token_server.enabled)
    return InvalidArgument(
        "config keys \"auth.token\" and \"auth.token_server\" exclude each "
        "other");
  if (a.token.enabled() &&
      (a.token.service.empty() || a.token.issuer.empty() ||
       (a.token.rootcertbundle.empty() && a.token.jwks.empty())))
    return InvalidArgument(
        "config key \"auth.token\" needs realm, service, issuer and "
        "rootcertbundle or jwks");
  if (a.token_server.enabled &&
      (a.token_server.key_file.empty() || a.htpasswd.empty()))
    return InvalidArgument(
        "config key \"auth.token_server\" needs key_file and auth.htpasswd");
  if (!a.acl.empty() && !a.acl_file.empty())
    return InvalidArgument(
        "config keys \"auth.acl\" and \"auth.acl_file\" exclude each other");
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
    else if (k == "tls")
      s = ParseTls(v, &c.tls);
    else if (k == "auth")
      s = ParseAuth(v, &c.auth);
    else if (k == "gc")
      s = ParseGc(v, &c.gc);
    else if (k == "notifications")
      s = ParseNotifications(v, &c.notifications);
    else if (k == "debug")
      s = ParseObject(v, "debug", {{"listen", Str(&c.debug.listen)}});
    else if (k == "storage")
      s = ParseObject(
          v, "storage",
          {{"s3", [&c](const json& s3, const char* key) {
              Config::S3& o = c.s3;
              return ParseObject(
                  s3, key,
                  {{"regionendpoint", Str(&o.regionendpoint)},
                   {"region", Str(&o.region)},
                   {"bucket", Str(&o.bucket)},
                   {"rootdirectory", Str(&o.rootdirectory)},
                   {"accesskey", Str(&o.accesskey)},
                   {"secretkey", Str(&o.secretkey)},
                   {"credentials_file", Str(&o.credentials_file)},
                   {"ca_file", Str(&o.ca_file)},
                   {"chunksize", Int(5 << 20, 1LL << 30, &o.chunksize)},
                   {"redirect", Bool(&o.redirect)},
                   {"cache_mib", Int(0, 1LL << 30, &o.cache_mib)},
                   {"cache_dir", Str(&o.cache_dir)}});
            }}});
    else if (k == "database")
      s = ParseObject(
          v, "database",
          {{"enabled", Bool(&c.database.enabled)},
           {"host", Str(&c.database.host)},
           {"port", Int(1, 65535, &c.database.port)},
           {"user", Str(&c.database.user)},
           {"password", Str(&c.database.password)},
           {"dbname", Str(&c.database.dbname)},
           {"sslmode", Str(&c.database.sslmode)},
           {"sslrootcert", Str(&c.database.sslrootcert)},
           {"schema", Str(&c.database.schema)},
           {"connecttimeout", Int(1, 300, &c.database.connecttimeout)},
           {"pool", [&c](const json& p, const char* key) {
              return ParseObject(
                  p, key,
                  {{"maxopen", Int(1, 1000, &c.database.pool_maxopen)}});
            }}});
    else if (k == "retention")
      s = ParseRetention(v, &c.retention);
    else if (k == "quotas")
      s = ParseQuotas(v, &c.quotas);
    else if (k == "ui")
      s = BoolField(v, "ui", &c.ui);
    else if (k == "read_only")
      s = BoolField(v, "read_only", &c.read_only);
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
