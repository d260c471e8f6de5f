// Internal to the builder library (not for the CLI): one build in progress.
// builder.cc holds Go, the instruction table and the sources COPY --from
// and RUN --mount read; stages.cc the stage loop, FROM and ONBUILD;
// step_cache.cc the step cache and layer bookkeeping; instructions.cc the
// instructions that only change the config (ENV, LABEL, USER, ...) and
// WORKDIR; copy_step.cc COPY and ADD; run_step.cc RUN with its mounts;
// registry_cache.cc --cache-from/--cache-to. Each instruction has one
// handler, picked from a table by Keyword.
//
// Threads: each stage runs on its own thread (stages.cc); a Stage is
// written only by its thread and read by later stages after it finished;
// shared state is guarded (GUARDED_BY) or atomic. RUN layers are
// compressed on background threads that touch only the store.
#pragma once

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "build/builder.h"
#include "build/dockerfile_parser.h"
#include "build/dockerignore.h"
#include "build/runtime.h"
#include "build/state_paths.h"
#include "util/mutex.h"

namespace ocib::build {

inline constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

// Content hash of a source tree for cache keys: paths, modes, owners,
// sizes, contents and link targets; not mtimes. Paths .dockerignore
// excludes (rel is relative to the context) are left out.
Status HashTree(const std::string& path, const std::string& rel,
                const DockerIgnore* ignore, Hasher* h);

// Records a step's layer under its cache tag (thread-safe: the store is).
Status PutCacheRecord(ImageStore* images, const std::string& tag,
                      const LayerInfo& l);

struct Stage {
  std::string name;
  Image image;
  std::vector<LayerDescriptor> layers;
  // Parallel to layers: set while that layer is still being compressed.
  std::vector<std::shared_ptr<PendingLayer>> pending;
  std::string key;  // cache chain
  Env args;         // ARG values in scope (a parent stage's carry over)
  std::vector<std::string>
      declared_args;  // ARG names this stage declared, in order
  // Parallel to layers: the cache key of the step that made each layer
  // ("" for a base image's layers).
  std::vector<std::string> layer_keys;
  std::vector<std::string> shell = {"/bin/sh", "-c"};
  bool cmd_set = false;   // CMD given in this stage
  size_t index = 0;       // position in the Dockerfile
  std::string prefix;     // "[name] " on output lines when stages run at once
  bool no_cache = false;  // named in --no-cache-filter
};

class BuildRun {
 public:
  BuildRun(Builder* b, ImageStore* images, const BuildOptions& o,
           std::ostream& out)
      : builder_(b),
        images_(images),
        o_(o),
        out_(out),
        paths_{b->state_dir()} {}

  Result<BuildResult> Go();

 private:
  using Handler = Status (BuildRun::*)(Stage&, const Instruction&);
  static const Handler kHandlers[kKeywordCount];

  Status StepError(const Instruction& ins, const std::string& why);
  Result<BuildResult> Stages();
  // Runs the instructions [start, end) of one stage.
  Status BuildStage(Stage& st, size_t start, size_t end);
  std::string StepLine(size_t n, const std::string& suffix);
  void Print(const std::string& s);  // one line, whole (thread-safe)
  void Say(const Stage& st, const std::string& s);  // with the stage's prefix
  Env ExpansionEnv(const Stage& st);
  void History(Stage& st, const std::string& created_by, bool empty);
  std::string ChainKey(const std::string& parent, const std::string& what);
  Status RunOnBuildTriggers(Stage& st, const Instruction& from);
  static std::string Lower(std::string s);
  // deps_out[k]: the stages stage k builds FROM, copies from or mounts.
  Result<std::vector<bool>> NeededStages(
      size_t first, std::vector<std::vector<size_t>>* deps_out);
  // A stage before `cur` by name, or (by_index: COPY --from, RUN --mount
  // from=) by number; FROM takes names only, as BuildKit. Only finished
  // stages are found.
  Stage* FindStage(const Stage& cur, const std::string& name,
                   bool by_index = true);
  Status Step(Stage& st, const Instruction& ins);

