// RUN: the command in an OCI runtime on a writable layer over the image,
// with BuildKit's RUN flags: --mount (cache, bind, tmpfs, secret),
// --network (default/host: the host's, none: its own empty namespace), and
// here-documents (a lone heredoc runs as the shell's script, or as a file
// when it starts with "#!"; others go to the shell with the command line).
// The changes become the layer; the compression into the store runs in
// the background while the build goes on.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "build/build_run.h"
#include "build/csv_options.h"
#include "build/paths.h"
#include "build/workspace.h"

namespace ocib::build {

namespace fs = std::filesystem;
using json = nlohmann::json;

// What PrepareMounts made for one RUN: the runtime mounts, what goes into
// the cache key, and what to undo afterwards.
struct BuildRun::RunMounts {
  std::vector<ExtraMount> mounts;
  std::string key;                   // mount specs and bound content hashes
  std::vector<int> lock_fds;         // flocks held on cache mounts
  std::vector<std::string> scratch;  // removed after the run
  std::vector<std::unique_ptr<OverlayMount>> overlays;
  ~RunMounts() {
    overlays.clear();
    for (int fd : lock_fds) ::close(fd);
    std::error_code ec;
    for (const auto& d : scratch) fs::remove_all(d, ec);
  }
};

namespace {

bool IsTrue(const std::string& v) {
  return v == "true" || v == "1" || v.empty();
}

Result<uint32_t> ParseId(const std::string& what, const std::string& v) {
  if (v.empty() || v.size() > 10 || !std::all_of(v.begin(), v.end(), ::isdigit))
    return InvalidArgument("invalid " + what + " " + v);
  return static_cast<uint32_t>(std::stoul(v));
}

}  // namespace

Status BuildRun::PrepareMounts(Stage& st, const Instruction& ins,
                               const std::string& rootfs_hint, RunMounts* m) {
  (void)rootfs_hint;
  Env env = ExpansionEnv(st);
  for (const auto& [flag, raw] : ins.flags) {
    if (flag != "mount") continue;
    ASSIGN_OR_RETURN(std::string value, ExpandWord(raw, env, df_.escape));
    std::string type = "bind", target, source, id, from, sharing = "shared",
                mode, uid, gid, size;
    bool ro = true, required = false;  // bind mounts: read-only unless rw
    std::string env_name;
    bool ro_given = false;  // cache mounts are writable unless `ro`
    for (const auto& [k, v] : ParseCsvOptions(value)) {
      if (k == "type")
        type = v;
      else if (k == "target" || k == "dst" || k == "destination")
        target = v;
      else if (k == "source" || k == "src")
        source = v;
      else if (k == "id")
        id = v;
      else if (k == "from")
        from = v;
      else if (k == "sharing")
        sharing = v;
      else if (k == "mode")
        mode = v;
      else if (k == "uid")
        uid = v;
      else if (k == "gid")
        gid = v;
      else if (k == "size")
        size = v;
      else if (k == "env")
        env_name = v;
      else if (k == "ro" || k == "readonly")
        ro = IsTrue(v), ro_given = true;
      else if (k == "rw" || k == "readwrite")
        ro = !IsTrue(v);
      else if (k == "required")
        required = IsTrue(v);
      else
        return InvalidArgument("--mount: unknown option \"" + k + "\"");
    }
    if (type == "secret") {
      if (id.empty() && !target.empty())
        id = fs::path(target).filename().string();
      if (id.empty())
        return InvalidArgument("--mount=type=secret needs id= or target=");
      if (target.empty() && env_name.empty()) target = "/run/secrets/" + id;
    }
    if (type != "secret" && target.empty())
      return InvalidArgument("--mount=type=" + type + " needs target=");
    if (!target.empty() && target[0] != '/')
      target = JoinAbs(st.image.config.working_dir, target);
    std::string clean_target;
    if (!target.empty()) {
      CleanRelative(target, &clean_target);
      target = "/" + clean_target;
    }
    m->key += value + "\n";
    if (type == "cache") {
      if (sharing != "shared" && sharing != "private" && sharing != "locked")
        return InvalidArgument(
            "--mount=type=cache: sharing must be shared, private or locked");
      if (!from.empty() || !source.empty())
        return InvalidArgument(
            "--mount=type=cache: from= and source= are not supported");
      if (id.empty()) id = target;
      std::string dir =
          paths_.CacheMounts() + "/" + Digest::Of(id).hex().substr(0, 32);
      std::error_code ec;
      fs::create_directories(paths_.CacheMounts(), ec);
      bool fresh = !fs::exists(dir, ec);
      if (fresh) {
        std::string tmp = dir + ".tmp-" + RandomHex();
        fs::create_directories(tmp, ec);
        mode_t md = 0755;
        if (!mode.empty())
          md = static_cast<mode_t>(std::strtol(mode.c_str(), nullptr, 8)) &
               07777;
        ASSIGN_OR_RETURN(uint32_t u, uid.empty() ? Result<uint32_t>(0u)
                                                 : ParseId("uid", uid));
        ASSIGN_OR_RETURN(uint32_t g, gid.empty() ? Result<uint32_t>(0u)
                                                 : ParseId("gid", gid));
        (void)!::chown(tmp.c_str(), u, g);
        ::chmod(tmp.c_str(), md);
        fs::rename(tmp, dir, ec);
        if (ec) fs::remove_all(tmp, ec);
      }
      std::string use = dir;
      if (sharing != "shared") {
        // A lock file beside the directory: `locked` waits for it,
        // `private` takes a fresh throwaway directory when it is held.
        int fd =
            ::open((dir + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
          return Internal("open cache lock: " +
                          std::string(std::strerror(errno)));
        int r = ::flock(fd, sharing == "locked" ? LOCK_EX : LOCK_EX | LOCK_NB);
        if (r == 0) {
          m->lock_fds.push_back(fd);
        } else {
          ::close(fd);
          if (sharing == "locked")
            return Internal("lock cache mount: " +
                            std::string(std::strerror(errno)));
          use = scratch_ + "/cache-private-" + RandomHex();
          fs::create_directories(use, ec);
          m->scratch.push_back(use);
        }
      }
      m->mounts.push_back(
          {target, "bind", use, {"rbind", ro && ro_given ? "ro" : "rw"}});
    } else if (type == "tmpfs") {
      std::vector<std::string> opts = {"nosuid", "nodev"};
      if (!size.empty()) opts.push_back("size=" + size);
      m->mounts.push_back({target, "tmpfs", "tmpfs", opts});
    } else if (type == "bind") {
      std::string clean_src;
      if (!CleanRelative(source, &clean_src))
        return InvalidArgument("--mount source " + source + " leaves its root");
      std::string root;
      if (from.empty()) {
        root = context_;
        Hasher h;
        std::string abs = clean_src.empty() ? root : root + "/" + clean_src;
        if (!fs::exists(fs::symlink_status(abs)))
          return InvalidArgument("--mount source " + source +
                                 " not found in the build context");
        RETURN_IF_ERROR(HashTree(abs, clean_src, &ignore_, &h));
        m->key += "context " + h.Finish().str() + "\n";
      } else {
        ASSIGN_OR_RETURN(FromTree t, OpenFrom(st, from, "--mount from="));
        m->key += t.ident + "\n";
        root = t.root;
        if (t.mount) {
          m->overlays.push_back(std::move(t.mount));
          m->scratch.push_back(root);
        }
      }
      std::string abs = clean_src.empty() ? root : root + "/" + clean_src;
      std::error_code ec;
      std::string real = fs::weakly_canonical(abs, ec).string();
      if (real != root && real.rfind(root + "/", 0) != 0)
        return InvalidArgument("--mount source " + source +
                               " resolves outside its root");
      if (!ro) {
        // `rw`: writes land in a throwaway upper directory, never in the
        // source or the layer. Without it a bind mount is read-only, as the
        // Dockerfile reference says (BuildKit 0.8 in docker 20.10 lets
        // writes through even with `ro`; tests/build checks ours).
        std::string d = scratch_ + "/bind-rw-" + RandomHex();
        for (const char* sub : {"/upper", "/work", "/merged"})
          fs::create_directories(d + sub);
        if (fs::is_directory(real)) {
          ASSIGN_OR_RETURN(
              auto ov, OverlayMount::Mount({real}, d + "/upper", d + "/work",
                                           d + "/merged"));
          m->overlays.push_back(std::move(ov));
          real = d + "/merged";
        } else {
          fs::copy_file(real, d + "/upper/file", ec);
          real = d + "/upper/file";
        }
        m->scratch.push_back(d);
      }
      m->mounts.push_back({target, "bind", real, {"rbind", ro ? "ro" : "rw"}});
    } else if (type == "secret") {
      auto it = o_.secrets.find(id);
      if (it == o_.secrets.end()) {
        if (required)
          return InvalidArgument(
              "secret " + id + " is required but was not given (--secret id=" +
              id + ",src=...)");
        continue;
      }
      if (!env_name.empty())
        return InvalidArgument("--mount=type=secret,env= is not supported");
      // A private copy with the mount's mode and owner (0400 root by
      // default), bound read-only; it is removed after the step.
      std::string d = scratch_ + "/secret-" + RandomHex();
      fs::create_directories(d);
      ::chmod(d.c_str(), 0700);
      std::string file = d + "/" + "secret";
      {
        std::ofstream out(file, std::ios::binary);
        out << it->second;
        if (!out) return Internal("write secret " + id);
      }
      mode_t md =
          mode.empty()
              ? 0400
              : static_cast<mode_t>(std::strtol(mode.c_str(), nullptr, 8)) &
                    07777;
      ASSIGN_OR_RETURN(
          uint32_t u, uid.empty() ? Result<uint32_t>(0u) : ParseId("uid", uid));
      ASSIGN_OR_RETURN(
          uint32_t g, gid.empty() ? Result<uint32_t>(0u) : ParseId("gid", gid));
      (void)!::chown(file.c_str(), u, g);
      ::chmod(file.c_str(), md);
      m->scratch.push_back(d);
      m->mounts.push_back({target, "bind", file, {"rbind", "ro"}});
    } else if (type == "ssh") {
      return InvalidArgument(
          "--mount=type=ssh is not supported (no SSH agent forwarding)");
    } else {
      return InvalidArgument("--mount: unknown type \"" + type + "\"");
    }
  }
  return Status::Ok();
}

Status BuildRun::RunStep(Stage& st, const Instruction& ins) {
  std::vector<std::string> args = ins.args;
  std::string shebang_file;  // a lone "#!" heredoc, run as a file
  if (!ins.exec_form) {
    std::string cmd = ins.rest;
    std::string name;
    if (!ins.heredocs.empty() && ins.heredocs.size() == 1 &&
        IsHeredocMarker(cmd, &name)) {
      // The whole command is one heredoc: its text is the script.
      const Heredoc& h = ins.heredocs[0];
      if (h.data.rfind("#!", 0) == 0) {
        shebang_file = h.data;
        args = {"/dev/pipes/" + h.name};
      } else {
        args = st.shell;
        args.push_back(h.data);
      }
    } else {
      // Heredocs inside a command line go to the shell as written.
      for (const auto& h : ins.heredocs) cmd += "\n" + h.data + h.name;
      args = st.shell;
      args.push_back(cmd);
    }
  }
  std::string network =
      ins.HasFlag("network") ? ins.Flag("network") : o_.network;
  if (!network.empty() && network != "default" && network != "none" &&
      network != "host")
    return InvalidArgument("--network must be default, none or host, got " +
                           network);
  if (ins.HasFlag("security") && ins.Flag("security") != "sandbox")
    return InvalidArgument("--security=" + ins.Flag("security") +
                           " is not supported (needs an entitlement)");
  // Build args in scope are visible to RUN and part of its cache key.
  std::vector<std::string> env = st.image.config.env;
  std::string arg_env;
  for (const auto& [k, v] : st.args) {
    if (!st.image.config.GetEnv(k)) env.push_back(k + "=" + v);
    arg_env += k + "=" + v + "\n";
  }
  if (!st.image.config.GetEnv("PATH")) env.push_back(kDefaultPath);
  // History as BuildKit words it: "RUN |N K=V... <args>" with the ARGs
  // this stage declared.
  std::string created_by = "RUN ";
  if (!st.declared_args.empty()) {
    created_by += "|" + std::to_string(st.declared_args.size());
    for (const auto& k : st.declared_args) {
      std::optional<std::string> e = st.image.config.GetEnv(k);
      auto a = st.args.find(k);
      created_by += " " + k + "=" +
                    (e                    ? *e
                     : a != st.args.end() ? a->second
                                          : std::string());
    }
    created_by += " ";
  }
  created_by += Join(args);
  RunMounts mounts;
  RETURN_IF_ERROR(PrepareMounts(st, ins, "", &mounts));
  std::string key = ChainKey(
      st.key, "run " + json(args).dump() + "\nenv " +
                  json(st.image.config.env).dump() + "\nargs " + arg_env +
                  "user " + st.image.config.user + "\ncwd " +
                  st.image.config.working_dir + "\nmounts " + mounts.key +
                  "network " + network + "\nscript " + shebang_file);
  st.key = key;
  if (auto hit = CacheGet(st, key)) {
    AddLayer(st, hit->first, hit->second, created_by, true);
    return Status::Ok();
  }
  if (st.image.architecture != "amd64" || st.image.os != "linux")
    return FailedPrecondition("cannot RUN for " + st.image.os + "/" +
                              st.image.architecture +
                              " on this linux/amd64 host (no emulation)");
  ASSIGN_OR_RETURN(auto lowers,
                   builder_->LayerDirs(st.layers, st.image.diff_ids));
  if (lowers.empty()) lowers.push_back(EmptyDir());
  std::string dir = scratch_ + "/run-" + RandomHex();
  std::vector<std::string> created;
  int code;
  ASSIGN_OR_RETURN(auto ws, Workspace::Create(lowers, dir, out_));
  {
    ProcessSpec spec;
    spec.args = args;
    spec.env = env;
    spec.cwd =
        st.image.config.working_dir.empty() ? "/" : st.image.config.working_dir;
    spec.mounts = mounts.mounts;
    spec.network_none = network == "none";
    spec.output_fd = o_.run_output_fd;
    if (!shebang_file.empty()) {
      std::string d = scratch_ + "/pipes-" + RandomHex();
      fs::create_directories(d);
      std::string f = d + "/" + ins.heredocs[0].name;
      std::ofstream(f, std::ios::binary) << shebang_file;
      ::chmod(f.c_str(), 0755);
      mounts.scratch.push_back(d);
      spec.mounts.push_back({"/dev/pipes", "bind", d, {"rbind", "ro"}});
    }
    RETURN_IF_ERROR(ResolveUser(st.image.config.user, ws->rootfs(), &spec));
    // A WORKDIR that does not exist yet (the base's, or one a stage
    // inherited) is made for the step, owned by the step's user.
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
    ASSIGN_OR_RETURN(code, RunContainer(o_.runtime, builder_->state_dir(),
                                        ws->rootfs(), spec, &created));
  }
  RETURN_IF_ERROR(ws->Finish(created));
  std::string upper = ws->changes();
  if (code != 0) {
    ws.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    return FailedPrecondition(
        "command " + json(args).dump() +
        " returned a non-zero code: " + std::to_string(code));
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
  std::string ldir = paths_.LayerDir(diff_id);
  std::error_code ec;
  fs::create_directories(paths_.Layers(), ec);
  if (!fs::exists(ldir, ec)) fs::rename(upper, ldir, ec);
  ws.reset();
  fs::remove_all(dir, ec);
  if (!fs::exists(ldir, ec))
    return Internal("layer directory " + ldir + " missing");
  auto pending = std::make_shared<PendingLayer>();
  ImageStore* images = images_;
  Compression compression = o_.compression;
  int64_t epoch = o_.source_date_epoch;
  std::string tag = CacheTag(key);
  pending->job = std::async(
      std::launch::async,
      [images, compression, epoch, ldir, diff_id, tag]() -> Result<LayerInfo> {
        ASSIGN_OR_RETURN(auto w,
                         LayerWriter::Create(*images->store(), compression));
        TreeOptions t;
        t.clamp_mtime = epoch;
        t.overlay_upper = true;
        RETURN_IF_ERROR(WriteTree(ldir, w->tar(), t));
        ASSIGN_OR_RETURN(LayerInfo l, w->Commit());
        if (l.diff_id != diff_id)
          return Internal("layer changed while it was compressed");
        RETURN_IF_ERROR(PutCacheRecord(images, tag, l));
        return l;
      });
  AddLayer(st,
           LayerDescriptor{LayerMediaType(o_.compression), diff_id, tar_size},
           diff_id, created_by, false, true);
  st.pending.back() = pending;
  return Status::Ok();
}

std::string BuildRun::Join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i];
  return s;
}

}  // namespace ocib::build
