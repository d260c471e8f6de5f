#include "registry/access_control.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <strings.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "auth/acl.h"
#include "auth/htpasswd.h"
#include "auth/jwt.h"
#include "auth/login_throttle.h"
#include "net/http_parser.h"
#include "oci/reference.h"
#include "registry/errcode.h"
#include "util/mutex.h"

namespace ocib::registry {
namespace {

using json = nlohmann::json;
using auth::kCatalog;
using auth::kDelete;
using auth::kPull;
using auth::kPush;

constexpr size_t kMaxTokenCache = 10000;
constexpr uint64_t kMaxTokenRequest = 64 << 10;
constexpr int64_t kClockSkew = 60;  // seconds of leeway for nbf and iat

std::string Sha256(std::string_view s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()),
             static_cast<int>(bytes));
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Rfc3339(std::time_t t) {
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Splits "Scheme credentials".
bool AuthHeader(const net::Request& req, std::string_view scheme,
                std::string* value) {
  std::string h = req.get_header_value("Authorization");
  if (h.size() <= scheme.size() ||
      ::strncasecmp(h.c_str(), scheme.data(), scheme.size()) != 0 ||
      h[scheme.size()] != ' ')
    return false;
  size_t b = h.find_first_not_of(' ', scheme.size());
  *value = b == std::string::npos ? "" : h.substr(b);
  return true;
}

// A header parameter value: no quote, backslash or control byte.
bool SafeParam(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') return false;
  return true;
}

// The Host header if it is a plain host[:port], else "".
std::string SafeHost(const net::Request& req) {
  std::string h = req.get_header_value("Host");
  if (h.empty() || h.size() > 255) return "";
  for (char c : h)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' &&
        c != ':' && c != '[' && c != ']')
      return "";
  return h;
}

unsigned ActionBits(const json& actions) {
  unsigned bits = 0;
  if (!actions.is_array()) return 0;
  for (const auto& a : actions)
    if (a.is_string()) bits |= auth::ParseAction(a.get<std::string>());
  return bits;
}

// An ACL, from the config or a file re-read when it changes.
class AclSource {
 public:
  Status Init(const AuthConfig& cfg) EXCLUDES(mu_) {
    path_ = cfg.acl_file;
    if (!cfg.acl.empty()) {
      auto acl = auth::Acl::Parse(cfg.acl);
      if (!acl.ok())
        return Status(Code::kInvalidArgument,
                      "auth.acl: " + acl.status().message());
      MutexLock l(&mu_);
      acl_ = std::make_shared<auth::Acl>(std::move(*acl));
      return Status::Ok();
    }
    if (path_.empty()) return Status::Ok();
    return Load();
  }

  std::shared_ptr<const auth::Acl> Get() EXCLUDES(mu_) {
    if (!path_.empty()) MaybeReload();
    MutexLock l(&mu_);
    return acl_;
  }

  Status Load() EXCLUDES(mu_) {
    struct stat st;
    std::ifstream in(path_);
    if (!in || ::stat(path_.c_str(), &st) != 0)
      return Status(Code::kNotFound, "acl: cannot read " + path_);
    std::stringstream ss;
    ss << in.rdbuf();
    auto acl = auth::Acl::Parse(ss.str());
    if (!acl.ok())
      return Status(Code::kInvalidArgument,
                    "acl " + path_ + ": " + acl.status().message());
    MutexLock l(&mu_);
    acl_ = std::make_shared<auth::Acl>(std::move(*acl));
    stamp_ = Stamp(st);
    return Status::Ok();
  }

 private:
  static std::string Stamp(const struct stat& st) {
    return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec);
  }

