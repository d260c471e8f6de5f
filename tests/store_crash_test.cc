// Crash test: a child process ingests many blobs (small and multi-MiB, via
// upload sessions and direct writers), links them and commits manifests,
// and is SIGKILLed at a random moment. After each reopen:
//   * every visible blob re-hashes to its digest and has its recorded size;
//   * every blob the child saw committed (its journal) is visible;
//   * every tag resolves to a manifest whose blobs are linked;
//   * no bytes exist without a record (no half-committed blob), and every
//     surviving upload session reports the offset its bytes have.
// The binary re-executes itself as the child (`--crash-child ROOT SEED`).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "store/blob_store.h"
#include "temp_dir.h"

using namespace ocib;
using ocib::testing::RandomBytes;
using ocib::testing::TempDir;

namespace {

void Journal(int fd, const std::string& line) {
  std::string l = line + "\n";
  if (::write(fd, l.data(), l.size()) < 0) _exit(3);
}

[[noreturn]] void ChildMain(const std::string& root, uint64_t seed) {
  StoreOptions o;
  o.root = root;
  auto opened = OpenStore(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "child open: %s\n",
                 opened.status().ToString().c_str());
    _exit(2);
  }
  Store& s = **opened;
  int journal = ::open((root + "/../journal").c_str(),
                       O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0;; ++i) {
    size_t size =
        (rng() % 4 == 0) ? (1 << 20) + rng() % (3 << 20) : rng() % 65536;
    std::string data = RandomBytes(size, seed * 1000003 + i);
    Digest d = Digest::Of(data);
    std::string repo = "repo" + std::to_string(rng() % 3);
    if (rng() % 2) {
      auto w = s.NewWriter();
      if (!w.ok()) _exit(4);
      for (size_t off = 0; off < size; off += 65536)
        if (!(*w)->Write(data.data() + off, std::min<size_t>(65536, size - off))
                 .ok())
          _exit(5);
      if (!(*w)->Commit(d, size, repo).ok()) _exit(6);
    } else {
      auto id = s.BeginUpload(repo);
      if (!id.ok()) _exit(7);
      size_t off = 0;
      while (off < size || off == 0) {
        auto w = s.ResumeUpload(*id);
        if (!w.ok()) _exit(8);
        size_t n = std::min<size_t>(size - off, 200000);
        if (!(*w)->Write(data.data() + off, n).ok()) _exit(9);
        off += n;
        if (off >= size) {
          if (!(*w)->Commit(d, size, repo).ok()) _exit(10);
          break;
        }
      }
    }
    Journal(journal, "blob " + repo + " " + d.str());
    ManifestRecord m;
    m.content = d.str();
    m.digest = Digest::Of(m.content);
    m.media_type = "application/vnd.oci.image.manifest.v1+json";
    std::string tag = "t" + std::to_string(i % 50);
    if (!s.PutManifest(repo, m, tag, {d}, {}).ok()) _exit(11);
    Journal(journal, "tag " + repo + " " + tag);
  }
}

void Verify(const std::string& root, const std::string& journal_path) {
  StoreOptions o;
  o.root = root;
  auto opened = OpenStore(o);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  Store& s = **opened;
  size_t blobs = 0;
  std::set<std::string> recorded;
  REQUIRE(s.WalkBlobs([&](const BlobInfo& b) {
             ++blobs;
             recorded.insert(b.digest.hex());
             auto h = s.OpenBlob(b.digest);
             REQUIRE(h.ok());
             REQUIRE((*h)->size() == b.size);
             Hasher hasher;
             std::string buf(1 << 20, '\0');
             uint64_t off = 0;
             while (off < b.size) {
               auto n = (*h)->ReadAt(off, buf.data(), buf.size());
               REQUIRE(n.ok());
               hasher.Update(buf.data(), *n);
               off += *n;
             }
             CHECK(hasher.Finish() == b.digest);
           }).ok());
  // Every file of bytes belongs to a blob record (small blobs live in the
  // database and have none).
  size_t orphans = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(root + "/blobs"))
    if (e.is_regular_file() && !recorded.count(e.path().filename().string()))
      ++orphans;
  CHECK_MESSAGE(orphans == 0, "bytes without a record are visible on disk");

  std::ifstream j(journal_path);
  std::string kind, repo, what;
  while (j >> kind >> repo >> what) {
    if (kind == "blob") {
      auto d = Digest::Parse(what);
      REQUIRE(d.ok());
      CHECK_MESSAGE(s.StatLinkedBlob(repo, *d).ok(), "lost commit " << what);
    } else {
      auto m = s.ResolveTag(repo, what);
      REQUIRE_MESSAGE(m.ok(), "lost tag " << repo << ":" << what);
      auto rec = s.GetManifest(repo, *m);
      REQUIRE(rec.ok());
      auto layer = Digest::Parse(rec->content);
      REQUIRE(layer.ok());
      CHECK(s.StatLinkedBlob(repo, *layer).ok());
    }
  }
  auto repos = s.ListRepositories(0, "");
  REQUIRE(repos.ok());
  for (const auto& r : repos->items) {
    auto tags = s.ListTags(r, 0, "");
    REQUIRE(tags.ok());
    for (const auto& tag : tags->items) {
      auto m = s.ResolveTag(r, tag);
      REQUIRE(m.ok());
      CHECK(s.GetManifest(r, *m).ok());
    }
  }
}

std::string SelfExe() {
  return std::filesystem::read_symlink("/proc/self/exe").string();
}

}  // namespace

TEST_CASE("store survives SIGKILL at random moments") {
  int iterations = 40;
  if (const char* e = std::getenv("OCIB_CRASH_ITERATIONS"))
    iterations = std::atoi(e);
  TempDir t;
  std::string root = t.path() + "/store";
  std::filesystem::create_directories(root);
  std::mt19937 rng(12345);
  for (int it = 0; it < iterations; ++it) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::string seed = std::to_string(it + 1);
      std::string exe = SelfExe();
      execl(exe.c_str(), exe.c_str(), "--crash-child", root.c_str(),
            seed.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 400));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE_MESSAGE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
                    "child exited on its own with status " << status);
    Verify(root, t.path() + "/journal");
  }
  // The test only means something if the children got work done.
  std::ifstream j(t.path() + "/journal");
  size_t lines = 0;
  for (std::string l; std::getline(j, l);) ++lines;
  MESSAGE("journal entries committed across kills: " << lines);
  CHECK(lines > static_cast<size_t>(iterations));
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--crash-child")
    ChildMain(argv[2], std::strtoull(argv[3], nullptr, 10));
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
