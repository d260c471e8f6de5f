#include "store/digest.h"

#include <openssl/evp.h>

#include <cstdio>

namespace ocib {
namespace {

const EVP_MD* Md(DigestAlgorithm a) {
  return a == DigestAlgorithm::kSha256 ? EVP_sha256() : EVP_sha512();
}

std::string ToHex(const unsigned char* p, unsigned n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 15];
  }
  return out;
}

}  // namespace

struct Hasher::Ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(ctx); }
};

Result<Digest> Digest::Parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return InvalidArgument("digest has no algorithm: missing ':'");
  std::string_view algo = text.substr(0, colon);
  std::string_view hex = text.substr(colon + 1);
  DigestAlgorithm a;
  size_t want;
  if (algo == "sha256") {
    a = DigestAlgorithm::kSha256;
    want = 64;
  } else if (algo == "sha512") {
    a = DigestAlgorithm::kSha512;
    want = 128;
  } else {
    return InvalidArgument("unsupported digest algorithm '" +
                           std::string(algo.substr(0, 32)) + "'");
  }
  if (hex.size() != want)
    return InvalidArgument(std::string(algo) + " digest needs " +
                           std::to_string(want) + " hex characters, got " +
                           std::to_string(hex.size()));
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return InvalidArgument("digest hex must be lowercase [0-9a-f]");
  }
  return Digest(a, std::string(hex));
}

Digest Digest::Of(std::string_view data, DigestAlgorithm algorithm) {
  Hasher h(algorithm);
  h.Update(data.data(), data.size());
  return h.Finish();
}

std::string_view Digest::algorithm_name() const {
  return algorithm_ == DigestAlgorithm::kSha256 ? "sha256" : "sha512";
}

std::string Digest::str() const {
  std::string s(algorithm_name());
  s += ':';
  s += hex_;
  return s;
}

Hasher::Hasher(DigestAlgorithm algorithm)
    : algorithm_(algorithm), ctx_(std::make_unique<Ctx>()) {
  Reset();
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Reset() { EVP_DigestInit_ex(ctx_->ctx, Md(algorithm_), nullptr); }

void Hasher::Update(const void* data, size_t n) {
  if (n) EVP_DigestUpdate(ctx_->ctx, data, n);
}

Digest Hasher::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx_->ctx, md, &n);
  return Digest(algorithm_, ToHex(md, n));
}

Digest Hasher::Peek() const {
  Ctx copy;
  EVP_MD_CTX_copy_ex(copy.ctx, ctx_->ctx);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(copy.ctx, md, &n);
  return Digest(algorithm_, ToHex(md, n));
}

}  // namespace ocib