  void MaybeReload() EXCLUDES(mu_) {
    int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t last = last_check_.load(std::memory_order_relaxed);
    if (now - last < 1000000000LL) return;
    if (!last_check_.compare_exchange_strong(last, now)) return;
    struct stat st;
    std::string stamp = ::stat(path_.c_str(), &st) == 0 ? Stamp(st) : "";
    {
      MutexLock l(&mu_);
      if (stamp == stamp_ || stamp == bad_stamp_) return;
    }
    Status s = Load();
    if (!s.ok()) {
      std::fprintf(stderr, "ocireg: %s (keeping the previous ACL)\n",
                   s.message().c_str());
      MutexLock l(&mu_);
      bad_stamp_ = stamp;
    }
  }

  std::string path_;
  std::atomic<int64_t> last_check_{0};
  Mutex mu_;
  std::shared_ptr<const auth::Acl> acl_ GUARDED_BY(mu_);
  std::string stamp_ GUARDED_BY(mu_), bad_stamp_ GUARDED_BY(mu_);
};

}  // namespace

std::string RepositoryScope(std::string_view name, unsigned actions) {
  return "repository:" + std::string(name) + ":" + auth::ActionList(actions);
}

class AccessControl::Impl {
 public:
  explicit Impl(const AuthConfig& cfg)
      : cfg_(cfg),
        throttle_(auth::ThrottleOptions{
            cfg.max_failures, std::chrono::seconds(cfg.failure_window_seconds),
            std::chrono::seconds(cfg.lockout_seconds), 100000}) {}

  Status Init() {
    if (!cfg_.htpasswd.empty()) {
      auto h = auth::Htpasswd::Open(cfg_.htpasswd);
      if (!h.ok()) return h.status();
      users_ = std::move(*h);
    }
    if (cfg_.token_server.enabled) {
      auto s = auth::Signer::FromPemFiles(cfg_.token_server.key_file,
                                          cfg_.token_server.cert_file);
      if (!s.ok()) return s.status();
      signer_.emplace(std::move(*s));
      keys_.AddKey(signer_->kid(), signer_->key());
      issuer_ = cfg_.token_server.issuer;
      service_ = cfg_.token_server.service;
      algorithms_ = {signer_->algorithm()};
    } else if (cfg_.token.enabled()) {
      if (!cfg_.token.rootcertbundle.empty())
        RETURN_IF_ERROR(keys_.AddPemBundle(cfg_.token.rootcertbundle));
      if (!cfg_.token.jwks.empty()) {
        std::ifstream in(cfg_.token.jwks);
        if (!in)
          return Status(Code::kNotFound, "cannot read " + cfg_.token.jwks);
        std::stringstream ss;
        ss << in.rdbuf();
        if (Status s = keys_.AddJwks(ss.str()); !s.ok())
          return Status(Code::kInvalidArgument,
                        cfg_.token.jwks + ": " + s.message());
      }
      issuer_ = cfg_.token.issuer;
      service_ = cfg_.token.service;
      algorithms_ = cfg_.token.algorithms;
    }
    return acl_.Init(cfg_);
  }

  bool bearer() const { return cfg_.token.enabled() || signer_.has_value(); }

  // ---- authentication ----

  bool Authenticate(const net::Request& req, const std::string& scope,
                    Principal* who, net::Response& res) {
    *who = Principal();
    std::string cred;
    // "Basic Og==" (empty user and password), as some clients send when
    // they have no credentials, is anonymous.
    if (AuthHeader(req, "Basic", &cred) && cred != "Og==") {
      std::string user;
      int64_t retry = 0;
      if (!CheckBasic(req, cred, &user, &retry)) {
        if (retry > 0) return TooMany(res, retry);
        Challenge(req, scope, "", res);
        return false;
      }
      who->user = user;
      who->via = Principal::Via::kBasic;
      return true;
    }
    if (AuthHeader(req, "Bearer", &cred)) {
      if (!bearer() || !VerifyToken(cred, who)) {
        Challenge(req, scope, bearer() ? "invalid_token" : "", res);
        return false;
      }
      return true;
    }
    if (req.has_header("Authorization") && cred != "Og==") {
      Challenge(req, scope, "", res);
      return false;
    }
    if (!req.client_cert_cn.empty()) {
      who->user = req.client_cert_cn;
      who->via = Principal::Via::kCertificate;
    }
    return true;
  }

