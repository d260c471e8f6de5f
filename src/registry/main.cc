// ocireg: parses flags, loads the config, opens the store, serves.
//
//   ocireg serve [--config FILE] [--listen HOST:PORT] [--root DIR]
//                [--port-file FILE] [--mirror [NS=]URL]...
//                [--tls-cert FILE --tls-key FILE] [--read-only]
//                [--debug-listen HOST:PORT]
//
//   ocireg gc --root DIR [--config FILE] [--dry-run] [--min-age DURATION]
//             [--delete-untagged]   (the config gives retention rules)
//       garbage collection of a stopped registry's store (min-age 0s
//       unless given: nothing else can use it meanwhile); with a shared
//       "database" in the config, replicas may be serving: min-age is the
//       config's gc.min_age unless given, and one collector runs at a time
//   ocireg du --root DIR [--json]
//       bytes per namespace and repository of a registry's store
//   ocireg --version
//
// SIGHUP re-reads the config file's read_only, the TLS certificate and
// key, and the htpasswd and ACL files; SIGTERM/SIGINT stop gracefully.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gc/garbage_collector.h"
#include "registry/config.h"
#include "registry/registry.h"
#include "registry/storage.h"
#include "registry/usage.h"
#include "store/blob_store.h"
#include "util/version.h"

namespace {

int Usage() {
  std::fprintf(
      stderr,
      "usage: ocireg serve [--config FILE] [--listen HOST:PORT] [--root DIR] "
      "[--port-file FILE] [--mirror [NS=]URL]...\n"
      "             [--tls-cert FILE --tls-key FILE] [--read-only]\n"
      "  --mirror URL      pull-through mirror of URL for docker.io and "
      "unqualified names\n"
      "  --mirror NS=URL   mirror of URL for namespace NS (may repeat)\n"
      "  --tls-cert/--tls-key  serve HTTPS with this PEM certificate and key\n"
      "  --read-only       refuse every write (maintenance)\n"
      "  --debug-listen HOST:PORT  serve /metrics, /healthz and /readyz "
      "there\n"
      "       ocireg gc --root DIR [--config FILE] [--dry-run] "
      "[--min-age DURATION] "
      "[--delete-untagged]\n"
      "       ocireg du --root DIR [--json]\n"
      "       ocireg --version\n");
  return 2;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ocireg: %s\n", msg.c_str());
  return 1;
}

// ocireg du: disk use of a store (a read-only snapshot, so it also works
// beside a running server).
int Du(int argc, char** argv) {
  using namespace ocib;
  std::string root;
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--root" && i + 1 < argc)
      root = argv[++i];
    else if (a == "--json")
      json = true;
    else
      return Usage();
  }
  if (root.empty()) return Fail("du needs --root DIR");
  StoreOptions so;
  so.root = root;
  so.read_only = true;
  so.block_cache_bytes = 1 << 20;
  auto store = OpenStore(so);
  if (!store.ok())
    return Fail("store " + root + ": " + store.status().message());
  auto u = registry::ComputeUsage(store->get());
  if (!u.ok()) return Fail("du: " + u.status().message());
  std::fputs(json ? (u->Json() + "\n").c_str() : u->Table().c_str(), stdout);
  return 0;
}

