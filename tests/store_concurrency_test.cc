// Many threads ingest overlapping digests, link and unlink them and commit
// manifests that require them; afterwards the store must be consistent.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "store/blob_store.h"
#include "temp_dir.h"

using namespace ocib;
using ocib::testing::RandomBytes;
using ocib::testing::TempDir;

TEST_CASE("concurrent ingest of overlapping digests and linking") {
  TempDir t;
  StoreOptions o;
  o.root = t.path();
  auto opened = OpenStore(o);
  REQUIRE(opened.ok());
  Store& s = **opened;

  constexpr int kPayloads = 24, kThreads = 8, kRounds = 60;
  std::vector<std::string> payloads;
  for (int i = 0; i < kPayloads; ++i)
    payloads.push_back(RandomBytes((i % 4 == 0) ? (1 << 20) + i : 1000 + i, i));
  const std::vector<std::string> repos = {"team/a", "team/b", "team/c"};

  std::atomic<int> failures{0};
  std::atomic<int> manifests_ok{0};
  auto worker = [&](int tid) {
    std::mt19937 rng(tid);
    for (int round = 0; round < kRounds; ++round) {
      const std::string& data = payloads[rng() % kPayloads];
      const std::string& repo = repos[rng() % repos.size()];
      Digest d = Digest::Of(data);
      int op = rng() % 5;
      if (op <= 1) {  // direct ingest, in pieces
        auto w = s.NewWriter();
        if (!w.ok()) {
          ++failures;
          continue;
        }
        for (size_t off = 0; off < data.size(); off += 7777)
          if (!(*w)->Write(data.data() + off,
                           std::min<size_t>(7777, data.size() - off))
                   .ok())
            ++failures;
        if (!(*w)->Commit(d, data.size(), repo).ok()) ++failures;
      } else if (op == 2) {  // session ingest across two writers
        auto id = s.BeginUpload(repo);
        if (!id.ok()) {
          ++failures;
          continue;
        }
        size_t half = data.size() / 2;
        {
          auto w = s.ResumeUpload(*id);
          if (!w.ok() || !(*w)->Write(data.data(), half).ok()) ++failures;
        }
        auto w = s.ResumeUpload(*id);
        if (!w.ok() || !(*w)->ExpectOffset(half).ok() ||
            !(*w)->Write(data.data() + half, data.size() - half).ok() ||
            !(*w)->Commit(d, data.size(), repo).ok())
          ++failures;
      } else if (op == 3) {  // unlink racing manifest commits
        Status st = s.UnlinkBlob(repo, d);
        if (!st.ok() && st.code() != Code::kNotFound) ++failures;
      } else {  // manifest requiring the blob
        ManifestRecord m;
        m.content = d.str();
        m.content += '#';
        m.content += std::to_string(tid);
        m.digest = Digest::Of(m.content);
        m.media_type = "application/vnd.oci.image.manifest.v1+json";
        std::string tag(1, 't');
        tag += std::to_string(tid);
        Status st = s.PutManifest(repo, m, tag, {d}, {});
        if (st.ok()) {
          ++manifests_ok;
        } else if (st.code() != Code::kNotFound) {
          ++failures;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
  CHECK(manifests_ok.load() > 0);

  // Every blob's reference count equals the repositories it is linked in,
  // its bytes hash to its digest, and no stray bytes exist.
  size_t blobs = 0;
  std::set<std::string> recorded;
  REQUIRE(s.WalkBlobs([&](const BlobInfo& b) {
             ++blobs;
             recorded.insert(b.digest.hex());
             uint64_t links = 0;
             for (const auto& r : repos)
               if (s.StatLinkedBlob(r, b.digest).ok()) ++links;
             CHECK(links == b.refs);
             auto h = s.OpenBlob(b.digest);
             REQUIRE(h.ok());
             std::string buf((*h)->size(), '\0');
             REQUIRE(*(*h)->ReadAt(0, buf.data(), buf.size()) == buf.size());
             CHECK(Digest::Of(buf) == b.digest);
           }).ok());
  CHECK(blobs > 0);
  // Every file of bytes belongs to a blob record (small blobs live in the
  // database and have none).
  for (auto& e :
       std::filesystem::recursive_directory_iterator(t.path() + "/blobs"))
    if (e.is_regular_file())
      CHECK_MESSAGE(recorded.count(e.path().filename().string()), e.path());
  for (auto& e : std::filesystem::directory_iterator(t.path() + "/uploads"))
    FAIL("stray upload file " << e.path());
}
