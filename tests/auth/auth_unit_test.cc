// The auth library on its own: htpasswd parsing and bcrypt checks, the
// ACL (globs, grants, groups, anonymous rules), token scopes, JWT signing
// and verification for each accepted algorithm (and the forgeries that
// must fail), libtrust key IDs, and the login throttle.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <thread>

#include "auth/acl.h"
#include "auth/htpasswd.h"
#include "auth/jwt.h"
#include "auth/login_throttle.h"
#include "temp_dir.h"

using namespace ocib;
using namespace ocib::auth;

namespace {

// Made with `htpasswd -nbB -C 4 alice s3cret` (and bob 'pw:with:colons').
constexpr const char* kAlice =
    "alice:$2y$04$rVPEh5d5jyK/YKumPWTlCO.A7j83c14RZrQaU1/ATyMCjn4AbtIii";
constexpr const char* kBob =
    "bob:$2y$04$Ma.9Zxwrp6l1rFzW2a8IgugWleWky2.zRYT4QjhYZ1X6IjSIZWOSi";
constexpr const char* kDave2b =
    "dave:$2b$05$1a13ZrZO4beG4ljPeEWvE.NYDhFIR7Z7LxNQuVtyYS2f2RVIK5r1S";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A fresh private key of one kind, written as PEM to `path`.
void MakeKey(const std::string& kind, const std::string& path) {
  EVP_PKEY* key = nullptr;
  if (kind == "rsa")
    key = EVP_RSA_gen(2048);
  else if (kind == "ec")
    key = EVP_EC_gen("P-256");
  else
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  REQUIRE(key);
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  EVP_PKEY_free(key);
}

nlohmann::json Claims() {
  std::time_t now = std::time(nullptr);
  return {{"iss", "me"}, {"sub", "alice"}, {"aud", "svc"}, {"exp", now + 60}};
}

}  // namespace

TEST_CASE("htpasswd: bcrypt entries only, with a clear error") {
  std::vector<std::pair<std::string, std::string>> users;
  CHECK(ParseHtpasswd(std::string(kAlice) + "\n# comment\n\n" + kBob + "\r\n",
                      &users)
            .ok());
  REQUIRE(users.size() == 2);
  CHECK(users[1].first == "bob");
  Status md5 =
      ParseHtpasswd("carol:$apr1$HQ2tgaMj$Y3silyzbVFQvgIaiJrT/10\n", &users);
  CHECK(md5.code() == Code::kInvalidArgument);
  CHECK(md5.message().find("line 1") != std::string::npos);
  CHECK(md5.message().find("bcrypt") != std::string::npos);
  CHECK_FALSE(ParseHtpasswd("no-colon\n", &users).ok());
  CHECK_FALSE(ParseHtpasswd(":$2y$04$x\n", &users).ok());
}

TEST_CASE("htpasswd: verify, cache, reload on change") {
  testing::TempDir dir;
  std::string path = dir.path() + "/htpasswd";
  WriteFile(path, std::string(kAlice) + "\n" + kBob + "\n" + kDave2b + "\n");
  auto h = Htpasswd::Open(path);
  REQUIRE(h.ok());
  CHECK((*h)->Verify("alice", "s3cret"));
  CHECK_FALSE((*h)->Verify("alice", "S3cret"));
  CHECK_FALSE((*h)->Verify("alice", ""));
  CHECK_FALSE((*h)->Verify("nobody", "s3cret"));
  CHECK((*h)->Verify("bob", "pw:with:colons"));
  CHECK((*h)->Verify("dave", "dpw"));  // $2b$
  CHECK((*h)->VerifyCached("alice", "s3cret"));
  CHECK_FALSE((*h)->VerifyCached("alice", "S3cret"));
  // Alice removed: her cached check no longer counts after the reload.
  WriteFile(path, std::string(kBob) + "\n");
  CHECK((*h)->Reload().ok());
  CHECK_FALSE((*h)->VerifyCached("alice", "s3cret"));
  CHECK_FALSE((*h)->Verify("alice", "s3cret"));
  CHECK((*h)->HasUser("bob"));
  // A broken file keeps the users there were.
  WriteFile(path, "bob:plaintext\n");
  CHECK_FALSE((*h)->Reload().ok());
  CHECK((*h)->Verify("bob", "pw:with:colons"));
  CHECK(Htpasswd::Open(dir.path() + "/missing").status().code() ==
        Code::kNotFound);
}

