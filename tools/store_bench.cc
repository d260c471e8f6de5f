// store-bench: ingest and read throughput of the store for one large blob,
// next to the machine's sha256 speed on the same bytes, plus peak RSS.
//
//   store-bench [--size-mib N] [--root DIR] [--no-sync] [--compare-blobdb]
//
// Prints one line per figure; the last line is a summary with the ratios
// the store issue sets targets for.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "store/blob_store.h"

using namespace ocib;
using Clock = std::chrono::steady_clock;

namespace {

double Secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

long PeakRssKiB() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// 16 MiB of pseudo-random bytes, repeated to the wanted size.
std::vector<char> Pattern() {
  std::vector<char> p(16 << 20);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& c : p) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return p;
}

// The alternative design the store issue names: blob bytes as 1 MiB chunk
// values in RocksDB with integrated BlobDB. Writes the same bytes, hashing
// as it goes, and syncs the WAL at the end like a commit would. Returns
// seconds, or a negative number on error.
double IngestIntoBlobDb(const std::string& dir,
                        const std::vector<char>& pattern, uint64_t total,
                        size_t piece, bool sync) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.enable_blob_files = true;
  o.min_blob_size = 4096;
  o.blob_file_size = 256 << 20;
  o.write_buffer_size = 64 << 20;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(o, dir, &raw).ok()) return -1;
  std::unique_ptr<rocksdb::DB> db(raw);
  auto t0 = Clock::now();
  Hasher h;
  rocksdb::WriteOptions wo;
  uint64_t i = 0;
  for (uint64_t off = 0; off < total; off += piece, ++i) {
    const char* p = pattern.data() + off % pattern.size();
    h.Update(p, piece);
    char key[32];
    std::snprintf(key, sizeof key, "c/%016llx", (unsigned long long)i);
    if (!db->Put(wo, key, rocksdb::Slice(p, piece)).ok()) return -1;
  }
  h.Finish();
  if (sync && !db->FlushWAL(true).ok()) return -1;
  double s = Secs(t0, Clock::now());
  db->Close().PermitUncheckedError();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t size_mib = 1024;
  std::string root;
  bool sync = true;
  bool compare_blobdb = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--size-mib" && i + 1 < argc)
      size_mib = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--root" && i + 1 < argc)
      root = argv[++i];
    else if (a == "--no-sync")
      sync = false;
    else if (a == "--compare-blobdb")
      compare_blobdb = true;
    else {
      std::fprintf(stderr,
                   "usage: store-bench [--size-mib N] [--root DIR] [--no-sync] "
                   "[--compare-blobdb]\n");
      return 2;
    }
  }
  bool own_root = root.empty();
  if (own_root) {
    char tmpl[] = "/tmp/store-bench.XXXXXX";
    if (!mkdtemp(tmpl)) return 1;
    root = tmpl;
  }
  const uint64_t total = size_mib << 20;
  const size_t piece = 1 << 20;
  std::vector<char> pattern = Pattern();
  long rss_before = PeakRssKiB();

  // The machine's sha256 speed on the same bytes, in process (EVP).
  Hasher h;
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < total; off += piece)
    h.Update(pattern.data() + off % pattern.size(), piece);
  Digest digest = h.Finish();
  double sha_s = Secs(t0, Clock::now());

  StoreOptions o;
  o.root = root + "/store";
  o.sync = sync;
  auto opened = OpenStore(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  Store& s = **opened;

  t0 = Clock::now();
  auto w = s.NewWriter();
  if (!w.ok()) return 1;
  for (uint64_t off = 0; off < total; off += piece) {
    Status st = (*w)->Write(pattern.data() + off % pattern.size(), piece);
    if (!st.ok()) {
      std::fprintf(stderr, "write: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  auto info = (*w)->Commit(digest, total, "bench");
  if (!info.ok()) {
    std::fprintf(stderr, "commit: %s\n", info.status().ToString().c_str());
    return 1;
  }
  w->reset();
  double ingest_s = Secs(t0, Clock::now());
  long rss_ingest = PeakRssKiB();

  // Warm read (the bytes are in the page cache after ingest): twice, keep
  // the faster.
  double read_s = 1e9;
  std::vector<char> buf(piece);
  for (int pass = 0; pass < 2; ++pass) {
    t0 = Clock::now();
    auto r = s.OpenBlob(digest);
    if (!r.ok()) return 1;
    uint64_t off = 0;
    while (off < total) {
      auto n = (*r)->ReadAt(off, buf.data(), buf.size());
      if (!n.ok() || *n == 0) return 1;
      off += *n;
    }
    read_s = std::min(read_s, Secs(t0, Clock::now()));
  }

  // `openssl dgst -sha256` on the committed blob file.
  std::string path = o.root + "/blobs/sha256/" + digest.hex().substr(0, 2) +
                     "/" + digest.hex();
  t0 = Clock::now();
  std::string cmd = "openssl dgst -sha256 '" + path + "' > /dev/null";
  int rc = std::system(cmd.c_str());
  double openssl_s = Secs(t0, Clock::now());

  double blobdb_s = -1;
  if (compare_blobdb)
    blobdb_s = IngestIntoBlobDb(root + "/blobdb", pattern, total, piece, sync);

  double mb = total / 1e6;
  std::printf("blob size:                 %.0f MB (%llu MiB)%s\n", mb,
              (unsigned long long)size_mib, sync ? "" : " (no fsync)");
  std::printf("sha256 in process (EVP):   %.0f MB/s\n", mb / sha_s);
  if (rc == 0)
    std::printf("openssl dgst -sha256:      %.0f MB/s\n", mb / openssl_s);
  std::printf("ingest (write+hash+commit):%.0f MB/s\n", mb / ingest_s);
  if (blobdb_s > 0)
    std::printf("ingest into BlobDB chunks: %.0f MB/s (alternative design)\n",
                mb / blobdb_s);
  std::printf("read (warm cache):         %.0f MB/s\n", mb / read_s);
  std::printf(
      "peak RSS:                  %.1f MiB (pattern buffer %.0f MiB; before "
      "store %.1f MiB)\n",
      rss_ingest / 1024.0, pattern.size() / 1048576.0, rss_before / 1024.0);
  double sha_ref = rc == 0 ? mb / openssl_s : mb / sha_s;
  std::printf(
      "summary: ingest %.0f%% of sha256 speed (target >= 70%%), read %.2f GB/s "
      "(target >= 1.5), "
      "RSS beyond buffers %.1f MiB (target < 64)\n",
      100.0 * (mb / ingest_s) / sha_ref, mb / read_s / 1000.0,
      (rss_ingest - rss_before) / 1024.0);
  opened->reset();
  if (own_root) std::filesystem::remove_all(root);
  return 0;
}
