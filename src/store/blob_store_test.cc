#include "store/blob_store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store_fixture.h"
#include "temp_dir.h"

using namespace ocib;
using ocib::testing::CountBlobObjects;
using ocib::testing::CountSpoolObjects;
using ocib::testing::FileBackend;
using ocib::testing::OpenTestStore;
using ocib::testing::RandomBytes;
using ocib::testing::SharedIndex;
using ocib::testing::TempDir;

namespace {

std::unique_ptr<Store> Open(const std::string& root) {
  StoreOptions o;
  o.root = root;
  auto s = OpenTestStore(o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(*s);
}

BlobInfo Put(Store& s, const std::string& data, const std::string& repo = "") {
  auto w = s.NewWriter();
  REQUIRE(w.ok());
  REQUIRE((*w)->Write(data.data(), data.size()).ok());
  auto r = (*w)->Commit(Digest::Of(data), data.size(), repo);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

std::string ReadAll(Store& s, const Digest& d) {
  auto h = s.OpenBlob(d);
  REQUIRE(h.ok());
  std::string out((*h)->size(), '\0');
  uint64_t off = 0;
  while (off < out.size()) {
    auto n = (*h)->ReadAt(off, out.data() + off, out.size() - off);
    REQUIRE(n.ok());
    REQUIRE(*n > 0);
    off += *n;
  }
  return out;
}

}  // namespace

TEST_CASE("direct ingest in pieces commits and reads back") {
  TempDir t;
  auto s = Open(t.path());
  std::string data = RandomBytes(3 << 20, 1);
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  for (size_t off = 0; off < data.size(); off += 12345)
    REQUIRE((*w)->Write(data.data() + off,
                        std::min<size_t>(12345, data.size() - off))
                .ok());
  CHECK((*w)->offset() == data.size());
  Digest d = Digest::Of(data);
  CHECK(s->StatBlob(d).status().code() == Code::kNotFound);  // not yet visible
  auto info = (*w)->Commit(d, data.size());
  REQUIRE(info.ok());
  CHECK(info->size == data.size());
  CHECK(s->StatBlob(d)->size == data.size());
  CHECK(ReadAll(*s, d) == data);
}

TEST_CASE("digest mismatch stores nothing") {
  TempDir t;
  auto s = Open(t.path());
  auto w = s->NewWriter();
  REQUIRE((*w)->Write("hello", 5).ok());
  Digest wrong = Digest::Of("other");
  auto r = (*w)->Commit(wrong, std::nullopt);
  CHECK(r.status().code() == Code::kDigestMismatch);
  CHECK(s->StatBlob(wrong).status().code() == Code::kNotFound);
  CHECK(s->StatBlob(Digest::Of("hello")).status().code() == Code::kNotFound);
  CHECK(CountSpoolObjects(t.path()) == 0);
  CHECK(CountBlobObjects(t.path()) == 0);
}

TEST_CASE("size mismatch stores nothing") {
  TempDir t;
  auto s = Open(t.path());
  auto w = s->NewWriter();
  REQUIRE((*w)->Write("hello", 5).ok());
  auto r = (*w)->Commit(Digest::Of("hello"), 6);
  CHECK(r.status().code() == Code::kSizeMismatch);
  CHECK(s->StatBlob(Digest::Of("hello")).status().code() == Code::kNotFound);
}

TEST_CASE("commit twice: writer refuses, same digest again succeeds") {
  TempDir t;
  auto s = Open(t.path());
  auto w = s->NewWriter();
  std::string data =
      RandomBytes(100 << 10, 3);  // past the inline limit: a file
  REQUIRE((*w)->Write(data.data(), data.size()).ok());
  REQUIRE((*w)->Commit(Digest::Of(data), data.size()).ok());
  CHECK((*w)->Commit(Digest::Of(data), data.size()).status().code() ==
        Code::kFailedPrecondition);
  CHECK((*w)->Write("x", 1).code() == Code::kFailedPrecondition);
  // A second ingest of existing content succeeds and stores nothing new.
  BlobInfo again = Put(*s, data);
  CHECK(again.size == data.size());
  CHECK(CountBlobObjects(t.path()) == 1);
  CHECK(CountSpoolObjects(t.path()) == 0);
}

TEST_CASE("sha512 digests are accepted") {
  TempDir t;
  auto s = Open(t.path());
  auto w = s->NewWriter();
  REQUIRE((*w)->Write("abc", 3).ok());
  Digest d = Digest::Of("abc", DigestAlgorithm::kSha512);
  auto r = (*w)->Commit(d, 3);
  REQUIRE(r.ok());
  CHECK(ReadAll(*s, d) == "abc");
}

TEST_CASE("empty blob") {
  TempDir t;
  auto s = Open(t.path());
  BlobInfo b = Put(*s, "");
  CHECK(b.size == 0);
  CHECK(ReadAll(*s, b.digest).empty());
}

TEST_CASE("reads: random access, at end, past end") {
  TempDir t;
  auto s = Open(t.path());
  std::string data = RandomBytes(100000, 2);
  Digest d = Put(*s, data).digest;
  auto h = s->OpenBlob(d);
  REQUIRE(h.ok());
  char buf[100];
  auto n = (*h)->ReadAt(5000, buf, sizeof buf);
  REQUIRE(n.ok());
  CHECK(*n == 100);
  CHECK(std::string(buf, 100) == data.substr(5000, 100));
  n = (*h)->ReadAt(data.size() - 10, buf, sizeof buf);
  CHECK(*n == 10);
  n = (*h)->ReadAt(data.size(), buf, sizeof buf);
  CHECK(*n == 0);
  n = (*h)->ReadAt(data.size() + 1, buf, sizeof buf);
  CHECK(n.status().code() == Code::kOutOfRange);
  CHECK(s->OpenBlob(Digest::Of("missing")).status().code() == Code::kNotFound);
}

TEST_CASE("upload session: in-order appends, wrong offset, status, commit") {
  TempDir t;
  auto s = Open(t.path());
  auto id = s->BeginUpload("library/a");
  REQUIRE(id.ok());
  CHECK(id->size() == 32);
  std::string data = RandomBytes(1 << 20, 3);
  {
    auto w = s->ResumeUpload(*id);
    REQUIRE(w.ok());
    REQUIRE((*w)->ExpectOffset(0).ok());
    REQUIRE((*w)->Write(data.data(), 1000).ok());
    // A second writer on a busy session is refused, not blocked.
    CHECK(s->ResumeUpload(*id).status().code() == Code::kUnavailable);
  }
  auto st = s->GetUpload(*id);
  REQUIRE(st.ok());
  CHECK(st->offset == 1000);
  CHECK(st->repo == "library/a");
  {
    auto w = s->ResumeUpload(*id);
    REQUIRE(w.ok());
    CHECK((*w)->ExpectOffset(0).code() == Code::kFailedPrecondition);
    CHECK((*w)->ExpectOffset(999).code() == Code::kFailedPrecondition);
    CHECK((*w)->ExpectOffset(1001).code() == Code::kFailedPrecondition);
    REQUIRE((*w)->ExpectOffset(1000).ok());
    REQUIRE((*w)->Write(data.data() + 1000, data.size() - 1000).ok());
    auto info = (*w)->Commit(Digest::Of(data), data.size(), "library/a");
    REQUIRE(info.ok());
    CHECK(info->refs == 1);
  }
  CHECK(s->GetUpload(*id).status().code() == Code::kNotFound);
  CHECK(s->ResumeUpload(*id).status().code() == Code::kNotFound);
  CHECK(s->StatLinkedBlob("library/a", Digest::Of(data))->size == data.size());
  CHECK(ReadAll(*s, Digest::Of(data)) == data);
}

TEST_CASE("unknown and malformed session ids") {
  TempDir t;
  auto s = Open(t.path());
  for (std::string id : {std::string(32, 'a'), std::string("../../etc"),
                         std::string(""), std::string(64, 'f')}) {
    CHECK(s->GetUpload(id).status().code() == Code::kNotFound);
    CHECK(s->ResumeUpload(id).status().code() == Code::kNotFound);
    CHECK(s->AbortUpload(id).code() == Code::kNotFound);
  }
}

TEST_CASE("cancel removes the session and its bytes") {
  TempDir t;
  auto s = Open(t.path());
  auto id = s->BeginUpload("r");
  {
    auto w = s->ResumeUpload(*id);
    REQUIRE((*w)->Write("abc", 3).ok());
  }
  CHECK(CountSpoolObjects(t.path()) == 1);
  REQUIRE(s->AbortUpload(*id).ok());
  CHECK(s->GetUpload(*id).status().code() == Code::kNotFound);
  CHECK(CountSpoolObjects(t.path()) == 0);
}

TEST_CASE("session digest mismatch discards the session") {
  TempDir t;
  auto s = Open(t.path());
  auto id = s->BeginUpload("r");
  auto w = s->ResumeUpload(*id);
  REQUIRE((*w)->Write("abc", 3).ok());
  CHECK((*w)->Commit(Digest::Of("abd"), std::nullopt, "r").status().code() ==
        Code::kDigestMismatch);
  w->reset();
  CHECK(s->GetUpload(*id).status().code() == Code::kNotFound);
  CHECK(s->StatLinkedBlob("r", Digest::Of("abc")).status().code() ==
        Code::kNotFound);
}

TEST_CASE("session state survives a restart and the hash is rebuilt") {
  TempDir t;
  std::string data = RandomBytes(2 << 20, 4);
  std::string id;
  {
    auto s = Open(t.path());
    id = *s->BeginUpload("r");
    auto w = s->ResumeUpload(id);
    REQUIRE((*w)->Write(data.data(), 1 << 20).ok());
  }
  auto s = Open(t.path());
  auto st = s->GetUpload(id);
  REQUIRE(st.ok());
  CHECK(st->offset == (1u << 20));
  auto w = s->ResumeUpload(id);
  REQUIRE(w.ok());
  REQUIRE((*w)->ExpectOffset(1 << 20).ok());
  REQUIRE((*w)->Write(data.data() + (1 << 20), data.size() - (1 << 20)).ok());
  REQUIRE((*w)->Commit(Digest::Of(data), data.size(), "r").ok());
  CHECK(ReadAll(*s, Digest::Of(data)) == data);
}

TEST_CASE("expired sessions are reclaimed, fresh and busy ones kept") {
  TempDir t;
  StoreOptions o;
  o.root = t.path();
  o.upload_expiry = std::chrono::seconds(60);
  auto s = std::move(*OpenTestStore(o));
  auto a = *s->BeginUpload("r");
  auto b = *s->BeginUpload("r");
  auto now = std::chrono::system_clock::now();
  CHECK(*s->PurgeExpiredUploads(now) == 0);
  auto busy = s->ResumeUpload(b);
  REQUIRE(busy.ok());
  CHECK(*s->PurgeExpiredUploads(now + std::chrono::seconds(120)) == 1);
  CHECK(s->GetUpload(a).status().code() == Code::kNotFound);
  CHECK(s->GetUpload(b).ok());
  busy->reset();
  CHECK(*s->PurgeExpiredUploads(now + std::chrono::seconds(30)) == 0);
  CHECK(*s->PurgeExpiredUploads(now + std::chrono::seconds(600)) == 1);
  CHECK(CountSpoolObjects(t.path()) == 0);
}

TEST_CASE("stray spools are removed at open") {
  TempDir t;
  {
    auto s = Open(t.path());
    auto w = s->NewWriter();
    // Past the inline limit and an object store's segment: spooled.
    std::string data = RandomBytes(6 << 20, 4);
    REQUIRE((*w)->Write(data.data(), data.size()).ok());
    // Never closed, as in a crash mid-ingest; kept reachable so the leak
    // checker of the sanitizer build does not count it.
    static auto* crashed = new std::vector<BlobWriter*>();
    crashed->push_back(w->release());
  }
  // An object store may still be writing the segment in the background.
  for (int i = 0; i < 200 && CountSpoolObjects(t.path()) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(CountSpoolObjects(t.path()) == 1);
  auto s = Open(t.path());
  if (SharedIndex()) {
    // Other processes' ingests are in flight: only an idle stray spool goes,
    // at the next expiry sweep.
    CHECK(CountSpoolObjects(t.path()) == 1);
    REQUIRE(s->PurgeExpiredUploads(std::chrono::system_clock::now()).ok());
    CHECK(CountSpoolObjects(t.path()) == 1);
    REQUIRE(s->PurgeExpiredUploads(std::chrono::system_clock::now() +
                                   std::chrono::hours(24 * 400))
                .ok());
  }
  CHECK(CountSpoolObjects(t.path()) == 0);
}

TEST_CASE("links, reference counts and unreferenced blobs") {
  TempDir t;
  auto s = Open(t.path());
  Digest d = Put(*s, "layer").digest;
  CHECK(s->StatBlob(d)->refs == 0);
  CHECK(s->ListUnreferencedBlobs(10)->size() == 1);
  CHECK(s->StatLinkedBlob("a", d).status().code() == Code::kNotFound);
  REQUIRE(s->LinkBlob("a", d).ok());
  REQUIRE(s->LinkBlob("a", d).ok());  // idempotent
  REQUIRE(s->LinkBlob("b", d).ok());
  CHECK(s->StatBlob(d)->refs == 2);
  CHECK(s->ListUnreferencedBlobs(10)->empty());
  CHECK(s->DeleteBlob(d).code() == Code::kFailedPrecondition);
  CHECK(s->LinkBlob("a", Digest::Of("nope")).code() == Code::kNotFound);
  REQUIRE(s->UnlinkBlob("a", d).ok());
  CHECK(s->UnlinkBlob("a", d).code() == Code::kNotFound);
  CHECK(s->StatLinkedBlob("a", d).status().code() == Code::kNotFound);
  CHECK(s->StatLinkedBlob("b", d).ok());
  REQUIRE(s->UnlinkBlob("b", d).ok());
  auto un = s->ListUnreferencedBlobs(10);
  REQUIRE(un->size() == 1);
  CHECK((*un)[0] == d);
  REQUIRE(s->DeleteBlob(d).ok());
  CHECK(s->StatBlob(d).status().code() == Code::kNotFound);
  CHECK(s->DeleteBlob(d).code() == Code::kNotFound);
  CHECK(CountBlobObjects(t.path()) == 0);
}

TEST_CASE("manifests: byte-exact, tags, required references, delete") {
  TempDir t;
  auto s = Open(t.path());
  Digest layer = Put(*s, "layer", "app").digest;
  ManifestRecord m;
  m.content = "{ \"schemaVersion\": 2,  \"odd spacing\": true }";
  m.digest = Digest::Of(m.content);
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  // Missing blob: names the digest.
  Digest missing = Digest::Of("missing");
  Status st = s->PutManifest("app", m, "v1", {layer, missing}, {});
  CHECK(st.code() == Code::kNotFound);
  CHECK(st.message() == missing.str());
  CHECK(s->GetManifest("app", m.digest).status().code() == Code::kNotFound);
  // Blob linked only in another repository does not count.
  CHECK(s->PutManifest("other", m, "", {layer}, {}).code() == Code::kNotFound);
  REQUIRE(s->PutManifest("app", m, "v1", {layer}, {}).ok());
  auto got = s->GetManifest("app", m.digest);
  REQUIRE(got.ok());
  CHECK(got->content == m.content);
  CHECK(got->media_type == m.media_type);
  CHECK(*s->ResolveTag("app", "v1") == m.digest);
  REQUIRE(s->PutManifest("app", m, "v2", {layer}, {}).ok());
  // An index needs its children as manifests of the repository.
  ManifestRecord idx;
  idx.content = "{\"manifests\":[]}";
  idx.digest = Digest::Of(idx.content);
  idx.media_type = "application/vnd.oci.image.index.v1+json";
  CHECK(s->PutManifest("app", idx, "multi", {}, {Digest::Of("x")}).code() ==
        Code::kNotFound);
  REQUIRE(s->PutManifest("app", idx, "multi", {}, {m.digest}).ok());
  // Deleting a tag leaves the manifest; deleting the manifest drops its tags.
  REQUIRE(s->DeleteTag("app", "v2").ok());
  CHECK(s->DeleteTag("app", "v2").code() == Code::kNotFound);
  CHECK(s->GetManifest("app", m.digest).ok());
  REQUIRE(s->DeleteManifest("app", m.digest).ok());
  CHECK(s->ResolveTag("app", "v1").status().code() == Code::kNotFound);
  CHECK(s->GetManifest("app", m.digest).status().code() == Code::kNotFound);
  CHECK(s->DeleteManifest("app", m.digest).code() == Code::kNotFound);
  CHECK(*s->ResolveTag("app", "multi") == idx.digest);
}

TEST_CASE("tag and repository listing: lexical order and pagination") {
  TempDir t;
  auto s = Open(t.path());
  ManifestRecord m;
  m.content = "{}";
  m.digest = Digest::Of(m.content);
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  for (std::string tag : {"b", "a", "c", "B", "a1", "z"})
    REQUIRE(s->PutManifest("repo", m, tag, {}, {}).ok());
  REQUIRE(s->PutManifest("repo/sub", m, "zz", {}, {}).ok());
  REQUIRE(s->PutManifest("rep", m, "x", {}, {}).ok());
  auto all = s->ListTags("repo", 0, "");
  REQUIRE(all.ok());
  CHECK(all->items == std::vector<std::string>{"B", "a", "a1", "b", "c", "z"});
  CHECK(!all->more);
  auto p1 = s->ListTags("repo", 2, "");
  CHECK(p1->items == std::vector<std::string>{"B", "a"});
  CHECK(p1->more);
  auto p2 = s->ListTags("repo", 3, "a");
  CHECK(p2->items == std::vector<std::string>{"a1", "b", "c"});
  CHECK(p2->more);
  auto p3 = s->ListTags("repo", 3, "c");
  CHECK(p3->items == std::vector<std::string>{"z"});
  CHECK(!p3->more);
  CHECK(s->ListTags("repo", 3, "zzz")->items.empty());
  CHECK(s->ListTags("nothere", 0, "")->items.empty());
  auto repos = s->ListRepositories(0, "");
  CHECK(repos->items == std::vector<std::string>{"rep", "repo", "repo/sub"});
  auto r2 = s->ListRepositories(1, "rep");
  CHECK(r2->items == std::vector<std::string>{"repo"});
  CHECK(r2->more);
  CHECK(s->RepositoryExists("repo"));
  CHECK(!s->RepositoryExists("re"));
}

TEST_CASE("referrers are indexed by subject and removed with the manifest") {
  TempDir t;
  auto s = Open(t.path());
  ManifestRecord subject;
  subject.content = "{\"s\":1}";
  subject.digest = Digest::Of(subject.content);
  subject.media_type = "application/vnd.oci.image.manifest.v1+json";
  REQUIRE(s->PutManifest("r", subject, "", {}, {}).ok());
  ManifestRecord sig;
  sig.content = "{\"sig\":1}";
  sig.digest = Digest::Of(sig.content);
  sig.media_type = "application/vnd.oci.image.manifest.v1+json";
  sig.subject = subject.digest;
  sig.artifact_type = "application/vnd.example.sig";
  sig.annotations = {{"org.example.k", "v"}};
  REQUIRE(s->PutManifest("r", sig, "", {}, {}).ok());
  auto refs = s->ListReferrers("r", subject.digest);
  REQUIRE(refs.ok());
  REQUIRE(refs->size() == 1);
  CHECK((*refs)[0].digest == sig.digest);
  CHECK((*refs)[0].size == sig.content.size());
  CHECK((*refs)[0].artifact_type == "application/vnd.example.sig");
  CHECK((*refs)[0].annotations.at("org.example.k") == "v");
  CHECK(s->ListReferrers("other", subject.digest)->empty());
  CHECK(s->ListReferrers("r", Digest::Of("unknown"))->empty());
  REQUIRE(s->DeleteManifest("r", sig.digest).ok());
  CHECK(s->ListReferrers("r", subject.digest)->empty());
}

TEST_CASE(
    "a shared index: an upload session moves between processes, one "
    "writer at a time" *
    doctest::skip(!SharedIndex())) {
  TempDir t;
  auto a = Open(t.path());
  StoreOptions o;
  o.root = t.path();
  auto b = OpenTestStore(o);
  REQUIRE(b.ok());
  std::string data = RandomBytes(3 << 20, 21);
  auto id = a->BeginUpload("library/a");
  REQUIRE(id.ok());
  {
    auto w = a->ResumeUpload(*id);
    REQUIRE(w.ok());
    REQUIRE((*w)->Write(data.data(), 1 << 20).ok());
    // While a holds it, the other process is refused, not interleaved.
    CHECK((*b)->ResumeUpload(*id).status().code() == Code::kUnavailable);
    CHECK((*b)->AbortUpload(*id).code() == Code::kUnavailable);
  }
  {
    auto w = (*b)->ResumeUpload(*id);  // the next chunk reaches b
    REQUIRE(w.ok());
    CHECK((*w)->offset() == (1u << 20));
    CHECK(a->ResumeUpload(*id).status().code() == Code::kUnavailable);
    REQUIRE((*w)->Write(data.data() + (1 << 20), 1 << 20).ok());
  }
  CHECK(a->GetUpload(*id)->offset == (2u << 20));
  {
    auto w = a->ResumeUpload(*id);  // and the last one back at a
    REQUIRE(w.ok());
    CHECK((*w)->offset() == (2u << 20));
    REQUIRE((*w)->Write(data.data() + (2 << 20), 1 << 20).ok());
    auto info = (*w)->Commit(Digest::Of(data), data.size(), "library/a");
    REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  }
  CHECK(ReadAll(**b, Digest::Of(data)) == data);
  CHECK((*b)->StatLinkedBlob("library/a", Digest::Of(data)).ok());
  CHECK((*b)->ResumeUpload(*id).status().code() == Code::kNotFound);
}

TEST_CASE(
    "a shared index: a process that dies mid-request leaves the "
    "session to the others, with the bytes it stored" *
    doctest::skip(!SharedIndex())) {
  TempDir t;
  std::string data = RandomBytes(1 << 20, 22);
  std::string id;
  {
    auto a = Open(t.path());
    auto began = a->BeginUpload("library/a");
    REQUIRE(began.ok());
    id = *began;
    CHECK(a->GetUpload(id)->offset == 0);
    auto w = a->ResumeUpload(id);
    REQUIRE(w.ok());
    // Past the inline limit: the request makes the session's spool.
    REQUIRE((*w)->Write(data.data(), 300 << 10).ok());
    // Never closed, as in a crash mid-request; kept reachable for the leak
    // checker. Closing the store drops its connections, as the crash
    // would, which frees the session's lock.
    static auto* crashed = new std::vector<BlobWriter*>();
    crashed->push_back(w->release());
  }
  auto b = Open(t.path());
  CHECK(b->GetUpload(id)->offset == (300u << 10));
  {
    auto w = b->ResumeUpload(id);
    REQUIRE(w.ok());
    CHECK((*w)->offset() == (300u << 10));
    REQUIRE(
        (*w)->Write(data.data() + (300 << 10), data.size() - (300 << 10)).ok());
  }
  CHECK(b->GetUpload(id)->offset == data.size());
  auto w = b->ResumeUpload(id);
  REQUIRE(w.ok());
  auto info = (*w)->Commit(Digest::Of(data), data.size(), "library/a");
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  CHECK(ReadAll(*b, Digest::Of(data)) == data);
}

TEST_CASE("a second process cannot open the same store") {
  TempDir t;
  auto s = Open(t.path());
  StoreOptions o;
  o.root = t.path();
  auto second = OpenTestStore(o);
  if (!SharedIndex()) {
    CHECK(second.status().code() == Code::kInternal);
    return;
  }
  // A shared index: both see each other's records.
  REQUIRE(second.ok());
  Put(*s, "from the first", "r");
  Put(**second, "from the second", "r");
  CHECK(ReadAll(**second, Digest::Of("from the first")) == "from the first");
  CHECK(ReadAll(*s, Digest::Of("from the second")) == "from the second");
  CHECK((*second)->StatBlob(Digest::Of("from the first"))->refs == 1);
}

namespace {

// Bytes of the file's first `len` bytes held in the page cache.
size_t ResidentBytes(const std::string& path, size_t len) {
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(p != MAP_FAILED);
  size_t page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> vec((len + page - 1) / page);
  REQUIRE(::mincore(p, len, vec.data()) == 0);
  ::munmap(p, len);
  ::close(fd);
  size_t n = 0;
  for (unsigned char v : vec) n += (v & 1) ? page : 0;
  return n;
}

std::string BlobPath(const std::string& root, const Digest& d) {
  return root + "/blobs/sha256/" + d.hex().substr(0, 2) + "/" + d.hex();
}

}  // namespace

TEST_CASE("written bytes beyond the cache budget leave the page cache" *
          doctest::skip(!FileBackend())) {
  TempDir t;
  std::string data = RandomBytes(40 << 20, 9);
  for (uint64_t budget : {uint64_t(4) << 20, uint64_t(0)}) {
    CAPTURE(budget);
    std::string root = t.path() + "/b" + std::to_string(budget);
    StoreOptions o;
    o.root = root;
    o.written_cache_bytes = budget;
    auto s = OpenTestStore(o);
    REQUIRE(s.ok());
    auto w = (*s)->NewWriter();
    REQUIRE(w.ok());
    for (size_t off = 0; off < data.size(); off += 1 << 20)
      REQUIRE((*w)->Write(data.data() + off, 1 << 20).ok());
    REQUIRE((*w)->Commit(Digest::Of(data), data.size(), "").ok());
    size_t early = ResidentBytes(BlobPath(root, Digest::Of(data)), 24 << 20);
    if (budget > 0) {
      CHECK(early == 0);  // the oldest 24 MiB were dropped once on disk
    } else {
      CHECK(early == size_t(24) << 20);  // the kernel's default: all kept
    }
    CHECK(ReadAll(**s, Digest::Of(data)) == data);
  }
}

TEST_CASE(
    "read-only open: a snapshot beside a writer, no writes, NotFound when "
    "empty") {
  TempDir t;
  StoreOptions ro;
  ro.root = t.path() + "/s";
  ro.read_only = true;
  CHECK(OpenTestStore(ro).status().code() == Code::kNotFound);
  auto w = Open(t.path() + "/s");
  std::string data = "read-only snapshot";
  Put(*w, data, "repo");
  auto r = OpenTestStore(ro);  // while the writer holds the store
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(ReadAll(**r, Digest::Of(data)) == data);
  CHECK((*r)->StatBlob(Digest::Of(data))->refs == 1);
  auto nw = (*r)->NewWriter();
  bool refused = !nw.ok();
  if (nw.ok()) {
    REQUIRE((*nw)->Write("x", 1).ok());
    refused = !(*nw)->Commit(Digest::Of("x"), 1, "").ok();
  }
  CHECK(refused);
  CHECK(!(*r)->LinkBlob("other", Digest::Of(data)).ok());
  // The writer is unaffected and its new blobs are not in the old snapshot.
  Put(*w, "later", "repo");
  // RocksDB's read-only open is a snapshot; a shared index shows the latest.
  CHECK((*r)->StatBlob(Digest::Of("later")).ok() == SharedIndex());
}

TEST_CASE(
    "BlobWriter::ReadAt reads written bytes from another thread while "
    "writing") {
  TempDir t;
  auto s = Open(t.path());
  std::string data = RandomBytes(8 << 20, 21);
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  std::atomic<uint64_t> written{0};
  std::atomic<bool> mismatch{false};
  std::thread reader([&] {
    std::vector<char> buf(64 << 10);
    uint64_t off = 0;
    while (off < data.size()) {
      uint64_t avail = written.load();
      if (off >= avail) {
        std::this_thread::yield();
        continue;
      }
      auto n = (*w)->ReadAt(off, buf.data(),
                            std::min<uint64_t>(buf.size(), avail - off));
      if (!n.ok() || *n == 0 ||
          std::memcmp(buf.data(), data.data() + off, *n) != 0) {
        mismatch = true;
        return;
      }
      off += *n;
    }
  });
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    REQUIRE((*w)->Write(data.data() + off, 1 << 20).ok());
    written = off + (1 << 20);
  }
  reader.join();
  CHECK(!mismatch.load());
  REQUIRE((*w)->Commit(Digest::Of(data), data.size(), "").ok());
}

TEST_CASE("many small blobs do not keep files open") {
  TempDir t;
  auto s = Open(t.path());
  auto open_fds = [] {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
      (void)e, ++n;
    return n;
  };
  Put(*s, "warm-up");
  size_t before = open_fds();
  for (int i = 0; i < 1500; ++i) Put(*s, "small blob " + std::to_string(i));
  // Large blobs are tracked by the page-cache budget, a bounded number.
  for (int i = 0; i < 3; ++i) Put(*s, RandomBytes(3 << 20, 100 + i));
  CHECK(open_fds() <= before + 600);
}

TEST_CASE(
    "small blobs are kept in the database: no file, same reads, deleted with "
    "the record") {
  TempDir t;
  auto s = Open(t.path());
  std::string small = RandomBytes(10 << 10, 31),
              big = RandomBytes(200 << 10, 32);
  Put(*s, small, "repo");
  Put(*s, "", "repo");
  CHECK(CountBlobObjects(t.path()) == 0);
  CHECK(CountSpoolObjects(t.path()) == 0);
  CHECK(ReadAll(*s, Digest::Of(small)) == small);
  CHECK(ReadAll(*s, Digest::Of("")).empty());
  Put(*s, big, "repo");
  CHECK(CountBlobObjects(t.path()) == 1);
  // A session with one small write and a commit: no file either.
  auto id = s->BeginUpload("repo");
  REQUIRE(id.ok());
  CHECK(s->GetUpload(*id)->offset == 0);
  std::string other = RandomBytes(5000, 33);
  {
    auto w = s->ResumeUpload(*id);
    REQUIRE(w.ok());
    REQUIRE((*w)->Write(other.data(), other.size()).ok());
    REQUIRE((*w)->Commit(Digest::Of(other), other.size(), "repo").ok());
  }
  CHECK(CountBlobObjects(t.path()) == 1);
  CHECK(CountSpoolObjects(t.path()) == 0);
  CHECK(ReadAll(*s, Digest::Of(other)) == other);
  // Unlinked and deleted: gone, record and bytes.
  REQUIRE(s->UnlinkBlob("repo", Digest::Of(small)).ok());
  REQUIRE(s->DeleteBlob(Digest::Of(small)).ok());
  CHECK(s->OpenBlob(Digest::Of(small)).status().code() == Code::kNotFound);
  Put(*s, small);  // and it can come back
  CHECK(ReadAll(*s, Digest::Of(small)) == small);
}

TEST_CASE(
    "small chunks of a session survive the request that wrote them, and a "
    "restart") {
  TempDir t;
  std::string data = RandomBytes(150 << 10, 41);
  std::string id;
  {
    auto s = Open(t.path());
    auto b = s->BeginUpload("repo");
    REQUIRE(b.ok());
    id = *b;
    auto w = s->ResumeUpload(id);
    REQUIRE((*w)->Write(data.data(), 1000)
                .ok());  // in memory, then spooled at close
  }
  {
    auto s = Open(t.path());
    CHECK(s->GetUpload(id)->offset == 1000);
    auto w = s->ResumeUpload(id);
    REQUIRE(w.ok());
    CHECK((*w)->offset() == 1000);
    REQUIRE((*w)->Write(data.data() + 1000, 2000).ok());
  }
  auto s = Open(t.path());
  auto w = s->ResumeUpload(id);
  REQUIRE(w.ok());
  REQUIRE((*w)->ExpectOffset(3000).ok());
  REQUIRE((*w)->Write(data.data() + 3000, data.size() - 3000).ok());
  REQUIRE((*w)->Commit(Digest::Of(data), data.size(), "repo").ok());
  CHECK(ReadAll(*s, Digest::Of(data)) == data);
}

TEST_CASE("ReadAt across the switch from memory to a spool file") {
  TempDir t;
  auto s = Open(t.path());
  std::string data = RandomBytes(300 << 10, 51);
  auto w = s->NewWriter();
  REQUIRE((*w)->Write(data.data(), 1000).ok());
  std::string got(1000, '\0');
  CHECK(*(*w)->ReadAt(0, got.data(), 1000) == 1000);
  CHECK(got == data.substr(0, 1000));
  REQUIRE((*w)->Write(data.data() + 1000, data.size() - 1000).ok());
  got.assign(data.size(), '\0');
  size_t off = 0;
  while (off < data.size()) {
    auto n = (*w)->ReadAt(off, got.data() + off, data.size() - off);
    REQUIRE(n.ok());
    REQUIRE(*n > 0);
    off += *n;
  }
  CHECK(got == data);
  REQUIRE((*w)->Commit(Digest::Of(data), data.size()).ok());
}

TEST_CASE(
    "WriteTake: the same bytes as Write, the caller's buffer left empty for "
    "reuse") {
  TempDir t;
  auto s = Open(t.path());
  std::string data = RandomBytes(5 << 20, 61);
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  std::string buf;
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    buf.assign(data, off, 1 << 20);
    REQUIRE((*w)->WriteTake(buf).ok());
    CHECK(buf.empty());
  }
  buf = "tail";  // small pieces work too
  REQUIRE((*w)->WriteTake(buf).ok());
  REQUIRE((*w)->Commit(Digest::Of(data + "tail"), data.size() + 4).ok());
  CHECK(ReadAll(*s, Digest::Of(data + "tail")) == data + "tail");
}

// --- touch times and the *IfIdle operations a garbage collector uses ---

TEST_CASE("gc: a link touched after the cutoff is not removed") {
  TempDir dir;
  auto s = Open(dir.path());
  int64_t before = NowMicros();
  auto b = Put(*s, RandomBytes(5000, 101), "repo");
  // Linked after `before`: refused; with a later cutoff: removed.
  CHECK(s->UnlinkIfIdle("repo", b.digest, before).code() ==
        Code::kFailedPrecondition);
  CHECK(s->UnlinkIfIdle("repo", b.digest, NowMicros() + 1).ok());
  CHECK(s->UnlinkIfIdle("repo", b.digest, NowMicros() + 1).code() ==
        Code::kNotFound);
  // Unreferenced since its link's touch time, which is before `now`.
  int64_t since = -1;
  CHECK(s->WalkUnreferenced([&](const Digest& d, int64_t t) {
           if (d == b.digest) since = t;
         }).ok());
  CHECK(since > 0);
  CHECK(since < NowMicros());
}

TEST_CASE("gc: a manifest PUT touches the links and manifests it needs") {
  TempDir dir;
  auto s = Open(dir.path());
  auto layer = Put(*s, RandomBytes(3000, 102), "repo");
  ManifestRecord child;
  child.content = "{\"child\":1}";
  child.digest = Digest::Of(child.content);
  child.media_type = "application/vnd.oci.image.manifest.v1+json";
  REQUIRE(s->PutManifest("repo", child, "", {layer.digest}, {}).ok());
  int64_t cutoff = NowMicros() + 1;  // the collector's decision time
  // A push lands after the decision and needs the layer and the child.
  ManifestRecord index;
  index.content = "{\"index\":1}";
  index.digest = Digest::Of(index.content);
  index.media_type = "application/vnd.oci.image.index.v1+json";
  REQUIRE(
      s->PutManifest("repo", index, "", {layer.digest}, {child.digest}).ok());
  CHECK(s->UnlinkIfIdle("repo", layer.digest, cutoff).code() ==
        Code::kFailedPrecondition);
  CHECK(s->DeleteManifestIfIdle("repo", child.digest, cutoff).code() ==
        Code::kFailedPrecondition);
  // A tagged manifest is never deleted, however old.
  REQUIRE(s->PutManifest("repo", index, "v1", {}, {}).ok());
  CHECK(s->DeleteManifestIfIdle("repo", index.digest, NowMicros() + 1).code() ==
        Code::kFailedPrecondition);
  auto c = s->ReadRepository("repo");
  REQUIRE(c.ok());
  CHECK(c->links.size() == 1);
  CHECK(c->manifests.size() == 2);
  CHECK(c->tags.size() == 1);
  CHECK(c->manifests[0].touched_micros > 0);
}

TEST_CASE("gc: unreferenced blobs go only when idle; bytes after record") {
  TempDir dir;
  auto s = Open(dir.path());
  std::string big = RandomBytes(200000, 103);
  auto b = Put(*s, big);  // unlinked
  CHECK(s->DeleteBlobIfIdle(b.digest, NowMicros() - 1000000).code() ==
        Code::kFailedPrecondition);
  // Uploaded again (unlinked): touched again.
  int64_t cutoff = NowMicros() + 1;
  Put(*s, big);
  CHECK(s->DeleteBlobIfIdle(b.digest, cutoff).code() ==
        Code::kFailedPrecondition);
  // Linked: never deleted.
  REQUIRE(s->LinkBlob("repo", b.digest).ok());
  CHECK(s->DeleteBlobIfIdle(b.digest, NowMicros() + 1).code() ==
        Code::kFailedPrecondition);
  REQUIRE(s->UnlinkBlob("repo", b.digest).ok());
  CHECK(s->DeleteBlobIfIdle(b.digest, NowMicros() + 1).ok());
  CHECK(s->StatBlob(b.digest).status().code() == Code::kNotFound);
  CHECK(CountBlobObjects(dir.path()) == 0);
}

TEST_CASE("gc: UnlinkManyIfIdle deletes the blobs that lose their last link") {
  TempDir dir;
  auto s = Open(dir.path());
  auto file = Put(*s, RandomBytes(200000, 111), "a");  // bytes in a file
  auto small = Put(*s, RandomBytes(500, 112), "a");    // bytes in the database
  auto shared = Put(*s, RandomBytes(600, 113), "a");
  REQUIRE(s->LinkBlob("b", shared.digest).ok());
  auto never = Digest::Of("never linked");
  CHECK(CountBlobObjects(dir.path()) == 1);
  int64_t cutoff = NowMicros() + 1;
  auto young = Put(*s, RandomBytes(700, 114), "a");  // linked after the cutoff
  auto n = s->UnlinkManyIfIdle(
      "a", {file.digest, small.digest, shared.digest, young.digest, never},
      cutoff);
  REQUIRE(n.ok());
  CHECK(n->links == 3);
  CHECK(n->blobs == 2);
  CHECK(n->bytes == file.size + small.size);
  CHECK(s->StatBlob(file.digest).status().code() == Code::kNotFound);
  CHECK(s->StatBlob(small.digest).status().code() == Code::kNotFound);
  CHECK(CountBlobObjects(dir.path()) == 0);
  auto sh = s->StatBlob(shared.digest);
  REQUIRE(sh.ok());
  CHECK(sh->refs == 1);  // still linked in b
  CHECK(s->StatLinkedBlob("a", young.digest).ok());
  bool listed = false;
  CHECK(s->WalkUnreferenced([&](const Digest& d, int64_t) {
           listed |= d == file.digest || d == small.digest;
         }).ok());
  CHECK_FALSE(listed);
  // Committed again afterwards: a whole new blob.
  auto again = Put(*s, RandomBytes(200000, 111), "a");
  CHECK(again.digest == file.digest);
  CHECK(s->StatLinkedBlob("a", file.digest).ok());
  CHECK(CountBlobObjects(dir.path()) == 1);
}

TEST_CASE("gc: orphan bytes (no record) are removed, committed ones kept") {
  TempDir dir;
  std::string kept_data = RandomBytes(300000, 104),
              orphan_data = RandomBytes(300000, 105);
  Digest orphan = Digest::Of(orphan_data);
  {
    auto s = Open(dir.path());
    Put(*s, kept_data, "repo");
    Put(*s, orphan_data);
  }
  // Drop the orphan's record behind the store's back: what a crash between
  // the record's and the bytes' removal leaves.
  {
    auto s = Open(dir.path());
    REQUIRE(s->DeleteBlobIfIdle(orphan, NowMicros() + 1).ok());
  }
  ocib::testing::PlantBlobBytes(dir.path(), orphan, orphan_data);
  auto s = Open(dir.path());
  auto removed = s->RemoveOrphanBytes();
  REQUIRE(removed.ok());
  CHECK(removed->first == 1);
  CHECK(removed->second == orphan_data.size());
  CHECK(ReadAll(*s, Digest::Of(kept_data)) == kept_data);
}

TEST_CASE("gc: an emptied repository leaves the catalog") {
  TempDir dir;
  auto s = Open(dir.path());
  auto b = Put(*s, RandomBytes(100, 106), "gone");
  CHECK(s->RemoveRepositoryIfEmpty("gone").code() == Code::kFailedPrecondition);
  REQUIRE(s->UnlinkBlob("gone", b.digest).ok());
  CHECK(s->RemoveRepositoryIfEmpty("gone").ok());
  CHECK_FALSE(s->RepositoryExists("gone"));
  auto page = s->ListRepositories(0, "");
  REQUIRE(page.ok());
  CHECK(page->items.empty());
}

// --- durable queues (the registry's notifications) and figures ---

TEST_CASE("queues: append, peek in order, ack; entries survive a reopen") {
  TempDir dir;
  {
    // Nobody else holds them: granted.
    auto s = Open(dir.path() + "/lease");
    CHECK(s->HoldQueue("a").ok());
    CHECK(s->HoldCollector().ok());
  }
  uint64_t last = 0;
  {
    auto s = Open(dir.path());
    REQUIRE(s->Append({{"a", "1"}, {"b", "x"}, {"a", "2"}}).ok());
    REQUIRE(s->Append({{"a", "3"}}).ok());
    auto p = s->Peek("a", 2);
    REQUIRE(p.ok());
    REQUIRE(p->size() == 2);
    CHECK((*p)[0].payload == "1");
    CHECK((*p)[1].payload == "2");
    CHECK((*p)[0].seq < (*p)[1].seq);
    REQUIRE(s->Ack("a", (*p)[1].seq).ok());
    CHECK(*s->QueueLength("a") == 1);
    CHECK(*s->QueueLength("b") == 1);
    last = s->Peek("a", 10)->back().seq;
  }
  auto s = Open(dir.path());
  auto p = s->Peek("a", 10);
  REQUIRE(p.ok());
  REQUIRE(p->size() == 1);
  CHECK((*p)[0].payload == "3");
  // New entries after a reopen sort after the old ones.
  REQUIRE(s->Append({{"a", "4"}}).ok());
  p = s->Peek("a", 10);
  REQUIRE(p->size() == 2);
  CHECK((*p)[1].payload == "4");
  CHECK((*p)[1].seq > last);
  CHECK(s->Peek("b", 10)->at(0).payload == "x");  // other queues untouched
  CHECK(s->Peek("none", 10)->empty());
}

TEST_CASE(
    "a shared index: processes appending to one queue never reuse a "
    "sequence number" *
    doctest::skip(!SharedIndex())) {
  TempDir dir;
  auto a = Open(dir.path());
  StoreOptions o;
  o.root = dir.path();
  auto b = OpenTestStore(o);
  REQUIRE(b.ok());
  for (int i = 0; i < 6; ++i) {
    Store& s = (i % 2) ? **b : *a;
    REQUIRE(s.Append({{"q", std::to_string(i)}}).ok());
  }
  auto p = a->Peek("q", 10);
  REQUIRE(p.ok());
  REQUIRE(p->size() == 6);
  for (int i = 0; i < 6; ++i) CHECK((*p)[i].payload == std::to_string(i));
  // One deliverer of a queue at a time; other queues are free.
  {
    auto held = a->HoldQueue("q");
    REQUIRE(held.ok());
    CHECK((*b)->HoldQueue("q").status().code() == Code::kUnavailable);
    CHECK((*b)->HoldQueue("other").ok());
    CHECK((*b)->HoldCollector().ok());
  }
  CHECK((*b)->HoldQueue("q").ok());
}

TEST_CASE("stats: blobs and bytes follow commits and deletions") {
  TempDir dir;
  {
    auto s = Open(dir.path());
    Put(*s, RandomBytes(1000, 201), "r");
    Put(*s, RandomBytes(200000, 202), "r");
  }
  auto s = Open(dir.path());
  auto st = s->Stats();  // counted by a walk after the reopen
  REQUIRE(st.ok());
  CHECK(st->blobs == 2);
  CHECK(st->blob_bytes == 201000);
  auto b = Put(*s, RandomBytes(3000, 203));
  Put(*s, RandomBytes(3000, 203));  // the same blob again: no new record
  st = s->Stats();
  CHECK(st->blobs == 3);
  CHECK(st->blob_bytes == 204000);
  REQUIRE(s->DeleteBlob(b.digest).ok());
  st = s->Stats();
  CHECK(st->blobs == 2);
  CHECK(st->blob_bytes == 201000);
  CHECK(st->database_bytes > 0);
  CHECK(s->ProbeWritable().ok());
}
