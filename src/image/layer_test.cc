#include "image/layer.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "temp_dir.h"

using namespace ocib;
using namespace ocib::image;
using ocib::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string Sh(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    out.append(buf.data(), n);
  pclose(p);
  return out;
}

void WriteFile(const std::string& path, const std::string& data,
               mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
  ::chmod(path.c_str(), mode);
}

// A tree with every kind of entry the tar writer handles.
void MakeTree(const std::string& root) {
  WriteFile(root + "/etc/hello", "hello\n");
  WriteFile(root + "/bin/tool", std::string(100000, 'x'), 0755);
  fs::create_directories(root + "/empty/dir");
  ::symlink("../etc/hello", (root + "/bin/link").c_str());
  ::link((root + "/etc/hello").c_str(), (root + "/etc/hard").c_str());
  std::string deep =
      root + "/" + std::string(120, 'd') + "/" + std::string(150, 'e');
  WriteFile(deep + "/" + std::string(110, 'f'), "deep");
  ::mkfifo((root + "/fifo").c_str(), 0600);
  ::setxattr((root + "/etc/hello").c_str(), "user.note", "v1", 2, 0);
}

LayerInfo Layer(Store& s, const std::string& root, Compression c,
                std::optional<int64_t> clamp = std::nullopt) {
  auto w = LayerWriter::Create(s, c);
  REQUIRE(w.ok());
  TreeOptions opt;
  opt.clamp_mtime = clamp;
  REQUIRE(WriteTree(root, (*w)->tar(), opt).ok());
  auto info = (*w)->Commit();
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  return *info;
}

// Copies a blob out of the store (small ones have no file of their own).
std::string ExportBlob(Store& s, const Digest& d, const std::string& path) {
  auto h = s.OpenBlob(d);
  REQUIRE(h.ok());
  std::string data((*h)->size(), '\0');
  uint64_t off = 0;
  while (off < data.size()) {
    auto n = (*h)->ReadAt(off, data.data() + off, data.size() - off);
    REQUIRE(n.ok());
    REQUIRE(*n > 0);
    off += *n;
  }
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

}  // namespace

TEST_CASE(
    "layers read back with GNU tar: every entry type, long names, xattrs") {
  TempDir t;
  std::string src = t.path() + "/src", out = t.path() + "/out",
              sroot = t.path() + "/store";
  MakeTree(src);
  StoreOptions o;
  o.root = sroot;
  auto s = std::move(*OpenStore(o));
  for (Compression c :
       {Compression::kGzip, Compression::kZstd, Compression::kNone}) {
    LayerInfo info = Layer(*s, src, c);
    CHECK(s->StatBlob(info.digest)->size == info.size);
    std::string blob = ExportBlob(*s, info.digest, t.path() + "/blob");
    std::string cat = c == Compression::kGzip   ? "gzip -dc "
                      : c == Compression::kZstd ? "zstd -dcq "
                                                : "cat ";
    // The diff ID is the digest of the uncompressed tar.
    CHECK(Sh(cat + blob + " | sha256sum").substr(0, 64) == info.diff_id.hex());
    fs::remove_all(out);
    fs::create_directories(out);
    std::string err =
        Sh(cat + blob + " | tar --xattrs --xattrs-include='*' -xpf - -C " +
           out + " 2>&1");
    CHECK_MESSAGE(err.empty(), err);
    CHECK(Sh("cat " + out + "/etc/hello") == "hello\n");
    CHECK(fs::file_size(out + "/bin/tool") == 100000);
    CHECK((fs::status(out + "/bin/tool").permissions() &
           fs::perms::owner_exec) != fs::perms::none);
    CHECK(fs::read_symlink(out + "/bin/link") == "../etc/hello");
    struct stat a, b;
    REQUIRE(::stat((out + "/etc/hello").c_str(), &a) == 0);
    REQUIRE(::stat((out + "/etc/hard").c_str(), &b) == 0);
    CHECK(a.st_ino == b.st_ino);  // hardlink kept
    CHECK(fs::is_directory(out + "/empty/dir"));
    CHECK(fs::is_fifo(out + "/fifo"));
    CHECK(Sh("cat " + out + "/" + std::string(120, 'd') + "/" +
             std::string(150, 'e') + "/" + std::string(110, 'f')) == "deep");
    char v[16] = {};
    if (::getxattr((src + "/etc/hello").c_str(), "user.note", v, sizeof v) ==
        2) {
      char w[16] = {};
      CHECK(::getxattr((out + "/etc/hello").c_str(), "user.note", w,
                       sizeof w) == 2);
      CHECK(std::string(w, 2) == "v1");
    }
  }
}

