// Digest: a validated content address `algorithm:hex`, and Hasher, a
// streaming OpenSSL EVP hash over one of the supported algorithms.
//
// Supported algorithms: sha256 (64 lowercase hex) and sha512 (128 lowercase
// hex), as the OCI image spec registers them. Anything else is rejected by
// Digest::Parse with kInvalidArgument, so an invalid digest never reaches a
// key or a path.
//
// Thread safety: Digest is an immutable value. A Hasher is
// thread-compatible: one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace ocib {

enum class DigestAlgorithm { kSha256, kSha512 };

class Digest {
 public:
  // Returns the digest, or kInvalidArgument naming what is wrong.
  static Result<Digest> Parse(std::string_view text);

  // Computes the digest of `data` in one call.
  static Digest Of(std::string_view data,
                   DigestAlgorithm algorithm = DigestAlgorithm::kSha256);

  DigestAlgorithm algorithm() const { return algorithm_; }
  std::string_view algorithm_name() const;
  const std::string& hex() const { return hex_; }
  // "sha256:<hex>".
  std::string str() const;

  bool operator==(const Digest& o) const {
    return algorithm_ == o.algorithm_ && hex_ == o.hex_;
  }
  bool operator!=(const Digest& o) const { return !(*this == o); }
  bool operator<(const Digest& o) const { return str() < o.str(); }

 private:
  Digest(DigestAlgorithm a, std::string hex)
      : algorithm_(a), hex_(std::move(hex)) {}
  DigestAlgorithm algorithm_;
  std::string hex_;
  friend class Hasher;
};

// Streaming hash. Update() any number of times, then Finish(). Copyable via
// Clone() so a caller can take an intermediate digest and keep going.
class Hasher {
 public:
  explicit Hasher(DigestAlgorithm algorithm = DigestAlgorithm::kSha256);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(const void* data, size_t n);
  // Returns the digest of everything passed to Update. The hasher must not
  // be used afterwards except through Reset().
  Digest Finish();
  // Returns the digest so far without disturbing the running state.
  Digest Peek() const;
  void Reset();
  DigestAlgorithm algorithm() const { return algorithm_; }
  // The running state as bytes, so another process of the same build can
  // go on where this one stopped (an upload whose next chunk reaches
  // another replica; Distribution keeps its "hashstates" for the same).
  std::string SaveState() const;
  // Restores a state SaveState() made for this algorithm; false (and the
  // hasher unchanged) for anything else.
  bool LoadState(std::string_view state);

 private:
  struct Ctx;
  static Digest FinalOf(DigestAlgorithm a, Ctx* c);
  DigestAlgorithm algorithm_;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace ocib
