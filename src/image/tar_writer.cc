#include "image/tar_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ocib::image {
namespace {

constexpr size_t kBlock = 512;

// Writes v as NUL-terminated octal into field[0..len); false if it does not
// fit.
bool Octal(char* field, size_t len, uint64_t v) {
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + (v & 7)));
    v >>= 3;
  } while (v);
  if (s.size() > len - 1) return false;
  s.insert(s.begin(), len - 1 - s.size(), '0');
  std::memcpy(field, s.data(), len - 1);
  field[len - 1] = '\0';
  return true;
}

std::string PaxRecord(const std::string& key, const std::string& value) {
  // "%d %s=%s\n" where %d counts the whole record, itself included.
  size_t body = 1 + key.size() + 1 + value.size() + 1;
  size_t n = body + 1;
  while (std::to_string(n).size() + body != n)
    n = std::to_string(n).size() + body;
  return std::to_string(n) + " " + key + "=" + value + "\n";
}

Status Errno(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno));
}

// Fills in a header block's checksum field.
void SetChecksum(char* h) {
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(h[i]);
  Octal(h + 148, 7, sum);
  h[155] = ' ';
}

}  // namespace

Status TarWriter::Emit(const char* data, size_t n) {
  written_ += n;
  return sink_(data, n);
}

Status TarWriter::PadTo512() {
  static const char zeros[kBlock] = {};
  size_t pad = (kBlock - written_ % kBlock) % kBlock;
  return pad ? Emit(zeros, pad) : Status::Ok();
}

Status TarWriter::WriteHeader(const TarEntry& e) {
  if (remaining_ != 0)
    return FailedPrecondition("previous file is short of data");
  RETURN_IF_ERROR(PadTo512());
  std::string name = e.path;
  if (e.type == TarEntry::kDir && (name.empty() || name.back() != '/'))
    name += '/';
  std::string pax;
  char h[kBlock] = {};
  // Name: fits in name[100], or prefix[155] + "/" + name[100], else PAX.
  bool name_ok = false;
  if (name.size() <= 100) {
    std::memcpy(h, name.data(), name.size());
    name_ok = true;
  } else if (name.size() <= 256) {
    for (size_t cut = name.size() - 1; cut > 0; --cut) {
      if (name[cut] != '/') continue;
      if (cut > 155) continue;
      if (name.size() - cut - 1 > 100 || name.size() - cut - 1 == 0) break;
      std::memcpy(h + 345, name.data(), cut);
      std::memcpy(h, name.data() + cut + 1, name.size() - cut - 1);
      name_ok = true;
      break;
    }
  }
  if (!name_ok) {
    pax += PaxRecord("path", name);
    std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  }
  Octal(h + 100, 8, e.mode & 07777);
  if (!Octal(h + 108, 8, e.uid)) pax += PaxRecord("uid", std::to_string(e.uid));
  if (!Octal(h + 116, 8, e.gid)) pax += PaxRecord("gid", std::to_string(e.gid));
  uint64_t size = e.type == TarEntry::kFile ? e.size : 0;
  if (!Octal(h + 124, 12, size)) {
    pax += PaxRecord("size", std::to_string(size));
    Octal(h + 124, 12, 0);
  }
  int64_t mtime = std::max<int64_t>(e.mtime, 0);
  if (!Octal(h + 136, 12, mtime))
    pax += PaxRecord("mtime", std::to_string(mtime));
  h[156] = static_cast<char>(e.type);
  if (!e.linkname.empty()) {
    if (e.linkname.size() > 100) pax += PaxRecord("linkpath", e.linkname);
    std::memcpy(h + 157, e.linkname.data(),
                std::min<size_t>(e.linkname.size(), 100));
  }
  std::memcpy(h + 257,
              "ustar\0"
              "00",
              8);
  Octal(h + 329, 8, e.devmajor);
  Octal(h + 337, 8, e.devminor);
  for (const auto& [k, v] : e.xattrs) pax += PaxRecord("SCHILY.xattr." + k, v);

  if (!pax.empty()) {
    char ph[kBlock] = {};
    std::string pname = "PaxHeaders/" + name.substr(0, 80);
    std::memcpy(ph, pname.data(), std::min<size_t>(pname.size(), 100));
    Octal(ph + 100, 8, 0644);
    Octal(ph + 108, 8, 0);
    Octal(ph + 116, 8, 0);
    Octal(ph + 124, 12, pax.size());
    Octal(ph + 136, 12, mtime);
    ph[156] = 'x';
    std::memcpy(ph + 257,
                "ustar\0"
                "00",
                8);
    SetChecksum(ph);
    RETURN_IF_ERROR(Emit(ph, kBlock));
    RETURN_IF_ERROR(Emit(pax.data(), pax.size()));
    RETURN_IF_ERROR(PadTo512());
  }
  SetChecksum(h);
  RETURN_IF_ERROR(Emit(h, kBlock));
  remaining_ = size;
  return Status::Ok();
}

Status TarWriter::WriteData(const char* data, size_t n) {
  if (n > remaining_)
    return FailedPrecondition("more data than the header's size");
  remaining_ -= n;
  return Emit(data, n);
}