  // Verifies "base64(user:password)". *retry_after > 0 on a lockout.
  bool CheckBasic(const net::Request& req, const std::string& cred,
                  std::string* user, int64_t* retry_after) {
    std::string decoded;
    if (!auth::Base64Decode(cred, &decoded)) return false;
    size_t colon = decoded.find(':');
    if (colon == std::string::npos) return false;
    *user = decoded.substr(0, colon);
    return CheckCredentials(req, *user, decoded.substr(colon + 1), retry_after);
  }

  // Checks a password, throttling failures per user and client address.
  bool CheckCredentials(const net::Request& req, const std::string& user,
                        const std::string& password, int64_t* retry_after) {
    if (!users_ || user.empty()) return false;
    if (users_->VerifyCached(user, password)) return true;
    std::string ukey = "user:" + user, akey = "addr:" + req.remote_addr;
    *retry_after =
        std::max(throttle_.RetryAfter(ukey), throttle_.RetryAfter(akey));
    if (*retry_after > 0) return false;
    if (users_->Verify(user, password)) {
      throttle_.Success(ukey);
      return true;
    }
    throttle_.Failure(ukey);
    throttle_.Failure(akey);
    return false;
  }

  bool VerifyToken(const std::string& token, Principal* who) EXCLUDES(mu_) {
    std::string key = Sha256(token);
    std::time_t now = std::time(nullptr);
    {
      MutexLock l(&mu_);
      auto it = token_cache_.find(key);
      if (it != token_cache_.end()) {
        if (it->second.first > now) {
          *who = it->second.second;
          return true;
        }
        token_cache_.erase(it);
      }
    }
    auto jwt = auth::ParseJwt(token);
    if (!jwt.ok() || !keys_.Verify(*jwt, algorithms_).ok()) return false;
    const json& c = jwt->claims;
    int64_t exp =
        c.contains("exp") && c["exp"].is_number() ? c["exp"].get<int64_t>() : 0;
    if (exp <= now) return false;
    if (c.contains("nbf") &&
        (!c["nbf"].is_number() || c["nbf"].get<int64_t>() > now + kClockSkew))
      return false;
    if (c.value("iss", json()) != issuer_) return false;
    const json aud = c.value("aud", json());
    bool aud_ok = aud.is_string() ? aud == service_ : false;
    if (aud.is_array())
      for (const auto& a : aud) aud_ok |= a == service_;
    if (!aud_ok || c.contains("ocireg_refresh")) return false;
    Principal p;
    p.via = Principal::Via::kBearer;
    p.own_token = signer_.has_value();
    p.user = c.contains("sub") && c["sub"].is_string()
                 ? c["sub"].get<std::string>()
                 : "";
    if (c.contains("access") && c["access"].is_array())
      for (const auto& a : c["access"]) {
        if (!a.is_object() || !a.contains("name") || !a["name"].is_string())
          continue;
        std::string type = a.value("type", json()).is_string()
                               ? a["type"].get<std::string>()
                               : "";
        unsigned bits = ActionBits(a.value("actions", json()));
        if (type == "repository")
          p.token_access[a["name"].get<std::string>()] |=
              bits & (kPull | kPush | kDelete);
        else if (type == "registry" && a["name"] == "catalog" &&
                 (bits & kCatalog))
          p.token_catalog = true;
      }
    MutexLock l(&mu_);
    if (token_cache_.size() >= kMaxTokenCache) token_cache_.clear();
    token_cache_.emplace(key, std::make_pair(static_cast<std::time_t>(exp), p));
    *who = std::move(p);
    return true;
  }

  // ---- authorization ----

  // What the ACL (or, without one, authentication alone) gives `user`.
  unsigned AclGranted(std::string_view user, std::string_view repo) {
    auto acl = acl_.Get();
    if (acl) return acl->Granted(user, repo);
    return user.empty() ? 0 : (kPull | kPush | kDelete);
  }