// ocireg gc: collects garbage in a store no server has open.
int Gc(int argc, char** argv) {
  using namespace ocib;
  std::string root;
  registry::Config cfg;  // its storage section says where blob bytes are
  gc::GcOptions o;
  o.min_age_seconds = 0;
  bool min_age_given = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--root" && i + 1 < argc) {
      root = argv[++i];
    } else if (a == "--dry-run") {
      o.dry_run = true;
    } else if (a == "--delete-untagged") {
      o.delete_untagged = true;
    } else if (a == "--config" && i + 1 < argc) {
      auto c = registry::LoadConfig(argv[++i]);
      if (!c.ok()) return Fail(c.status().message());
      o.delete_untagged = o.delete_untagged || c->gc.delete_untagged;
      o.retention = c->retention;
      cfg = *c;
    } else if (a == "--min-age" && i + 1 < argc) {
      auto d = gc::ParseDurationSeconds(argv[++i]);
      if (!d.ok()) return Fail("--min-age: " + d.status().message());
      o.min_age_seconds = *d;
      min_age_given = true;
    } else {
      std::fprintf(stderr, "ocireg: unknown or incomplete gc flag %s\n",
                   a.c_str());
      return Usage();
    }
  }
  if (root.empty()) return Fail("gc needs --root DIR");
  // A shared index has live replicas: uploads in flight are protected by
  // the same minimum age as an online collection, unless told otherwise.
  if (cfg.database.enabled && !min_age_given)
    o.min_age_seconds = cfg.gc.min_age_seconds;
  StoreOptions so;
  so.root = root;
  so.block_cache_bytes = 1 << 20;  // one pass over the metadata
  so.write_buffer_bytes = 4 << 20;
  auto store = registry::OpenConfiguredStore(cfg, so);
  if (!store.ok())
    return Fail("store " + root + ": " + store.status().message() +
                " (is a server using it? use POST /admin/gc there)");
  auto st = gc::CollectGarbage(store->get(), o);
  if (!st.ok()) return Fail("gc: " + st.status().message());
  if (o.dry_run)
    for (const auto& w : st->would_delete)
      std::printf("would delete %s\n", w.c_str());
  std::printf("%s%s\n", o.dry_run ? "dry run: " : "", st->Summary().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ocib;
  if (argc >= 2 && (std::string(argv[1]) == "--version" ||
                    std::string(argv[1]) == "version")) {
    std::printf("ocireg %s (commit %s)\n", Version(), GitCommit());
    return 0;
  }
  if (argc >= 2 && std::string(argv[1]) == "gc") return Gc(argc, argv);
  if (argc >= 2 && std::string(argv[1]) == "du") return Du(argc, argv);
  if (argc < 2 || std::string(argv[1]) != "serve") return Usage();
  std::string config_path, listen, root, port_file, tls_cert, tls_key,
      debug_listen;
  bool read_only = false;
  std::vector<std::string> mirrors;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string mirror;
    bool ok = (a == "--config" && value(&config_path)) ||
              (a == "--listen" && value(&listen)) ||
              (a == "--debug-listen" && value(&debug_listen)) ||
              (a == "--root" && value(&root)) ||
              (a == "--port-file" && value(&port_file)) ||
              (a == "--tls-cert" && value(&tls_cert)) ||
              (a == "--tls-key" && value(&tls_key)) ||
              (a == "--read-only" && (read_only = true)) ||
              (a == "--mirror" && value(&mirror));
    if (ok && !mirror.empty()) mirrors.push_back(mirror);
    if (!ok) {
      std::fprintf(stderr, "ocireg: unknown or incomplete flag %s\n",
                   a.c_str());
      return Usage();
    }
  }
  registry::Config cfg;
  if (!config_path.empty()) {
    auto c = registry::LoadConfig(config_path);
    if (!c.ok()) return Fail(c.status().message());
    cfg = *c;
  }
  if (!listen.empty()) cfg.listen = listen;
  if (!debug_listen.empty()) cfg.debug.listen = debug_listen;
  if (!root.empty()) cfg.root = root;
  if (!tls_cert.empty()) cfg.tls.cert_file = tls_cert;
  if (!tls_key.empty()) cfg.tls.key_file = tls_key;
  if (read_only) cfg.read_only = true;
  if (!mirrors.empty())
    cfg.upstreams.clear();  // flags replace the file's upstreams
  for (const auto& v : mirrors) {
    auto u = registry::ParseMirrorFlag(v);
    if (!u.ok()) return Fail(u.status().message());
    cfg.upstreams.push_back(*u);
  }
  if (Status s = registry::Validate(cfg); !s.ok()) return Fail(s.message());

  // Signals are taken by a dedicated thread; block them everywhere else.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // The access log is block-buffered and flushed by the server every
  // 100 ms, so logging costs no system call per request.
  static char log_buffer[1 << 16];
  setvbuf(stdout, log_buffer, _IOFBF, sizeof log_buffer);
  // Hundreds of pool threads would otherwise each get a malloc arena.
  mallopt(M_ARENA_MAX, 2);
  // Every open connection is a descriptor: allow max_connections plus the
  // store's files.
  rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
      nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  StoreOptions so;
  so.root = cfg.root;
  so.upload_expiry = std::chrono::seconds(cfg.upload_expiry_seconds);
  so.max_uploads = static_cast<size_t>(cfg.max_uploads);
  so.max_uploads_per_repo = static_cast<size_t>(cfg.max_uploads_per_repository);
  so.sync = cfg.sync;
  so.written_cache_bytes = static_cast<uint64_t>(cfg.written_cache_mib) << 20;
  so.reserved_bytes = static_cast<uint64_t>(cfg.reserved_space_mib) << 20;
  auto store = registry::OpenConfiguredStore(cfg, so);
  if (!store.ok())
    return Fail("store " + cfg.root + ": " + store.status().message());

  int rc = 0;
  {
    registry::Registry reg(cfg, store->get());
    auto port = reg.Bind();
    if (!port.ok()) return Fail(port.status().message());
    std::fprintf(stderr, "ocireg: listening on %s://%s:%d, store %s%s%s\n",
                 cfg.tls.enabled() ? "https" : "http", cfg.host().c_str(),
                 *port, cfg.root.c_str(),
                 cfg.auth.enabled() ? ", authentication on" : "",
                 cfg.read_only ? ", read-only" : "");
    if (!cfg.tls.enabled() && !IsLoopback(cfg.host()))
      std::fprintf(stderr,
                   "ocireg: WARNING: serving plain HTTP on %s: passwords, "
                   "tokens and images cross the network unencrypted and "
                   "can be read or altered; set tls.cert_file and "
                   "tls.key_file\n",
                   cfg.host().c_str());
    if (!cfg.debug.listen.empty() &&
        !IsLoopback(registry::HostOf(cfg.debug.listen)))
      std::fprintf(stderr,
                   "ocireg: WARNING: metrics and health on %s are plain "
                   "HTTP without authentication; keep that address to a "
                   "trusted network\n",
                   cfg.debug.listen.c_str());
    if (!cfg.auth.enabled() && !IsLoopback(cfg.host()))
      std::fprintf(stderr,
                   "ocireg: WARNING: no authentication: anyone who can reach "
                   "%s may push and delete\n",
                   cfg.host().c_str());
    if (!port_file.empty()) {
      std::string tmp = port_file + ".tmp";
      std::ofstream(tmp) << *port << "\n";
      std::rename(tmp.c_str(), port_file.c_str());
    }
    std::thread signals([&reg, set, &config_path, &cfg, read_only] {
      while (true) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
          registry::Config next = cfg;
          if (!config_path.empty()) {
            auto c = registry::LoadConfig(config_path);
            if (c.ok())
              next.read_only = c->read_only || read_only;
            else
              std::fprintf(stderr, "ocireg: reload: %s\n",
                           c.status().message().c_str());
          }
          Status s = reg.Reload(next);
          std::fprintf(stderr, "ocireg: reloaded%s%s%s\n",
                       next.read_only ? " (read-only)" : "", s.ok() ? "" : ": ",
                       s.ok() ? "" : s.message().c_str());
          continue;
        }
        std::fprintf(stderr, "ocireg: %s, finishing in-flight requests\n",
                     strsignal(sig));
        reg.Shutdown();
        return;
      }
    });
    Status s = reg.Serve();
    if (!s.ok()) rc = Fail(s.message());
    // If Serve ended on its own, wake the signal thread.
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
  }
  store->reset();  // closes the database cleanly
  std::fprintf(stderr, "ocireg: stopped\n");
  return rc;
}
