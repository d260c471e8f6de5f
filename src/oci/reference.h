// Name and tag grammar of the OCI distribution spec.
//
//   name:
//   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//   tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
//
// Names are also limited to kMaxNameLength characters (clients limit
// host/name to 255). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace ocib::oci {

inline constexpr size_t kMaxNameLength = 255;

bool ValidRepositoryName(std::string_view name);
bool ValidTag(std::string_view tag);

// The referrers tag schema of distribution-spec 1.1: "<alg>-<hex>" with
// characters a tag cannot hold replaced by '-'.
std::string ReferrersTag(std::string_view digest);

}  // namespace ocib::oci
