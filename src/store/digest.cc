#include "store/digest.h"

// The low-level SHA-2 interface: its context is a plain struct, so a
// running hash can be saved and resumed (SaveState); EVP's is opaque.
// Deprecated in OpenSSL 3 but kept; the same assembly does the work.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <cstdio>
#include <cstring>

namespace ocib {
namespace {

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
  SHA256_CTX s256;
  SHA512_CTX s512;
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

void Hasher::Reset() {
  if (algorithm_ == DigestAlgorithm::kSha256)
    SHA256_Init(&ctx_->s256);
  else
    SHA512_Init(&ctx_->s512);
}

void Hasher::Update(const void* data, size_t n) {
  if (!n) return;
  if (algorithm_ == DigestAlgorithm::kSha256)
    SHA256_Update(&ctx_->s256, data, n);
  else
    SHA512_Update(&ctx_->s512, data, n);
}

Digest Hasher::Finish() { return FinalOf(algorithm_, ctx_.get()); }

Digest Hasher::Peek() const {
  Ctx copy = *ctx_;
  return FinalOf(algorithm_, &copy);
}

namespace {
constexpr std::string_view kStateTag256 = "ocib-sha256-v1:";
constexpr std::string_view kStateTag512 = "ocib-sha512-v1:";
}  // namespace

std::string Hasher::SaveState() const {
  std::string out;
  if (algorithm_ == DigestAlgorithm::kSha256) {
    out = kStateTag256;
    out.append(reinterpret_cast<const char*>(&ctx_->s256), sizeof ctx_->s256);
  } else {
    out = kStateTag512;
    out.append(reinterpret_cast<const char*>(&ctx_->s512), sizeof ctx_->s512);
  }
  return out;
}

bool Hasher::LoadState(std::string_view state) {
  bool sha256 = algorithm_ == DigestAlgorithm::kSha256;
  std::string_view tag = sha256 ? kStateTag256 : kStateTag512;
  size_t size = sha256 ? sizeof ctx_->s256 : sizeof ctx_->s512;
  if (state.size() != tag.size() + size || !state.starts_with(tag))
    return false;
  std::memcpy(sha256 ? static_cast<void*>(&ctx_->s256)
                     : static_cast<void*>(&ctx_->s512),
              state.data() + tag.size(), size);
  return true;
}

Digest Hasher::FinalOf(DigestAlgorithm a, Ctx* c) {
  unsigned char md[SHA512_DIGEST_LENGTH];
  if (a == DigestAlgorithm::kSha256) {
    SHA256_Final(md, &c->s256);
    return Digest(a, ToHex(md, SHA256_DIGEST_LENGTH));
  }
  SHA512_Final(md, &c->s512);
  return Digest(a, ToHex(md, SHA512_DIGEST_LENGTH));
}

}  // namespace ocib
