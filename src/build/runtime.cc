#include "build/runtime.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "build/state_paths.h"

namespace ocib::build {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

Status Errno(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno));
}

// The runtime child of RunContainer, for forwarding SIGINT/SIGTERM to it
// (runc passes them on to the container's process).
volatile pid_t g_runtime_child = 0;
volatile sig_atomic_t g_stop_signal = 0;

void Forward(int sig) {
  g_stop_signal = sig;
  pid_t p = g_runtime_child;
  if (p > 0) ::kill(p, sig);
}

// Like `docker stop`: a process that ignores the signal (as a PID 1
// without a handler does) is killed after a grace period.
void KillContainer(const std::string& runtime, const std::string& root,
                   const std::string& id) {
  pid_t k = fork();
  if (k == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execlp(runtime.c_str(), runtime.c_str(), "--root", root.c_str(), "kill",
           id.c_str(), "KILL", static_cast<char*>(nullptr));
    _exit(127);
  }
  if (k > 0) waitpid(k, nullptr, 0);
}

constexpr int kStopGraceSeconds = 5;

std::string RandomId() {
  unsigned char b[8];
  RAND_bytes(b, sizeof b);
  char out[17];
  for (int i = 0; i < 8; ++i) std::snprintf(out + 2 * i, 3, "%02x", b[i]);
  return std::string("ocibuild-") + out;
}

// Docker's default capability set.
const std::vector<std::string>& DefaultCaps() {
  static const std::vector<std::string> caps = {"CAP_CHOWN",
                                                "CAP_DAC_OVERRIDE",
                                                "CAP_FSETID",
                                                "CAP_FOWNER",
                                                "CAP_MKNOD",
                                                "CAP_NET_RAW",
                                                "CAP_SETGID",
                                                "CAP_SETUID",
                                                "CAP_SETFCAP",
                                                "CAP_SETPCAP",
                                                "CAP_NET_BIND_SERVICE",
                                                "CAP_SYS_CHROOT",
                                                "CAP_KILL",
                                                "CAP_AUDIT_WRITE"};
  return caps;
}

bool LookupColon(const std::string& file, const std::string& key, bool by_name,
                 std::vector<std::string>* fields) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string part;
    while (std::getline(ss, part, ':')) f.push_back(part);
    if (f.size() < 3) continue;
    if ((by_name && f[0] == key) || (!by_name && f[2] == key)) {
      *fields = f;
      return true;
    }
  }
  return false;
}

bool IsNumber(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<std::unique_ptr<OverlayMount>> OverlayMount::Mount(
    const std::vector<std::string>& lowers, const std::string& upper,
    const std::string& work, const std::string& target) {
  if (lowers.empty()) return InvalidArgument("overlay needs a lower directory");
  std::string opts = "lowerdir=";
  for (size_t i = 0; i < lowers.size(); ++i) opts += (i ? ":" : "") + lowers[i];
  if (!upper.empty()) opts += ",upperdir=" + upper + ",workdir=" + work;
  if (upper.empty() && lowers.size() == 1) {
    // overlay needs two lowers without an upper: bind mount read-only.
    if (::mount(lowers[0].c_str(), target.c_str(), nullptr, MS_BIND, nullptr) !=
        0)
      return Errno("bind mount " + lowers[0]);
    ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY,
            nullptr);
  } else if (::mount("overlay", target.c_str(), "overlay", 0, opts.c_str()) !=
             0) {
    return Errno("mount overlay at " + target + " (" +
                 std::to_string(opts.size()) + " bytes of options)");
  }
  std::unique_ptr<OverlayMount> m(new OverlayMount());
  m->target_ = target;
  return m;
}

OverlayMount::~OverlayMount() {
  if (::umount2(target_.c_str(), 0) != 0)
    ::umount2(target_.c_str(), MNT_DETACH);
}

Status ResolveUser(const std::string& user, const std::string& rootfs,
                   ProcessSpec* spec) {
  if (user.empty()) {
    spec->uid = spec->gid = 0;
    return Status::Ok();
  }
  std::string u = user, g;
  size_t colon = user.find(':');
  if (colon != std::string::npos) {
    u = user.substr(0, colon);
    g = user.substr(colon + 1);
  }
  std::vector<std::string> pw;
  bool found = LookupColon(rootfs + "/etc/passwd", u, !IsNumber(u), &pw);
  if (IsNumber(u)) {
    spec->uid = static_cast<uint32_t>(std::stoul(u));
    // A uid /etc/passwd does not list runs with gid 0, as runc (and so
    // docker and BuildKit) resolve it.
    spec->gid =
        found && pw.size() > 3 ? static_cast<uint32_t>(std::stoul(pw[3])) : 0;
  } else {
    if (!found || pw.size() < 4)
      return InvalidArgument("unknown user \"" + u + "\" (not in /etc/passwd)");
    spec->uid = static_cast<uint32_t>(std::stoul(pw[2]));
    spec->gid = static_cast<uint32_t>(std::stoul(pw[3]));
  }
  if (!g.empty()) {
    if (IsNumber(g)) {
      spec->gid = static_cast<uint32_t>(std::stoul(g));
    } else {
      std::vector<std::string> gr;
      if (!LookupColon(rootfs + "/etc/group", g, true, &gr))
        return InvalidArgument("unknown group \"" + g +
                               "\" (not in /etc/group)");
      spec->gid = static_cast<uint32_t>(std::stoul(gr[2]));
    }
  }
  return Status::Ok();
}

