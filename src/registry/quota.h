// Storage quotas per namespace (a repository-name prefix: "team" covers
// "team" and "team/..."), in bytes of the unique blobs linked in its
// repositories. A push that would pass the limit is refused with 403
// DENIED whose message gives the namespace, usage and limit: before any
// byte is stored when the size is known up front (monolithic upload or
// final chunk with Content-Length, mount), else when the upload commits
// (the session is then discarded).
//
// Usage is counted from the store at each check, so it is exact between
// pushes; concurrent pushes into one namespace may pass it by what they
// send at once. Thread-safe (immutable rules; the store is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/blob_store.h"
#include "util/status.h"

namespace ocib::registry {

struct QuotaRule {
  std::string ns;  // "team" or "team/sub"
  uint64_t bytes = 0;
};

class Quotas {
 public:
  explicit Quotas(std::vector<QuotaRule> rules) : rules_(std::move(rules)) {}
  bool empty() const { return rules_.empty(); }
  // OK if linking a blob of `size` bytes into repo keeps its namespace
  // within quota (a blob the namespace already holds costs nothing; `d`
  // may be null when not known yet). Else kFailedPrecondition with the
  // message for the client.
  Status Check(Store* store, const std::string& repo, const Digest* d,
               uint64_t size) const;

 private:
  const QuotaRule* For(const std::string& repo) const;
  std::vector<QuotaRule> rules_;
};

// "1.5 GiB" style, for messages.
std::string HumanBytes(uint64_t n);

}  // namespace ocib::registry
