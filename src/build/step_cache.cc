// The step cache and layer bookkeeping of a build: cache tags and
// records in the local store, layers added to a stage (settled when their
// background compression ends), staged trees kept as extracted layers, and
// the directories COPY and WORKDIR make on the way.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "build/build_run.h"
#include "image/progress.h"

namespace ocib::build {

namespace fs = std::filesystem;
using json = nlohmann::json;

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
    Say(st, " ---> " + diff.str().substr(7, 12) + " (" +
                image::HumanSize(l.size) + " uncompressed)");
  else
    Say(st, " ---> " + l.digest.str().substr(7, 12) + " (" +
                image::HumanSize(l.size) + ")");
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

}  // namespace ocib::build
