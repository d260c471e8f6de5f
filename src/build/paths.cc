#include "build/paths.h"

#include <openssl/rand.h>

#include <cstdio>
#include <sstream>
#include <vector>

namespace ocib::build {

bool CleanRelative(const std::string& p, std::string* out) {
  std::vector<std::string> parts;
  std::stringstream ss(p);
  std::string c;
  while (std::getline(ss, c, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
    } else {
      parts.push_back(c);
    }
  }
  out->clear();
  for (size_t i = 0; i < parts.size(); ++i) *out += (i ? "/" : "") + parts[i];
  return true;
}

std::string JoinAbs(const std::string& base, const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  std::string b = base.empty() ? "/" : base;
  return b + (b.back() == '/' ? "" : "/") + p;
}

std::string RandomHex() {
  unsigned char b[8];
  RAND_bytes(b, sizeof b);
  char out[17];
  for (int i = 0; i < 8; ++i) std::snprintf(out + 2 * i, 3, "%02x", b[i]);
  return out;
}

}  // namespace ocib::build