Result<int> RunContainer(const std::string& runtime,
                         const std::string& state_dir,
                         const std::string& rootfs, const ProcessSpec& spec,
                         std::vector<std::string>* created) {
  std::string id = RandomId();
  std::string bundle = StatePaths{state_dir}.Bundles() + "/" + id;
  std::error_code ec;
  fs::create_directories(bundle, ec);
  if (ec) return Internal("create bundle: " + ec.message());

  json mounts = json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev"},
       {"type", "tmpfs"},
       {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"},
       {"type", "devpts"},
       {"source", "devpts"},
       {"options",
        {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
      {{"destination", "/dev/shm"},
       {"type", "tmpfs"},
       {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"},
       {"type", "mqueue"},
       {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"},
       {"type", "sysfs"},
       {"source", "sysfs"},
       {"options", {"nosuid", "noexec", "nodev", "ro"}}},
  });
  size_t stubs_from = mounts.size();  // the defaults above stay, as BuildKit's
  for (const char* f : {"/etc/resolv.conf", "/etc/hosts"})
    if (fs::exists(f))
      mounts.push_back({{"destination", f},
                        {"type", "bind"},
                        {"source", f},
                        {"options", {"rbind", "ro"}}});
  for (const auto& m : spec.mounts)
    mounts.push_back({{"destination", m.destination},
                      {"type", m.type},
                      {"source", m.source},
                      {"options", m.options}});
  // Mount points the runtime will have to create: parents first.
  if (created) {
    for (size_t k = stubs_from; k < mounts.size(); ++k) {
      const json& m = mounts[k];
      std::string dest = m["destination"].get<std::string>();
      std::string cur;
      size_t i = 1;
      while (true) {
        size_t j = dest.find('/', i);
        cur = dest.substr(1, (j == std::string::npos ? dest.size() : j) - 1);
        if (!fs::exists(rootfs + "/" + cur, ec) &&
            std::find(created->begin(), created->end(), cur) == created->end())
          created->push_back(cur);
        if (j == std::string::npos) break;
        i = j + 1;
      }
    }
  }
  json caps = DefaultCaps();
  // The container gets this process's open-file limit: raising it needs
  // privileges a sandbox may not grant.
  struct rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  json gids = spec.additional_gids;
  json namespaces = json::array({{{"type", "pid"}},
                                 {{"type", "ipc"}},
                                 {{"type", "uts"}},
                                 {{"type", "mount"}}});
  if (spec.network_none) namespaces.push_back({{"type", "network"}});
  json config = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user",
         {{"uid", spec.uid}, {"gid", spec.gid}, {"additionalGids", gids}}},
        {"args", spec.args},
        {"env", spec.env},
        {"cwd", spec.cwd.empty() ? "/" : spec.cwd},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"},
                                  {"hard", nofile.rlim_max},
                                  {"soft", nofile.rlim_cur}}})},
        {"noNewPrivileges", false}}},
      {"root", {{"path", fs::absolute(rootfs).string()}, {"readonly", false}}},
      {"hostname", "ocibuild"},
      {"mounts", mounts},
      {"linux",
       {{"namespaces", namespaces},
        {"maskedPaths",
         {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
          "/sys/firmware", "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
          "/proc/sysrq-trigger"}}}},
  };
  {
    std::ofstream out(bundle + "/config.json");
    out << config.dump(2);
    if (!out) return Internal("write runtime config");
  }
  std::string root = StatePaths{state_dir}.RuntimeRoot();
  fs::create_directories(root, ec);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (spec.output_fd >= 0) {
      dup2(spec.output_fd, 1);
      dup2(spec.output_fd, 2);
    }
    execlp(runtime.c_str(), runtime.c_str(), "--root", root.c_str(), "run",
           "--bundle", bundle.c_str(), id.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "cannot run %s: %s\n", runtime.c_str(),
                 std::strerror(errno));
    _exit(127);
  }
  g_runtime_child = pid;
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = Forward;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_stop_signal = 0;
  int status = 0;
  auto signalled_at = std::chrono::steady_clock::time_point();
  bool killed = false;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (g_stop_signal &&
        signalled_at == std::chrono::steady_clock::time_point())
      signalled_at = std::chrono::steady_clock::now();
    if (!killed && g_stop_signal &&
        std::chrono::steady_clock::now() - signalled_at >
            std::chrono::seconds(kStopGraceSeconds)) {
      KillContainer(runtime, root, id);
      killed = true;
    }
    ::usleep(20000);
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  g_runtime_child = 0;
  fs::remove_all(bundle, ec);
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 127)
      return Internal("the OCI runtime \"" + runtime +
                      "\" could not be started");
    return WEXITSTATUS(status);
  }
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace ocib::build
