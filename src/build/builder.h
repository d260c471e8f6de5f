// The image builder: runs a parsed Dockerfile against a build context and
// commits the result to the local image store.
//
// Every layer-producing step (RUN, COPY, ADD) has a cache key: the parent
// chain + the instruction after substitution + the build args in scope,
// and for COPY/ADD a content hash over the sources (paths, modes,
// ownership, sizes, contents, link targets; not mtimes). Keys and results
// live in the store (ImageStore's cache repository), so a rebuild with
// nothing changed runs no command. Builds are reproducible: every
// timestamp (file mtimes in layers, created fields) is clamped to
// source_date_epoch, which defaults to 0.
//
// RUN goes through an OCI runtime on an overlayfs mount of the image's
// layers (see runtime.h); the upper directory becomes the layer.
//
// Not thread-safe; one build at a time per Builder. Requires root for RUN,
// COPY --chown and COPY --from.
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "image/archive.h"
#include "image/image_store.h"
#include "image/layer.h"
#include "image/tar_reader.h"
#include "image/transfer.h"

namespace ocib::build {

// The image library's names the builder uses (src/image/).
using image::ByteSource;
using image::Compression;
using image::ContainerConfig;
using image::Decompressing;
using image::ExtractLayer;
using image::Healthcheck;
using image::HistoryEntry;
using image::Image;
using image::ImageStore;
using image::kCacheRepo;
using image::kHostPlatform;
using image::LayerDescriptor;
using image::LayerInfo;
using image::LayerMediaType;
using image::LayerWriter;
using image::ManifestFormat;
using image::PullImage;
using image::PushImage;
using image::Rfc3339;
using image::SaveImages;
using image::SerializeConfig;
using image::StoredImage;
using image::TarWriter;
using image::TransferOptions;
using image::TreeOptions;
using image::WriteTree;
using oci::ImageRef;
using oci::ParseImageRef;

// --cache-from / --cache-to type=registry,ref=HOST/REPO:TAG[,mode=min|max]:
// the build cache as an image in a registry. mode=min (the default, as
// BuildKit) exports the result's layers, max every built stage's.
struct CacheSpec {
  std::string ref;
  bool max = false;
};
// Parses a --cache-from (export_side false) or --cache-to value; a bare
// REF means type=registry,ref=REF. kInvalidArgument naming the problem.
Result<CacheSpec> ParseCacheSpec(const std::string& text, bool export_side);

struct BuildOptions {
  std::string context_dir;
  std::string dockerfile;  // path; default <context>/Dockerfile
  std::vector<ImageRef> tags;
  std::map<std::string, std::string> build_args;
  // --secret id=ID,src=FILE: the contents RUN --mount=type=secret mounts;
  // never written to a layer, the history or a cache key.
  std::map<std::string, std::string> secrets;
  std::string target;  // stage name; empty: the last stage
  bool no_cache = false;
  // --no-cache-filter: stages (by name) whose steps ignore the cache.
  std::set<std::string> no_cache_stages;
  // --label K=V: added to the result's config labels.
  std::map<std::string, std::string> labels;
  // --network: RUN steps without their own --network get this
  // ("default" and "host": the host's network; "none": none).
  std::string network = "default";
  // --build-context NAME=VALUE: FROM, COPY --from and RUN --mount from=
  // NAME use VALUE instead: a local directory, or docker-image://REF.
  // A stage of the same name takes precedence.
  std::map<std::string, std::string> contexts;
  // RUN output goes to this fd instead of this process's stdout/stderr
  // (-1: inherit). `build -q` passes /dev/null.
  int run_output_fd = -1;
  std::vector<CacheSpec> cache_from, cache_to;
  // How to reach registries (FROM pulls, --cache-from/--cache-to): the
  // CLI fills it from flags and the user's config; platform is set per use.
  TransferOptions transfer;
  Compression compression = Compression::kGzip;
  ManifestFormat format = ManifestFormat::kOci;
  std::string platform = kHostPlatform;
  int64_t source_date_epoch = 0;
  bool source_date_epoch_unset = false;  // the CLI may pick a git commit time
  std::string runtime = "runc";
};

struct BuildResult {
  Digest manifest_digest = Digest::Of("");
  Digest config_digest = Digest::Of("");
  size_t steps = 0;
  size_t cache_hits = 0;
};

class Builder {
 public:
  // state_dir holds extracted layers and scratch space for steps.
  Builder(ImageStore* images, std::string state_dir, std::ostream* out)
      : images_(images), state_(std::move(state_dir)), out_(out) {}

  // Errors name the Dockerfile, line and instruction; nothing is tagged
  // unless the whole build succeeds.
  Result<BuildResult> Build(const BuildOptions& options);

  // Returns the directories (top first) that hold the image's layers,
  // extracting any layer not yet extracted. For `ocibuild run`.
  Result<std::vector<std::string>> LayerDirs(
      const std::vector<LayerDescriptor>& layers,
      const std::vector<Digest>& diff_ids);

  const std::string& state_dir() const { return state_; }

 private:
  ImageStore* images_;
  std::string state_;
  std::ostream* out_;
};

// The commit time (seconds since the epoch) of HEAD when `dir` is inside a
// git work tree (asks the `git` program); nullopt otherwise. The default
// SOURCE_DATE_EPOCH for a build of that context, as BuildKit takes it from
// a git source.
std::optional<int64_t> GitCommitTime(const std::string& dir);

// Runs the image's entrypoint/cmd (or `command` when given) in a throwaway
// container and returns its exit status.
Result<int> RunImage(Builder& builder, const StoredImage& image,
                     const std::vector<std::string>& command,
                     const std::string& runtime);

}  // namespace ocib::build
