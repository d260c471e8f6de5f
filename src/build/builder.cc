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

namespace {

std::string HumanSize(uint64_t n) {
  char buf[32];
  if (n < 1000)
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  else if (n < 1000 * 1000)
    std::snprintf(buf, sizeof buf, "%.1fkB", n / 1e3);
  else if (n < 1000ull * 1000 * 1000)
    std::snprintf(buf, sizeof buf, "%.1fMB", n / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2fGB", n / 1e9);
  return buf;
}

}  // namespace

// Records a step's layer under its cache tag (thread-safe: the store is).
Status PutCacheRecord(ImageStore* images, const std::string& tag,
                      const LayerInfo& l) {
  json j = {{"mediaType", l.media_type},
            {"digest", l.digest.str()},
            {"size", l.size},
            {"diff_id", l.diff_id.str()}};
  ManifestRecord rec;
  rec.content = j.dump();
  rec.digest = Digest::Of(rec.content);
  rec.media_type = "application/vnd.ocibuild.cache.v1+json";
  RETURN_IF_ERROR(images->store()->LinkBlob(kCacheRepo, l.digest));
  return images->store()->PutManifest(kCacheRepo, rec, tag, {l.digest}, {});
}

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

Result<BuildResult> BuildRun::Stages() {
  // Global ARGs: before the first FROM, usable in FROM lines.
  size_t i = 0;
  for (;
       i < df_.instructions.size() && df_.instructions[i].kind == Keyword::kArg;
       ++i) {
    ASSIGN_OR_RETURN(
        auto kvs, ExpandKeyValues(df_.instructions[i], globals_, df_.escape));
    for (auto& kv : kvs) {
      {
        MutexLock l(&args_mu_);
        used_args_.insert(kv.key);
      }
      auto it = o_.build_args.find(kv.key);
      if (it != o_.build_args.end())
        globals_[kv.key] = it->second;
      else if (kv.has_value)
        globals_[kv.key] = kv.value;
      else
        globals_.erase(kv.key);  // declared without a value: unset, even an
                                 // automatic one (as BuildKit)
    }
  }
  size_t total = df_.instructions.size();
  for (size_t n = 0; n < i; ++n) Print(StepLine(n, ""));
  // Stages: where each starts, its name, what it uses, whether the result
  // needs it (as BuildKit, a stage nothing needs is not built).
  std::vector<size_t> starts;
  for (size_t n = i; n < total; ++n)
    if (df_.instructions[n].kind == Keyword::kFrom) starts.push_back(n);
  std::vector<std::vector<size_t>> deps;
  ASSIGN_OR_RETURN(std::vector<bool> needed, NeededStages(i, &deps));
  stages_.resize(starts.size());
  for (size_t k = 0; k < starts.size(); ++k) {
    stages_[k].index = k;
    const Instruction& from = df_.instructions[starts[k]];
    if (from.args.size() == 3) {
      ASSIGN_OR_RETURN(std::string nm,
                       ExpandWord(from.args[2], globals_, df_.escape));
      stages_[k].name = Lower(nm);
    }
  }
  size_t target = starts.size() - 1;
  if (!o_.target.empty()) {
    auto it = std::find_if(
        stages_.begin(), stages_.end(),
        [&](const Stage& st) { return st.name == Lower(o_.target); });
    if (it == stages_.end())
      return InvalidArgument("target stage \"" + o_.target + "\" not found");
    target = it->index;
  }
  size_t building =
      std::count(needed.begin(), needed.begin() + target + 1, true);
  for (size_t k = 0; k <= target; ++k) {
    if (!needed[k]) {
      Print(
          StepLine(starts[k], " (stage skipped: the target does not use it)"));
      continue;
    }
    // With several stages at once, lines say which stage they are from.
    if (building > 1 && k != target)
      stages_[k].prefix =
          "[" +
          (stages_[k].name.empty() ? "stage " + std::to_string(k)
                                   : stages_[k].name) +
          "] ";
  }
  // Each needed stage runs on its own thread as soon as the stages it uses
  // are built, so independent stages build in parallel (as BuildKit).
  built_ = std::make_unique<std::atomic<bool>[]>(starts.size());
  for (size_t k = 0; k < starts.size(); ++k) built_[k] = false;
  std::vector<std::shared_future<Status>> done(starts.size());
  std::vector<char> skipped(starts.size(),
                            0);  // k waited on a stage that failed
  for (size_t k = 0; k <= target; ++k) {
    if (!needed[k]) continue;
    std::vector<std::shared_future<Status>> waits;
    for (size_t d : deps[k]) waits.push_back(done[d]);
    size_t end = k + 1 < starts.size() ? starts[k + 1] : total;
    done[k] = std::async(std::launch::async,
                         [this, k, waits, &skipped, start = starts[k],
                          end]() -> Status {
                           for (const auto& w : waits)
                             if (!w.get().ok()) {
                               skipped[k] = 1;
                               return w.get();
                             }
                           Status s = BuildStage(stages_[k], start, end);
                           if (s.ok()) built_[k] = true;
                           return s;
                         })
                  .share();
  }
  // The first failure in Dockerfile order (a stage that only waited on a
  // failed one reports that one's error).
  for (size_t k = 0; k <= target; ++k)
    if (needed[k]) done[k].wait();
  for (size_t k = 0; k <= target; ++k)
    if (needed[k] && !skipped[k] && !done[k].get().ok()) return done[k].get();
  std::set<std::string> used;
  {
    MutexLock l(&args_mu_);
    used = used_args_;
  }
  for (const auto& [k, v] : o_.build_args)
    if (!used.count(k)) Print("[Warning] build-arg " + k + " was not consumed");
  Stage& last = stages_[target];
  // Commit: config, manifest, tags.
  ImageRef untagged{"_ocibuild/untagged", "latest", std::nullopt};
  const ImageRef& first = o_.tags.empty() ? untagged : o_.tags[0];
  for (const auto& [k, v] : o_.labels) last.image.config.labels[k] = v;
  for (auto& stage : stages_) RETURN_IF_ERROR(Settle(stage));
  ASSIGN_OR_RETURN(Digest md,
                   images_->Commit(first, last.image, last.layers, o_.format));
  for (size_t t = 1; t < o_.tags.size(); ++t)
    RETURN_IF_ERROR(images_->Tag(first, o_.tags[t]));
  for (const auto& c : o_.cache_to) RETURN_IF_ERROR(ExportCache(c, last));
  result_.manifest_digest = md;
  result_.config_digest = Digest::Of(SerializeConfig(last.image));
  result_.steps = steps_;
  result_.cache_hits = cache_hits_;
  // The image ID, as docker prints it and `images` shows it: the config's
  // digest.
  Print("Successfully built " + result_.config_digest.hex().substr(0, 12));
  for (const auto& t : o_.tags) Print("Successfully tagged " + t.str());
  return result_;
}

std::string BuildRun::StepLine(size_t n, const std::string& suffix) {
  return "Step " + std::to_string(n + 1) + "/" +
         std::to_string(df_.instructions.size()) + " : " +
         df_.instructions[n].text + suffix;
}

Status BuildRun::BuildStage(Stage& st, size_t start, size_t end) {
  for (size_t n = start; n < end; ++n) {
    const Instruction& ins = df_.instructions[n];
    Say(st, StepLine(n, ""));
    ++steps_;
    Status s = Step(st, ins);
    if (!s.ok()) {
      if (s.message().rfind(df_.filename + ":", 0) == 0) return s;
      return StepError(ins, s.message());
    }
    if (ins.kind == Keyword::kFrom) {
      st.no_cache = !st.name.empty() && o_.no_cache_stages.count(st.name);
      RETURN_IF_ERROR(RunOnBuildTriggers(st, ins));
    }
  }
  return Status::Ok();
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

Status BuildRun::From(Stage& st, const Instruction& ins) {
  std::vector<std::string> words;
  for (const auto& a : ins.args) {
    ASSIGN_OR_RETURN(std::string w, ExpandWord(a, globals_, df_.escape));
    words.push_back(w);
  }
  // st.name was set before the stages started (others read it).
  std::string base = words[0];
  // FROM --platform=OS/ARCH[/VARIANT] ($BUILDPLATFORM, ...): this stage's.
  std::string platform = o_.platform;
  if (ins.HasFlag("platform")) {
    ASSIGN_OR_RETURN(platform,
                     ExpandWord(ins.Flag("platform"), globals_, df_.escape));
    size_t slash = platform.find('/');
    if (slash == std::string::npos || slash == 0 ||
        slash + 1 == platform.size())
      return InvalidArgument("--platform must be os/arch[/variant], got \"" +
                             platform + "\"");
  }
  std::string p_os = platform.substr(0, platform.find('/'));
  std::string p_arch = platform.substr(platform.find('/') + 1), p_variant;
  if (size_t v = p_arch.find('/'); v != std::string::npos) {
    p_variant = p_arch.substr(v + 1);
    p_arch = p_arch.substr(0, v);
  }
  if (base == "scratch") {
    st.image = Image();
    st.image.architecture = p_arch;
    st.image.os = p_os;
    st.image.variant = p_variant;
    st.image.config.working_dir = "/";  // as BuildKit's empty image
    st.key = ChainKey("", "scratch " + platform);
    Say(st, " ---> scratch");
  } else if (Stage* prev = FindStage(st, base, /*by_index=*/false)) {
    st.image = prev->image;
    st.layers = prev->layers;
    st.layer_keys = prev->layer_keys;
    // As BuildKit: the parent stage's ARG values carry into the child.
    st.args = prev->args;
    st.pending = prev->pending;
    st.key = prev->key;
    st.shell = prev->shell;
    Say(st, " ---> stage " + base);
  } else {
    if (auto it = o_.contexts.find(base); it != o_.contexts.end()) {
      if (it->second.rfind("docker-image://", 0) != 0)
        return InvalidArgument(
            "FROM " + base +
            ": a directory build context can be used with COPY --from and "
            "RUN --mount from= only; for FROM give docker-image://REF");
      base = it->second.substr(15);
    }
    ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(base));
    auto img = images_->Get(ref);
    if (!img.ok()) {
      // Not local: pull it, as docker build does.
      TransferOptions to = o_.transfer;
      to.platform = platform;
      std::ostringstream
          progress;  // stages may pull at once: one summary line each
      Status pulled = PullImage(*images_, ref, to, progress);
      if (!pulled.ok())
        return NotFound("image " + ref.str() +
                        " is not in the local store, and pulling it failed: " +
                        pulled.message());
      img = images_->Get(ref);
      if (!img.ok()) return img.status();
    }
    st.image = img->image;
    st.layers = img->layers;
    st.layer_keys.assign(st.layers.size(), "");
    st.key = ChainKey("", "image " + img->manifest_digest.str());
    if (!st.image.config.shell.empty()) st.shell = st.image.config.shell;
    Say(st, " ---> " + img->manifest_digest.str().substr(7, 12));
  }
  st.image.created = Rfc3339(o_.source_date_epoch);
  // As BuildKit does: a base without PATH (scratch among them) gets the
  // default one in its config, so `ENV PATH=/x:$PATH` and RUN see it.
  if (!st.image.config.GetEnv("PATH"))
    st.image.config.env.push_back(kDefaultPath);
  return Status::Ok();
}

// ONBUILD: the base's triggers run right after FROM, in this build's
// context, in the order recorded; the new image records none of them.
Status BuildRun::RunOnBuildTriggers(Stage& st, const Instruction& from) {
  std::vector<std::string> triggers = std::move(st.image.config.onbuild);
  st.image.config.onbuild.clear();
  for (const auto& t : triggers) {
    auto one = ParseDockerfile("FROM scratch\n" + t + "\n", df_.filename);
    if (!one.ok() || one->instructions.size() != 2)
      return StepError(from, "the base image's ONBUILD trigger \"" + t +
                                 "\" is not a valid instruction");
    Instruction trigger = one->instructions[1];
    trigger.line = from.line;
    Say(st, " ---> running ONBUILD trigger: " + trigger.text);
    Status s = Step(st, trigger);
    if (!s.ok())
      return StepError(from, "ONBUILD trigger \"" + t + "\": " + s.message());
  }
  return Status::Ok();
}

std::string BuildRun::Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Which stages the result needs, as BuildKit decides: the target (or the
// last stage) and, transitively, the stages it builds FROM or copies
// --from. `first` is the index of the first FROM. Names are expanded
// with the global ARGs only, as in FROM lines.
Result<std::vector<bool>> BuildRun::NeededStages(
    size_t first, std::vector<std::vector<size_t>>* deps_out) {
  std::vector<std::string> names;
  std::vector<std::vector<size_t>> deps;
  // An earlier stage by name or number, as FindStage resolves it.
  auto resolve = [&](const std::string& ref,
                     bool by_index) -> std::optional<size_t> {
    size_t earlier = deps.size() - 1;
    std::string lower = Lower(ref);
    for (size_t k = 0; k < earlier; ++k)
      if (!names[k].empty() && names[k] == lower) return k;
    if (by_index && !ref.empty() && ref.size() < 6 &&
        std::all_of(ref.begin(), ref.end(), ::isdigit)) {
      size_t idx = std::stoul(ref);
      if (idx < earlier) return idx;
    }
    return std::nullopt;
  };
  for (size_t n = first; n < df_.instructions.size(); ++n) {
    const Instruction& ins = df_.instructions[n];
    if (ins.kind == Keyword::kFrom) {
      names.emplace_back();
      deps.emplace_back();
      if (ins.args.size() == 3) {
        ASSIGN_OR_RETURN(std::string nm,
                         ExpandWord(ins.args[2], globals_, df_.escape));
        names.back() = Lower(nm);
      }
      if (!ins.args.empty()) {
        ASSIGN_OR_RETURN(std::string base,
                         ExpandWord(ins.args[0], globals_, df_.escape));
        if (auto k = resolve(base, false)) deps.back().push_back(*k);
      }
      continue;
    }
    if (deps.empty()) continue;
    if ((ins.kind == Keyword::kCopy || ins.kind == Keyword::kAdd) &&
        ins.HasFlag("from")) {
      auto from = ExpandWord(ins.Flag("from"), globals_, df_.escape);
      if (from.ok())
        if (auto k = resolve(*from, true)) deps.back().push_back(*k);
    }
    if (ins.kind == Keyword::kRun) {
      // RUN --mount=...,from=STAGE
      for (const auto& [flag, value] : ins.flags) {
        if (flag != "mount") continue;
        std::stringstream ss(value);
        for (std::string kv; std::getline(ss, kv, ',');) {
          if (kv.rfind("from=", 0) != 0) continue;
          auto from = ExpandWord(kv.substr(5), globals_, df_.escape);
          if (from.ok())
            if (auto k = resolve(*from, true)) deps.back().push_back(*k);
        }
      }
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
  *deps_out = deps;
  return needed;
}

Stage* BuildRun::FindStage(const Stage& cur, const std::string& name,
                           bool by_index) {
  std::string lower = Lower(name);
  Stage* found = nullptr;
  for (size_t k = 0; k < cur.index && !found; ++k)
    if (!stages_[k].name.empty() && stages_[k].name == lower)
      found = &stages_[k];
  bool numeric = !name.empty() && name.size() < 6 &&
                 std::all_of(name.begin(), name.end(), ::isdigit);
  if (!found && numeric && by_index && std::stoul(name) < cur.index)
    found = &stages_[std::stoul(name)];
  // Only a stage that finished: it is one this stage waited for (a name
  // hidden from NeededStages, e.g. in a stage ARG, finds none).
  if (found && !built_[found->index]) return nullptr;
  return found;
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

std::string BuildRun::CacheTag(const std::string& key) {
  return key + (o_.compression == Compression::kGzip   ? "-gzip"
                : o_.compression == Compression::kZstd ? "-zstd"
                                                       : "-tar");
}

std::optional<std::pair<LayerDescriptor, Digest>> BuildRun::CacheGet(
    const Stage& st, const std::string& key) {
  if (o_.no_cache || st.no_cache) return std::nullopt;
  auto d = images_->store()->ResolveTag(kCacheRepo, CacheTag(key));
  if (!d.ok()) return std::nullopt;
  auto m = images_->store()->GetManifest(kCacheRepo, *d);
  if (!m.ok()) return std::nullopt;
  json j = json::parse(m->content, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  auto ld = Digest::Parse(j.value("digest", ""));
  auto diff = Digest::Parse(j.value("diff_id", ""));
  if (!ld.ok() || !diff.ok() || !images_->store()->StatBlob(*ld).ok())
    return std::nullopt;
  return std::make_pair(LayerDescriptor{j.value("mediaType", ""), *ld,
                                        j.value("size", uint64_t{0})},
                        *diff);
}

Status BuildRun::CachePut(const std::string& key, const LayerInfo& l) {
  return PutCacheRecord(images_, CacheTag(key), l);
}

// Waits for the stage's background layers and fills in their descriptors.
Status BuildRun::Settle(Stage& st) {
  st.pending.resize(st.layers.size());
  for (size_t i = 0; i < st.layers.size(); ++i) {
    if (!st.pending[i]) continue;
    const Result<LayerInfo>& r = st.pending[i]->Get();
    if (!r.ok())
      return r.status().WithContext("layer " + std::to_string(i + 1));
    st.layers[i] = LayerDescriptor{r->media_type, r->digest, r->size};
    st.pending[i].reset();
  }
  return Status::Ok();
}

void BuildRun::AddLayer(Stage& st, const LayerDescriptor& l, const Digest& diff,
                        const std::string& created_by, bool cached,
                        bool compressing) {
  st.pending.resize(st.layers.size());
  st.pending.push_back(nullptr);
  st.layer_keys.resize(st.layers.size());
  st.layer_keys.push_back(st.key);
  st.layers.push_back(l);
  st.image.diff_ids.push_back(diff);
  History(st, created_by, false);
  if (cached) {
    ++cache_hits_;
    Say(st, " ---> Using cache");
  }
  if (compressing)  // the compressed digest is not known yet: the diff ID
    Say(st, " ---> " + diff.str().substr(7, 12) + " (" + HumanSize(l.size) +
                " uncompressed)");
  else
    Say(st, " ---> " + l.digest.str().substr(7, 12) + " (" + HumanSize(l.size) +
                ")");
}

Result<LayerInfo> BuildRun::LayerFromTree(const std::string& dir,
                                          bool overlay_upper) {
  ASSIGN_OR_RETURN(auto w,
                   LayerWriter::Create(*images_->store(), o_.compression));
  TreeOptions t;
  t.clamp_mtime = o_.source_date_epoch;
  t.overlay_upper = overlay_upper;
  RETURN_IF_ERROR(WriteTree(dir, w->tar(), t));
  return w->Commit();
}

void BuildRun::KeepAsLayerDir(const std::string& staged,
                              const Digest& diff_id) {
  std::string ldir = paths_.LayerDir(diff_id);
  std::error_code ec;
  fs::create_directories(paths_.Layers(), ec);
  if (!fs::exists(ldir, ec)) fs::rename(staged, ldir, ec);
  fs::remove_all(staged, ec);
}

Status BuildRun::StageParents(const std::string& stage,
                              const std::vector<std::string>& lowers,
                              const std::string& rel_dir, uint32_t uid,
                              uint32_t gid) {
  std::string rel;
  std::stringstream parts(rel_dir);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty()) continue;
    rel += (rel.empty() ? "" : "/") + part;
    std::string to = stage + "/" + rel;
    struct stat have;
    if (::lstat(to.c_str(), &have) == 0) continue;  // staged already
    // The topmost layer that has the path (or a whiteout of it) decides.
    size_t slash = rel.rfind('/');
    std::string parent =
        slash == std::string::npos ? "" : rel.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
    struct stat st;
    bool found = false;
    for (const auto& dir : lowers) {
      if (::lstat((dir + "/" + parent + ".wh." + base).c_str(), &st) == 0)
        break;
      if (::lstat((dir + "/" + rel).c_str(), &st) == 0) {
        found = S_ISDIR(st.st_mode);
        break;
      }
    }
    if (::mkdir(to.c_str(), 0755) != 0)
      return Internal("mkdir " + rel + ": " + std::strerror(errno));
    if (found) {
      (void)!::lchown(to.c_str(), st.st_uid, st.st_gid);
      ::chmod(to.c_str(), st.st_mode & 07777);
    } else {
      (void)!::lchown(to.c_str(), uid, gid);
      ::chmod(to.c_str(), 0755);
    }
  }
  return Status::Ok();
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
