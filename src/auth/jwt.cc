#include "auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <map>

namespace ocib::auth {
namespace {

constexpr size_t kMaxToken = 64 << 10;

Status Invalid(const std::string& what) {
  ERR_clear_error();
  return Status(Code::kInvalidArgument, what);
}

std::string StdBase64Decode(std::string_view in, bool* ok) {
  std::string out(3 * (in.size() / 4) + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  *ok = n >= 0 && in.size() % 4 == 0;
  if (!*ok) return "";
  size_t pad = 0;
  for (size_t i = in.size(); i > 0 && in[i - 1] == '=' && pad < 2; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string StdBase64Encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// The JWS algorithm a key signs with, or "".
std::string AlgorithmFor(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return "RS256";
    case EVP_PKEY_ED25519:
      return "EdDSA";
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                         sizeof group, &len) == 1 &&
          (std::string(group) == "prime256v1" || std::string(group) == "P-256"))
        return "ES256";
      return "";
    }
    default:
      return "";
  }
}

// JWS r||s (32 bytes each) <-> DER ECDSA-Sig-Value.
bool RawToDer(const std::string& raw, std::string* der) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32,
                        nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32,
                        32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return false;
  }
  unsigned char* p = nullptr;
  int n = i2d_ECDSA_SIG(sig, &p);
  ECDSA_SIG_free(sig);
  if (n <= 0) return false;
  der->assign(reinterpret_cast<char*>(p), static_cast<size_t>(n));
  OPENSSL_free(p);
  return true;
}

bool DerToRaw(const std::string& der, std::string* raw) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) return false;
  const BIGNUM *r, *s;
  ECDSA_SIG_get0(sig, &r, &s);
  raw->assign(64, '\0');
  bool ok = BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw->data()),
                         32) == 32 &&
            BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw->data()) + 32,
                         32) == 32;
  ECDSA_SIG_free(sig);
  return ok;
}

bool VerifySignature(EVP_PKEY* key, const std::string& alg,
                     const std::string& data, const std::string& signature) {
  std::string sig = signature;
  if (alg == "ES256" && !RawToDer(signature, &sig)) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return false;
  const EVP_MD* md = alg == "EdDSA" ? nullptr : EVP_sha256();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1 &&
            EVP_DigestVerify(
                ctx, reinterpret_cast<const unsigned char*>(sig.data()),
                sig.size(), reinterpret_cast<const unsigned char*>(data.data()),
                data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

PkeyPtr JwkToKey(const nlohmann::json& k) {
  auto field = [&](const char* name, std::string* out) {
    return k.contains(name) && k[name].is_string() &&
           Base64UrlDecode(k[name].get<std::string>(), out) && !out->empty();
  };
  std::string kty = k.value("kty", "");
  if (kty == "OKP" && k.value("crv", "") == "Ed25519") {
    std::string x;
    if (!field("x", &x) || x.size() != 32) return nullptr;
    return PkeyPtr(EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr,
        reinterpret_cast<const unsigned char*>(x.data()), x.size()));
  }
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (!bld) return nullptr;
  EVP_PKEY* key = nullptr;
  BIGNUM *n = nullptr, *e = nullptr;
  const char* type = nullptr;
  bool ok = false;
  std::string pub;
  if (kty == "RSA") {
    std::string ns, es;
    if (field("n", &ns) && field("e", &es)) {
      n = BN_bin2bn(reinterpret_cast<const unsigned char*>(ns.data()),
                    static_cast<int>(ns.size()), nullptr);
      e = BN_bin2bn(reinterpret_cast<const unsigned char*>(es.data()),
                    static_cast<int>(es.size()), nullptr);
      ok = n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
           OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
      type = "RSA";
    }
  } else if (kty == "EC" && k.value("crv", "") == "P-256") {
    std::string x, y;
    if (field("x", &x) && field("y", &y) && x.size() == 32 && y.size() == 32) {
      pub = "\x04" + x + y;
      ok = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           "prime256v1", 0) &&
           OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            pub.data(), pub.size());
      type = "EC";
    }
  }
  if (ok) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
      EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(n);
  BN_free(e);
  ERR_clear_error();
  return PkeyPtr(key);
}

}  // namespace

