// The stage loop of a build: which stages the result needs, running each
// on its own thread once the stages it uses are built, FROM (scratch, a
// stage, an image, pulled when missing; --platform) and ONBUILD triggers.
#include <algorithm>
#include <future>
#include <sstream>

#include "build/build_run.h"

namespace ocib::build {

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

}  // namespace ocib::build