TEST_CASE("layers are deterministic, and clamped mtimes ignore touches") {
  TempDir t;
  std::string src = t.path() + "/src";
  MakeTree(src);
  StoreOptions o;
  o.root = t.path() + "/store";
  auto s = std::move(*OpenStore(o));
  LayerInfo a = Layer(*s, src, Compression::kGzip, 1000);
  LayerInfo b = Layer(*s, src, Compression::kGzip, 1000);
  CHECK(a.digest == b.digest);
  CHECK(a.diff_id == b.diff_id);
  LayerInfo z1 = Layer(*s, src, Compression::kZstd, 1000);
  LayerInfo z2 = Layer(*s, src, Compression::kZstd, 1000);
  CHECK(z1.digest == z2.digest);
  CHECK(z1.diff_id == a.diff_id);  // same tar, other compression
  ::utimensat(AT_FDCWD, (src + "/etc/hello").c_str(), nullptr, 0);  // now
  CHECK(Layer(*s, src, Compression::kGzip, 1000).digest == a.digest);
  WriteFile(src + "/etc/hello", "changed\n");
  CHECK(Layer(*s, src, Compression::kGzip, 1000).digest != a.digest);
  // Without clamping, mtimes are kept.
  CHECK(Layer(*s, src, Compression::kGzip).digest != a.digest);
}

TEST_CASE("TarWriter refuses short and long file data") {
  std::string out;
  TarWriter tw([&](const char* d, size_t n) {
    out.append(d, n);
    return Status::Ok();
  });
  TarEntry e;
  e.path = "f";
  e.size = 3;
  REQUIRE(tw.WriteHeader(e).ok());
  CHECK(tw.WriteData("abcd", 4).code() == Code::kFailedPrecondition);
  CHECK(tw.Finish().code() == Code::kFailedPrecondition);
  REQUIRE(tw.WriteData("abc", 3).ok());
  REQUIRE(tw.Finish().ok());
  CHECK(out.size() % 512 == 0);
  CHECK(ParseCompression("brotli").status().code() == Code::kInvalidArgument);
}

TEST_CASE(
    "block-parallel gzip: many blocks decode with gzip and are deterministic") {
  TempDir t;
  std::string src = t.path() + "/src";
  // ~3 MiB: random runs and repeated text, so blocks reach back into the
  // previous block's window.
  std::string big = ocib::testing::RandomBytes(1 << 20, 42);
  for (int i = 0; i < 40000; ++i)
    big += "line " + std::to_string(i % 97) + " of a repetitive log\n";
  big += ocib::testing::RandomBytes(700000, 43);
  WriteFile(src + "/big", big);
  StoreOptions o;
  o.root = t.path() + "/store";
  auto s = std::move(*OpenStore(o));
  LayerInfo a = Layer(*s, src, Compression::kGzip, 0);
  LayerInfo b = Layer(*s, src, Compression::kGzip, 0);
  CHECK(a.digest == b.digest);
  std::string blob = ExportBlob(*s, a.digest, t.path() + "/blob");
  CHECK(Sh("gzip -t " + blob + " && echo ok") == "ok\n");
  CHECK(Sh("gzip -dc " + blob + " | sha256sum").substr(0, 64) ==
        a.diff_id.hex());
  CHECK(a.size < big.size());  // the repeated text compressed
}