std::string Base64UrlEncode(std::string_view in) {
  std::string s = StdBase64Encode(in);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

bool Base64Decode(std::string_view in, std::string* out) {
  bool ok;
  *out = StdBase64Decode(in, &ok);
  return ok;
}

bool Base64UrlDecode(std::string_view in, std::string* out) {
  std::string s;
  s.reserve(in.size() + 3);
  for (char c : in) {
    if (c == '+' || c == '/' || c == '=') return false;
    s += c == '-' ? '+' : c == '_' ? '/' : c;
  }
  if (s.size() % 4 == 1) return false;
  while (s.size() % 4) s += '=';
  bool ok;
  *out = StdBase64Decode(s, &ok);
  return ok;
}

Result<Jwt> ParseJwt(std::string_view token) {
  if (token.empty() || token.size() > kMaxToken)
    return Invalid("token too long or empty");
  size_t a = token.find('.');
  size_t b = a == std::string_view::npos ? a : token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != token.npos)
    return Invalid("token is not a compact JWS");
  Jwt jwt;
  std::string header, claims;
  if (!Base64UrlDecode(token.substr(0, a), &header) ||
      !Base64UrlDecode(token.substr(a + 1, b - a - 1), &claims) ||
      !Base64UrlDecode(token.substr(b + 1), &jwt.signature))
    return Invalid("token is not base64url");
  jwt.header = nlohmann::json::parse(header, nullptr, false);
  jwt.claims = nlohmann::json::parse(claims, nullptr, false);
  if (!jwt.header.is_object() || !jwt.claims.is_object())
    return Invalid("token header or claims are not JSON objects");
  jwt.signing_input = std::string(token.substr(0, b));
  return jwt;
}

std::string LibtrustKeyId(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return "";
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(n), md);
  OPENSSL_free(der);
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string b32;
  // 30 bytes = 240 bits = 48 base32 characters.
  uint64_t buffer = 0;
  int bits = 0;
  for (int i = 0; i < 30; ++i) {
    buffer = (buffer << 8) | md[i];
    bits += 8;
    while (bits >= 5) {
      b32 += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  std::string out;
  for (size_t i = 0; i < b32.size(); i += 4) {
    if (!out.empty()) out += ':';
    out += b32.substr(i, 4);
  }
  return out;
}

struct KeySet::Rep {
  std::map<std::string, PkeyPtr> keys;  // kid -> key
  std::vector<X509Ptr> roots;
};

KeySet::KeySet() : rep_(std::make_unique<Rep>()) {}
KeySet::~KeySet() = default;
KeySet::KeySet(KeySet&&) noexcept = default;
KeySet& KeySet::operator=(KeySet&&) noexcept = default;
size_t KeySet::size() const { return rep_->keys.size(); }

void KeySet::AddKey(const std::string& kid, EVP_PKEY* key) {
  EVP_PKEY_up_ref(key);
  rep_->keys[kid] = PkeyPtr(key);
}

Status KeySet::AddPemBundle(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (!bio) return Invalid("cannot read " + path);
  size_t added = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509Ptr cert(x);
    EVP_PKEY* pub = X509_get0_pubkey(x);
    if (pub) {
      AddKey(LibtrustKeyId(pub), pub);
      ++added;
    }
    rep_->roots.push_back(std::move(cert));
  }
  BIO_free(bio);
  ERR_clear_error();
  if (added == 0) {
    // A bundle of bare public keys.
    bio = BIO_new_file(path.c_str(), "r");
    while (bio) {
      EVP_PKEY* pub = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
      if (!pub) break;
      AddKey(LibtrustKeyId(pub), pub);
      EVP_PKEY_free(pub);
      ++added;
    }
    BIO_free(bio);
    ERR_clear_error();
  }
  if (added == 0) return Invalid(path + " holds no PEM certificate or key");
  return Status::Ok();
}

Status KeySet::AddJwks(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array())
    return Invalid("JWKS: not an object with a \"keys\" array");
  for (const auto& k : j["keys"]) {
    if (!k.is_object() || !k.contains("kid") || !k["kid"].is_string())
      return Invalid("JWKS: a key without a \"kid\"");
    PkeyPtr key = JwkToKey(k);
    if (!key)
      return Invalid("JWKS: key " + k["kid"].get<std::string>() +
                     " is not an RSA, P-256 or Ed25519 public key");
    rep_->keys[k["kid"].get<std::string>()] = std::move(key);
  }
  return Status::Ok();
}

