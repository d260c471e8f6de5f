#include "registry/access_log.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace ocib::registry {

std::string Iso8601Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void AccessLog::Log(const net::Request& req, const net::Response& res,
                    double ms) {
  uint64_t bytes = req.method == "HEAD" ? 0 : res.body_length();
  const std::string& note = res.log_note;
  if (format_ == "json") {
    nlohmann::json j = {{"time", Iso8601Now()},
                        {"client", req.remote_addr},
                        {"method", req.method},
                        {"path", req.path},
                        {"status", res.status},
                        {"bytes", bytes},
                        {"duration_ms", std::round(ms * 1000) / 1000}};
    if (!note.empty()) j["cache"] = note;
    std::string s =
        j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
    MutexLock l(&mu_);
    std::fwrite(s.data(), 1, s.size(), stdout);
    return;
  }
  std::string path = net::EscapeForLog(req.path.substr(0, 1500));
  std::string method = net::EscapeForLog(req.method);
  char line[2048];
  int n = std::snprintf(
      line, sizeof line, "%s %s \"%s %s\" %d %llu %.3fms%s%s\n",
      Iso8601Now().c_str(),
      req.remote_addr.empty() ? "-" : req.remote_addr.c_str(),
      method.empty() ? "-" : method.c_str(), path.empty() ? "-" : path.c_str(),
      res.status, static_cast<unsigned long long>(bytes), ms,
      note.empty() ? "" : " cache=", note.c_str());
  if (n < 0) return;
  MutexLock l(&mu_);
  std::fwrite(line, 1, std::min<size_t>(n, sizeof line - 1), stdout);
}

void AccessLog::Flush() {
  MutexLock l(&mu_);
  std::fflush(stdout);
}

}  // namespace ocib::registry
