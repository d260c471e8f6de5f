// Path and name helpers the builder's steps share. Pure functions;
// thread-safe.
#pragma once

#include <string>

namespace ocib::build {

// Lexically cleans a path inside a root ("a/./b/../c" -> "a/c", leading
// "/" dropped); false if it would leave the root.
bool CleanRelative(const std::string& p, std::string* out);

// `p` when absolute, else `p` under `base` ("" counts as "/").
std::string JoinAbs(const std::string& base, const std::string& p);

// 16 random hex digits, for scratch names.
std::string RandomHex();

}  // namespace ocib::build
