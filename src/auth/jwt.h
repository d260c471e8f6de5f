// JSON Web Tokens as Docker's token authentication uses them (compact JWS,
// RFC 7515/7519): parsing, signature verification against a set of
// trusted keys, and signing for ocireg's own token server.
//
// Algorithms: RS256 (RSA PKCS#1 v1.5, SHA-256), ES256 (ECDSA P-256,
// SHA-256, the JWS r||s form) and EdDSA (Ed25519). "none" and HMAC are
// never accepted.
//
// Key selection, as Distribution's token verifier: a token's "kid" names a
// trusted key (a JWKS "kid", or the libtrust key ID Distribution derives
// from a root certificate's public key); without a kid, an "x5c" chain
// must verify against the root certificates, and its leaf signs.
//
// Errors are kUnauthenticated-like values: Status kInvalidArgument with a
// fixed message saying what was wrong (never the token's text).
// Thread safety: a KeySet and a Signer are immutable once made.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace ocib::auth {

std::string Base64UrlEncode(std::string_view in);
// Standard base64 with padding (HTTP Basic credentials); false if `in` is
// not that.
bool Base64Decode(std::string_view in, std::string* out);
// False for text that is not unpadded base64url.
bool Base64UrlDecode(std::string_view in, std::string* out);

struct Jwt {
  nlohmann::json header;
  nlohmann::json claims;
  std::string signing_input;  // base64url(header) "." base64url(claims)
  std::string signature;      // decoded
};

// Splits and decodes a compact JWS. Errors: kInvalidArgument.
Result<Jwt> ParseJwt(std::string_view token);

class KeySet {
 public:
  KeySet();
  ~KeySet();
  KeySet(KeySet&&) noexcept;
  KeySet& operator=(KeySet&&) noexcept;

  // Adds the certificates (and public keys) of a PEM bundle: each is a
  // root for x5c chains and a key under its libtrust key ID.
  Status AddPemBundle(const std::string& path);
  // Adds the keys of a JWKS document (RSA, EC P-256, OKP Ed25519).
  Status AddJwks(std::string_view json_text);
  // Adds one public key under `kid`. Takes a reference of its own.
  void AddKey(const std::string& kid, EVP_PKEY* key);
  size_t size() const;

  // Checks the signature of `jwt` with the key it names. `algorithms`
  // lists the accepted "alg" values.
  Status Verify(const Jwt& jwt,
                const std::vector<std::string>& algorithms) const;

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

// The key ID libtrust (and so Distribution) gives a public key: the
// SHA-256 of its DER SubjectPublicKeyInfo, first 240 bits, base32 in
// twelve groups of four joined by ':'.
std::string LibtrustKeyId(EVP_PKEY* key);

class Signer {
 public:
  // Reads a PEM private key (RSA, EC P-256 or Ed25519) and, if given, the
  // PEM certificate that goes in the token's x5c.
  static Result<Signer> FromPemFiles(const std::string& key_file,
                                     const std::string& cert_file);
  Signer(Signer&&) noexcept;
  ~Signer();
  // A compact JWS of `claims` with header {typ, alg, kid[, x5c]}.
  Result<std::string> Sign(const nlohmann::json& claims) const;
  const std::string& algorithm() const { return alg_; }
  const std::string& kid() const { return kid_; }
  EVP_PKEY* key() const { return key_; }

 private:
  Signer() = default;
  EVP_PKEY* key_ = nullptr;
  std::string alg_, kid_;
  std::vector<std::string> x5c_;  // base64 DER
};

}  // namespace ocib::auth
