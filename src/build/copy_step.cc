// COPY and ADD: sources from the build context (less .dockerignore), from
// another stage or image (--from), from here-documents, or (ADD) from URLs
// and local tar archives, which are extracted (plain, gzip, bzip2, xz;
// a .tar.zst is copied as is, as BuildKit does). What docker decides is
// followed: the destination is a directory when it says so or already is one;
// directories made on the way belong to the --chown owner; hard links among the
// sources stay hard links; context files belong to root unless --chown says
// otherwise.
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "build/build_run.h"
#include "build/paths.h"
#include "client/url_fetch.h"
#include "image/tar_reader.h"

namespace ocib::build {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

Status CopyFileData(const std::string& from, const std::string& to,
                    mode_t mode) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Internal("open " + from + ": " + std::strerror(errno));
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   mode & 07777);
  if (out < 0) {
    ::close(in);
    return Internal("create " + to + ": " + std::strerror(errno));
  }
  char buf[1 << 16];
  ssize_t n;
  Status st;
  while ((n = ::read(in, buf, sizeof buf)) > 0)
    if (::write(out, buf, n) != n) {
      st = Internal("write " + to + ": " + std::strerror(errno));
      break;
    }
  if (n < 0) st = Internal("read " + from + ": " + std::strerror(errno));
  ::close(in);
  ::close(out);
  ::chmod(to.c_str(), mode & 07777);
  return st;
}

struct CopyOpts {
  std::optional<std::pair<uint32_t, uint32_t>> owner;
  std::optional<mode_t> chmod;
  const DockerIgnore* ignore = nullptr;  // relative to the context root
  std::string src_root;
  // COPY --exclude: patterns relative to the source being copied, whose
  // own path (relative to its root) is exclude_base.
  const DockerIgnore* exclude = nullptr;
  std::string exclude_base;
  // Hard links among the sources stay hard links: (dev, inode) of a file
  // with several links -> where its first copy went.
  std::map<std::pair<dev_t, ino_t>, std::string>* links = nullptr;
};

// Copies one source (file, dir, symlink) to `to` (the final path).
Status CopyEntry(const std::string& from, const std::string& rel_in_root,
                 const std::string& to, const CopyOpts& o) {
  if (o.ignore && !rel_in_root.empty() && o.ignore->Excluded(rel_in_root))
    return Status::Ok();
  if (o.exclude && !rel_in_root.empty()) {
    std::string r = rel_in_root;
    if (!o.exclude_base.empty() && r.rfind(o.exclude_base + "/", 0) == 0)
      r = r.substr(o.exclude_base.size() + 1);
    if (r != o.exclude_base && o.exclude->Excluded(r)) return Status::Ok();
  }
  struct stat st;
  if (::lstat(from.c_str(), &st) != 0)
    return Internal("stat " + from + ": " + std::strerror(errno));
  std::error_code ec;
  if (S_ISDIR(st.st_mode)) {
    fs::create_directories(to, ec);
    ::chmod(to.c_str(), o.chmod ? *o.chmod : (st.st_mode & 07777));
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(from, ec))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      RETURN_IF_ERROR(CopyEntry(from + "/" + n,
                                rel_in_root.empty() ? n : rel_in_root + "/" + n,
                                to + "/" + n, o));
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(from.c_str(), buf, sizeof buf);
    if (n < 0) return Internal("readlink " + from);
    fs::remove(to, ec);
    if (::symlink(std::string(buf, n).c_str(), to.c_str()) != 0)
      return Internal("symlink " + to);
  } else if (S_ISREG(st.st_mode)) {
    fs::remove(to, ec);
    if (o.links && st.st_nlink > 1) {
      auto [it, first] =
          o.links->emplace(std::make_pair(st.st_dev, st.st_ino), to);
      if (!first) {
        if (::link(it->second.c_str(), to.c_str()) == 0) return Status::Ok();
        return Internal("link " + to + ": " + std::strerror(errno));
      }
    }
    RETURN_IF_ERROR(CopyFileData(from, to, o.chmod ? *o.chmod : st.st_mode));
  } else {
    return Status::Ok();  // devices, fifos and sockets are not copied
  }
  uid_t uid = o.owner ? o.owner->first : st.st_uid;
  gid_t gid = o.owner ? o.owner->second : st.st_gid;
  if (::lchown(to.c_str(), uid, gid) != 0 && errno != EPERM)
    return Internal("chown " + to);
  // chown clears setuid and setgid: set the mode again after it.
  if (!S_ISLNK(st.st_mode))
    ::chmod(to.c_str(), o.chmod ? *o.chmod : (st.st_mode & 07777));
  return Status::Ok();
}

