#include "build/builder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "build/build_run.h"
#include "build/paths.h"
#include "build/workspace.h"
#include "image/tar_reader.h"
#include "image/transfer.h"

namespace ocib::build {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<BuildResult> BuildRun::Go() {
  std::string dfpath =
      o_.dockerfile.empty() ? o_.context_dir + "/Dockerfile" : o_.dockerfile;
  std::ifstream in(dfpath);
  if (!in) return InvalidArgument("cannot read Dockerfile " + dfpath);
  std::stringstream ss;
  ss << in.rdbuf();
  ASSIGN_OR_RETURN(
      df_, ParseDockerfile(ss.str(), fs::path(dfpath).filename().string()));
  if (!fs::is_directory(o_.context_dir))
    return InvalidArgument("build context " + o_.context_dir +
                           " is not a directory");
  context_ = fs::canonical(o_.context_dir).string();
  RETURN_IF_ERROR(ignore_.Load(context_ + "/.dockerignore"));
  size_t slash = o_.platform.find('/');
  if (slash == std::string::npos)
    return InvalidArgument("--platform must be os/arch, got " + o_.platform);
  os_ = o_.platform.substr(0, slash);
  arch_ = o_.platform.substr(slash + 1);
  variant_.clear();
  if (size_t v = arch_.find('/'); v != std::string::npos) {
    variant_ = arch_.substr(v + 1);
    arch_ = arch_.substr(0, v);
  }
  // BuildKit's automatic platform ARGs: usable in FROM lines, and in a
  // stage once declared (`ARG TARGETARCH`).
  globals_["TARGETPLATFORM"] = o_.platform;
  globals_["TARGETOS"] = os_;
  globals_["TARGETARCH"] = arch_;
  globals_["TARGETVARIANT"] = variant_;
  globals_["BUILDPLATFORM"] = kHostPlatform;
  globals_["BUILDOS"] = "linux";
  globals_["BUILDARCH"] = "amd64";
  globals_["BUILDVARIANT"] = "";
  scratch_ = paths_.Tmp() + "/build-" + RandomHex();
  std::error_code ec;
  fs::create_directories(scratch_, ec);
  for (const auto& c : o_.cache_from) {
    Status imported = ImportCache(c);
    if (!imported.ok()) {
      fs::remove_all(scratch_, ec);
      return imported;
    }
  }
  auto r = Stages();
  fs::remove_all(scratch_, ec);
  return r;
}

Status BuildRun::StepError(const Instruction& ins, const std::string& why) {
  return InvalidArgument(df_.filename + ":" + std::to_string(ins.line) + ": " +
                         ins.keyword + ": " + why);
}

void BuildRun::Print(const std::string& s) {
  MutexLock l(&print_mu_);
  out_ << s << "\n" << std::flush;
}

void BuildRun::Say(const Stage& st, const std::string& s) {
  Print(st.prefix + s);
}

Env BuildRun::ExpansionEnv(const Stage& st) {
  Env env = st.args;
  for (const auto& e : st.image.config.env) {
    size_t eq = e.find('=');
    if (eq != std::string::npos) env[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return env;
}

void BuildRun::History(Stage& st, const std::string& created_by, bool empty) {
  HistoryEntry h;
  h.created = Rfc3339(o_.source_date_epoch);
  h.created_by = created_by;
  h.comment = "ocibuild";
  h.empty_layer = empty;
  st.image.history.push_back(h);
}

std::string BuildRun::ChainKey(const std::string& parent,
                               const std::string& what) {
  std::string k = parent + "\n" + what;
  return Digest::Of(k).hex();
}

std::string BuildRun::Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const BuildRun::Handler BuildRun::kHandlers[kKeywordCount] = {
    &BuildRun::From,             // FROM
    &BuildRun::RunStep,          // RUN
    &BuildRun::CmdOrEntrypoint,  // CMD
    &BuildRun::Label,            // LABEL
    &BuildRun::Maintainer,       // MAINTAINER
    &BuildRun::Expose,           // EXPOSE
    &BuildRun::EnvStep,          // ENV
    &BuildRun::CopyStep,         // ADD
    &BuildRun::CopyStep,         // COPY
    &BuildRun::CmdOrEntrypoint,  // ENTRYPOINT
    &BuildRun::Volume,           // VOLUME
    &BuildRun::User,             // USER
    &BuildRun::Workdir,          // WORKDIR
    &BuildRun::Arg,              // ARG
    &BuildRun::Onbuild,          // ONBUILD
    &BuildRun::StopSignal,       // STOPSIGNAL
    &BuildRun::Healthcheck,      // HEALTHCHECK
    &BuildRun::Shell,            // SHELL
};

Status BuildRun::Step(Stage& st, const Instruction& ins) {
  return (this->*kHandlers[static_cast<size_t>(ins.kind)])(st, ins);
}

std::string BuildRun::ContextDir(const std::string& name) const {
  auto it = o_.contexts.find(name);
  if (it == o_.contexts.end() || it->second.rfind("docker-image://", 0) == 0)
    return "";
  return it->second;
}

std::string BuildRun::ContextImage(const std::string& name) const {
  auto it = o_.contexts.find(name);
  if (it == o_.contexts.end() || it->second.rfind("docker-image://", 0) != 0)
    return name;
  return it->second.substr(15);
}

Result<BuildRun::FromTree> BuildRun::OpenFrom(const Stage& cur,
                                              const std::string& from,
                                              const std::string& what) {
  FromTree t;
  std::vector<LayerDescriptor> layers;
  std::vector<Digest> diffs;
  if (Stage* s = FindStage(cur, from)) {
    layers = s->layers;
    diffs = s->image.diff_ids;
    t.ident = "stage " + s->key;
  } else if (std::string dir = ContextDir(from); !dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      return InvalidArgument(what + from + ": build context " + dir +
                             " is not a directory");
    t.root = fs::canonical(dir, ec).string();
    t.directory = true;
    Hasher h;
    RETURN_IF_ERROR(HashTree(t.root, "", nullptr, &h));
    t.ident = "context " + h.Finish().str();
    return t;
  } else {
    ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(ContextImage(from)));
    auto img = images_->Get(ref);
    if (!img.ok())
      return NotFound(what + from +
                      ": no such stage, build context or local image");
    layers = img->layers;
    diffs = img->image.diff_ids;
    t.ident = "image " + img->manifest_digest.str();
  }
  ASSIGN_OR_RETURN(auto lowers, builder_->LayerDirs(layers, diffs));
  if (lowers.empty()) lowers.push_back(EmptyDir());
  t.root = scratch_ + "/from-" + RandomHex();
  fs::create_directories(t.root);
  ASSIGN_OR_RETURN(t.mount, OverlayMount::Mount(lowers, "", "", t.root));
  return t;
}

std::string BuildRun::EmptyDir() {
  std::string e = paths_.Empty();
  std::error_code ec;
  fs::create_directories(e, ec);
  return e;
}

Result<std::vector<std::string>> Builder::LayerDirs(
    const std::vector<LayerDescriptor>& layers,
    const std::vector<Digest>& diff_ids) {
  if (layers.size() != diff_ids.size())
    return FailedPrecondition("image has " + std::to_string(layers.size()) +
                              " layers but " + std::to_string(diff_ids.size()) +
                              " diff_ids");
  std::vector<std::string> dirs;
  std::error_code ec;
  StatePaths paths{state_};
  fs::create_directories(paths.Layers(), ec);
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string dir = paths.LayerDir(diff_ids[i]);
    if (!fs::exists(dir, ec)) {
      std::string tmp = dir + ".tmp-" + RandomHex();
      fs::create_directories(tmp, ec);
      auto h = images_->store()->OpenBlob(layers[i].digest);
      if (!h.ok())
        return h.status().WithContext("layer " + layers[i].digest.str());
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
      if (ec && !fs::exists(dir))
        return Internal("rename layer dir: " + ec.message());
      fs::remove_all(tmp, ec);
    }
    dirs.insert(dirs.begin(), dir);  // top first
  }
  return dirs;
}

Result<BuildResult> Builder::Build(const BuildOptions& options) {
  BuildRun r(this, images_, options, *out_);
  return r.Go();
}

std::optional<int64_t> GitCommitTime(const std::string& dir) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return std::nullopt;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 2);
    }
    // safe.directory: the checkout may belong to another user than root.
    ::execlp("git", "git", "-c", "safe.directory=*", "-C", dir.c_str(), "log",
             "-1", "--format=%ct", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[64];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 && out.size() < 64)
    out.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  if (out.empty() || out.size() > 15 ||
      !std::all_of(out.begin(), out.end(), ::isdigit))
    return std::nullopt;
  return std::stoll(out);
}

Result<int> RunImage(Builder& builder, const StoredImage& image,
                     const std::vector<std::string>& command,
                     const std::string& runtime) {
  const ContainerConfig& cc = image.image.config;
  std::vector<std::string> args;
  if (cc.entrypoint) args = *cc.entrypoint;
  if (!command.empty())
    args.insert(args.end(), command.begin(), command.end());
  else if (cc.cmd)
    args.insert(args.end(), cc.cmd->begin(), cc.cmd->end());
  if (args.empty())
    return InvalidArgument(
        "the image has no command (no ENTRYPOINT or CMD) and none was given");
  ASSIGN_OR_RETURN(auto lowers,
                   builder.LayerDirs(image.layers, image.image.diff_ids));
  StatePaths paths{builder.state_dir()};
  std::string dir = paths.Tmp() + "/run-" + RandomHex();
  if (lowers.empty()) {
    lowers.push_back(paths.Empty());
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
    code =
        RunContainer(runtime, builder.state_dir(), ws->rootfs(), spec, nullptr);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return code;
}

}  // namespace ocib::build
