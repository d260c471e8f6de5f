// Test helpers shared by the test executables.
#pragma once

#include <cstdint>
#include <string>

namespace ocib::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when
// the object goes away. Not copyable.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes (xorshift) for test payloads.
std::string RandomBytes(size_t n, uint64_t seed);

}  // namespace ocib::testing
