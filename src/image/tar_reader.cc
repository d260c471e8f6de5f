#include "image/tar_reader.h"

#include <bzlib.h>
#include <fcntl.h>
#include <lzma.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace ocib::image {
namespace {

Status Errno(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno));
}

Status ReadFull(ByteSource& src, char* buf, size_t n, bool* eof) {
  size_t got = 0;
  while (got < n) {
    ASSIGN_OR_RETURN(size_t r, src(buf + got, n - got));
    if (r == 0) {
      if (got == 0 && eof) {
        *eof = true;
        return Status::Ok();
      }
      return InvalidArgument("truncated tar stream");
    }
    got += r;
  }
  return Status::Ok();
}

uint64_t ParseOctal(const char* p, size_t n) {
  // GNU base-256 for large values.
  if (static_cast<unsigned char>(p[0]) & 0x80) {
    uint64_t v = static_cast<unsigned char>(p[0]) & 0x7f;
    for (size_t i = 1; i < n; ++i)
      v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n && p[i]; ++i) {
    if (p[i] == ' ') continue;
    if (p[i] < '0' || p[i] > '7') break;
    v = v * 8 + (p[i] - '0');
  }
  return v;
}

std::string Field(const char* p, size_t n) {
  return std::string(p, strnlen(p, n));
}

void ParsePax(const std::string& data, std::map<std::string, std::string>* kv) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t sp = data.find(' ', pos);
    if (sp == std::string::npos) break;
    size_t len = std::strtoull(data.c_str() + pos, nullptr, 10);
    if (len == 0 || pos + len > data.size()) break;
    std::string rec = data.substr(sp + 1, len - (sp + 1 - pos) - 1);
    size_t eq = rec.find('=');
    if (eq != std::string::npos) (*kv)[rec.substr(0, eq)] = rec.substr(eq + 1);
    pos += len;
  }
}

// Cleans a tar path: strips "./" and "/", refuses "..". Empty result: root.
Result<std::string> CleanPath(const std::string& p) {
  std::string out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string c = p.substr(i, j - i);
    if (c == "..") return InvalidArgument("tar entry escapes the target: " + p);
    if (!c.empty() && c != ".") {
      if (!out.empty()) out += '/';
      out += c;
    }
    i = j + 1;
  }
  return out;
}

}  // namespace