Status TarWriter::Finish() {
  if (remaining_ != 0) return FailedPrecondition("last file is short of data");
  RETURN_IF_ERROR(PadTo512());
  static const char zeros[2 * kBlock] = {};
  return Emit(zeros, sizeof zeros);
}

namespace {

struct Walker {
  const TreeOptions& opt;
  TarWriter& tar;
  std::map<std::pair<dev_t, ino_t>, std::string> links;

  Status Dir(const std::string& abs, const std::string& rel) {
    DIR* d = ::opendir(abs.c_str());
    if (!d) return Errno("open directory " + abs);
    std::vector<std::string> names;
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    // Sorted by name within each directory, parents before children.
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string child_abs = abs + "/" + n;
      std::string child_rel = rel.empty() ? n : rel + "/" + n;
      RETURN_IF_ERROR(Entry(child_abs, child_rel));
    }
    return Status::Ok();
  }

  Status Entry(const std::string& abs, const std::string& rel) {
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) return Errno("stat " + abs);
    bool is_dir = S_ISDIR(st.st_mode);
    if (opt.exclude && opt.exclude(rel, is_dir)) return Status::Ok();
    TarEntry e;
    e.path = rel;
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    if (opt.owner) {
      e.uid = opt.owner->first;
      e.gid = opt.owner->second;
    }
    e.mtime = st.st_mtime;
    if (opt.clamp_mtime && e.mtime > *opt.clamp_mtime)
      e.mtime = *opt.clamp_mtime;
    if (opt.overlay_upper && S_ISCHR(st.st_mode) &&
        st.st_rdev == makedev(0, 0)) {
      size_t slash = rel.rfind('/');
      TarEntry wh;
      wh.path = (slash == std::string::npos ? "" : rel.substr(0, slash + 1)) +
                ".wh." + rel.substr(slash == std::string::npos ? 0 : slash + 1);
      wh.mode = 0;
      wh.mtime = e.mtime;
      return tar.WriteHeader(wh);
    }
    char buf[65536];
    bool opaque = false;
    ssize_t ln = ::llistxattr(abs.c_str(), buf, sizeof buf);
    for (ssize_t i = 0; ln > 0 && i < ln;) {
      std::string key(buf + i);
      i += key.size() + 1;
      char val[65536];
      ssize_t vl = ::lgetxattr(abs.c_str(), key.c_str(), val, sizeof val);
      if (vl < 0 || key.rfind("security.selinux", 0) == 0) continue;
      if (key.rfind("trusted.overlay.", 0) == 0) {
        if (opt.overlay_upper && key == "trusted.overlay.opaque" && vl == 1 &&
            val[0] == 'y')
          opaque = true;
        continue;
      }
      e.xattrs[key] = std::string(val, vl);
    }
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = links.find(key);
      if (it != links.end()) {
        e.type = TarEntry::kHardlink;
        e.linkname = it->second;
        return tar.WriteHeader(e);
      }
      links[key] = rel;
    }
    if (S_ISREG(st.st_mode)) {
      e.type = TarEntry::kFile;
      e.size = st.st_size;
      RETURN_IF_ERROR(tar.WriteHeader(e));
      int fd = ::open(abs.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Errno("open " + abs);
      uint64_t left = e.size;
      while (left > 0) {
        ssize_t n = ::read(fd, buf, std::min<uint64_t>(sizeof buf, left));
        if (n <= 0) {
          ::close(fd);
          return n < 0 ? Errno("read " + abs)
                       : Internal(abs + " shrank while being archived");
        }
        Status s = tar.WriteData(buf, n);
        if (!s.ok()) {
          ::close(fd);
          return s;
        }
        left -= n;
      }
      ::close(fd);
      return Status::Ok();
    }
    if (S_ISLNK(st.st_mode)) {
      ssize_t n = ::readlink(abs.c_str(), buf, sizeof buf);
      if (n < 0) return Errno("readlink " + abs);
      e.type = TarEntry::kSymlink;
      e.linkname.assign(buf, n);
      return tar.WriteHeader(e);
    }
    if (is_dir) {
      e.type = TarEntry::kDir;
      RETURN_IF_ERROR(tar.WriteHeader(e));
      if (opaque) {
        TarEntry wh;
        wh.path = rel + "/.wh..wh..opq";
        wh.mode = 0;
        wh.mtime = e.mtime;
        RETURN_IF_ERROR(tar.WriteHeader(wh));
      }
      return Dir(abs, rel);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      e.type = S_ISCHR(st.st_mode) ? TarEntry::kChar : TarEntry::kBlock;
      e.devmajor = major(st.st_rdev);
      e.devminor = minor(st.st_rdev);
      return tar.WriteHeader(e);
    }
    if (S_ISFIFO(st.st_mode)) {
      e.type = TarEntry::kFifo;
      return tar.WriteHeader(e);
    }
    return Status::Ok();  // sockets are not archived
  }
};

}  // namespace

Status WriteTree(const std::string& root, TarWriter& tar,
                 const TreeOptions& options) {
  Walker w{options, tar, {}};
  return w.Dir(root, "");
}

}  // namespace ocib::image
