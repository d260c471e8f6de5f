// Disk space of the local store, as docker's commands shape it:
//   rmi REF...                          untag; delete what only it used
//   image prune [-a]                    untagged images (-a: every image)
//   builder prune [--keep-storage SIZE] [--filter until=DURATION]
//                                       build cache records, extracted
//                                       layers no image uses, cache mounts
//   system df                           images and build cache: size and
//                                       what a prune would reclaim
// Every removal ends with the shared garbage collector (gc/) over the
// store, then drops extracted layers (state/layers) that no image or cache
// record names. A build holds the store for its whole run, so none of
// these runs beside one: they wait for the store instead.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "gc/garbage_collector.h"
#include "image/progress.h"
#include "ocibuild/cli_context.h"

namespace ocib::cli {
namespace {

namespace fs = std::filesystem;
using image::kCacheRepo;

using image::HumanSize;

// "10GB", "500MB", "1.5GiB", "1024" -> bytes; false if not a size.
bool ParseSize(const std::string& s, uint64_t* out) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return false;
  std::string unit(end);
  for (auto& c : unit) c = static_cast<char>(std::tolower(c));
  double mult = unit.empty() || unit == "b"   ? 1
                : unit == "k" || unit == "kb" ? 1e3
                : unit == "m" || unit == "mb" ? 1e6
                : unit == "g" || unit == "gb" ? 1e9
                : unit == "kib"               ? 1024.0
                : unit == "mib"               ? 1048576.0
                : unit == "gib"               ? 1073741824.0
                                              : 0;
  if (mult == 0) return false;
  *out = static_cast<uint64_t>(v * mult);
  return true;
}

uint64_t DirBytes(const fs::path& p) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           p, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      n += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return n;
}