ByteSource Decompressing(ByteSource src) {
  struct State {
    ByteSource src;
    std::vector<char> in = std::vector<char>(1 << 16);
    size_t in_pos = 0, in_len = 0;
    int kind = -1;  // 0 none, 1 gzip, 2 zstd, 3 xz, 4 bzip2
    z_stream z{};
    ZSTD_DCtx* zstd = nullptr;
    lzma_stream xz = LZMA_STREAM_INIT;
    bz_stream bz{};
    bool done = false;
    ~State() {
      if (kind == 1) inflateEnd(&z);
      if (zstd) ZSTD_freeDCtx(zstd);
      if (kind == 3) lzma_end(&xz);
      if (kind == 4) BZ2_bzDecompressEnd(&bz);
    }
    Status Fill() {
      if (in_pos < in_len) return Status::Ok();
      ASSIGN_OR_RETURN(in_len, src(in.data(), in.size()));
      in_pos = 0;
      return Status::Ok();
    }
  };
  auto st = std::make_shared<State>();
  st->src = std::move(src);
  return [st](char* buf, size_t n) -> Result<size_t> {
    State& s = *st;
    if (s.kind < 0) {
      RETURN_IF_ERROR(s.Fill());
      const unsigned char* m =
          reinterpret_cast<const unsigned char*>(s.in.data());
      if (s.in_len >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        s.kind = 1;
        if (inflateInit2(&s.z, 15 + 32) != Z_OK)
          return Internal("inflateInit2 failed");
      } else if (s.in_len >= 4 && m[0] == 0x28 && m[1] == 0xb5 &&
                 m[2] == 0x2f && m[3] == 0xfd) {
        s.kind = 2;
        s.zstd = ZSTD_createDCtx();
      } else if (s.in_len >= 6 && std::memcmp(m,
                                              "\xfd"
                                              "7zXZ\0",
                                              6) == 0) {
        s.kind = 3;
        if (lzma_stream_decoder(&s.xz, UINT64_MAX, LZMA_CONCATENATED) !=
            LZMA_OK)
          return Internal("lzma_stream_decoder failed");
      } else if (s.in_len >= 4 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h' &&
                 m[3] >= '1' && m[3] <= '9') {
        s.kind = 4;
        if (BZ2_bzDecompressInit(&s.bz, 0, 0) != BZ_OK)
          return Internal("BZ2_bzDecompressInit failed");
      } else {
        s.kind = 0;
      }
    }
    if (s.kind == 0) {
      RETURN_IF_ERROR(s.Fill());
      size_t k = std::min(n, s.in_len - s.in_pos);
      std::memcpy(buf, s.in.data() + s.in_pos, k);
      s.in_pos += k;
      return k;
    }
    while (!s.done) {
      RETURN_IF_ERROR(s.Fill());
      if (s.kind == 3) {
        // LZMA_CONCATENATED: the end of input is signalled with LZMA_FINISH.
        s.xz.next_in = reinterpret_cast<const uint8_t*>(s.in.data() + s.in_pos);
        s.xz.avail_in = s.in_len - s.in_pos;
        s.xz.next_out = reinterpret_cast<uint8_t*>(buf);
        s.xz.avail_out = n;
        lzma_ret r = lzma_code(&s.xz, s.in_len == 0 ? LZMA_FINISH : LZMA_RUN);
        s.in_pos = s.in_len - s.xz.avail_in;
        if (r == LZMA_STREAM_END)
          s.done = true;
        else if (r != LZMA_OK)
          return InvalidArgument("corrupt xz stream");
        size_t got = n - s.xz.avail_out;
        if (got) return got;
        if (s.in_len == 0 && !s.done)
          return InvalidArgument("compressed stream ends early");
        continue;
      }
      if (s.in_len == 0) return InvalidArgument("compressed stream ends early");
      if (s.kind == 4) {
        s.bz.next_in = s.in.data() + s.in_pos;
        s.bz.avail_in = static_cast<unsigned>(s.in_len - s.in_pos);
        s.bz.next_out = buf;
        s.bz.avail_out = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
        size_t want = s.bz.avail_out;
        int r = BZ2_bzDecompress(&s.bz);
        s.in_pos = s.in_len - s.bz.avail_in;
        if (r == BZ_STREAM_END)
          s.done = true;
        else if (r != BZ_OK)
          return InvalidArgument("corrupt bzip2 stream");
        size_t got = want - s.bz.avail_out;
        if (got) return got;
        continue;
      }
      if (s.kind == 1) {
        s.z.next_in = reinterpret_cast<Bytef*>(s.in.data() + s.in_pos);
        s.z.avail_in = static_cast<uInt>(s.in_len - s.in_pos);
        s.z.next_out = reinterpret_cast<Bytef*>(buf);
        s.z.avail_out = static_cast<uInt>(n);
        int r = inflate(&s.z, Z_NO_FLUSH);
        s.in_pos = s.in_len - s.z.avail_in;
        if (r == Z_STREAM_END)
          s.done = true;
        else if (r != Z_OK && r != Z_BUF_ERROR)
          return InvalidArgument("corrupt gzip stream");
        size_t got = n - s.z.avail_out;
        if (got) return got;
      } else {
        ZSTD_inBuffer in{s.in.data() + s.in_pos, s.in_len - s.in_pos, 0};
        ZSTD_outBuffer out{buf, n, 0};
        size_t r = ZSTD_decompressStream(s.zstd, &out, &in);
        if (ZSTD_isError(r))
          return InvalidArgument(std::string("corrupt zstd stream: ") +
                                 ZSTD_getErrorName(r));
        s.in_pos += in.pos;
        if (r == 0 && s.in_pos == s.in_len) {
          // A frame ended; more frames may follow.
          RETURN_IF_ERROR(s.Fill());
          if (s.in_len == 0) s.done = true;
        }
        if (out.pos) return out.pos;
      }
    }
    return size_t{0};
  };
}