TEST_CASE("glob: * within a component, ** across, ? one character") {
  CHECK(GlobMatch("team/*", "team/app"));
  CHECK_FALSE(GlobMatch("team/*", "team/a/b"));
  CHECK(GlobMatch("team/**", "team/a/b"));
  CHECK(GlobMatch("**", "x"));
  CHECK(GlobMatch("**/x*", "a/xb/xc"));
  CHECK(GlobMatch("a/?pp", "a/app"));
  CHECK_FALSE(GlobMatch("a?b", "a/b"));
  CHECK_FALSE(GlobMatch("team", "team/app"));
  CHECK(GlobMatch("*/app", "x/app"));
  CHECK_FALSE(GlobMatch("*/app", "x/y/app"));
  CHECK(GlobMatch("lib/**/base", "lib/a/b/base"));
  CHECK_FALSE(GlobMatch("", "a"));
}

TEST_CASE("acl: grants add up, groups, anonymous, default deny") {
  auto acl = Acl::Parse(R"({
    "groups": {"devs": ["bob", "carol"]},
    "rules": [
      {"repository": "team/**", "groups": ["devs"], "actions": ["pull", "push"]},
      {"repository": "team/prod/*", "users": ["bob"], "actions": ["delete"]},
      {"repository": "public/*", "anonymous": true, "actions": ["pull"]},
      {"users": ["alice"], "actions": ["admin"]},
      {"users": ["*"], "actions": ["catalog"]}]})");
  REQUIRE(acl.ok());
  CHECK(acl->Granted("bob", "team/prod/app") == (kPull | kPush | kDelete));
  CHECK(acl->Granted("carol", "team/prod/app") == (kPull | kPush));
  CHECK(acl->Granted("carol", "other/app") == 0);
  CHECK(acl->Granted("", "public/app") == kPull);
  CHECK(acl->Granted("", "team/app") == 0);
  CHECK(acl->Granted("carol", "public/app") == kPull);  // anonymous: everyone
  CHECK(acl->Granted("alice", "anything/at/all") == (kPull | kPush | kDelete));
  CHECK(acl->MayListCatalog("carol"));
  CHECK_FALSE(acl->MayListCatalog(""));

  CHECK(Acl::Parse(R"({"rules":[{"users":["a"],"actions":["fly"]}]})")
            .status()
            .message()
            .find("unknown action fly") != std::string::npos);
  CHECK_FALSE(
      Acl::Parse(R"({"rules":[{"groups":["x"],"actions":["pull"]}]})").ok());
  CHECK_FALSE(Acl::Parse(R"({"rules":[{"actions":["pull"]}]})").ok());
  CHECK_FALSE(
      Acl::Parse(R"({"rules":[{"users":["a"],"actions":["pull"],"extra":1}]})")
          .ok());
  CHECK_FALSE(Acl::Parse("[]").ok());
  CHECK_FALSE(Acl::Parse("{").ok());
}

TEST_CASE("scopes: parsed as the token spec writes them") {
  auto s = ParseScopes(
      "repository:team/app:pull,push registry:catalog:* "
      "repository:localhost:5000/x:pull bad");
  REQUIRE(s.size() == 3);
  CHECK(s[0].name == "team/app");
  CHECK(s[0].actions == std::vector<std::string>{"pull", "push"});
  CHECK(s[1].type == "registry");
  CHECK(s[2].name == "localhost:5000/x");
  CHECK(s[0].str() == "repository:team/app:pull,push");
  CHECK(ActionList(kPull | kDelete) == "pull,delete");
}