  unsigned Granted(const Principal& who, std::string_view repo) {
    if (who.via == Principal::Via::kBearer) {
      auto it = who.token_access.find(repo);
      return it == who.token_access.end() ? 0 : it->second;
    }
    return AclGranted(who.user, repo);
  }

  bool AclCatalog(std::string_view user) {
    auto acl = acl_.Get();
    if (acl) return acl->MayListCatalog(user);
    return !user.empty();
  }

  bool MayListCatalog(const Principal& who) {
    if (who.via == Principal::Via::kBearer) return who.token_catalog;
    return AclCatalog(who.user);
  }

  bool IsAdmin(const Principal& who) {
    if (who.via == Principal::Via::kBearer && !who.own_token) return false;
    auto acl = acl_.Get();
    if (acl) return acl->IsAdmin(who.user);
    return !who.user.empty();
  }

  bool Listed(const Principal& who, std::string_view repo) {
    if (who.via == Principal::Via::kBearer && !who.own_token) return true;
    return AclGranted(who.user, repo) & kPull;
  }

  void Refuse(const net::Request& req, const Principal& who,
              const std::string& scope, unsigned action, std::string_view repo,
              net::Response& res) {
    bool token = who.via == Principal::Via::kBearer;
    if (who.user.empty() && !token) return Challenge(req, scope, "", res);
    if (token) {
      // A token lacking what the token server would grant: ask the client
      // to fetch one for this scope.
      bool widen =
          !who.own_token ||
          (repo.empty() ? AclCatalog(who.user)
                        : (AclGranted(who.user, repo) & action) == action);
      if (widen || who.user.empty())
        return Challenge(req, scope, widen ? "insufficient_scope" : "", res);
    }
    SendDenied(res, repo.empty() ? std::string("catalog") : std::string(repo));
  }

  static void SendDenied(net::Response& res, const std::string& what) {
    res.status = 403;
    res.set_content(ErrorBody(ErrorCode::kDenied, what), "application/json");
  }

  static bool TooMany(net::Response& res, int64_t retry) {
    res.status = 429;
    res.set_header("Retry-After", std::to_string(retry));
    res.set_content(
        ErrorBody(ErrorCode::kTooManyRequests, "too many failed logins"),
        "application/json");
    return false;
  }

  std::string Realm(const net::Request& req) const {
    if (!cfg_.token_server.enabled) return cfg_.token.realm;
    if (!cfg_.token_server.realm.empty()) return cfg_.token_server.realm;
    std::string host = SafeHost(req);
    if (host.empty()) host = "localhost";
    return std::string(req.tls ? "https" : "http") + "://" + host + "/token";
  }

  void Challenge(const net::Request& req, const std::string& scope,
                 const std::string& error, net::Response& res) const {
    std::string h;
    if (bearer()) {
      h = "Bearer realm=\"" + Realm(req) + "\",service=\"" + service_ + "\"";
      if (!scope.empty() && SafeParam(scope)) h += ",scope=\"" + scope + "\"";
      if (!error.empty()) h += ",error=\"" + error + "\"";
    } else {
      h = "Basic realm=\"" + cfg_.realm + "\"";
    }
    res.status = 401;
    res.set_header("WWW-Authenticate", h);
    res.set_content(
        ErrorBody(ErrorCode::kUnauthorized, error == "insufficient_scope"
                                                ? "insufficient scope"
                                                : "authentication required"),
        "application/json");
  }

  // ---- the token server ----