Status ReadTar(
    ByteSource src,
    const std::function<Status(
        const TarEntry&, const std::function<Result<size_t>(char*, size_t)>&)>&
        on_entry) {
  char h[512];
  std::map<std::string, std::string> pax_global, pax;
  std::string gnu_long_name, gnu_long_link;
  int zero_blocks = 0;
  while (true) {
    bool eof = false;
    RETURN_IF_ERROR(ReadFull(src, h, 512, &eof));
    if (eof) return Status::Ok();
    bool zero = true;
    for (char c : h) zero = zero && c == 0;
    if (zero) {
      if (++zero_blocks == 2) return Status::Ok();
      continue;
    }
    zero_blocks = 0;
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i)
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    if (sum != ParseOctal(h + 148, 8))
      return InvalidArgument("tar header checksum mismatch");
    char type = h[156] ? h[156] : '0';
    uint64_t size = ParseOctal(h + 124, 12);
    auto read_body = [&](std::string* out) -> Status {
      if (size > (64u << 20))
        return InvalidArgument("tar metadata entry too large");
      out->resize(size);
      if (size) RETURN_IF_ERROR(ReadFull(src, out->data(), size, nullptr));
      char pad[512];
      size_t p = (512 - size % 512) % 512;
      if (p) RETURN_IF_ERROR(ReadFull(src, pad, p, nullptr));
      return Status::Ok();
    };
    if (type == 'x' || type == 'g') {
      std::string body;
      RETURN_IF_ERROR(read_body(&body));
      ParsePax(body, type == 'x' ? &pax : &pax_global);
      continue;
    }
    if (type == 'L' || type == 'K') {
      std::string body;
      RETURN_IF_ERROR(read_body(&body));
      (type == 'L' ? gnu_long_name : gnu_long_link) = std::string(body.c_str());
      continue;
    }
    TarEntry e;
    std::string name = Field(h, 100);
    std::string prefix = Field(h + 345, 155);
    if (std::memcmp(h + 257, "ustar", 5) == 0 && !prefix.empty())
      name = prefix + "/" + name;
    e.linkname = Field(h + 157, 100);
    if (!gnu_long_name.empty()) name = gnu_long_name;
    if (!gnu_long_link.empty()) e.linkname = gnu_long_link;
    e.mode = static_cast<uint32_t>(ParseOctal(h + 100, 8) & 07777);
    e.uid = ParseOctal(h + 108, 8);
    e.gid = ParseOctal(h + 116, 8);
    e.mtime = static_cast<int64_t>(ParseOctal(h + 136, 12));
    e.devmajor = static_cast<uint32_t>(ParseOctal(h + 329, 8));
    e.devminor = static_cast<uint32_t>(ParseOctal(h + 337, 8));
    std::map<std::string, std::string> kv = pax_global;
    for (auto& [k, v] : pax) kv[k] = v;
    for (auto& [k, v] : kv) {
      if (k == "path")
        name = v;
      else if (k == "linkpath")
        e.linkname = v;
      else if (k == "size")
        size = std::strtoull(v.c_str(), nullptr, 10);
      else if (k == "uid")
        e.uid = std::strtoull(v.c_str(), nullptr, 10);
      else if (k == "gid")
        e.gid = std::strtoull(v.c_str(), nullptr, 10);
      else if (k == "mtime")
        e.mtime = std::strtoll(v.c_str(), nullptr, 10);
      else if (k.rfind("SCHILY.xattr.", 0) == 0)
        e.xattrs[k.substr(13)] = v;
    }
    pax.clear();
    gnu_long_name.clear();
    gnu_long_link.clear();
    switch (type) {
      case '0':
      case '7':
        e.type = TarEntry::kFile;
        break;
      case '1':
        e.type = TarEntry::kHardlink;
        break;
      case '2':
        e.type = TarEntry::kSymlink;
        break;
      case '3':
        e.type = TarEntry::kChar;
        break;
      case '4':
        e.type = TarEntry::kBlock;
        break;
      case '5':
        e.type = TarEntry::kDir;
        break;
      case '6':
        e.type = TarEntry::kFifo;
        break;
      default:
        e.type = TarEntry::kFile;
        break;  // unknown: treated as data, skipped below
    }
    while (name.size() > 1 && name.back() == '/') name.pop_back();
    e.path = name;
    uint64_t data_size = (type == '1' || type == '2' || type == '3' ||
                          type == '4' || type == '5' || type == '6')
                             ? 0
                             : size;
    e.size = data_size;
    uint64_t left = data_size;
    auto reader = [&](char* buf, size_t n) -> Result<size_t> {
      if (left == 0) return size_t{0};
      size_t k = std::min<uint64_t>(n, left);
      RETURN_IF_ERROR(ReadFull(src, buf, k, nullptr));
      left -= k;
      return k;
    };
    RETURN_IF_ERROR(on_entry(e, reader));
    char skip[65536];
    while (left > 0) {
      size_t k = std::min<uint64_t>(sizeof skip, left);
      RETURN_IF_ERROR(ReadFull(src, skip, k, nullptr));
      left -= k;
    }
    size_t p = (512 - data_size % 512) % 512;
    if (p) RETURN_IF_ERROR(ReadFull(src, skip, p, nullptr));
  }
}

