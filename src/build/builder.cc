#include "build/builder.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <httplib.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "build/dockerfile_parser.h"
#include "build/runtime.h"
#include "build/snapshot.h"
#include "build/tar_reader.h"
#include "build/transfer.h"

namespace ocib::build {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string RandomHex() {
  unsigned char b[8];
  RAND_bytes(b, sizeof b);
  char out[17];
  for (int i = 0; i < 8; ++i) std::snprintf(out + 2 * i, 3, "%02x", b[i]);
  return out;
}

std::string HumanSize(uint64_t n) {
  char buf[32];
  if (n < 1000) std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  else if (n < 1000 * 1000) std::snprintf(buf, sizeof buf, "%.1fkB", n / 1e3);
  else if (n < 1000ull * 1000 * 1000) std::snprintf(buf, sizeof buf, "%.1fMB", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2fGB", n / 1e9);
  return buf;
}

// Lexically cleans a path inside a root ("a/./b/../c" -> "a/c"); false if
// it would leave the root.
bool CleanRelative(const std::string& p, std::string* out) {
  std::vector<std::string> parts;
  std::stringstream ss(p);
  std::string c;
  while (std::getline(ss, c, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
    } else {
      parts.push_back(c);
    }
  }
  out->clear();
  for (size_t i = 0; i < parts.size(); ++i) *out += (i ? "/" : "") + parts[i];
  return true;
}

std::string JoinAbs(const std::string& base, const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  std::string b = base.empty() ? "/" : base;
  return b + (b.back() == '/' ? "" : "/") + p;
}

// .dockerignore: Go filepath.Match patterns plus "**", "!" exceptions, last
// match wins; a path is excluded when it or a parent matches.
class IgnoreMatcher {
 public:
  Status Load(const std::string& file) {
    std::ifstream in(file);
    if (!in) return Status::Ok();
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      size_t a = line.find_first_not_of(" \t");
      if (a == std::string::npos || line[a] == '#') continue;
      line = line.substr(a);
      bool exclude = true;
      if (line[0] == '!') {
        exclude = false;
        line = line.substr(1);
      }
      std::string clean;
      if (!CleanRelative(line, &clean)) continue;
      if (clean.empty()) continue;
      rules_.push_back({ToRegex(clean), exclude});
    }
    return Status::Ok();
  }
  bool Excluded(const std::string& rel) const {
    bool excluded = false;
    for (const auto& r : rules_) {
      // Match the path or any of its parents.
      std::string p = rel;
      bool m = false;
      while (true) {
        if (std::regex_match(p, r.re)) {
          m = true;
          break;
        }
        size_t s = p.rfind('/');
        if (s == std::string::npos) break;
        p = p.substr(0, s);
      }
      if (m) excluded = r.exclude;
    }
    return excluded;
  }
  bool empty() const { return rules_.empty(); }

 private:
  static std::regex ToRegex(const std::string& pat) {
    std::string re;
    for (size_t i = 0; i < pat.size(); ++i) {
      char c = pat[i];
      if (c == '*') {
        if (i + 1 < pat.size() && pat[i + 1] == '*') {
          ++i;
          if (i + 1 < pat.size() && pat[i + 1] == '/') {
            ++i;
            re += "(.*/)?";
          } else {
            re += ".*";
          }
        } else {
          re += "[^/]*";
        }
      } else if (c == '?') {
        re += "[^/]";
      } else if (c == '[') {
        size_t j = pat.find(']', i);
        if (j == std::string::npos) re += "\\[";
        else {
          std::string cls = pat.substr(i + 1, j - i - 1);
          if (!cls.empty() && cls[0] == '!') cls[0] = '^';
          re += "[" + cls + "]";
          i = j;
        }
      } else if (c == '\\' && i + 1 < pat.size()) {
        re += "\\";
        re += pat[++i];
      } else if (std::string(".^$|()+{}").find(c) != std::string::npos) {
        re += "\\";
        re += c;
      } else {
        re += c;
      }
    }
    return std::regex(re);
  }
  struct Rule {
    std::regex re;
    bool exclude;
  };
  std::vector<Rule> rules_;
};

Status CopyFileData(const std::string& from, const std::string& to, mode_t mode) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Internal("open " + from + ": " + std::strerror(errno));
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
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
  const IgnoreMatcher* ignore = nullptr;  // relative to the context root
  std::string src_root;
};

// Copies one source (file, dir, symlink) to `to` (the final path).
Status CopyEntry(const std::string& from, const std::string& rel_in_root, const std::string& to,
                 const CopyOpts& o) {
  if (o.ignore && !rel_in_root.empty() && o.ignore->Excluded(rel_in_root)) return Status::Ok();
  struct stat st;
  if (::lstat(from.c_str(), &st) != 0) return Internal("stat " + from + ": " + std::strerror(errno));
  std::error_code ec;
  if (S_ISDIR(st.st_mode)) {
    fs::create_directories(to, ec);
    ::chmod(to.c_str(), o.chmod ? *o.chmod : (st.st_mode & 07777));
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(from, ec)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      RETURN_IF_ERROR(CopyEntry(from + "/" + n, rel_in_root.empty() ? n : rel_in_root + "/" + n,
                                to + "/" + n, o));
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(from.c_str(), buf, sizeof buf);
    if (n < 0) return Internal("readlink " + from);
    fs::remove(to, ec);
    if (::symlink(std::string(buf, n).c_str(), to.c_str()) != 0) return Internal("symlink " + to);
  } else if (S_ISREG(st.st_mode)) {
    fs::remove(to, ec);
    RETURN_IF_ERROR(CopyFileData(from, to, o.chmod ? *o.chmod : st.st_mode));
  } else {
    return Status::Ok();  // devices, fifos and sockets are not copied
  }
  uid_t uid = o.owner ? o.owner->first : st.st_uid;
  gid_t gid = o.owner ? o.owner->second : st.st_gid;
  if (::lchown(to.c_str(), uid, gid) != 0 && errno != EPERM) return Internal("chown " + to);
  // chown clears setuid and setgid: set the mode again after it.
  if (!S_ISLNK(st.st_mode)) ::chmod(to.c_str(), o.chmod ? *o.chmod : (st.st_mode & 07777));
  return Status::Ok();
}

// Content hash of a source tree for the cache key: paths, modes, owners,
// sizes, contents and link targets; not mtimes.
Status HashEntry(const std::string& path, const std::string& rel, const IgnoreMatcher* ignore,
                 const std::string& ignore_rel, Hasher* h) {
  if (ignore && !ignore_rel.empty() && ignore->Excluded(ignore_rel)) return Status::Ok();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Internal("stat " + path + ": " + std::strerror(errno));
  std::string head = rel + "\0" + std::to_string(st.st_mode) + ":" + std::to_string(st.st_uid) + ":" +
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
    for (auto& e : fs::directory_iterator(path, ec)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      RETURN_IF_ERROR(HashEntry(path + "/" + n, rel + "/" + n, ignore,
                                ignore_rel.empty() ? n : ignore_rel + "/" + n, h));
  }
  return Status::Ok();
}