// Content hash of a source tree for the cache key: paths, modes, owners,
// sizes, contents and link targets; not mtimes.
Status HashEntry(const std::string& path, const std::string& rel,
                 const DockerIgnore* ignore, const std::string& ignore_rel,
                 Hasher* h) {
  if (ignore && !ignore_rel.empty() && ignore->Excluded(ignore_rel))
    return Status::Ok();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0)
    return Internal("stat " + path + ": " + std::strerror(errno));
  std::string head = rel + "\0" + std::to_string(st.st_mode) + ":" +
                     std::to_string(st.st_uid) + ":" +
                     std::to_string(st.st_gid) + ":";
  h->Update(head.data(), head.size());
  if (S_ISREG(st.st_mode)) {
    std::string sz = std::to_string(st.st_size);
    h->Update(sz.data(), sz.size());
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Internal("open " + path);
    char buf[1 << 16];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) h->Update(buf, n);
    ::close(fd);
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n > 0) h->Update(buf, n);
  } else if (S_ISDIR(st.st_mode)) {
    std::vector<std::string> names;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(path, ec))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      RETURN_IF_ERROR(HashEntry(path + "/" + n, rel + "/" + n, ignore,
                                ignore_rel.empty() ? n : ignore_rel + "/" + n,
                                h));
  }
  return Status::Ok();
}

// True if `rel` (clean, relative) is a directory in a stack of layer
// directories in overlay form, top first: the topmost layer that holds the
// path, or a whiteout of it, decides. Symlinked parents are not followed.
bool IsDirInLayers(const std::vector<std::string>& lowers,
                   const std::string& rel) {
  size_t slash = rel.rfind('/');
  std::string parent =
      slash == std::string::npos ? "" : rel.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  for (const auto& dir : lowers) {
    struct stat st;
    if (::lstat((dir + "/" + parent + ".wh." + base).c_str(), &st) == 0)
      return false;
    if (::lstat((dir + "/" + rel).c_str(), &st) == 0) {
      if (S_ISCHR(st.st_mode) && st.st_rdev == 0)
        return false;  // overlay whiteout
      return S_ISDIR(st.st_mode);
    }
  }
  return false;
}

ByteSource FileSource(const std::string& path);

// True if the file is a tar archive, plain or compressed (gzip, bzip2, xz): its
// first 512 bytes, decompressed, are a tar header (the ustar magic, or a
// valid header checksum for old v7 archives). A compressed file that is
// not a tar is copied as it is, as docker does.
bool LooksLikeTar(const std::string& path) {
  {
    // zstd is a layer compression, not one ADD unpacks (the Dockerfile
    // reference: gzip, bzip2, xz or none; BuildKit copies a .tar.zst as is).
    std::ifstream f(path, std::ios::binary);
    unsigned char m[4] = {};
    f.read(reinterpret_cast<char*>(m), 4);
    if (f.gcount() == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f &&
        m[3] == 0xfd)
      return false;
  }
  ByteSource src = Decompressing(FileSource(path));
  unsigned char h[512] = {};
  size_t n = 0;
  while (n < sizeof h) {
    auto r = src(reinterpret_cast<char*>(h) + n, sizeof h - n);
    if (!r.ok() || *r == 0) break;
    n += *r;
  }
  if (n < sizeof h) return false;
  if (std::memcmp(h + 257, "ustar", 5) == 0) return true;
  // v7: octal checksum of the header with its checksum field as spaces.
  unsigned sum = 0;
  for (size_t i = 0; i < sizeof h; ++i)
    sum += (i >= 148 && i < 156) ? ' ' : h[i];
  unsigned stored = 0;
  bool digits = false;
  for (size_t i = 148; i < 156 && h[i] != 0 && h[i] != ' '; ++i) {
    if (h[i] < '0' || h[i] > '7') return false;
    stored = stored * 8 + (h[i] - '0');
    digits = true;
  }
  return digits && h[0] != 0 && stored == sum;
}

