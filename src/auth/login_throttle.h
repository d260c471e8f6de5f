// Slows down password guessing: after `max_failures` failed logins within
// `window` for one key (a user name, or a client address), that key is
// refused for `lockout`, doubling with each further failure up to an
// hour. A success clears the user's key. The table is bounded: past
// max_keys entries, expired ones are dropped, then the oldest.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "util/mutex.h"

namespace ocib::auth {

struct ThrottleOptions {
  int max_failures = 10;
  std::chrono::seconds window{60};
  std::chrono::seconds lockout{30};
  size_t max_keys = 100000;
};

class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LoginThrottle(ThrottleOptions o = {}) : o_(o) {}

  // Seconds until `key` may try again; 0 if it may now.
  int64_t RetryAfter(const std::string& key) EXCLUDES(mu_);
  void Failure(const std::string& key) EXCLUDES(mu_);
  void Success(const std::string& key) EXCLUDES(mu_);

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point first;         // of the current window
    Clock::time_point locked_until;  // epoch: not locked
    std::chrono::seconds next_lockout{0};
  };
  void Trim(Clock::time_point now) REQUIRES(mu_);

  const ThrottleOptions o_;
  Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ GUARDED_BY(mu_);
};

}  // namespace ocib::auth
