#include "auth/login_throttle.h"

#include <algorithm>

namespace ocib::auth {

int64_t LoginThrottle::RetryAfter(const std::string& key) {
  auto now = Clock::now();
  MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.locked_until <= now) return 0;
  auto left = std::chrono::duration_cast<std::chrono::seconds>(
      it->second.locked_until - now);
  return std::max<int64_t>(1, left.count() + 1);
}

void LoginThrottle::Failure(const std::string& key) {
  auto now = Clock::now();
  MutexLock l(&mu_);
  if (entries_.size() >= o_.max_keys && !entries_.count(key)) Trim(now);
  Entry& e = entries_[key];
  if (e.failures == 0 || now - e.first > o_.window) {
    e.failures = 0;
    e.first = now;
  }
  if (++e.failures >= o_.max_failures) {
    e.next_lockout = e.next_lockout.count() == 0
                         ? o_.lockout
                         : std::min<std::chrono::seconds>(
                               e.next_lockout * 2, std::chrono::hours(1));
    e.locked_until = now + e.next_lockout;
    e.failures = 0;
  }
}

void LoginThrottle::Success(const std::string& key) {
  MutexLock l(&mu_);
  entries_.erase(key);
}

void LoginThrottle::Trim(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();)
    if (it->second.locked_until <= now && now - it->second.first > o_.window)
      it = entries_.erase(it);
    else
      ++it;
  if (entries_.size() < o_.max_keys) return;
  // Still full of live entries: drop the oldest windows.
  auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                 [](const auto& a, const auto& b) {
                                   return a.second.first < b.second.first;
                                 });
  if (oldest != entries_.end()) entries_.erase(oldest);
}

}  // namespace ocib::auth