ByteSource FileSource(const std::string& path) {
  auto f = std::make_shared<std::ifstream>(path, std::ios::binary);
  return [f](char* buf, size_t n) -> Result<size_t> {
    f->read(buf, n);
    return static_cast<size_t>(f->gcount());
  };
}

}  // namespace

Status HashTree(const std::string& path, const std::string& rel,
                const DockerIgnore* ignore, Hasher* h) {
  return HashEntry(path, rel, ignore, rel, h);
}

Status BuildRun::CopyStep(Stage& st, const Instruction& ins) {
  Env env = ExpansionEnv(st);
  bool add = ins.kind == Keyword::kAdd;
  std::vector<std::string> words = ins.args;
  if (!ins.exec_form) {
    words.clear();
    for (const auto& a : ins.args) {
      if (IsHeredocMarker(a)) {
        words.push_back(a);  // a here-document source, kept as written
        continue;
      }
      ASSIGN_OR_RETURN(std::string w, ExpandWord(a, env, df_.escape));
      words.push_back(w);
    }
  }
  std::string dest = words.back();
  words.pop_back();
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  CopyOpts co;
  co.links = &links;
  if (ins.HasFlag("keep-git-dir"))
    return InvalidArgument(
        "ADD of git repositories (and so --keep-git-dir) is not supported");
  // --exclude=PATTERN (repeatable): left out of what is copied.
  DockerIgnore excludes;
  for (const auto& [k, v] : ins.flags)
    if (k == "exclude") {
      ASSIGN_OR_RETURN(std::string pat, ExpandWord(v, env, df_.escape));
      excludes.Add(pat);
    }
  if (!excludes.empty()) co.exclude = &excludes;
  // --link: the layer is made without looking at the image below it, as
  // BuildKit's: the destination is a directory only when the instruction
  // says so, and directories on the way are new (0755, the --chown owner).
  const bool link = ins.HasFlag("link");
  // --parents: each source keeps its path below the context (or --from
  // root) under the destination.
  const bool parents = ins.HasFlag("parents");
  if (ins.HasFlag("chmod")) {
    std::string m = ins.Flag("chmod");
    char* end = nullptr;
    long v = std::strtol(m.c_str(), &end, 8);
    if (!end || *end || v < 0 || v > 07777)
      return InvalidArgument("invalid --chmod " + m + " (octal)");
    co.chmod = static_cast<mode_t>(v);
  }
  // Source root: the context, or another stage's or image's filesystem.
  std::string root = context_;
  std::string from_desc;
  FromTree from_tree;
  if (ins.HasFlag("from")) {
    ASSIGN_OR_RETURN(std::string from,
                     ExpandWord(ins.Flag("from"), env, df_.escape));
    ASSIGN_OR_RETURN(from_tree, OpenFrom(st, from, "COPY --from="));
    root = from_tree.root;
    from_desc = "from " + from_tree.ident;
    // A directory given with --build-context is a context: owners become
    // root, as for the main context.
    if (from_tree.directory) co.owner = std::make_pair(0u, 0u);
  } else {
    co.ignore = &ignore_;
    // Files from the context belong to root in the image, whoever owns
    // them on the host (Dockerfile reference, COPY); --from keeps owners.
    co.owner = std::make_pair(0u, 0u);
  }
  if (ins.HasFlag("chown")) {
    ProcessSpec who;
    ASSIGN_OR_RETURN(auto lowers,
                     builder_->LayerDirs(st.layers, st.image.diff_ids));
    ASSIGN_OR_RETURN(std::string chown,
                     ExpandWord(ins.Flag("chown"), env, df_.escape));
    RETURN_IF_ERROR(ResolveOwner(chown, lowers, &who));
    co.owner = std::make_pair(who.uid, who.gid);
  }
  // Resolve sources inside the root.
  struct Src {
    std::string abs, rel, url;
  };
  std::vector<Src> srcs;
  std::string unmatched;  // a pattern that matched nothing
  // Here-documents become files named after their delimiter, in a
  // directory of their own (mode 0644, as BuildKit makes them).
  std::string heredoc_dir;
  size_t next_heredoc = 0;
  for (const auto& w : words) {
    std::string hname;
    if (!ins.exec_form && IsHeredocMarker(w, &hname)) {
      if (next_heredoc >= ins.heredocs.size())
        return InvalidArgument("here-document " + w + " has no body");
      const Heredoc& h = ins.heredocs[next_heredoc++];
      std::string data = h.data;
      if (h.expand) {
        ASSIGN_OR_RETURN(data, ExpandHeredoc(data, env, df_.escape));
      }
      if (heredoc_dir.empty()) {
        heredoc_dir = scratch_ + "/heredoc-" + RandomHex();
        fs::create_directories(heredoc_dir);
      }
      std::string file = heredoc_dir + "/" + h.name;
      std::ofstream(file, std::ios::binary) << data;
      ::chmod(file.c_str(), 0644);
      srcs.push_back({file, h.name, ""});
      continue;
    }
    if (add && (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0)) {
      srcs.push_back({"", "", w});
      continue;
    }
    if (!add && (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0))
      return InvalidArgument("COPY does not take URLs (use ADD): " + w);
    std::string clean;
    if (!CleanRelative(w, &clean))
      return InvalidArgument("source " + w + " is outside the build context");
    if (clean.find_first_of("*?[") != std::string::npos) {
      std::vector<std::string> matches;
      RETURN_IF_ERROR(Glob(root, clean, co.ignore, &matches));
      // Fine beside sources that exist, as in docker; alone, an error.
      if (matches.empty() && unmatched.empty()) unmatched = w;
      for (auto& m : matches) srcs.push_back({root + "/" + m, m, ""});
      continue;
    }
    std::string abs = clean.empty() ? root : root + "/" + clean;
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(abs, ec)))
      return InvalidArgument(
          "source " + w + " not found" +
          (from_desc.empty() ? " in the build context" : ""));
    if (co.ignore && !clean.empty() && ignore_.Excluded(clean))
      return InvalidArgument("source " + w + " is excluded by .dockerignore");
    // A symlink named as a source is followed, but must stay inside.
    std::string real = fs::weakly_canonical(abs, ec).string();
    if (real != root && real.rfind(root + "/", 0) != 0)
      return InvalidArgument("source " + w +
                             " resolves outside the build context");
    srcs.push_back({real, clean, ""});
  }
  if (srcs.empty())
    return InvalidArgument("no source files match " + unmatched);
  // Destination: a directory when it says so (a trailing "/", ".",
  // "/."), for several sources or a wildcard, or when it already is one
  // in the image (as BuildKit decides; `WORKDIR /src` + `COPY f .`).
  std::string dest_abs = JoinAbs(st.image.config.working_dir, dest), dest_clean;
  CleanRelative(dest_abs, &dest_clean);
  bool dest_is_dir = parents || dest.back() == '/' || dest == "." ||
                     dest.ends_with("/.") || srcs.size() > 1 ||
                     std::any_of(srcs.begin(), srcs.end(), [](const Src& s) {
                       return s.rel.find_first_of("*?[") != std::string::npos;
                     });
  if (!dest_is_dir && !link) {
    ASSIGN_OR_RETURN(auto lowers,
                     builder_->LayerDirs(st.layers, st.image.diff_ids));
    dest_is_dir = dest_clean.empty() || IsDirInLayers(lowers, dest_clean);
  }
  // Cache key.
  Hasher h;
  std::string head = ins.keyword + " " + json(ins.flags).dump() + " -> " +
                     dest_clean + (dest_is_dir ? "/" : "") + "\n";
  h.Update(head.data(), head.size());
  for (const auto& s : srcs) {
    if (!s.url.empty()) {
      h.Update(s.url.data(), s.url.size());
      continue;
    }
    bool heredoc =
        !heredoc_dir.empty() && s.abs.rfind(heredoc_dir + "/", 0) == 0;
    RETURN_IF_ERROR(
        HashEntry(s.abs, s.rel, heredoc ? nullptr : co.ignore, s.rel, &h));
  }
  std::string created_by = ins.keyword;
  for (const auto& w : words) {
    std::string hname;
    created_by += " " + (IsHeredocMarker(w, &hname) ? hname : w);
  }
  created_by += " " + dest;
  std::string key = ChainKey(st.key + from_desc, "layer " + h.Finish().str());
  st.key = key;
  // A URL's content is known only by downloading it, unless --checksum
  // names it: then the step can come from the cache.
  bool has_url = !ins.HasFlag("checksum") &&
                 std::any_of(srcs.begin(), srcs.end(),
                             [](const Src& s) { return !s.url.empty(); });
  if (!has_url) {
    if (auto hit = CacheGet(st, key)) {
      AddLayer(st, hit->first, hit->second, created_by, true);
      return Status::Ok();
    }
  }
  std::string stage = scratch_ + "/copy-" + RandomHex();
  const std::string base_target =
      dest_clean.empty() ? stage : stage + "/" + dest_clean;
  std::error_code ec;
  fs::create_directories(stage, ec);
  {
    // Directories on the way to the destination: those the image has keep
    // their mode and owner; missing ones belong to the --chown owner (root
    // without it), as BuildKit creates them.
    std::vector<std::string> lowers;
    if (!link) {
      ASSIGN_OR_RETURN(lowers,
                       builder_->LayerDirs(st.layers, st.image.diff_ids));
    }
    std::string dir =
        dest_is_dir ? dest_clean : fs::path(dest_clean).parent_path().string();
    uint32_t uid = ins.HasFlag("chown") && co.owner ? co.owner->first : 0;
    uint32_t gid = ins.HasFlag("chown") && co.owner ? co.owner->second : 0;
    RETURN_IF_ERROR(StageParents(stage, lowers, dir, uid, gid));
    if (dest_is_dir && !dest_clean.empty() && !fs::exists(base_target))
      fs::create_directories(base_target, ec);
  }
  for (const auto& s : srcs) {
    // --parents: this source's own parent path goes under the destination.
    std::string target = base_target;
    if (parents && !s.rel.empty() && s.url.empty()) {
      std::string sub = fs::path(s.rel).parent_path().string();
      if (!sub.empty()) {
        RETURN_IF_ERROR(StageParents(
            stage, {}, (dest_clean.empty() ? "" : dest_clean + "/") + sub,
            co.owner ? co.owner->first : 0, co.owner ? co.owner->second : 0));
        target += "/" + sub;
      }
    }
    co.exclude_base = s.rel;
    if (co.exclude && !s.rel.empty()) {
      struct stat est;
      if (::lstat(s.abs.c_str(), &est) == 0 && !S_ISDIR(est.st_mode) &&
          (co.exclude->Excluded(s.rel) ||
           co.exclude->Excluded(fs::path(s.rel).filename().string())))
        continue;  // a file source an --exclude pattern names
    }
    if (!s.url.empty()) {
      std::string name = s.url.substr(s.url.rfind('/') + 1);
      std::string to = (dest_is_dir || name.empty())
                           ? target + "/" + (name.empty() ? "download" : name)
                           : target;
      fs::create_directories(fs::path(to).parent_path(), ec);
      RETURN_IF_ERROR(Fetch(s.url, to, ins.Flag("checksum")));
      ::chmod(to.c_str(), co.chmod ? *co.chmod : 0600);
      continue;
    }
    struct stat sst;
    ::stat(s.abs.c_str(), &sst);
    if (add && S_ISREG(sst.st_mode) && LooksLikeTar(s.abs)) {
      fs::create_directories(target, ec);
      RETURN_IF_ERROR(
          ExtractLayer(FileSource(s.abs), target).WithContext("ADD " + s.rel));
      continue;
    }
    if (S_ISDIR(sst.st_mode)) {
      // A directory's contents are copied, not the directory itself; the
      // destination keeps its metadata when the image has it already.
      struct stat tst;
      bool staged = ::lstat(target.c_str(), &tst) == 0;
      RETURN_IF_ERROR(CopyEntry(s.abs, s.rel, target, co));
      if (staged && !dest_clean.empty()) {
        (void)!::lchown(target.c_str(), tst.st_uid, tst.st_gid);
        ::chmod(target.c_str(), tst.st_mode & 07777);
      } else if (!staged && co.chmod) {
        ::chmod(target.c_str(),
                0755);  // --chmod is for what is inside, as BuildKit
      }
      continue;
    }
    std::string base =
        fs::path(s.rel.empty() ? s.abs : s.rel).filename().string();
    std::string to = dest_is_dir ? target + "/" + base : target;
    RETURN_IF_ERROR(CopyEntry(s.abs, "", to, co));
  }
  from_tree.mount.reset();
  if (!heredoc_dir.empty()) fs::remove_all(heredoc_dir, ec);
  ASSIGN_OR_RETURN(LayerInfo l, LayerFromTree(stage, false));
  // The staging tree is this layer's content: keep it as the extracted
  // copy that later RUN steps mount.
  KeepAsLayerDir(stage, l.diff_id);
  if (!has_url) RETURN_IF_ERROR(CachePut(key, l));
  AddLayer(st, LayerDescriptor{l.media_type, l.digest, l.size}, l.diff_id,
           created_by, false);
  return Status::Ok();
}