// Opens the store for writing, waiting up to a minute for a build or
// another command that holds it.
Status OpenForWrite(Ctx& ctx) {
  for (int i = 0;; ++i) {
    Status s = ctx.Open(false);
    if (s.ok() || i >= 120) return s;
    if (i == 0)
      std::fprintf(stderr,
                   "ocibuild: waiting for the store (a build is "
                   "running)...\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// Diff IDs that tagged images and cache records use (their extracted
// layers stay), and the cache records' layer sizes.
struct InUse {
  std::set<std::string> diff_prefixes;  // 24 hex, as state/layers names
  uint64_t cache_records = 0;
};

Result<InUse> FindInUse(Ctx& ctx) {
  InUse u;
  ASSIGN_OR_RETURN(auto images, ctx.images->List());
  for (const auto& img : images)
    for (const auto& d : img.image.diff_ids)
      u.diff_prefixes.insert(d.hex().substr(0, 24));
  ASSIGN_OR_RETURN(RepositoryContents c, ctx.store->ReadRepository(kCacheRepo));
  for (const auto& m : c.manifests) {
    auto j = nlohmann::json::parse(m.content, nullptr, false);
    if (!j.is_object() || !j.contains("diff_id")) continue;
    auto d = Digest::Parse(j["diff_id"].get<std::string>());
    if (d.ok()) u.diff_prefixes.insert(d->hex().substr(0, 24));
  }
  u.cache_records = c.tags.size();
  return u;
}

// Collects the store and drops unused extracted layers. Returns bytes
// freed.
Result<uint64_t> Sweep(Ctx& ctx) {
  gc::GcOptions o;
  o.min_age_seconds = 0;  // nothing else can use the store meanwhile
  o.delete_untagged = true;
  ASSIGN_OR_RETURN(gc::GcStats st, gc::CollectGarbage(ctx.store.get(), o));
  uint64_t freed = st.bytes_reclaimed;
  ASSIGN_OR_RETURN(InUse u, FindInUse(ctx));
  fs::path layers = ctx.root + "/state/layers";
  std::error_code ec;
  if (fs::exists(layers, ec))
    for (const auto& e : fs::directory_iterator(layers, ec)) {
      if (u.diff_prefixes.count(e.path().filename().string())) continue;
      freed += DirBytes(e.path());
      fs::remove_all(e.path(), ec);
    }
  return freed;
}

int Rmi(Ctx& ctx, const std::vector<std::string>& refs) {
  if (refs.empty()) return Usage("rmi needs an image");
  if (Status s = OpenForWrite(ctx); !s.ok()) return Fail(s.message());
  int rc = 0;
  for (const auto& r : refs) {
    auto ref = image::ParseImageRef(r);
    auto m = ref.ok() ? ctx.images->Resolve(*ref) : ref.status();
    Status s = m.ok() ? ctx.images->Remove(*ref) : m.status();
    if (!s.ok()) {
      rc = Fail(s.message());
      continue;
    }
    std::printf("Untagged: %s\n", ref->str().c_str());
    if (!ctx.store->GetManifest(ref->name, m->digest).ok())
      std::printf("Deleted: %s\n", m->digest.str().c_str());
  }
  auto freed = Sweep(ctx);
  if (!freed.ok()) return Fail(freed.status().message());
  return rc;
}

int ImagePrune(Ctx& ctx, const std::vector<std::string>& args) {
  bool all = false;
  for (const auto& a : args) {
    if (a == "-a" || a == "--all")
      all = true;
    else if (a != "-f" && a != "--force")
      return Usage("unknown image prune flag " + a);
  }
  if (Status s = OpenForWrite(ctx); !s.ok()) return Fail(s.message());
  std::printf("Deleted Images:\n");
  if (all) {
    auto images = ctx.images->List();
    if (!images.ok()) return Fail(images.status().message());
    for (const auto& img : *images) {
      if (ctx.images->Remove(img.ref).ok())
        std::printf("untagged: %s\n", img.ref.str().c_str());
    }
  }
  auto freed = Sweep(ctx);
  if (!freed.ok()) return Fail(freed.status().message());
  std::printf("\nTotal reclaimed space: %s\n", HumanSize(*freed).c_str());
  return 0;
}

int BuilderPrune(Ctx& ctx, const std::vector<std::string>& args) {
  int64_t until = -1;
  uint64_t keep = 0;
  bool keep_set = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--keep-storage") && i + 1 < args.size()) {
      if (!ParseSize(args[++i], &keep))
        return Usage("--keep-storage takes a size such as 10GB");
      keep_set = true;
    } else if (a == "--filter" && i + 1 < args.size()) {
      std::string f = args[++i];
      if (f.rfind("until=", 0) != 0)
        return Usage("builder prune --filter takes until=DURATION");
      auto d = gc::ParseDurationSeconds(f.substr(6));
      if (!d.ok()) return Usage("--filter " + f + ": " + d.status().message());
      until = *d;
    } else if (a != "-f" && a != "--force" && a != "-a" && a != "--all") {
      return Usage("unknown builder prune flag " + a);
    }
  }
  if (Status s = OpenForWrite(ctx); !s.ok()) return Fail(s.message());
  auto c = ctx.store->ReadRepository(kCacheRepo);
  if (!c.ok()) return Fail(c.status().message());
  // Records, newest first, with the size of their layer.
  std::vector<TagEntry> records = c->tags;
  std::sort(records.begin(), records.end(),
            [](const TagEntry& a, const TagEntry& b) {
              return a.pushed_micros > b.pushed_micros;
            });
  std::map<Digest, uint64_t> layer_size;
  for (const auto& m : c->manifests) {
    auto j = nlohmann::json::parse(m.content, nullptr, false);
    if (j.is_object() && j.contains("size") && j["size"].is_number())
      layer_size[m.digest] = j["size"].get<uint64_t>();
  }
  int64_t cutoff = until < 0 ? 0 : NowMicros() - until * 1000000;
  uint64_t kept_bytes = 0;
  size_t removed = 0;
  for (const auto& r : records) {
    bool old = until < 0 ? !keep_set : r.pushed_micros < cutoff;
    uint64_t size = layer_size.count(r.digest) ? layer_size[r.digest] : 0;
    bool over = keep_set && kept_bytes + size > keep;
    if (!old && !over) {
      kept_bytes += size;
      continue;
    }
    if (ctx.store
            ->DeleteTagIfUnchanged(kCacheRepo, r.name, r.digest,
                                   r.pushed_micros)
            .ok())
      ++removed;
  }
  uint64_t freed = 0;
  if (until < 0 && !keep_set) {  // everything: cache mounts too
    fs::path mounts = ctx.root + "/state/cache-mounts";
    std::error_code ec;
    freed += DirBytes(mounts);
    fs::remove_all(mounts, ec);
  }
  auto swept = Sweep(ctx);
  if (!swept.ok()) return Fail(swept.status().message());
  freed += *swept;
  std::printf("Deleted build cache records: %zu\n", removed);
  std::printf("Total: %s\n", HumanSize(freed).c_str());
  return 0;
}

int SystemDf(Ctx& ctx) {
  if (Status s = ctx.Open(true); !s.ok()) return Fail(s.message());
  auto images = ctx.images->List();
  if (!images.ok()) return Fail(images.status().message());
  auto u = FindInUse(ctx);
  if (!u.ok()) return Fail(u.status().message());
  // Compressed blobs by who links them: images (any repository but the
  // cache's) and the cache.
  std::map<Digest, uint64_t> image_blobs, cache_blobs;
  auto repos = ctx.store->ListRepositories(0, "");
  if (!repos.ok()) return Fail(repos.status().message());
  for (const auto& repo : repos->items) {
    auto c = ctx.store->ReadRepository(repo);
    if (!c.ok()) return Fail(c.status().message());
    auto& into = repo == kCacheRepo ? cache_blobs : image_blobs;
    for (const auto& [d, t] : c->links) {
      auto info = ctx.store->StatBlob(d);
      if (info.ok()) into[d] = info->size;
    }
  }
  uint64_t image_bytes = 0, image_only = 0, cache_bytes = 0;
  for (const auto& [d, n] : image_blobs) {
    image_bytes += n;
    if (!cache_blobs.count(d)) image_only += n;
  }
  for (const auto& [d, n] : cache_blobs) cache_bytes += n;
  uint64_t layers = DirBytes(ctx.root + "/state/layers");
  uint64_t mounts = DirBytes(ctx.root + "/state/cache-mounts");
  uint64_t cache_total = cache_bytes + layers + mounts;
  auto pct = [](uint64_t a, uint64_t b) {
    return b == 0 ? 0 : static_cast<int>(100.0 * a / b);
  };
  std::printf("%-16s%-8s%-8s%-12s%s\n", "TYPE", "TOTAL", "ACTIVE", "SIZE",
              "RECLAIMABLE");
  std::printf("%-16s%-8zu%-8d%-12s%s (%d%%)\n", "Images", images->size(), 0,
              HumanSize(image_bytes).c_str(), HumanSize(image_only).c_str(),
              pct(image_only, image_bytes));
  std::printf("%-16s%-8d%-8d%-12s%s\n", "Containers", 0, 0, "0B", "0B");
  std::printf("%-16s%-8d%-8d%-12s%s\n", "Local Volumes", 0, 0, "0B", "0B");
  std::printf("%-16s%-8llu%-8d%-12s%s\n", "Build Cache",
              (unsigned long long)u->cache_records, 0,
              HumanSize(cache_total).c_str(), HumanSize(cache_total).c_str());
  return 0;
}

}  // namespace

int DiskCommand(Ctx& ctx, const std::string& cmd,
                const std::vector<std::string>& rest) {
  if (cmd == "rmi") return Rmi(ctx, rest);
  std::vector<std::string> args(rest.begin() + (rest.empty() ? 0 : 1),
                                rest.end());
  std::string sub = rest.empty() ? "" : rest[0];
  if (cmd == "image" && sub == "prune") return ImagePrune(ctx, args);
  if (cmd == "builder" && sub == "prune") return BuilderPrune(ctx, args);
  if (cmd == "system" && sub == "df") return SystemDf(ctx);
  return Usage("unknown command \"" + cmd + " " + sub + "\"");
}

}  // namespace ocib::cli