// True if `rel` (clean, relative) is a directory in a stack of layer
// directories in overlay form, top first: the topmost layer that holds the
// path, or a whiteout of it, decides. Symlinked parents are not followed.
bool IsDirInLayers(const std::vector<std::string>& lowers, const std::string& rel) {
  size_t slash = rel.rfind('/');
  std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  for (const auto& dir : lowers) {
    struct stat st;
    if (::lstat((dir + "/" + parent + ".wh." + base).c_str(), &st) == 0) return false;
    if (::lstat((dir + "/" + rel).c_str(), &st) == 0) {
      if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return false;  // overlay whiteout
      return S_ISDIR(st.st_mode);
    }
  }
  return false;
}

ByteSource FileSource(const std::string& path);

// True if the file is a tar archive, plain or compressed (gzip, zstd): its
// first 512 bytes, decompressed, are a tar header (the ustar magic, or a
// valid header checksum for old v7 archives). A compressed file that is
// not a tar is copied as it is, as docker does.
bool LooksLikeTar(const std::string& path) {
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
  for (size_t i = 0; i < sizeof h; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
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

// A writable root filesystem over an image's layers: an overlay mount when
// the host allows one, else the copy-and-compare snapshotter
// (OCIBUILD_SNAPSHOTTER=copy forces it). Finish() leaves the step's changes
// in changes() in overlay-upper form either way.
class Workspace {
 public:
  static Result<std::unique_ptr<Workspace>> Create(const std::vector<std::string>& lowers,
                                                   const std::string& dir, std::ostream& note) {
    std::unique_ptr<Workspace> w(new Workspace());
    w->dir_ = dir;
    w->upper_ = dir + "/upper";
    std::string work = dir + "/work", merged = dir + "/merged";
    for (const auto& d : {w->upper_, work, merged}) fs::create_directories(d);
    const char* mode = std::getenv("OCIBUILD_SNAPSHOTTER");
    bool copy = mode && std::string(mode) == "copy";
    if (!copy) {
      auto m = OverlayMount::Mount(lowers, w->upper_, work, merged);
      if (m.ok()) {
        w->mount_ = std::move(*m);
        w->rootfs_ = merged;
        return w;
      }
      note << " ---> overlayfs unavailable (" << m.status().message() << "): copying layers instead\n";
    }
    w->rootfs_ = dir + "/rootfs";
    RETURN_IF_ERROR(MaterializeLayers(lowers, w->rootfs_));
    ASSIGN_OR_RETURN(TreeSnapshot snap, TreeSnapshot::Take(w->rootfs_));
    w->snapshot_ = std::move(snap);
    return w;
  }
  const std::string& rootfs() const { return rootfs_; }
  const std::string& changes() const { return upper_; }
  bool copying() const { return !mount_; }

  // Ends the step. `created`: mount points the runtime made, which are not
  // the step's work and are dropped when still empty.
  Status Finish(const std::vector<std::string>& created) {
    mount_.reset();
    std::string base = snapshot_ ? rootfs_ : upper_;
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      std::string p = base + "/" + *it;
      std::error_code ec;
      if (fs::is_directory(p, ec) ? fs::is_empty(p, ec) : (fs::is_regular_file(p, ec) && fs::file_size(p, ec) == 0))
        fs::remove(p, ec);
    }
    if (snapshot_) {
      std::error_code ec;
      fs::remove_all(upper_, ec);
      return snapshot_->Diff(rootfs_, upper_);
    }
    return Status::Ok();
  }

 private:
  Workspace() = default;
  std::string dir_, upper_, rootfs_;
  std::unique_ptr<OverlayMount> mount_;
  std::optional<TreeSnapshot> snapshot_;
};

// A RUN layer whose diff ID is known (its extracted directory is in place)
// while its compression into the store still runs in the background.
struct PendingLayer {
  std::future<Result<LayerInfo>> job;
  std::optional<Result<LayerInfo>> result;
  const Result<LayerInfo>& Get() {
    if (!result) result.emplace(job.get());
    return *result;
  }
};

// Records a step's layer under its cache tag (thread-safe: the store is).
Status PutCacheRecord(ImageStore* images, const std::string& tag, const LayerInfo& l) {
  json j = {{"mediaType", l.media_type}, {"digest", l.digest.str()}, {"size", l.size},
            {"diff_id", l.diff_id.str()}};
  ManifestRecord rec;
  rec.content = j.dump();
  rec.digest = Digest::Of(rec.content);
  rec.media_type = "application/vnd.ocibuild.cache.v1+json";
  RETURN_IF_ERROR(images->store()->LinkBlob(kCacheRepo, l.digest));
  return images->store()->PutManifest(kCacheRepo, rec, tag, {l.digest}, {});
}

struct Stage {
  std::string name;
  Image image;
  std::vector<LayerDescriptor> layers;
  // Parallel to layers: set while that layer is still being compressed.
  std::vector<std::shared_ptr<PendingLayer>> pending;
  std::string key;  // cache chain
  Env args;         // ARGs declared in this stage
  std::vector<std::string> shell = {"/bin/sh", "-c"};
  bool cmd_set = false;  // CMD given in this stage
};

class Run {
 public:
  Run(Builder* b, ImageStore* images, const BuildOptions& o, std::ostream& out)
      : builder_(b), images_(images), o_(o), out_(out) {}

  Result<BuildResult> Go() {
    std::string dfpath = o_.dockerfile.empty() ? o_.context_dir + "/Dockerfile" : o_.dockerfile;
    std::ifstream in(dfpath);
    if (!in) return InvalidArgument("cannot read Dockerfile " + dfpath);
    std::stringstream ss;
    ss << in.rdbuf();
    ASSIGN_OR_RETURN(df_, ParseDockerfile(ss.str(), fs::path(dfpath).filename().string()));
    if (!fs::is_directory(o_.context_dir)) return InvalidArgument("build context " + o_.context_dir + " is not a directory");
    context_ = fs::canonical(o_.context_dir).string();
    RETURN_IF_ERROR(ignore_.Load(context_ + "/.dockerignore"));
    size_t slash = o_.platform.find('/');
    if (slash == std::string::npos) return InvalidArgument("--platform must be os/arch, got " + o_.platform);
    os_ = o_.platform.substr(0, slash);
    arch_ = o_.platform.substr(slash + 1);
    variant_.clear();
    if (size_t v = arch_.find('/'); v != std::string::npos) {
      variant_ = arch_.substr(v + 1);
      arch_ = arch_.substr(0, v);
    }
    scratch_ = builder_->state_dir() + "/tmp/build-" + RandomHex();
    std::error_code ec;
    fs::create_directories(scratch_, ec);
    auto r = Stages();
    fs::remove_all(scratch_, ec);
    return r;
  }

 private:
  Status StepError(const Instruction& ins, const std::string& why) {
    return InvalidArgument(df_.filename + ":" + std::to_string(ins.line) + ": " + ins.keyword + ": " + why);
  }

  Result<BuildResult> Stages() {
    // Global ARGs: before the first FROM, usable in FROM lines.
    size_t i = 0;
    for (; i < df_.instructions.size() && df_.instructions[i].keyword == "ARG"; ++i) {
      ASSIGN_OR_RETURN(auto kvs, ExpandKeyValues(df_.instructions[i], globals_, df_.escape));
      for (auto& kv : kvs) {
        used_args_.insert(kv.key);
        auto it = o_.build_args.find(kv.key);
        if (it != o_.build_args.end()) globals_[kv.key] = it->second;
        else if (kv.has_value) globals_[kv.key] = kv.value;
      }
    }
    size_t total = df_.instructions.size();
    bool target_found = o_.target.empty();
    ASSIGN_OR_RETURN(std::vector<bool> needed, NeededStages(i));
    Stage* cur = nullptr;
    size_t stage_index = 0;
    for (size_t n = 0; n < total; ++n) {
      const Instruction& ins = df_.instructions[n];
      if (n < i) {
        Print("Step " + std::to_string(n + 1) + "/" + std::to_string(total) + " : " + ins.text);
        continue;
      }
      if (ins.keyword == "FROM") {
        if (cur && !o_.target.empty() && cur->name == o_.target) break;
        stages_.push_back(Stage());
        cur = &stages_.back();
        stage_index = stages_.size() - 1;
        if (!needed[stage_index]) {
          // Not built, as in BuildKit: nothing the result uses comes from
          // it. It keeps its slot (and name) so stage numbers stay.
          if (ins.args.size() == 3) {
            auto name = ExpandWord(ins.args[2], globals_, df_.escape);
            if (name.ok()) cur->name = Lower(*name);
          }
          Print("Step " + std::to_string(n + 1) + "/" + std::to_string(total) + " : " + ins.text +
                " (stage skipped: the target does not use it)");
        }
      }
      if (!needed[stage_index]) continue;
      Print("Step " + std::to_string(n + 1) + "/" + std::to_string(total) + " : " + ins.text);
      ++result_.steps;
      Status s = Step(*cur, ins);
      if (!s.ok()) {
        if (s.message().rfind(df_.filename + ":", 0) == 0) return s;
        return StepError(ins, s.message());
      }
      if (ins.keyword == "FROM") RETURN_IF_ERROR(RunOnBuildTriggers(*cur, ins));
      if (!o_.target.empty() && cur->name == o_.target) target_found = true;
    }
    if (!target_found) return InvalidArgument("target stage \"" + o_.target + "\" not found");
    for (const auto& [k, v] : o_.build_args)
      if (!used_args_.count(k)) Print("[Warning] build-arg " + k + " was not consumed");
    Stage& last = *cur;
    // Commit: config, manifest, tags.
    ImageRef untagged{"_ocibuild/untagged", "latest", std::nullopt};
    const ImageRef& first = o_.tags.empty() ? untagged : o_.tags[0];
    for (auto& stage : stages_) RETURN_IF_ERROR(Settle(stage));
    ASSIGN_OR_RETURN(Digest md, images_->Commit(first, last.image, last.layers, o_.format));
    for (size_t t = 1; t < o_.tags.size(); ++t) RETURN_IF_ERROR(images_->Tag(first, o_.tags[t]));
    result_.manifest_digest = md;
    result_.config_digest = Digest::Of(SerializeConfig(last.image));
    Print("Successfully built " + md.str());
    for (const auto& t : o_.tags) Print("Successfully tagged " + t.str());
    return result_;
  }

  void Print(const std::string& s) { out_ << s << "\n" << std::flush; }

  Env ExpansionEnv(const Stage& st) {
    Env env = st.args;
    for (const auto& e : st.image.config.env) {
      size_t eq = e.find('=');
      if (eq != std::string::npos) env[e.substr(0, eq)] = e.substr(eq + 1);
    }
    return env;
  }

  void History(Stage& st, const std::string& created_by, bool empty) {
    HistoryEntry h;
    h.created = Rfc3339(o_.source_date_epoch);
    h.created_by = created_by;
    h.comment = "ocibuild";
    h.empty_layer = empty;
    st.image.history.push_back(h);
  }

  std::string ChainKey(const std::string& parent, const std::string& what) {
    std::string k = parent + "\n" + what;
    return Digest::Of(k).hex();
  }

  Status From(Stage& st, const Instruction& ins) {
    std::vector<std::string> words;
    for (const auto& a : ins.args) {
      ASSIGN_OR_RETURN(std::string w, ExpandWord(a, globals_, df_.escape));
      words.push_back(w);
    }
    if (words.size() == 3) {
      st.name = words[2];
      for (char& c : st.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string base = words[0];
    if (base == "scratch") {
      st.image = Image();
      st.image.architecture = arch_;
      st.image.os = os_;
      st.image.variant = variant_;
      st.key = ChainKey("", "scratch " + o_.platform);
      Print(" ---> scratch");
    } else if (Stage* prev = FindStage(base)) {
      st.image = prev->image;
      st.layers = prev->layers;
      // As BuildKit: the parent stage's ARG values carry into the child.
      st.args = prev->args;
      st.pending = prev->pending;
      st.key = prev->key;
      st.shell = prev->shell;
      Print(" ---> stage " + base);
    } else {
      ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(base));
      auto img = images_->Get(ref);
      if (!img.ok()) {
        // Not local: pull it, as docker build does.
        TransferOptions to;
        to.platform = o_.platform;
        Status pulled = PullImage(*images_, ref, to, out_);
        if (!pulled.ok())
          return NotFound("image " + ref.str() + " is not in the local store, and pulling it failed: " +
                          pulled.message());
        img = images_->Get(ref);
        if (!img.ok()) return img.status();
      }
      st.image = img->image;
      st.layers = img->layers;
      st.key = ChainKey("", "image " + img->manifest_digest.str());
      if (!st.image.config.shell.empty()) st.shell = st.image.config.shell;
      Print(" ---> " + img->manifest_digest.str().substr(7, 12));
    }
    st.image.created = Rfc3339(o_.source_date_epoch);
    // As BuildKit does: a base without PATH (scratch among them) gets the
    // default one in its config, so `ENV PATH=/x:$PATH` and RUN see it.
    if (!st.image.config.GetEnv("PATH")) st.image.config.env.push_back(kDefaultPath);
    return Status::Ok();
  }

  // ONBUILD: the base's triggers run right after FROM, in this build's
  // context, in the order recorded; the new image records none of them.
  Status RunOnBuildTriggers(Stage& st, const Instruction& from) {
    std::vector<std::string> triggers = std::move(st.image.config.onbuild);
    st.image.config.onbuild.clear();
    for (const auto& t : triggers) {
      auto one = ParseDockerfile("FROM scratch\n" + t + "\n", df_.filename);
      if (!one.ok() || one->instructions.size() != 2)
        return StepError(from, "the base image's ONBUILD trigger \"" + t + "\" is not a valid instruction");
      Instruction trigger = one->instructions[1];
      trigger.line = from.line;
      Print(" ---> running ONBUILD trigger: " + trigger.text);
      Status s = Step(st, trigger);
      if (!s.ok()) return StepError(from, "ONBUILD trigger \"" + t + "\": " + s.message());
    }
    return Status::Ok();
  }

  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  // Which stages the result needs, as BuildKit decides: the target (or the
  // last stage) and, transitively, the stages it builds FROM or copies
  // --from. `first` is the index of the first FROM. Names are expanded
  // with the global ARGs only, as in FROM lines.
  Result<std::vector<bool>> NeededStages(size_t first) {
    std::vector<std::string> names;
    std::vector<std::vector<size_t>> deps;
    // An earlier stage by name or number, as FindStage resolves it.
    auto resolve = [&](const std::string& ref) -> std::optional<size_t> {
      size_t earlier = deps.size() - 1;
      std::string lower = Lower(ref);
      for (size_t k = 0; k < earlier; ++k)
        if (!names[k].empty() && names[k] == lower) return k;
      if (!ref.empty() && ref.size() < 6 && std::all_of(ref.begin(), ref.end(), ::isdigit)) {
        size_t idx = std::stoul(ref);
        if (idx < earlier) return idx;
      }
      return std::nullopt;
    };
    for (size_t n = first; n < df_.instructions.size(); ++n) {
      const Instruction& ins = df_.instructions[n];
      if (ins.keyword == "FROM") {
        names.emplace_back();
        deps.emplace_back();
        if (ins.args.size() == 3) {
          ASSIGN_OR_RETURN(std::string nm, ExpandWord(ins.args[2], globals_, df_.escape));
          names.back() = Lower(nm);
        }
        if (!ins.args.empty()) {
          ASSIGN_OR_RETURN(std::string base, ExpandWord(ins.args[0], globals_, df_.escape));
          if (auto k = resolve(base)) deps.back().push_back(*k);
        }
        continue;
      }
      if (deps.empty()) continue;
      if ((ins.keyword == "COPY" || ins.keyword == "ADD") && ins.HasFlag("from")) {
        auto from = ExpandWord(ins.Flag("from"), globals_, df_.escape);
        if (from.ok())
          if (auto k = resolve(*from)) deps.back().push_back(*k);
      }
    }
    std::vector<bool> needed(deps.size(), false);
    if (deps.empty()) return needed;
    size_t root = deps.size() - 1;
    if (!o_.target.empty()) {
      std::string t = Lower(o_.target);
      for (size_t k = 0; k < names.size(); ++k)
        if (names[k] == t) {
          root = k;
          break;
        }
    }
    std::vector<size_t> todo = {root};
    while (!todo.empty()) {
      size_t k = todo.back();
      todo.pop_back();
      if (needed[k]) continue;
      needed[k] = true;
      for (size_t d : deps[k]) todo.push_back(d);
    }
    return needed;
  }

  Stage* FindStage(const std::string& name) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& s : stages_)
      if (!s.name.empty() && s.name == lower && &s != &stages_.back()) return &s;
    bool numeric = !name.empty() && std::all_of(name.begin(), name.end(), ::isdigit);
    if (numeric) {
      size_t idx = std::stoul(name);
      if (idx + 1 < stages_.size()) return &stages_[idx];
    }
    return nullptr;
  }

  Status Step(Stage& st, const Instruction& ins) {
    const std::string& kw = ins.keyword;
    if (kw == "FROM") return From(st, ins);
    Env env = ExpansionEnv(st);
    ContainerConfig& cc = st.image.config;
    if (kw == "ARG") {
      ASSIGN_OR_RETURN(auto kvs, ExpandKeyValues(ins, env, df_.escape));
      for (auto& kv : kvs) {
        used_args_.insert(kv.key);
        auto it = o_.build_args.find(kv.key);
        if (it != o_.build_args.end()) st.args[kv.key] = it->second;
        else if (kv.has_value) st.args[kv.key] = kv.value;
        else if (globals_.count(kv.key)) st.args[kv.key] = globals_[kv.key];
        else st.args.erase(kv.key);
      }
      return Status::Ok();  // ARG leaves no history entry, as BuildKit
    }
    if (kw == "ENV") {
      ASSIGN_OR_RETURN(auto kvs, ExpandKeyValues(ins, env, df_.escape));
      std::string desc;
      for (auto& kv : kvs) {
        cc.SetEnv(kv.key, kv.value);
        desc += (desc.empty() ? "" : " ") + kv.key + "=" + kv.value;
      }
      History(st, "ENV " + desc, true);
      return Status::Ok();
    }
    if (kw == "LABEL") {
      ASSIGN_OR_RETURN(auto kvs, ExpandKeyValues(ins, env, df_.escape));
      std::string desc;
      for (auto& kv : kvs) {
        cc.labels[kv.key] = kv.value;
        desc += (desc.empty() ? "" : " ") + kv.key + "=" + kv.value;
      }
      History(st, "LABEL " + desc, true);
      return Status::Ok();
    }
    if (kw == "MAINTAINER") {
      st.image.author = ins.rest;
      cc.labels["maintainer"] = ins.rest;
      History(st, "MAINTAINER " + ins.rest, true);
      return Status::Ok();
    }
    if (kw == "WORKDIR") {
      ASSIGN_OR_RETURN(std::string w, ExpandWord(ins.args[0], env, df_.escape));
      std::string abs = JoinAbs(cc.working_dir, w), clean;
      CleanRelative(abs, &clean);
      cc.working_dir = "/" + clean;
      History(st, "WORKDIR " + cc.working_dir, true);
      return Status::Ok();
    }
    if (kw == "USER") {
      ASSIGN_OR_RETURN(cc.user, ExpandWord(ins.args[0], env, df_.escape));
      History(st, "USER " + cc.user, true);
      return Status::Ok();
    }
    if (kw == "EXPOSE") {
      ASSIGN_OR_RETURN(auto ports, ExpandWords(ins.rest, env, df_.escape));
      for (auto p : ports) {
        // PORT, PORT/PROTO, or a range FIRST-LAST[/PROTO]: one entry per
        // port, as docker records them.
        std::string proto = "tcp";
        if (size_t slash = p.find('/'); slash != std::string::npos) {
          proto = p.substr(slash + 1);
          p = p.substr(0, slash);
        }
        for (char& c : proto) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (proto != "tcp" && proto != "udp" && proto != "sctp")
          return InvalidArgument("invalid protocol in EXPOSE " + p + "/" + proto);
        size_t dash = p.find('-');
        std::string a = p.substr(0, dash), b = dash == std::string::npos ? a : p.substr(dash + 1);
        auto port_num = [](const std::string& v) -> int {
          if (v.empty() || v.size() > 5 || !std::all_of(v.begin(), v.end(), ::isdigit)) return -1;
          int n = std::stoi(v);
          return n <= 65535 ? n : -1;
        };
        int first = port_num(a), last = port_num(b);
        if (first < 0 || last < first) return InvalidArgument("invalid port " + p);
        for (int n = first; n <= last; ++n) cc.exposed_ports.insert(std::to_string(n) + "/" + proto);
      }
      History(st, "EXPOSE " + ins.rest, true);
      return Status::Ok();
    }
    if (kw == "VOLUME") {
      std::vector<std::string> vols = ins.args;
      if (!ins.exec_form) {
        ASSIGN_OR_RETURN(vols, ExpandWords(ins.rest, env, df_.escape));
      }
      for (const auto& v : vols) {
        if (v.empty()) return InvalidArgument("VOLUME paths can not be empty");
        cc.volumes.insert(v);
      }
      History(st, "VOLUME " + json(vols).dump(), true);
      return Status::Ok();
    }
    if (kw == "STOPSIGNAL") {
      ASSIGN_OR_RETURN(cc.stop_signal, ExpandWord(ins.args[0], env, df_.escape));
      History(st, "STOPSIGNAL " + cc.stop_signal, true);
      return Status::Ok();
    }
    if (kw == "SHELL") {
      st.shell = ins.args;
      cc.shell = ins.args;
      History(st, "SHELL " + json(ins.args).dump(), true);
      return Status::Ok();
    }
    if (kw == "CMD" || kw == "ENTRYPOINT") {
      std::vector<std::string> cmd = ins.args;
      if (!ins.exec_form) {
        cmd = st.shell;
        cmd.push_back(ins.rest);
      }
      if (kw == "CMD") {
        cc.cmd = cmd;
        st.cmd_set = true;
      } else {
        cc.entrypoint = cmd;
        if (!st.cmd_set) cc.cmd.reset();  // ENTRYPOINT resets a CMD inherited from the base
      }
      History(st, kw + " " + json(cmd).dump(), true);
      return Status::Ok();
    }
    if (kw == "HEALTHCHECK") {
      if (ins.subcommand == "NONE") {
        cc.healthcheck = Healthcheck{{"NONE"}};
      } else {
        Healthcheck h;
        if (ins.exec_form) {
          h.test = {"CMD"};
          h.test.insert(h.test.end(), ins.args.begin(), ins.args.end());
        } else {
          h.test = {"CMD-SHELL", ins.rest};
        }
        for (const auto& [k, v] : ins.flags) {
          if (k == "retries") {
            h.retries = std::atoi(v.c_str());
            continue;
          }
          ASSIGN_OR_RETURN(int64_t ns, ParseDuration(v));
          if (k == "interval") h.interval_ns = ns;
          else if (k == "timeout") h.timeout_ns = ns;
          else if (k == "start-period") h.start_period_ns = ns;
          else if (k == "start-interval") h.start_interval_ns = ns;
        }
        cc.healthcheck = h;
      }
      History(st, "HEALTHCHECK " + ins.rest, true);
      return Status::Ok();
    }
    if (kw == "ONBUILD") {
      cc.onbuild.push_back(ins.args[0]);
      History(st, "ONBUILD " + ins.args[0], true);
      return Status::Ok();
    }
    if (kw == "COPY" || kw == "ADD") return CopyStep(st, ins, env);
    if (kw == "RUN") return RunStep(st, ins);
    return InvalidArgument("unsupported instruction " + kw);
  }

  static Result<int64_t> ParseDuration(const std::string& v) {
    std::regex re("^([0-9]+(\\.[0-9]+)?)(ns|us|ms|s|m|h)$");
    std::smatch m;
    if (!std::regex_match(v, m, re)) return InvalidArgument("invalid duration " + v);
    double n = std::stod(m[1]);
    std::string u = m[3];
    double mult = u == "ns" ? 1 : u == "us" ? 1e3 : u == "ms" ? 1e6 : u == "s" ? 1e9 : u == "m" ? 60e9 : 3600e9;
    return static_cast<int64_t>(n * mult);
  }

  // --- cache ---
  // Cache tags name the compression too: the same step compressed
  // otherwise is another blob.
  std::string CacheTag(const std::string& key) {
    return key + (o_.compression == Compression::kGzip ? "-gzip" : o_.compression == Compression::kZstd ? "-zstd" : "-tar");
  }

  std::optional<std::pair<LayerDescriptor, Digest>> CacheGet(const std::string& key) {
    if (o_.no_cache) return std::nullopt;
    auto d = images_->store()->ResolveTag(kCacheRepo, CacheTag(key));
    if (!d.ok()) return std::nullopt;
    auto m = images_->store()->GetManifest(kCacheRepo, *d);
    if (!m.ok()) return std::nullopt;
    json j = json::parse(m->content, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    auto ld = Digest::Parse(j.value("digest", ""));
    auto diff = Digest::Parse(j.value("diff_id", ""));
    if (!ld.ok() || !diff.ok() || !images_->store()->StatBlob(*ld).ok()) return std::nullopt;
    return std::make_pair(LayerDescriptor{j.value("mediaType", ""), *ld, j.value("size", uint64_t{0})}, *diff);
  }

  Status CachePut(const std::string& key, const LayerInfo& l) {
    return PutCacheRecord(images_, CacheTag(key), l);
  }

  // Waits for the stage's background layers and fills in their descriptors.
  Status Settle(Stage& st) {
    st.pending.resize(st.layers.size());
    for (size_t i = 0; i < st.layers.size(); ++i) {
      if (!st.pending[i]) continue;
      const Result<LayerInfo>& r = st.pending[i]->Get();
      if (!r.ok()) return r.status().WithContext("layer " + std::to_string(i + 1));
      st.layers[i] = LayerDescriptor{r->media_type, r->digest, r->size};
      st.pending[i].reset();
    }
    return Status::Ok();
  }

  void AddLayer(Stage& st, const LayerDescriptor& l, const Digest& diff, const std::string& created_by,
                bool cached, bool compressing = false) {
    st.pending.resize(st.layers.size());
    st.pending.push_back(nullptr);
    st.layers.push_back(l);
    st.image.diff_ids.push_back(diff);
    History(st, created_by, false);
    if (cached) {
      ++result_.cache_hits;
      Print(" ---> Using cache");
    }
    if (compressing)  // the compressed digest is not known yet: the diff ID
      Print(" ---> " + diff.str().substr(7, 12) + " (" + HumanSize(l.size) + " uncompressed)");
    else
      Print(" ---> " + l.digest.str().substr(7, 12) + " (" + HumanSize(l.size) + ")");
  }

  Result<LayerInfo> LayerFromTree(const std::string& dir, bool overlay_upper) {
    ASSIGN_OR_RETURN(auto w, LayerWriter::Create(*images_->store(), o_.compression));
    TreeOptions t;
    t.clamp_mtime = o_.source_date_epoch;
    t.overlay_upper = overlay_upper;
    RETURN_IF_ERROR(WriteTree(dir, w->tar(), t));
    return w->Commit();
  }

  // --- COPY / ADD ---
  Status CopyStep(Stage& st, const Instruction& ins, const Env& env) {
    bool add = ins.keyword == "ADD";
    std::vector<std::string> words = ins.args;
    if (!ins.exec_form) {
      words.clear();
      for (const auto& a : ins.args) {
        ASSIGN_OR_RETURN(std::string w, ExpandWord(a, env, df_.escape));
        words.push_back(w);
      }
    }
    std::string dest = words.back();
    words.pop_back();
    CopyOpts co;
    if (ins.HasFlag("chmod")) {
      std::string m = ins.Flag("chmod");
      char* end = nullptr;
      long v = std::strtol(m.c_str(), &end, 8);
      if (!end || *end || v < 0 || v > 07777) return InvalidArgument("invalid --chmod " + m + " (octal)");
      co.chmod = static_cast<mode_t>(v);
    }
    // Source root: the context, or another stage's or image's filesystem.
    std::unique_ptr<OverlayMount> from_mount;
    std::string root = context_;
    std::string from_desc;
    if (ins.HasFlag("from")) {
      std::string from = ins.Flag("from");
      ASSIGN_OR_RETURN(from, ExpandWord(from, env, df_.escape));
      std::vector<LayerDescriptor> layers;
      std::vector<Digest> diffs;
      std::string ident;
      if (Stage* s = FindStage(from)) {
        layers = s->layers;
        diffs = s->image.diff_ids;
        ident = s->key;
      } else {
        ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(from));
        auto img = images_->Get(ref);
        if (!img.ok()) return NotFound("COPY --from=" + from + ": no such stage or local image");
        layers = img->layers;
        diffs = img->image.diff_ids;
        ident = img->manifest_digest.str();
      }
      std::string mnt = scratch_ + "/from-" + RandomHex();
      fs::create_directories(mnt);
      ASSIGN_OR_RETURN(auto lowers, builder_->LayerDirs(layers, diffs));
      if (lowers.empty()) lowers.push_back(EmptyDir());
      ASSIGN_OR_RETURN(from_mount, OverlayMount::Mount(lowers, "", "", mnt));
      root = mnt;
      from_desc = "from " + ident;
    } else {
      co.ignore = &ignore_;
      // Files from the context belong to root in the image, whoever owns
      // them on the host (Dockerfile reference, COPY); --from keeps owners.
      co.owner = std::make_pair(0u, 0u);
    }
    if (ins.HasFlag("chown")) {
      ProcessSpec who;
      ASSIGN_OR_RETURN(auto lowers, builder_->LayerDirs(st.layers, st.image.diff_ids));
      RETURN_IF_ERROR(ResolveOwner(ins.Flag("chown"), lowers, &who));
      co.owner = std::make_pair(who.uid, who.gid);
    }
    // Resolve sources inside the root.
    struct Src {
      std::string abs, rel, url;
    };
    std::vector<Src> srcs;
    std::string unmatched;  // a pattern that matched nothing
    for (const auto& w : words) {
      if (add && (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0)) {
        srcs.push_back({"", "", w});
        continue;
      }
      if (!add && (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0))
        return InvalidArgument("COPY does not take URLs (use ADD): " + w);
      std::string clean;
      if (!CleanRelative(w, &clean)) return InvalidArgument("source " + w + " is outside the build context");
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
        return InvalidArgument("source " + w + " not found" + (from_desc.empty() ? " in the build context" : ""));
      if (co.ignore && !clean.empty() && ignore_.Excluded(clean))
        return InvalidArgument("source " + w + " is excluded by .dockerignore");
      // A symlink named as a source is followed, but must stay inside.
      std::string real = fs::weakly_canonical(abs, ec).string();
      if (real != root && real.rfind(root + "/", 0) != 0)
        return InvalidArgument("source " + w + " resolves outside the build context");
      srcs.push_back({real, clean, ""});
    }
    if (srcs.empty()) return InvalidArgument("no source files match " + unmatched);
    // Destination: a directory when it says so (a trailing "/", ".",
    // "/."), for several sources or a wildcard, or when it already is one
    // in the image (as BuildKit decides; `WORKDIR /src` + `COPY f .`).
    std::string dest_abs = JoinAbs(st.image.config.working_dir, dest), dest_clean;
    CleanRelative(dest_abs, &dest_clean);
    bool dest_is_dir = dest.back() == '/' || dest == "." || dest.ends_with("/.") || srcs.size() > 1 ||
                       std::any_of(srcs.begin(), srcs.end(), [](const Src& s) { return s.rel.find_first_of("*?[") != std::string::npos; });
    if (!dest_is_dir) {
      ASSIGN_OR_RETURN(auto lowers, builder_->LayerDirs(st.layers, st.image.diff_ids));
      dest_is_dir = dest_clean.empty() || IsDirInLayers(lowers, dest_clean);
    }
    // Cache key.
    Hasher h;
    std::string head = ins.keyword + " " + json(ins.flags).dump() + " -> " + dest_clean + (dest_is_dir ? "/" : "") + "\n";
    h.Update(head.data(), head.size());
    for (const auto& s : srcs) {
      if (!s.url.empty()) {
        h.Update(s.url.data(), s.url.size());
        continue;
      }
      RETURN_IF_ERROR(HashEntry(s.abs, s.rel, co.ignore, s.rel, &h));
    }
    std::string created_by = ins.keyword + " " + (ins.flags.empty() ? "" : json(ins.flags).dump() + " ") +
                             json(words).dump() + " " + dest;
    std::string key = ChainKey(st.key + from_desc, "layer " + h.Finish().str());
    st.key = key;
    bool has_url = std::any_of(srcs.begin(), srcs.end(), [](const Src& s) { return !s.url.empty(); });
    if (!has_url) {
      if (auto hit = CacheGet(key)) {
        AddLayer(st, hit->first, hit->second, created_by, true);
        return Status::Ok();
      }
    }
    std::string stage = scratch_ + "/copy-" + RandomHex();
    std::string target = dest_clean.empty() ? stage : stage + "/" + dest_clean;
    std::error_code ec;
    fs::create_directories(dest_is_dir || srcs.size() > 1 ? target : fs::path(target).parent_path().string(), ec);
    for (const auto& s : srcs) {
      if (!s.url.empty()) {
        std::string name = s.url.substr(s.url.rfind('/') + 1);
        std::string to = (dest_is_dir || name.empty()) ? target + "/" + (name.empty() ? "download" : name) : target;
        fs::create_directories(fs::path(to).parent_path(), ec);
        RETURN_IF_ERROR(Fetch(s.url, to));
        ::chmod(to.c_str(), co.chmod ? *co.chmod : 0600);
        continue;
      }
      struct stat sst;
      ::stat(s.abs.c_str(), &sst);
      if (add && S_ISREG(sst.st_mode) && LooksLikeTar(s.abs)) {
        fs::create_directories(target, ec);
        RETURN_IF_ERROR(ExtractLayer(FileSource(s.abs), target).WithContext("ADD " + s.rel));
        continue;
      }
      if (S_ISDIR(sst.st_mode)) {
        // A directory's contents are copied, not the directory itself.
        RETURN_IF_ERROR(CopyEntry(s.abs, s.rel, target, co));
        continue;
      }
      std::string base = fs::path(s.rel.empty() ? s.abs : s.rel).filename().string();
      std::string to = dest_is_dir ? target + "/" + base : target;
      RETURN_IF_ERROR(CopyEntry(s.abs, "", to, co));
    }
    from_mount.reset();
    ASSIGN_OR_RETURN(LayerInfo l, LayerFromTree(stage, false));
    // The staging tree is this layer's content: keep it as the extracted
    // copy that later RUN steps mount.
    std::string ldir = builder_->state_dir() + "/layers/" + l.diff_id.hex().substr(0, 24);
    fs::create_directories(builder_->state_dir() + "/layers", ec);
    if (!fs::exists(ldir, ec)) fs::rename(stage, ldir, ec);
    fs::remove_all(stage, ec);
    if (!has_url) RETURN_IF_ERROR(CachePut(key, l));
    AddLayer(st, LayerDescriptor{l.media_type, l.digest, l.size}, l.diff_id, created_by, false);
    return Status::Ok();
  }

  Status ResolveOwner(const std::string& spec, const std::vector<std::string>& lowers, ProcessSpec* who) {
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
    return ResolveUser(spec, etc, who);
  }

  Status Glob(const std::string& root, const std::string& pattern, const IgnoreMatcher* ignore,
              std::vector<std::string>* out) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      std::string rel = fs::relative(it->path(), root).string();
      if (ignore && ignore->Excluded(rel)) continue;
      if (::fnmatch(pattern.c_str(), rel.c_str(), FNM_PATHNAME) == 0) out->push_back(rel);
    }
    std::sort(out->begin(), out->end());
    return Status::Ok();
  }

  Status Fetch(const std::string& url, const std::string& to) {
    std::regex re("^(https?://[^/]+)(/.*)?$");
    std::smatch m;
    if (!std::regex_match(url, m, re)) return InvalidArgument("invalid URL " + url);
    httplib::Client c(m[1].str());
    c.set_connection_timeout(10, 0);
    c.set_read_timeout(60, 0);
    c.set_follow_location(true);
    std::ofstream out(to, std::ios::binary);
    auto r = c.Get(m[2].matched ? m[2].str().c_str() : "/", [&](const char* d, size_t n) {
      out.write(d, n);
      return static_cast<bool>(out);
    });
    if (!r) return Unavailable("ADD " + url + ": cannot fetch (" + httplib::to_string(r.error()) + ")");
    if (r->status != 200) return Unavailable("ADD " + url + ": HTTP " + std::to_string(r->status));
    return Status::Ok();
  }

  std::string EmptyDir() {
    std::string e = builder_->state_dir() + "/empty";
    std::error_code ec;
    fs::create_directories(e, ec);
    return e;
  }

  // --- RUN ---
  Status RunStep(Stage& st, const Instruction& ins) {
    std::vector<std::string> args = ins.args;
    if (!ins.exec_form) {
      args = st.shell;
      args.push_back(ins.rest);
    }
    // Build args in scope are visible to RUN and part of its cache key.
    std::vector<std::string> env = st.image.config.env;
    std::string arg_env;
    for (const auto& [k, v] : st.args) {
      if (!st.image.config.GetEnv(k)) env.push_back(k + "=" + v);
      arg_env += k + "=" + v + "\n";
    }
    if (!st.image.config.GetEnv("PATH")) env.push_back(kDefaultPath);
    std::string created_by = "RUN " + (ins.exec_form ? json(args).dump() : Join(args));
    std::string key = ChainKey(st.key, "run " + json(args).dump() + "\nenv " + json(st.image.config.env).dump() +
                                           "\nargs " + arg_env + "user " + st.image.config.user + "\ncwd " +
                                           st.image.config.working_dir);
    st.key = key;
    if (auto hit = CacheGet(key)) {
      AddLayer(st, hit->first, hit->second, created_by, true);
      return Status::Ok();
    }
    if (arch_ != "amd64" || os_ != "linux")
      return FailedPrecondition("cannot RUN for " + o_.platform + " on this linux/amd64 host");
    ASSIGN_OR_RETURN(auto lowers, builder_->LayerDirs(st.layers, st.image.diff_ids));
    if (lowers.empty()) lowers.push_back(EmptyDir());
    std::string dir = scratch_ + "/run-" + RandomHex();
    std::vector<std::string> created;
    int code;
    ASSIGN_OR_RETURN(auto ws, Workspace::Create(lowers, dir, out_));
    {
      ProcessSpec spec;
      spec.args = args;
      spec.env = env;
      spec.cwd = st.image.config.working_dir.empty() ? "/" : st.image.config.working_dir;
      RETURN_IF_ERROR(ResolveUser(st.image.config.user, ws->rootfs(), &spec));
      // A WORKDIR that does not exist yet is made for the step, owned by
      // the step's user, as BuildKit makes it (WORKDIR after USER app).
      std::string made = ws->rootfs();
      std::stringstream parts(spec.cwd);
      for (std::string part; std::getline(parts, part, '/');) {
        if (part.empty()) continue;
        made += "/" + part;
        struct stat sb;
        if (::lstat(made.c_str(), &sb) == 0) continue;
        if (::mkdir(made.c_str(), 0755) != 0) break;
        (void)!::lchown(made.c_str(), spec.uid, spec.gid);
      }
      ASSIGN_OR_RETURN(code, RunContainer(o_.runtime, builder_->state_dir(), ws->rootfs(), spec, &created));
    }
    RETURN_IF_ERROR(ws->Finish(created));
    std::string upper = ws->changes();
    if (code != 0) {
      ws.reset();
      std::error_code ec;
      fs::remove_all(dir, ec);
      return FailedPrecondition("command " + json(args).dump() + " returned a non-zero code: " + std::to_string(code));
    }
    // The diff ID (the uncompressed tar's digest) is computed now; the
    // upper directory, this layer in overlay form, becomes its extracted
    // copy at once, and compression into the store runs in the background
    // while the next steps go on.
    Hasher diff_hasher;
    uint64_t tar_size = 0;
    {
      TarWriter tw([&](const char* d, size_t n) {
        diff_hasher.Update(d, n);
        tar_size += n;
        return Status::Ok();
      });
      TreeOptions t;
      t.clamp_mtime = o_.source_date_epoch;
      t.overlay_upper = true;
      RETURN_IF_ERROR(WriteTree(upper, tw, t));
      RETURN_IF_ERROR(tw.Finish());
    }
    Digest diff_id = diff_hasher.Finish();
    std::string ldir = builder_->state_dir() + "/layers/" + diff_id.hex().substr(0, 24);
    std::error_code ec;
    fs::create_directories(builder_->state_dir() + "/layers", ec);
    if (!fs::exists(ldir, ec)) fs::rename(upper, ldir, ec);
    ws.reset();
    fs::remove_all(dir, ec);
    if (!fs::exists(ldir, ec)) return Internal("layer directory " + ldir + " missing");
    auto pending = std::make_shared<PendingLayer>();
    ImageStore* images = images_;
    Compression compression = o_.compression;
    int64_t epoch = o_.source_date_epoch;
    std::string tag = CacheTag(key);
    pending->job = std::async(std::launch::async, [images, compression, epoch, ldir, diff_id, tag]() -> Result<LayerInfo> {
      ASSIGN_OR_RETURN(auto w, LayerWriter::Create(*images->store(), compression));
      TreeOptions t;
      t.clamp_mtime = epoch;
      t.overlay_upper = true;
      RETURN_IF_ERROR(WriteTree(ldir, w->tar(), t));
      ASSIGN_OR_RETURN(LayerInfo l, w->Commit());
      if (l.diff_id != diff_id) return Internal("layer changed while it was compressed");
      RETURN_IF_ERROR(PutCacheRecord(images, tag, l));
      return l;
    });
    AddLayer(st, LayerDescriptor{LayerMediaType(o_.compression), diff_id, tar_size}, diff_id, created_by, false,
             true);
    st.pending.back() = pending;
    return Status::Ok();
  }

  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i];
    return s;
  }

  Builder* builder_;
  ImageStore* images_;
  const BuildOptions& o_;
  std::ostream& out_;
  Dockerfile df_;
  std::string context_, scratch_, os_, arch_, variant_;
  IgnoreMatcher ignore_;
  Env globals_;
  std::set<std::string> used_args_;
  std::deque<Stage> stages_;
  BuildResult result_;
};

}  // namespace