TEST_CASE("jwt: sign and verify RS256, ES256 and EdDSA; forgeries fail") {
  testing::TempDir dir;
  for (std::string kind : {"rsa", "ec", "ed25519"}) {
    CAPTURE(kind);
    std::string path = dir.path() + "/" + kind + ".pem";
    MakeKey(kind, path);
    auto signer = Signer::FromPemFiles(path, "");
    REQUIRE(signer.ok());
    KeySet keys;
    keys.AddKey(signer->kid(), signer->key());
    auto token = signer->Sign(Claims());
    REQUIRE(token.ok());
    auto jwt = ParseJwt(*token);
    REQUIRE(jwt.ok());
    CHECK(jwt->claims["sub"] == "alice");
    CHECK(keys.Verify(*jwt, {"RS256", "ES256", "EdDSA"}).ok());
    // The algorithm must be accepted by the configuration.
    CHECK_FALSE(keys.Verify(*jwt, {"none"}).ok());
    // A changed claim breaks the signature.
    std::string t = *token;
    size_t dot = t.find('.');
    auto claims = Claims();
    claims["sub"] = "mallory";
    std::string forged = t.substr(0, dot + 1) + Base64UrlEncode(claims.dump()) +
                         t.substr(t.rfind('.'));
    auto fj = ParseJwt(forged);
    REQUIRE(fj.ok());
    CHECK(keys.Verify(*fj, {"RS256", "ES256", "EdDSA"}).message() ==
          "token signature invalid");
    // Another key of the same kind, claiming this key's kid.
    MakeKey(kind, path + ".other");
    auto other = Signer::FromPemFiles(path + ".other", "");
    REQUIRE(other.ok());
    KeySet wrong;
    wrong.AddKey(signer->kid(), other->key());
    CHECK_FALSE(wrong.Verify(*jwt, {"RS256", "ES256", "EdDSA"}).ok());
    // alg "none" is never accepted, whatever the configuration says.
    nlohmann::json none = {{"alg", "none"}, {"kid", signer->kid()}};
    auto nj = ParseJwt(Base64UrlEncode(none.dump()) + "." +
                       Base64UrlEncode(Claims().dump()) + ".");
    REQUIRE(nj.ok());
    CHECK_FALSE(keys.Verify(*nj, {"none", "RS256", "ES256", "EdDSA"}).ok());
  }
  CHECK_FALSE(ParseJwt("a.b").ok());
  CHECK_FALSE(ParseJwt("a.b.c.d").ok());
  CHECK_FALSE(ParseJwt("!!.e30.").ok());
  CHECK_FALSE(
      ParseJwt(Base64UrlEncode("[]") + "." + Base64UrlEncode("{}") + ".").ok());
}

TEST_CASE("jwt: a JWKS names keys by kid; libtrust key IDs have their form") {
  // RFC 7515 appendix A.3's P-256 public key.
  auto jwks = R"({"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
    "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})";
  KeySet keys;
  CHECK(keys.AddJwks(jwks).ok());
  CHECK(keys.size() == 1);
  CHECK_FALSE(keys.AddJwks(R"({"keys":[{"kty":"EC","crv":"P-256"}]})").ok());
  CHECK_FALSE(
      keys.AddJwks(R"({"keys":[{"kty":"oct","k":"AAAA","kid":"h"}]})").ok());
  // (Tokens signed with JWKS keys are checked in registry_auth_test.sh,
  // with keys and tokens made by PyJWT.)
  testing::TempDir dir;
  MakeKey("ec", dir.path() + "/k.pem");
  auto s = Signer::FromPemFiles(dir.path() + "/k.pem", "");
  REQUIRE(s.ok());
  const std::string& kid = s->kid();
  CHECK(kid.size() == 59);  // 12 groups of 4, 11 colons
  for (size_t i = 4; i < kid.size(); i += 5) CHECK(kid[i] == ':');
}

TEST_CASE("throttle: a lockout after max_failures, cleared by success") {
  LoginThrottle t(ThrottleOptions{3, std::chrono::seconds(60),
                                  std::chrono::seconds(30), 100});
  CHECK(t.RetryAfter("u") == 0);
  t.Failure("u");
  t.Failure("u");
  CHECK(t.RetryAfter("u") == 0);
  t.Failure("u");
  int64_t r = t.RetryAfter("u");
  CHECK(r > 0);
  CHECK(r <= 31);
  CHECK(t.RetryAfter("v") == 0);
  t.Success("u");
  CHECK(t.RetryAfter("u") == 0);
  // The table stays bounded.
  for (int i = 0; i < 1000; ++i) t.Failure("k" + std::to_string(i));
}
