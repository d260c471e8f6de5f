#include "build/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace ocib::build {
namespace {

namespace fs = std::filesystem;

Status Errno(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno));
}

bool IsWhiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool IsOpaque(const std::string& path) {
  char v[2] = {};
  return ::lgetxattr(path.c_str(), "trusted.overlay.opaque", v, sizeof v) ==
             1 &&
         v[0] == 'y';
}

Status CopyMeta(const std::string& to, const struct stat& st) {
  if (::lchown(to.c_str(), st.st_uid, st.st_gid) != 0)
    return Errno("chown " + to);
  if (!S_ISLNK(st.st_mode) && ::chmod(to.c_str(), st.st_mode & 07777) != 0)
    return Errno("chmod " + to);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, to.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  return Status::Ok();
}

// Copies one non-directory entry (file, symlink, device, fifo).
Status CopyNode(const std::string& from, const std::string& to,
                const struct stat& st) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(to, ec))) fs::remove_all(to, ec);
  if (S_ISREG(st.st_mode)) {
    int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return Errno("open " + from);
    int out =
        ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
      ::close(in);
      return Errno("create " + to);
    }
    char buf[1 << 16];
    ssize_t n;
    while ((n = ::read(in, buf, sizeof buf)) > 0)
      if (::write(out, buf, n) != n) break;
    ::close(in);
    ::close(out);
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(from.c_str(), buf, sizeof buf);
    if (n < 0 || ::symlink(std::string(buf, n).c_str(), to.c_str()) != 0)
      return Errno("symlink " + to);
  } else if (::mknod(to.c_str(), st.st_mode, st.st_rdev) != 0) {
    return Errno("mknod " + to);
  }
  return CopyMeta(to, st);
}

// Applies one layer directory (overlay format) onto dst.
Status Apply(const std::string& src, const std::string& dst) {
  DIR* d = ::opendir(src.c_str());
  if (!d) return Errno("open " + src);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string s = src + "/" + n, t = dst + "/" + n;
    struct stat st;
    if (::lstat(s.c_str(), &st) != 0) return Errno("stat " + s);
    std::error_code ec;
    if (IsWhiteout(st)) {
      fs::remove_all(t, ec);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      struct stat tst;
      bool is_dir = ::lstat(t.c_str(), &tst) == 0 && S_ISDIR(tst.st_mode);
      if (is_dir && IsOpaque(s)) {
        fs::remove_all(t, ec);
        is_dir = false;
      }
      if (!is_dir) {
        fs::remove_all(t, ec);
        if (::mkdir(t.c_str(), 0755) != 0) return Errno("mkdir " + t);
      }
      RETURN_IF_ERROR(Apply(s, t));
      RETURN_IF_ERROR(CopyMeta(t, st));
      continue;
    }
    RETURN_IF_ERROR(CopyNode(s, t, st));
  }
  return Status::Ok();
}

}  // namespace

Status MaterializeLayers(const std::vector<std::string>& lowers,
                         const std::string& rootfs) {
  std::error_code ec;
  fs::create_directories(rootfs, ec);
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it)
    RETURN_IF_ERROR(Apply(*it, rootfs));
  return Status::Ok();
}

Status TreeSnapshot::Walk(const std::string& root,
                          std::map<std::string, Meta>* out) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string path = it->path().string();
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    Meta m;
    m.mode = st.st_mode;
    m.uid = st.st_uid;
    m.gid = st.st_gid;
    m.size = S_ISDIR(st.st_mode) ? 0 : st.st_size;
    m.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    m.ctime_ns = S_ISDIR(st.st_mode)
                     ? 0
                     : st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
      if (n > 0) m.link.assign(buf, n);
    }
    (*out)[path.substr(root.size() + 1)] = m;
  }
  if (ec) return Internal("walk " + root + ": " + ec.message());
  return Status::Ok();
}

Result<TreeSnapshot> TreeSnapshot::Take(const std::string& root) {
  TreeSnapshot s;
  RETURN_IF_ERROR(Walk(root, &s.entries_));
  return s;
}

Status TreeSnapshot::Diff(const std::string& root,
                          const std::string& diff_dir) const {
  std::map<std::string, Meta> now;
  RETURN_IF_ERROR(Walk(root, &now));
  std::error_code ec;
  fs::create_directories(diff_dir, ec);
  // Creates the parents of rel in diff_dir with root's metadata.
  auto parents = [&](const std::string& rel) -> Status {
    size_t pos = 0;
    while ((pos = rel.find('/', pos)) != std::string::npos) {
      std::string p = rel.substr(0, pos++);
      std::string t = diff_dir + "/" + p;
      struct stat st;
      if (::lstat(t.c_str(), &st) == 0) continue;
      if (::mkdir(t.c_str(), 0755) != 0) return Errno("mkdir " + t);
      if (::lstat((root + "/" + p).c_str(), &st) == 0)
        RETURN_IF_ERROR(CopyMeta(t, st));
    }
    return Status::Ok();
  };
  for (const auto& [rel, m] : now) {
    auto old = entries_.find(rel);
    bool changed = old == entries_.end() || !(old->second == m);
    if (!changed) continue;
    RETURN_IF_ERROR(parents(rel));
    std::string src = root + "/" + rel, dst = diff_dir + "/" + rel;
    struct stat st;
    if (::lstat(src.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST)
        return Errno("mkdir " + dst);
      // A directory that replaced a non-directory hides what was below.
      if (old != entries_.end() && !S_ISDIR(old->second.mode))
        ::setxattr(dst.c_str(), "trusted.overlay.opaque", "y", 1, 0);
      RETURN_IF_ERROR(CopyMeta(dst, st));
    } else {
      RETURN_IF_ERROR(CopyNode(src, dst, st));
    }
  }
  // Deletions: whiteouts for the topmost deleted paths only.
  for (const auto& [rel, m] : entries_) {
    if (now.count(rel)) continue;
    size_t slash = rel.rfind('/');
    if (slash != std::string::npos && !now.count(rel.substr(0, slash)))
      continue;  // parent gone too
    RETURN_IF_ERROR(parents(rel));
    std::string dst = diff_dir + "/" + rel;
    fs::remove_all(dst, ec);
    if (::mknod(dst.c_str(), S_IFCHR, makedev(0, 0)) != 0)
      return Errno("whiteout " + dst);
  }
  // Directory mtimes changed by the writes above are restored last.
  for (const auto& [rel, m] : now) {
    std::string dst = diff_dir + "/" + rel;
    struct stat st;
    if (S_ISDIR(m.mode) && ::lstat(dst.c_str(), &st) == 0 &&
        S_ISDIR(st.st_mode)) {
      struct timespec ts[2] = {
          {m.mtime_ns / 1000000000LL, m.mtime_ns % 1000000000LL},
          {m.mtime_ns / 1000000000LL, m.mtime_ns % 1000000000LL}};
      ::utimensat(AT_FDCWD, dst.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    }
  }
  return Status::Ok();
}

}  // namespace ocib::build