namespace {

// Checks that no existing component of rel (below dir) is a symlink, so a
// write cannot be redirected outside dir.
Status NoSymlinkParents(const std::string& dir, const std::string& rel) {
  std::string cur = dir;
  size_t i = 0;
  while (true) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) return Status::Ok();
    cur += "/" + rel.substr(i, j - i);
    struct stat st;
    if (::lstat(cur.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      return InvalidArgument("tar entry " + rel +
                             " would be written through a symlink");
    i = j + 1;
  }
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace

Status ExtractLayer(ByteSource src, const std::string& dir) {
  struct DirTime {
    std::string path;
    int64_t mtime;
  };
  std::vector<DirTime> dirs;
  Status st = ReadTar(
      Decompressing(std::move(src)),
      [&](const TarEntry& e0, const auto& read) -> Status {
        ASSIGN_OR_RETURN(std::string rel, CleanPath(e0.path));
        if (rel.empty()) return Status::Ok();  // the root itself
        RETURN_IF_ERROR(NoSymlinkParents(dir, rel));
        std::string base = rel.substr(
            rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/') + 1);
        std::string parent = rel.find('/') == std::string::npos
                                 ? ""
                                 : rel.substr(0, rel.rfind('/'));
        std::string pabs = parent.empty() ? dir : dir + "/" + parent;
        std::error_code ec;
        std::filesystem::create_directories(pabs, ec);
        if (base == ".wh..wh..opq") {
          if (::setxattr(pabs.c_str(), "trusted.overlay.opaque", "y", 1, 0) !=
              0)
            return Errno("mark " + parent + " opaque");
          return Status::Ok();
        }
        if (base.rfind(".wh.", 0) == 0) {
          std::string target = pabs + "/" + base.substr(4);
          RemoveAll(target);
          if (::mknod(target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
            return Errno("whiteout " + target);
          return Status::Ok();
        }
        std::string abs = dir + "/" + rel;
        struct stat old;
        bool exists = ::lstat(abs.c_str(), &old) == 0;
        if (exists && !(S_ISDIR(old.st_mode) && e0.type == TarEntry::kDir))
          RemoveAll(abs);
        switch (e0.type) {
          case TarEntry::kDir:
            if (!exists || !S_ISDIR(old.st_mode))
              if (::mkdir(abs.c_str(), 0755) != 0 && errno != EEXIST)
                return Errno("mkdir " + abs);
            dirs.push_back({abs, e0.mtime});
            break;
          case TarEntry::kFile: {
            int fd = ::open(
                abs.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd < 0) return Errno("create " + abs);
            char buf[65536];
            while (true) {
              auto n = read(buf, sizeof buf);
              if (!n.ok()) {
                ::close(fd);
                return n.status();
              }
              if (*n == 0) break;
              if (::write(fd, buf, *n) != static_cast<ssize_t>(*n)) {
                ::close(fd);
                return Errno("write " + abs);
              }
            }
            ::close(fd);
            break;
          }
          case TarEntry::kHardlink: {
            ASSIGN_OR_RETURN(std::string target, CleanPath(e0.linkname));
            RETURN_IF_ERROR(NoSymlinkParents(dir, target));
            if (::link((dir + "/" + target).c_str(), abs.c_str()) != 0)
              return Errno("link " + abs);
            return Status::Ok();  // shares the target's inode and metadata
          }
          case TarEntry::kSymlink:
            if (::symlink(e0.linkname.c_str(), abs.c_str()) != 0)
              return Errno("symlink " + abs);
            break;
          case TarEntry::kChar:
          case TarEntry::kBlock:
          case TarEntry::kFifo: {
            mode_t t = e0.type == TarEntry::kChar    ? S_IFCHR
                       : e0.type == TarEntry::kBlock ? S_IFBLK
                                                     : S_IFIFO;
            if (::mknod(abs.c_str(), t | (e0.mode & 07777),
                        makedev(e0.devmajor, e0.devminor)) != 0)
              return Errno("mknod " + abs);
            break;
          }
        }
        if (::lchown(abs.c_str(), static_cast<uid_t>(e0.uid),
                     static_cast<gid_t>(e0.gid)) != 0 &&
            errno != EPERM)
          return Errno("chown " + abs);
        if (e0.type != TarEntry::kSymlink &&
            ::chmod(abs.c_str(), e0.mode & 07777) != 0)
          return Errno("chmod " + abs);
        for (const auto& [k, v] : e0.xattrs)
          ::lsetxattr(abs.c_str(), k.c_str(), v.data(), v.size(), 0);
        if (e0.type != TarEntry::kDir) {
          struct timespec ts[2] = {{e0.mtime, 0}, {e0.mtime, 0}};
          ::utimensat(AT_FDCWD, abs.c_str(), ts, AT_SYMLINK_NOFOLLOW);
        }
        return Status::Ok();
      });
  RETURN_IF_ERROR(st);
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    struct timespec ts[2] = {{it->mtime, 0}, {it->mtime, 0}};
    ::utimensat(AT_FDCWD, it->path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  }
  return Status::Ok();
}

}  // namespace ocib::image
