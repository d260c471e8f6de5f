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

namespace {

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string Client(const net::Request& req) {
  if (req.remote_addr.empty()) return "-";
  bool v6 = req.remote_addr.find(':') != std::string::npos;
  return (v6 ? "[" + req.remote_addr + "]" : req.remote_addr) + ":" +
         std::to_string(req.remote_port);
}

void Write(Mutex* mu, const std::string& line) {
  MutexLock l(mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

void AccessLog::Log(const net::Request& req, const net::Response& res,
                    double ms) {
  uint64_t bytes = req.method == "HEAD" ? 0 : res.body_length();
  const std::string& note = res.log_note;
  std::string agent = req.get_header_value("User-Agent").substr(0, 512);
  if (format_ == "json") {
    nlohmann::json j = {{"time", Iso8601Now()},
                        {"client", req.remote_addr},
                        {"port", req.remote_port},
                        {"user", res.log_user},
                        {"method", req.method},
                        {"path", req.path},
                        {"status", res.status},
                        {"bytes", bytes},
                        {"duration_ms", std::round(ms * 1000) / 1000},
                        {"user_agent", agent}};
    if (!note.empty()) j["cache"] = note;
    return Write(&mu_, Dump(j));
  }
  std::string path = net::EscapeForLog(req.path.substr(0, 1500));
  std::string method = net::EscapeForLog(req.method);
  std::string user = net::EscapeForLog(res.log_user.substr(0, 256));
  agent = net::EscapeForLog(agent);
  char line[4096];
  int n = std::snprintf(
      line, sizeof line, "%s %s %s \"%s %s\" %d %llu %.3fms \"%s\"%s%s\n",
      Iso8601Now().c_str(), Client(req).c_str(), OrDash(user).c_str(),
      OrDash(method).c_str(), OrDash(path).c_str(), res.status,
      static_cast<unsigned long long>(bytes), ms, OrDash(agent).c_str(),
      note.empty() ? "" : " cache=", note.c_str());
  if (n < 0) return;
  Write(&mu_, std::string(line, std::min<size_t>(n, sizeof line - 1)));
}

void AccessLog::Audit(const net::Request& req, const std::string& user,
                      const char* action, const std::string& repository,
                      const std::string& reference, const std::string& digest) {
  if (format_ == "json")
    return Write(&mu_, Dump({{"time", Iso8601Now()},
                             {"audit", action},
                             {"user", user},
                             {"client", req.remote_addr},
                             {"port", req.remote_port},
                             {"repository", repository},
                             {"reference", reference},
                             {"digest", digest}}));
  Write(&mu_, Iso8601Now() + " audit " + action + " user=" +
                  OrDash(net::EscapeForLog(user)) + " client=" + Client(req) +
                  " repository=" + OrDash(net::EscapeForLog(repository)) +
                  " reference=" + OrDash(net::EscapeForLog(reference)) +
                  " digest=" + OrDash(net::EscapeForLog(digest)) + "\n");
}

void AccessLog::Flush() {
  MutexLock l(&mu_);
  std::fflush(stdout);
}

}  // namespace ocib::registry