  void ServeToken(const net::Request& req, net::RequestBody& body,
                  net::Response& res) {
    std::multimap<std::string, std::string> form;
    bool post = req.method == "POST";
    if (req.method != "GET" && req.method != "HEAD" && !post) {
      res.status = 405;
      res.set_header("Allow", "GET, POST");
      res.set_content(ErrorBody(ErrorCode::kMethodNotAllowed, ""),
                      "application/json");
      return;
    }
    if (post) {
      std::string text;
      bool too_big = false;
      body.Read([&](const char* p, size_t n) {
        if (text.size() + n > kMaxTokenRequest) {
          too_big = true;
          return false;
        }
        text.append(p, n);
        return true;
      });
      if (too_big)
        return OAuthError(res, 413, "invalid_request", "request too large");
      net::ParseQuery(text, &form);
    }
    const auto& params = post ? form : req.params;
    auto param = [&](const char* k) {
      auto it = params.find(k);
      return it == params.end() ? std::string() : it->second;
    };
    std::string service = param("service");
    if (!service.empty() && service != service_)
      return OAuthError(res, 400, "invalid_request", "unknown service");
    std::string user;
    bool offline =
        param("offline_token") == "true" || param("access_type") == "offline";
    if (post) {
      std::string grant = param("grant_type");
      if (grant == "password") {
        std::string u = param("username"), pw = param("password");
        int64_t retry = 0;
        if (!CheckCredentials(req, u, pw, &retry)) {
          if (retry > 0) return (void)TooMany(res, retry);
          return OAuthError(res, 401, "invalid_grant",
                            "incorrect username or password");
        }
        user = u;
      } else if (grant == "refresh_token") {
        if (!VerifyRefresh(param("refresh_token"), &user))
          return OAuthError(res, 401, "invalid_grant",
                            "refresh token invalid or expired");
      } else {
        return OAuthError(res, 400, "unsupported_grant_type",
                          "grant_type must be password or refresh_token");
      }
    } else {
      std::string cred;
      if (AuthHeader(req, "Basic", &cred)) {
        int64_t retry = 0;
        if (!CheckBasic(req, cred, &user, &retry)) {
          if (retry > 0) return (void)TooMany(res, retry);
          res.status = 401;
          res.set_header("WWW-Authenticate",
                         "Basic realm=\"" + cfg_.realm + "\"");
          res.set_content(ErrorBody(ErrorCode::kUnauthorized,
                                    "incorrect username or password"),
                          "application/json");
          return;
        }
      } else if (req.has_header("Authorization")) {
        return OAuthError(res, 401, "invalid_request",
                          "only Basic credentials are taken here");
      }
    }
    res.log_user = user;
    // Scopes: repeated parameters, each space-separated.
    std::string requested;
    json access = json::array();
    for (auto [it, end] = params.equal_range("scope"); it != end; ++it) {
      requested += (requested.empty() ? "" : " ") + it->second;
      for (const auto& s : auth::ParseScopes(it->second)) {
        if (s.type == "repository" && oci::ValidRepositoryName(s.name)) {
          unsigned granted = AclGranted(user, s.name);
          json actions = json::array();
          for (const auto& a : s.actions) {
            unsigned bit = auth::ParseAction(a);
            if (bit && (bit & (kPull | kPush | kDelete)) &&
                (granted & bit) == (bit & (kPull | kPush | kDelete)))
              actions.push_back(a);
          }
          access.push_back(
              {{"type", "repository"}, {"name", s.name}, {"actions", actions}});
        } else if (s.type == "registry" && s.name == "catalog") {
          json actions = json::array();
          if (AclCatalog(user)) actions.push_back("*");
          access.push_back({{"type", "registry"},
                            {"name", "catalog"},
                            {"actions", actions}});
        }
      }
    }
    std::time_t now = std::time(nullptr);
    int64_t ttl = cfg_.token_server.expiration_seconds;
    json claims = {{"iss", issuer_},       {"sub", user},     {"aud", service_},
                   {"exp", now + ttl},     {"nbf", now - 1},  {"iat", now},
                   {"jti", RandomHex(16)}, {"access", access}};
    auto token = signer_->Sign(claims);
    if (!token.ok()) return OAuthError(res, 500, "server_error", "cannot sign");
    json out = {{"access_token", *token},
                {"expires_in", ttl},
                {"issued_at", Rfc3339(now)}};
    if (post) {
      out["token_type"] = "Bearer";
      out["scope"] = requested;
    } else {
      out["token"] = *token;
    }
    if (offline && !user.empty()) {
      json refresh = {
          {"iss", issuer_},
          {"sub", user},
          {"aud", service_},
          {"exp", now + cfg_.token_server.refresh_expiration_seconds},
          {"iat", now},
          {"jti", RandomHex(16)},
          {"ocireg_refresh", true}};
      auto r = signer_->Sign(refresh);
      if (r.ok()) out["refresh_token"] = *r;
    }
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_content(out.dump(), "application/json");
  }

