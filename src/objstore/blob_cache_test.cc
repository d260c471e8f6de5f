#include "objstore/blob_cache.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "temp_dir.h"

using namespace ocib;
using namespace ocib::objstore;
using ocib::testing::TempDir;

namespace {

Digest Fill(BlobCache& c, const std::string& bytes) {
  std::string path;
  int fd = c.CreateTemp("x", &path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) ==
          static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  Digest d = Digest::Of(bytes);
  c.Adopt(path, d, bytes.size());
  return d;
}

std::string Read(BlobCache& c, const Digest& d) {
  auto h = c.Lookup(d);
  REQUIRE(h);
  std::string out(h->size(), '\0');
  auto n = h->ReadAt(0, out.data(), out.size());
  REQUIRE(n.ok());
  CHECK(*n == out.size());
  return out;
}

}  // namespace

TEST_CASE("blob cache: adopt, read, evict the least recently used") {
  TempDir t;
  auto c = BlobCache::Open(t.path(), 100);
  REQUIRE(c.ok());
  Digest a = Fill(**c, std::string(40, 'a'));
  Digest b = Fill(**c, std::string(40, 'b'));
  CHECK(Read(**c, a) == std::string(40, 'a'));  // a is now the most recent
  Digest d = Fill(**c, std::string(40, 'd'));   // 120 > 100: b goes
  CHECK((*c)->Lookup(b) == nullptr);
  CHECK(Read(**c, a) == std::string(40, 'a'));
  CHECK(Read(**c, d) == std::string(40, 'd'));
  CHECK((*c)->bytes() == 80);
  (*c)->Remove(a);
  CHECK((*c)->Lookup(a) == nullptr);
  CHECK((*c)->bytes() == 40);
}

TEST_CASE("blob cache: an entry larger than the budget is not kept") {
  TempDir t;
  auto c = BlobCache::Open(t.path(), 10);
  REQUIRE(c.ok());
  Digest a = Fill(**c, std::string(11, 'a'));
  CHECK((*c)->Lookup(a) == nullptr);
  CHECK((*c)->bytes() == 0);
}

TEST_CASE("blob cache: reopened, it keeps entries and drops unfinished ones") {
  TempDir t;
  Digest a = Digest::Of("");
  {
    auto c = BlobCache::Open(t.path(), 1000);
    REQUIRE(c.ok());
    a = Fill(**c, "kept bytes");
    std::string path;
    int fd = (*c)->CreateTemp("unfinished", &path);
    REQUIRE(fd >= 0);
    ::close(fd);
  }
  auto c = BlobCache::Open(t.path(), 1000);
  REQUIRE(c.ok());
  CHECK(Read(**c, a) == "kept bytes");
  CHECK(std::filesystem::is_empty(t.path() + "/tmp"));
  // A file whose size no longer matches is not served.
  std::filesystem::resize_file(t.path() + "/blobs/sha256-" + a.hex(), 3);
  CHECK((*c)->Lookup(a) == nullptr);
}
