#include "registry_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace ocib::testing {

std::string OciregPath() {
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path() / "ocireg").string();
}

RegistryProcess::RegistryProcess(std::string root,
                                 std::vector<std::string> extra_args)
    : root_(std::move(root)) {
  std::filesystem::create_directories(root_);
  static int counter = 0;
  std::string tag = std::to_string(getpid()) + "-" + std::to_string(counter++);
  port_file_ = root_ + "/../port-" + tag;
  log_ = root_ + "/../access-" + tag + ".log";
  std::filesystem::remove(port_file_);
  std::vector<std::string> args = {OciregPath(),  "serve",   "--listen",
                                   "127.0.0.1:0", "--root",  root_,
                                   "--port-file", port_file_};
  // OCIB_TEST_CONFIG: run every test registry with this config (TLS and
  // auth, or object storage); its listen and root are replaced by the
  // flags above.
  // "@UNIQUE@" in that file becomes a name of the root's own (e.g. an
  // object-store prefix per store).
  if (const char* cfg = std::getenv("OCIB_TEST_CONFIG")) {
    std::ifstream in(cfg);
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    std::string path = cfg;
    // "@UNIQUE_ID@": a short one ("t" and 16 hex digits), e.g. a database
    // schema per store.
    if (size_t at = text.find("@UNIQUE_ID@"); at != std::string::npos) {
      char id[32];
      std::snprintf(id, sizeof id, "t%016zx",
                    std::hash<std::string>()(
                        std::filesystem::weakly_canonical(root_).string()));
      do {
        text.replace(at, 11, id);
      } while ((at = text.find("@UNIQUE_ID@")) != std::string::npos);
      path = root_ + "/../config-" + tag + ".json";
      std::ofstream(path) << text;
    }
    if (size_t at = text.find("@UNIQUE@"); at != std::string::npos) {
      // Named after the root, so a restart on the same root finds it.
      std::string name;
      for (char ch : std::filesystem::weakly_canonical(root_).string())
        name += (ch == '/') ? '_' : ch;
      do {
        text.replace(at, 8, name);
      } while ((at = text.find("@UNIQUE@")) != std::string::npos);
      path = root_ + "/../config-" + tag + ".json";
      std::ofstream(path) << text;
    }
    args.push_back("--config");
    args.push_back(path);
  }
  // After it: a test's own --config replaces it.
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  pid_ = Spawn(args, log_);
  port_ = WaitPort(pid_, port_file_, deadline);
  // OCIB_TEST_REPLICAS=N: N replicas (the first is the one above; the
  // others have roots of their own beside it and the same config, so the
  // same shared index and bucket) behind nginx, whose port is port().
  if (const char* n = std::getenv("OCIB_TEST_REPLICAS");
      n && std::atoi(n) > 1) {
    std::vector<int> ports = {port_};
    for (int i = 2; i <= std::atoi(n); ++i) {
      std::vector<std::string> more = args;
      std::string r = root_ + ".r" + std::to_string(i);
      std::string pf = port_file_ + ".r" + std::to_string(i);
      std::filesystem::create_directories(r);
      std::filesystem::remove(pf);
      for (size_t k = 0; k + 1 < more.size(); ++k) {
        if (more[k] == "--root") more[k + 1] = r;
        if (more[k] == "--port-file") more[k + 1] = pf;
      }
      pid_t p = Spawn(more, log_ + ".r" + std::to_string(i));
      others_.push_back(p);
      ports.push_back(WaitPort(p, pf, deadline));
    }
    StartNginx(ports, tag);
  }
  while (std::chrono::steady_clock::now() < deadline) {
    auto c = Client();
    auto r = c->Get("/v2/");
    if (r && r->status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("ocireg not ready");
}

pid_t RegistryProcess::Spawn(std::vector<std::string> args,
                             const std::string& log) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "a");
    if (f) dup2(fileno(f), 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int RegistryProcess::WaitPort(pid_t pid, const std::string& port_file,
                              std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream pf(port_file);
    int port = 0;
    if (pf >> port && port > 0) return port;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      if (pid == pid_) pid_ = -1;
      throw std::runtime_error("ocireg exited during start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("ocireg did not report a port");
}

// nginx as the README sets it up, on a port found by binding port 0 (held
// until nginx is about to start).
void RegistryProcess::StartNginx(const std::vector<int>& ports,
                                 const std::string& tag) {
  std::string dir = root_ + "/../nginx-" + tag;
  std::filesystem::create_directories(dir);
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("no port for nginx");
  int port = ntohs(a.sin_port);
  std::ofstream conf(dir + "/nginx.conf");
  conf << "daemon off;\nworker_processes 1;\npid " << dir
       << "/nginx.pid;\nerror_log " << dir << "/error.log;\n"
       << "events { worker_connections 4096; }\nhttp {\n  access_log off;\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
    conf << "  " << t << "_temp_path " << dir << "/" << t << ";\n";
  conf << "  upstream ocireg {\n";
  for (int p : ports)
    conf << "    server 127.0.0.1:" << p << " max_fails=1 fail_timeout=3s;\n";
  conf << "    keepalive 64;\n  }\n  server {\n    listen 127.0.0.1:" << port
       << ";\n    client_max_body_size 0;\n    proxy_request_buffering off;\n"
       << "    proxy_buffering off;\n    location / {\n"
       << "      proxy_pass http://ocireg;\n      proxy_http_version 1.1;\n"
       << "      proxy_set_header Connection \"\";\n"
       << "      proxy_set_header Host $http_host;\n"
       << "      proxy_read_timeout 300s;\n"
       << "      proxy_next_upstream error timeout non_idempotent;\n"
       << "    }\n  }\n}\n";
  conf.close();
  ::close(s);
  nginx_ = Spawn({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-p", dir},
                 dir + "/stdout.log");
  port_ = port;
}

void RegistryProcess::StopOthers(int sig) {
  for (pid_t p : others_) kill(p, sig);
  // Never SIGKILL nginx's master: its workers would outlive it. SIGTERM
  // is its fast shutdown, workers included.
  if (nginx_ > 0) kill(nginx_, SIGTERM);
  for (pid_t p : others_) waitpid(p, nullptr, 0);
  if (nginx_ > 0) waitpid(nginx_, nullptr, 0);
  others_.clear();
  nginx_ = -1;
}

RegistryProcess::~RegistryProcess() {
  if (pid_ > 0 || !others_.empty()) Kill();
}

std::unique_ptr<httplib::Client> RegistryProcess::Client() const {
  const char* ca = std::getenv("OCIB_TEST_CA");
  const char* creds = std::getenv("OCIB_TEST_CREDENTIALS");
  std::unique_ptr<httplib::Client> c;
  if (ca && *ca) {
    c = std::make_unique<httplib::Client>("https://127.0.0.1:" +
                                          std::to_string(port_));
    c->set_ca_cert_path(ca);
    c->enable_server_certificate_verification(true);
  } else {
    c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  }
  if (creds && std::strchr(creds, ':')) {
    std::string u(creds, std::strchr(creds, ':'));
    c->set_basic_auth(u, std::strchr(creds, ':') + 1);
  }
  c->set_read_timeout(60, 0);
  c->set_write_timeout(60, 0);
  c->set_keep_alive(true);
  return c;
}

int RegistryProcess::Stop() {
  StopOthers(SIGTERM);
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
  return st;
}

void RegistryProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

void RegistryProcess::Kill() {
  StopOthers(SIGKILL);
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

int RawConnect(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw std::runtime_error("cannot connect to 127.0.0.1:" +
                             std::to_string(port));
  return s;
}

std::string ReadUntilClose(int s, int timeout_ms, bool* closed) {
  std::string out;
  char buf[65536];
  if (closed) *closed = false;
  while (true) {
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return out;
    ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return out;
    }
    out.append(buf, n);
  }
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kb = 0;
      in >> kb;
      return kb;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

}  // namespace ocib::testing