  // One handler per instruction.
  Status From(Stage& st, const Instruction& ins);
  Status Arg(Stage& st, const Instruction& ins);
  Status EnvStep(Stage& st, const Instruction& ins);
  Status Label(Stage& st, const Instruction& ins);
  Status Maintainer(Stage& st, const Instruction& ins);
  Status Workdir(Stage& st, const Instruction& ins);
  Status User(Stage& st, const Instruction& ins);
  Status Expose(Stage& st, const Instruction& ins);
  Status Volume(Stage& st, const Instruction& ins);
  Status StopSignal(Stage& st, const Instruction& ins);
  Status Shell(Stage& st, const Instruction& ins);
  Status CmdOrEntrypoint(Stage& st, const Instruction& ins);
  Status Healthcheck(Stage& st, const Instruction& ins);
  Status Onbuild(Stage& st, const Instruction& ins);
  Status CopyStep(Stage& st, const Instruction& ins);
  Status RunStep(Stage& st, const Instruction& ins);

  static Result<int64_t> ParseDuration(const std::string& v);

  // Cache.
  std::string CacheTag(const std::string& key);
  std::optional<std::pair<LayerDescriptor, Digest>> CacheGet(
      const Stage& st, const std::string& key);
  Status CachePut(const std::string& key, const LayerInfo& l);
  Status Settle(Stage& st);
  void AddLayer(Stage& st, const LayerDescriptor& l, const Digest& diff,
                const std::string& created_by, bool cached,
                bool compressing = false);
  Result<LayerInfo> LayerFromTree(const std::string& dir, bool overlay_upper);
  // Keeps a staged tree as the extracted copy of layer `l` (later RUN
  // steps mount it).
  void KeepAsLayerDir(const std::string& staged, const Digest& diff_id);
  // Makes `rel_dir` (clean, relative) in the staging tree `stage`: parents
  // the image has keep its mode and owner, missing ones are made 0755 and
  // owned by `owner`, as BuildKit's mkdir -p.
  Status StageParents(const std::string& stage,
                      const std::vector<std::string>& lowers,
                      const std::string& rel_dir, uint32_t uid, uint32_t gid);

  // --build-context: the directory NAME stands for ("" when NAME is not a
  // directory context), and the image reference NAME stands for (NAME
  // itself unless docker-image://REF).
  std::string ContextDir(const std::string& name) const;
  std::string ContextImage(const std::string& name) const;

  // The filesystem COPY --from= and RUN --mount from= read: a stage, a
  // --build-context directory, or an image (mounted read-only).
  struct FromTree {
    std::string root;
    std::string ident;  // for cache keys: the stage's chain, the image's digest
    bool directory = false;  // a --build-context directory (owners become root)
    std::unique_ptr<OverlayMount> mount;
  };
  Result<FromTree> OpenFrom(const Stage& cur, const std::string& from,
                            const std::string& what);

  // COPY / ADD helpers.
  Status ResolveOwner(const std::string& spec,
                      const std::vector<std::string>& lowers, ProcessSpec* who);
  Status Glob(const std::string& root, const std::string& pattern,
              const DockerIgnore* ignore, std::vector<std::string>* out);
  // ADD URL: downloads to `to`; `checksum` (ADD --checksum) when not empty.
  Status Fetch(const std::string& url, const std::string& to,
               const std::string& checksum);
  std::string EmptyDir();

  // The registry cache (registry_cache.cc).
  Status ImportCache(const CacheSpec& spec);
  Status ExportCache(const CacheSpec& spec, const Stage& last);

  // RUN helpers.
  struct RunMounts;
  Status PrepareMounts(Stage& st, const Instruction& ins,
                       const std::string& rootfs, RunMounts* m);
  static std::string Join(const std::vector<std::string>& v);

  Builder* builder_;
  ImageStore* images_;
  const BuildOptions& o_;
  std::ostream& out_;
  StatePaths paths_;
  Dockerfile df_;
  std::string context_, scratch_, os_, arch_, variant_;
  DockerIgnore ignore_;
  Env globals_;  // read-only once stages start
  Mutex args_mu_;
  std::set<std::string> used_args_ GUARDED_BY(args_mu_);
  // Sized once before stages start; stage k is written by its own thread
  // only, and read by others after built_[k] (they wait for it).
  std::deque<Stage> stages_;
  std::unique_ptr<std::atomic<bool>[]> built_;
  Mutex print_mu_;  // one line at a time on out_
  std::atomic<size_t> steps_{0}, cache_hits_{0};
  BuildResult result_;
};

}  // namespace ocib::build