Result<std::vector<std::string>> Builder::LayerDirs(const std::vector<LayerDescriptor>& layers,
                                                    const std::vector<Digest>& diff_ids) {
  if (layers.size() != diff_ids.size())
    return FailedPrecondition("image has " + std::to_string(layers.size()) + " layers but " +
                              std::to_string(diff_ids.size()) + " diff_ids");
  std::vector<std::string> dirs;
  std::error_code ec;
  fs::create_directories(state_ + "/layers", ec);
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string dir = state_ + "/layers/" + diff_ids[i].hex().substr(0, 24);
    if (!fs::exists(dir, ec)) {
      std::string tmp = dir + ".tmp-" + RandomHex();
      fs::create_directories(tmp, ec);
      auto h = images_->store()->OpenBlob(layers[i].digest);
      if (!h.ok()) return h.status().WithContext("layer " + layers[i].digest.str());
      std::shared_ptr<BlobReadHandle> handle(std::move(*h));
      auto off = std::make_shared<uint64_t>(0);
      ByteSource src = [handle, off](char* buf, size_t n) -> Result<size_t> {
        auto r = handle->ReadAt(*off, buf, n);
        if (r.ok()) *off += *r;
        return r;
      };
      Status s = ExtractLayer(src, tmp);
      if (!s.ok()) {
        fs::remove_all(tmp, ec);
        return s.WithContext("extract layer " + layers[i].digest.str());
      }
      fs::rename(tmp, dir, ec);
      if (ec && !fs::exists(dir)) return Internal("rename layer dir: " + ec.message());
      fs::remove_all(tmp, ec);
    }
    dirs.insert(dirs.begin(), dir);  // top first
  }
  return dirs;
}