  bool VerifyRefresh(const std::string& token, std::string* user) {
    auto jwt = auth::ParseJwt(token);
    if (!jwt.ok() || !keys_.Verify(*jwt, algorithms_).ok()) return false;
    const json& c = jwt->claims;
    std::time_t now = std::time(nullptr);
    if (c.value("ocireg_refresh", false) != true ||
        c.value("iss", json()) != issuer_ ||
        c.value("aud", json()) != service_ || !c.contains("exp") ||
        !c["exp"].is_number() || c["exp"].get<int64_t>() <= now ||
        !c.contains("sub") || !c["sub"].is_string())
      return false;
    *user = c["sub"].get<std::string>();
    return !user->empty() && users_ && users_->HasUser(*user);
  }

  static void OAuthError(net::Response& res, int status, const char* error,
                         const char* description) {
    res.status = status;
    res.set_content(
        json({{"error", error}, {"error_description", description}}).dump(),
        "application/json");
  }

  Status Reload() {
    if (users_) RETURN_IF_ERROR(users_->Reload());
    if (!cfg_.acl_file.empty()) RETURN_IF_ERROR(acl_.Load());
    return Status::Ok();
  }

  bool token_server() const { return signer_.has_value(); }

 private:
  const AuthConfig cfg_;
  std::unique_ptr<auth::Htpasswd> users_;
  auth::KeySet keys_;
  std::optional<auth::Signer> signer_;
  std::string issuer_, service_;
  std::vector<std::string> algorithms_;
  AclSource acl_;
  auth::LoginThrottle throttle_;
  Mutex mu_;
  std::unordered_map<std::string, std::pair<std::time_t, Principal>>
      token_cache_ GUARDED_BY(mu_);
};

AccessControl::AccessControl(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
AccessControl::~AccessControl() = default;

Result<std::unique_ptr<AccessControl>> AccessControl::Make(
    const AuthConfig& cfg) {
  auto impl = std::make_unique<Impl>(cfg);
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<AccessControl>(new AccessControl(std::move(impl)));
}

bool AccessControl::Authenticate(const net::Request& req,
                                 const std::string& scope, Principal* who,
                                 net::Response& res) {
  return impl_->Authenticate(req, scope, who, res);
}
unsigned AccessControl::Granted(const Principal& who,
                                std::string_view repo) const {
  return impl_->Granted(who, repo);
}
bool AccessControl::MayListCatalog(const Principal& who) const {
  return impl_->MayListCatalog(who);
}
bool AccessControl::IsAdmin(const Principal& who) const {
  return impl_->IsAdmin(who);
}
bool AccessControl::Listed(const Principal& who, std::string_view repo) const {
  return impl_->Listed(who, repo);
}
void AccessControl::Refuse(const net::Request& req, const Principal& who,
                           const std::string& scope, unsigned action,
                           std::string_view repo, net::Response& res) const {
  impl_->Refuse(req, who, scope, action, repo, res);
}
bool AccessControl::token_server() const { return impl_->token_server(); }
void AccessControl::ServeToken(const net::Request& req, net::RequestBody& body,
                               net::Response& res) {
  impl_->ServeToken(req, body, res);
}
Status AccessControl::Reload() { return impl_->Reload(); }

}  // namespace ocib::registry
