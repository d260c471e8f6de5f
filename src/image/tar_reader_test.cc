#include "image/tar_reader.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "image/layer.h"
#include "temp_dir.h"

using namespace ocib;
using namespace ocib::image;
using ocib::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// A tar (uncompressed) from entries; file data is the entry's linkname
// field reused as content when type is kFile.
std::string MakeTar(
    const std::vector<std::pair<TarEntry, std::string>>& entries) {
  std::string out;
  TarWriter tw([&](const char* d, size_t n) {
    out.append(d, n);
    return Status::Ok();
  });
  for (auto [e, data] : entries) {
    e.size = e.type == TarEntry::kFile ? data.size() : 0;
    REQUIRE(tw.WriteHeader(e).ok());
    if (!data.empty()) REQUIRE(tw.WriteData(data.data(), data.size()).ok());
  }
  REQUIRE(tw.Finish().ok());
  return out;
}

ByteSource FromString(std::string s) {
  auto data = std::make_shared<std::string>(std::move(s));
  auto pos = std::make_shared<size_t>(0);
  return [data, pos](char* buf, size_t n) -> Result<size_t> {
    size_t k = std::min(n, data->size() - *pos);
    std::memcpy(buf, data->data() + *pos, k);
    *pos += k;
    return k;
  };
}

TarEntry E(const std::string& path, TarEntry::Type t = TarEntry::kFile,
           const std::string& link = "") {
  TarEntry e;
  e.path = path;
  e.type = t;
  e.linkname = link;
  e.mode = t == TarEntry::kDir ? 0755 : 0644;
  return e;
}

std::string Slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("round trip through the writer, gzip and zstd") {
  TempDir t;
  std::string src = t.path() + "/src";
  fs::create_directories(src + "/a/b");
  std::ofstream(src + "/a/b/file") << "content";
  std::ofstream(src + "/" + std::string(200, 'n')) << "long";
  ::symlink("b/file", (src + "/a/link").c_str());
  StoreOptions o;
  o.root = t.path() + "/store";
  auto s = std::move(*OpenStore(o));
  for (Compression c :
       {Compression::kGzip, Compression::kZstd, Compression::kNone}) {
    auto w = LayerWriter::Create(*s, c);
    REQUIRE(WriteTree(src, (*w)->tar(), {}).ok());
    auto info = (*w)->Commit();
    REQUIRE(info.ok());
    auto h = s->OpenBlob(info->digest);
    REQUIRE(h.ok());
    std::shared_ptr<BlobReadHandle> handle(std::move(*h));
    auto off = std::make_shared<uint64_t>(0);
    ByteSource blob = [handle, off](char* buf, size_t n) -> Result<size_t> {
      auto r = handle->ReadAt(*off, buf, n);
      if (r.ok()) *off += *r;
      return r;
    };
    std::string out = t.path() + "/out" + std::to_string(static_cast<int>(c));
    fs::create_directories(out);
    Status st = ExtractLayer(blob, out);
    REQUIRE_MESSAGE(st.ok(), st.ToString());
    CHECK(Slurp(out + "/a/b/file") == "content");
    CHECK(Slurp(out + "/" + std::string(200, 'n')) == "long");
    CHECK(fs::read_symlink(out + "/a/link") == "b/file");
  }
}

TEST_CASE("OCI whiteouts become overlay whiteouts") {
  TempDir t;
  std::string dir = t.path() + "/layer";
  fs::create_directories(dir);
  std::string tar = MakeTar({{E("etc", TarEntry::kDir), ""},
                             {E("etc/.wh.passwd"), ""},
                             {E("var", TarEntry::kDir), ""},
                             {E("var/.wh..wh..opq"), ""},
                             {E("var/new"), "n"}});
  REQUIRE(ExtractLayer(FromString(tar), dir).ok());
  struct stat st;
  REQUIRE(::lstat((dir + "/etc/passwd").c_str(), &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  CHECK(st.st_rdev == makedev(0, 0));
  char v[4] = {};
  CHECK(::getxattr((dir + "/var").c_str(), "trusted.overlay.opaque", v,
                   sizeof v) == 1);
  CHECK(v[0] == 'y');
  CHECK(Slurp(dir + "/var/new") == "n");
  CHECK(!fs::exists(dir + "/etc/.wh.passwd"));
}

TEST_CASE("hostile archives are refused and write nothing outside") {
  TempDir t;
  std::string dir = t.path() + "/target";
  fs::create_directories(dir);
  auto refused = [&](std::vector<std::pair<TarEntry, std::string>> entries) {
    Status s = ExtractLayer(FromString(MakeTar(entries)), dir);
    CHECK(s.code() == Code::kInvalidArgument);
  };
  refused({{E("../escape"), "x"}});
  refused({{E("a/../../escape"), "x"}});
  refused(
      {{E("link", TarEntry::kSymlink, t.path()), ""}, {E("link/escape"), "x"}});
  refused({{E("hard", TarEntry::kHardlink, "../../etc/passwd"), ""}});
  CHECK(!fs::exists(t.path() + "/escape"));
  // Absolute paths are taken relative to the target.
  REQUIRE(ExtractLayer(FromString(MakeTar({{E("/abs"), "a"}})), dir).ok());
  CHECK(Slurp(dir + "/abs") == "a");
  // Garbage and truncation are errors, not crashes.
  CHECK(!ExtractLayer(FromString(std::string(1024, 'x')), dir).ok());
  std::string tar = MakeTar({{E("f"), std::string(5000, 'z')}});
  CHECK(!ExtractLayer(FromString(tar.substr(0, 1500)), dir).ok());
  std::string gz = "\x1f\x8b" + std::string(100, 'q');
  CHECK(!ExtractLayer(FromString(gz), dir).ok());
}
