// Who is calling and what they may do: ocireg's authentication (htpasswd
// Basic, Bearer tokens from an external issuer or from ocireg's own token
// server, client certificates) and authorization (the ACL of auth/acl.h,
// or a token's "access" claim), plus the token server itself.
//
// Contract, as Distribution and the Docker token spec:
//  - A request without credentials is anonymous; it may do what the ACL
//    grants "anonymous" rules, and nothing else. GET /v2/ always
//    challenges it, so that logins check credentials; docker then pulls
//    public repositories with an anonymous token (token auth).
//  - Bad credentials get 401 UNAUTHORIZED with the challenge
//    (WWW-Authenticate: Basic realm=.., or Bearer realm=..,service=..,
//    scope=..); too many failed logins from one user or address get 429
//    TOOMANYREQUESTS with Retry-After.
//  - A known caller lacking the action gets 403 DENIED, except that a
//    token lacking a scope the caller could get answers 401 with
//    error="insufficient_scope" so the client fetches a better token.
//  - With authentication configured but no ACL, every authenticated
//    caller may pull, push, delete and list the catalog.
// No password or token is ever logged or echoed.
//
// Thread-safe: the htpasswd file and ACL file are re-read when they
// change; everything else is immutable after Make.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "net/http.h"
#include "registry/config.h"
#include "util/status.h"

namespace ocib::registry {

struct Principal {
  std::string user;  // "" = anonymous
  enum class Via { kNone, kBasic, kBearer, kCertificate } via = Via::kNone;
  bool own_token = false;  // a Bearer token of ocireg's own token server
  // A Bearer token's "access" claim: repository -> auth::Action bits.
  std::map<std::string, unsigned, std::less<>> token_access;
  bool token_catalog = false;
};

class AccessControl {
 public:
  // Reads the htpasswd, key, certificate and ACL files the config names.
  // Errors: kInvalidArgument / kNotFound naming the file or key.
  static Result<std::unique_ptr<AccessControl>> Make(const AuthConfig& cfg);
  ~AccessControl();

  // Who sent `req`. On bad credentials or a lockout fills `res` (401 with
  // the challenge for `scope`, or 429) and returns false.
  bool Authenticate(const net::Request& req, const std::string& scope,
                    Principal* who, net::Response& res);
  // The auth::Action bits `who` holds on `repository`.
  unsigned Granted(const Principal& who, std::string_view repository) const;
  bool MayListCatalog(const Principal& who) const;
  // True if `who` may run registry operations (garbage collection): the
  // ACL's admin on every repository; with no ACL, any authenticated user.
  bool IsAdmin(const Principal& who) const;
  // True if the catalog shown to `who` includes `repository`: one they may
  // pull (by the ACL, for tokens of ocireg's own token server, whose
  // catalog scope carries no repositories; every one for tokens of an
  // external issuer, as Distribution).
  bool Listed(const Principal& who, std::string_view repository) const;
  // Refuses a request `who` may not make: 401 with the challenge for
  // `scope` (anonymous callers, or a token that could be widened), else
  // 403 DENIED naming `what`.
  void Refuse(const net::Request& req, const Principal& who,
              const std::string& scope, unsigned action,
              std::string_view repository, net::Response& res) const;

  // The token server: GET /token (Docker token spec) and POST /token
  // (OAuth2 password and refresh_token grants). False if not enabled.
  bool token_server() const;
  void ServeToken(const net::Request& req, net::RequestBody& body,
                  net::Response& res);

  // Re-reads the htpasswd and ACL files now (SIGHUP).
  Status Reload();

 private:
  class Impl;
  explicit AccessControl(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The scope string of a request on a repository for the challenge:
// "repository:NAME:pull" or "repository:NAME:pull,push"...
std::string RepositoryScope(std::string_view name, unsigned actions);

}  // namespace ocib::registry
