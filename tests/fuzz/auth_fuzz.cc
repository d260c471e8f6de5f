// libFuzzer target: the parsers of untrusted authentication input (auth/):
// the first byte picks one. 0: a JWT (parsed, then verified against a
// fixed key, which must never accept it), 1: htpasswd text, 2: an ACL and
// a glob match, 3: a token scope list, 4: Base64 (Basic credentials).
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/acl.h"
#include "auth/htpasswd.h"
#include "auth/jwt.h"

using namespace ocib::auth;

namespace {

const KeySet& Keys() {
  static KeySet* keys = [] {
    auto* k = new KeySet;
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    k->AddKey("k", key);
    EVP_PKEY_free(key);
    return k;
  }();
  return *keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto jwt = ParseJwt(in);
      // No input can be signed by a key made in this process.
      if (jwt.ok() && Keys().Verify(*jwt, {"RS256", "ES256", "EdDSA"}).ok())
        __builtin_trap();
      break;
    }
    case 1: {
      std::vector<std::pair<std::string, std::string>> users;
      (void)ParseHtpasswd(in, &users);
      break;
    }
    case 2: {
      size_t cut = in.find('\n');
      auto acl = Acl::Parse(in.substr(0, cut));
      std::string_view name =
          cut == std::string_view::npos ? "a/b" : in.substr(cut + 1, 256);
      if (acl.ok()) (void)acl->Granted("u", name);
      (void)GlobMatch(in.substr(0, std::min<size_t>(cut, 64)), name);
      break;
    }
    case 3:
      for (const auto& s : ParseScopes(in))
        if (s.type.empty() || s.name.empty() || s.actions.empty())
          __builtin_trap();
      break;
    default: {
      std::string out;
      (void)Base64Decode(in, &out);
      (void)Base64UrlDecode(in, &out);
    }
  }
  return 0;
}