Status KeySet::Verify(const Jwt& jwt,
                      const std::vector<std::string>& algorithms) const {
  if (!jwt.header.contains("alg") || !jwt.header["alg"].is_string())
    return Invalid("token has no alg");
  std::string alg = jwt.header["alg"].get<std::string>();
  bool accepted = false;
  for (const auto& a : algorithms) accepted |= a == alg;
  if (!accepted || (alg != "RS256" && alg != "ES256" && alg != "EdDSA"))
    return Invalid("token algorithm not accepted");
  PkeyPtr leaf;
  EVP_PKEY* key = nullptr;
  if (jwt.header.contains("kid") && jwt.header["kid"].is_string()) {
    auto it = rep_->keys.find(jwt.header["kid"].get<std::string>());
    if (it == rep_->keys.end())
      return Invalid("token signed by an unknown key");
    key = it->second.get();
  } else if (jwt.header.contains("x5c") && jwt.header["x5c"].is_array() &&
             !jwt.header["x5c"].empty() && jwt.header["x5c"].size() <= 8) {
    std::vector<X509Ptr> chain;
    for (const auto& c : jwt.header["x5c"]) {
      if (!c.is_string()) return Invalid("token x5c is not a chain");
      bool ok;
      std::string der = StdBase64Decode(c.get<std::string>(), &ok);
      const unsigned char* p =
          reinterpret_cast<const unsigned char*>(der.data());
      X509* x =
          ok ? d2i_X509(nullptr, &p, static_cast<long>(der.size())) : nullptr;
      if (!x) return Invalid("token x5c is not a chain");
      chain.emplace_back(x);
    }
    X509_STORE* store = X509_STORE_new();
    for (const auto& r : rep_->roots) X509_STORE_add_cert(store, r.get());
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    for (size_t i = 1; i < chain.size(); ++i)
      sk_X509_push(untrusted, chain[i].get());
    X509_STORE_CTX* vctx = X509_STORE_CTX_new();
    bool verified =
        vctx &&
        X509_STORE_CTX_init(vctx, store, chain[0].get(), untrusted) == 1 &&
        X509_verify_cert(vctx) == 1;
    X509_STORE_CTX_free(vctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    if (!verified) return Invalid("token certificate chain not trusted");
    leaf.reset(X509_get_pubkey(chain[0].get()));
    key = leaf.get();
  } else {
    return Invalid("token names no key");
  }
  if (!key || AlgorithmFor(key) != alg)
    return Invalid("token algorithm does not fit its key");
  if (!VerifySignature(key, alg, jwt.signing_input, jwt.signature))
    return Invalid("token signature invalid");
  return Status::Ok();
}

Result<Signer> Signer::FromPemFiles(const std::string& key_file,
                                    const std::string& cert_file) {
  Signer s;
  BIO* bio = BIO_new_file(key_file.c_str(), "r");
  if (!bio) return Invalid("token signing key: cannot read " + key_file);
  s.key_ = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!s.key_)
    return Invalid("token signing key: no PEM private key in " + key_file);
  s.alg_ = AlgorithmFor(s.key_);
  if (s.alg_.empty())
    return Invalid("token signing key: must be RSA, EC P-256 or Ed25519");
  s.kid_ = LibtrustKeyId(s.key_);
  if (!cert_file.empty()) {
    bio = BIO_new_file(cert_file.c_str(), "r");
    if (!bio) return Invalid("token certificate: cannot read " + cert_file);
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      unsigned char* der = nullptr;
      int n = i2d_X509(x, &der);
      if (n > 0)
        s.x5c_.push_back(StdBase64Encode(std::string_view(
            reinterpret_cast<char*>(der), static_cast<size_t>(n))));
      OPENSSL_free(der);
      X509_free(x);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (s.x5c_.empty())
      return Invalid("token certificate: no PEM certificate in " + cert_file);
  }
  return s;
}

Signer::Signer(Signer&& o) noexcept
    : key_(o.key_),
      alg_(std::move(o.alg_)),
      kid_(std::move(o.kid_)),
      x5c_(std::move(o.x5c_)) {
  o.key_ = nullptr;
}
Signer::~Signer() { EVP_PKEY_free(key_); }

Result<std::string> Signer::Sign(const nlohmann::json& claims) const {
  nlohmann::json header = {{"typ", "JWT"}, {"alg", alg_}, {"kid", kid_}};
  if (!x5c_.empty()) header["x5c"] = x5c_;
  std::string input =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const EVP_MD* md = alg_ == "EdDSA" ? nullptr : EVP_sha256();
  size_t len = 0;
  std::string sig;
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, md, nullptr, key_) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len,
                           reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()),
                        input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (ok && alg_ == "ES256") ok = DerToRaw(std::string(sig), &sig);
  if (!ok) return Invalid("cannot sign a token");
  return input + "." + Base64UrlEncode(sig);
}

}  // namespace ocib::auth
