// Runs the real ocireg binary for tests: a temp store, a free loopback port
// (the server binds port 0 and reports it through --port-file), readiness
// via GET /v2/. Stops it with SIGTERM (or SIGKILL on request) by PID.
//
// With OCIB_TEST_CONFIG set, each registry also gets --config with that
// file (the conformance suite's run with TLS and auth); Client() then
// speaks HTTPS verified against OCIB_TEST_CA and sends the Basic
// credentials in OCIB_TEST_CREDENTIALS ("user:password").
//
// With OCIB_TEST_REPLICAS=N (N >= 2; the config then names a shared
// database), N replicas run behind Debian's nginx as a round-robin
// balancer; port() is nginx's, pid() and log_path() the first replica's,
// and Stop() and Kill() stop them all.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace ocib::testing {

std::string OciregPath();  // build/bin/ocireg next to the test binary

class RegistryProcess {
 public:
  // root: the store directory (kept across restarts by the caller).
  explicit RegistryProcess(std::string root,
                           std::vector<std::string> extra_args = {});
  ~RegistryProcess();
  RegistryProcess(const RegistryProcess&) = delete;
  RegistryProcess& operator=(const RegistryProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + host(); }
  const std::string& log_path() const { return log_; }
  std::unique_ptr<httplib::Client> Client() const;
  // SIGTERM (graceful) and wait; returns the exit status.
  int Stop();
  void Kill();           // SIGKILL and wait
  void Signal(int sig);  // send without waiting

 private:
  static pid_t Spawn(std::vector<std::string> args, const std::string& log);
  int WaitPort(pid_t pid, const std::string& port_file,
               std::chrono::steady_clock::time_point deadline);
  void StartNginx(const std::vector<int>& ports, const std::string& tag);
  void StopOthers(int sig);  // the other replicas and nginx

  std::string root_, log_, port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::vector<pid_t> others_;  // replicas 2..N
  pid_t nginx_ = -1;
};

// A plain TCP connection to 127.0.0.1:port, for requests no client
// library sends. Throws if it cannot connect.
int RawConnect(int port);

// Reads from s until the peer closes it or `timeout_ms` passes with
// nothing new. *closed tells which.
std::string ReadUntilClose(int s, int timeout_ms, bool* closed = nullptr);

// The resident set size of a process, in KiB (0 if unknown).
long RssKiB(pid_t pid);

}  // namespace ocib::testing