Result<BuildResult> Builder::Build(const BuildOptions& options) {
  Run r(this, images_, options, *out_);
  return r.Go();
}

Result<int> RunImage(Builder& builder, const StoredImage& image, const std::vector<std::string>& command,
                     const std::string& runtime) {
  const ContainerConfig& cc = image.image.config;
  std::vector<std::string> args;
  if (cc.entrypoint) args = *cc.entrypoint;
  if (!command.empty()) args.insert(args.end(), command.begin(), command.end());
  else if (cc.cmd) args.insert(args.end(), cc.cmd->begin(), cc.cmd->end());
  if (args.empty()) return InvalidArgument("the image has no command (no ENTRYPOINT or CMD) and none was given");
  ASSIGN_OR_RETURN(auto lowers, builder.LayerDirs(image.layers, image.image.diff_ids));
  std::string dir = builder.state_dir() + "/tmp/run-" + RandomHex();
  if (lowers.empty()) {
    lowers.push_back(builder.state_dir() + "/empty");
    fs::create_directories(lowers[0]);
  }
  Result<int> code = 0;
  {
    ASSIGN_OR_RETURN(auto ws, Workspace::Create(lowers, dir, std::cerr));
    ProcessSpec spec;
    spec.args = args;
    spec.env = cc.env;
    if (!cc.GetEnv("PATH")) spec.env.push_back(kDefaultPath);
    spec.cwd = cc.working_dir.empty() ? "/" : cc.working_dir;
    std::error_code ec;
    fs::create_directories(ws->rootfs() + spec.cwd, ec);
    RETURN_IF_ERROR(ResolveUser(cc.user, ws->rootfs(), &spec));
    code = RunContainer(runtime, builder.state_dir(), ws->rootfs(), spec, nullptr);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return code;
}

}  // namespace ocib::build
