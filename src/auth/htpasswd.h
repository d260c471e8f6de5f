// A users file in Apache htpasswd format with bcrypt entries
// ("alice:$2y$10$..."), as Distribution's htpasswd auth reads it, and the
// password check against it.
//
// Only bcrypt ($2y$, $2b$, $2a$) is accepted: a line with another scheme
// (crypt, MD5, SHA1, plain) makes Load fail with kInvalidArgument naming
// the line. Verification uses libcrypt and costs tens of milliseconds; a
// successful check is remembered (keyed by a SHA-256 of user and
// password, with the file's generation) so repeated requests with the
// same credentials do not pay it again. A failed check is never cached,
// and unknown users cost a bcrypt run too, so timing does not tell which
// users exist.
//
// The file is re-read when its size, mtime or inode changes (looked at no
// more than once a second). If the new content is invalid the old users
// stay and the error is reported once on stderr.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace ocib::auth {

class Htpasswd {
 public:
  // Reads `path`. Errors: kNotFound (missing or unreadable file),
  // kInvalidArgument (a malformed or non-bcrypt line).
  static Result<std::unique_ptr<Htpasswd>> Open(const std::string& path);
  ~Htpasswd();

  // True if `user` is in the file and `password` matches.
  bool Verify(std::string_view user, std::string_view password);
  // True if this user and password passed Verify before and the file has
  // not changed since; never runs bcrypt.
  bool VerifyCached(std::string_view user, std::string_view password);
  // True if `user` is in the file (for refresh tokens).
  bool HasUser(std::string_view user);

  // Re-reads the file now if it changed. For tests and SIGHUP.
  Status Reload();

 private:
  class Impl;
  explicit Htpasswd(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses htpasswd text into user -> hash. Exposed for the unit test and
// the fuzzer.
Status ParseHtpasswd(std::string_view text,
                     std::vector<std::pair<std::string, std::string>>* out);

// True if `password` matches the bcrypt `hash` (libcrypt).
bool BcryptMatches(std::string_view password, const std::string& hash);

}  // namespace ocib::auth