Status BuildRun::ResolveOwner(const std::string& spec,
                              const std::vector<std::string>& lowers,
                              ProcessSpec* who) {
  // Names are looked up in the image: the topmost layer holding the file.
  std::string etc = scratch_ + "/etc-" + RandomHex();
  fs::create_directories(etc + "/etc");
  for (const char* f : {"passwd", "group"})
    for (const auto& l : lowers)
      if (fs::exists(l + "/etc/" + f)) {
        std::error_code ec;
        fs::copy_file(l + "/etc/" + f, etc + "/etc/" + f, ec);
        break;
      }
  RETURN_IF_ERROR(ResolveUser(spec, etc, who));
  // A numeric uid without a group takes its own number as gid ("the same
  // numeric UID as the GID", Dockerfile reference, COPY --chown).
  if (!spec.empty() && spec.find(':') == std::string::npos &&
      std::all_of(spec.begin(), spec.end(), ::isdigit))
    who->gid = who->uid;
  return Status::Ok();
}

Status BuildRun::Glob(const std::string& root, const std::string& pattern,
                      const DockerIgnore* ignore,
                      std::vector<std::string>* out) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string rel = fs::relative(it->path(), root).string();
    if (ignore && ignore->Excluded(rel)) continue;
    if (::fnmatch(pattern.c_str(), rel.c_str(), FNM_PATHNAME) == 0)
      out->push_back(rel);
  }
  std::sort(out->begin(), out->end());
  return Status::Ok();
}

Status BuildRun::Fetch(const std::string& url, const std::string& to,
                       const std::string& checksum) {
  client::UrlFetchOptions opts;
  if (!checksum.empty()) {
    auto d = Digest::Parse(checksum);
    if (!d.ok())
      return InvalidArgument("ADD --checksum=" + checksum + ": " +
                             d.status().message());
    opts.checksum = *d;
  }
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  if (!out) return Internal("create " + to);
  Status s = client::FetchUrl(
      url,
      [&out](const char* d, size_t n) -> Status {
        out.write(d, static_cast<std::streamsize>(n));
        return out ? Status::Ok() : Internal("write failed");
      },
      opts);
  if (!s.ok()) return s.WithContext("ADD");
  return Status::Ok();
}

}  // namespace ocib::build
