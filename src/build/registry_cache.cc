// The build cache in a registry (--cache-to / --cache-from
// type=registry,ref=HOST/REPO:TAG). The cache is an ordinary OCI image, so
// any registry stores it: its layers are the cached steps' layers, and the
// config label org.ocibuild.cache.v1 lists each layer's cache tag (the
// step's key, which hashes the parent chain, the instruction and its
// inputs, and so is the same on every machine). Export pushes it with the
// image push path (blobs the registry has are skipped or mounted); import
// pulls it with the pull path (blobs the local store has are not
// fetched) and records each layer under its cache tag, so the steps hit.
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "build/build_run.h"
#include "build/csv_options.h"
#include "image/transfer.h"

namespace ocib::build {

using json = nlohmann::json;

namespace {

constexpr const char* kCacheLabel = "org.ocibuild.cache.v1";

}  // namespace

Result<CacheSpec> ParseCacheSpec(const std::string& text, bool export_side) {
  CacheSpec spec;
  std::string type;
  if (!text.empty() && text.find('=') == std::string::npos) {
    spec.ref = text;  // --cache-from REF, as docker build takes it
    ASSIGN_OR_RETURN(ImageRef r, ParseImageRef(spec.ref));
    (void)r;
    return spec;
  }
  for (const auto& [k, v] : ParseCsvOptions(text)) {
    if (k == "type")
      type = v;
    else if (k == "ref")
      spec.ref = v;
    else if (k == "mode" && export_side) {
      if (v != "min" && v != "max")
        return InvalidArgument("cache mode must be min or max, got \"" + v +
                               "\"");
      spec.max = v == "max";
    } else if (k == "insecure" || k == "oci-mediatypes" || k == "compression" ||
               k == "ignore-error") {
      continue;  // accepted as BuildKit takes them; ours are always OCI
    } else {
      return InvalidArgument(
          "cache option \"" + k +
          "\" is not supported (type=registry,ref=REF[,mode=min|max])");
    }
  }
  if (type.empty() && !spec.ref.empty()) type = "registry";
  if (type != "registry")
    return InvalidArgument("cache type must be registry, got \"" + type + "\"");
  if (spec.ref.empty()) return InvalidArgument("cache needs ref=HOST/REPO:TAG");
  ASSIGN_OR_RETURN(ImageRef r, ParseImageRef(spec.ref));
  (void)r;
  return spec;
}

Status BuildRun::ImportCache(const CacheSpec& spec) {
  ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(spec.ref));
  TransferOptions to = o_.transfer;
  to.platform = o_.platform;
  std::ostringstream quiet;
  Status pulled = PullImage(*images_, ref, to, quiet);
  if (!pulled.ok()) {
    // As BuildKit: a cache that cannot be imported only costs the hits.
    Print("[Warning] --cache-from " + spec.ref + ": " + pulled.message());
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(StoredImage im, images_->Get(ref));
  auto it = im.image.config.labels.find(kCacheLabel);
  if (it == im.image.config.labels.end()) {
    Print("[Warning] --cache-from " + spec.ref +
          " is not an ocibuild cache (no " + kCacheLabel + " label)");
    return images_->Remove(ref);
  }
  json tags = json::parse(it->second, nullptr, false);
  if (!tags.is_array() || tags.size() != im.layers.size() ||
      im.layers.size() != im.image.diff_ids.size())
    return InvalidArgument("--cache-from " + spec.ref + ": malformed " +
                           kCacheLabel + " label");
  size_t n = 0;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (!tags[i].is_string()) continue;
    LayerInfo l;
    l.digest = im.layers[i].digest;
    l.size = im.layers[i].size;
    l.media_type = im.layers[i].media_type;
    l.diff_id = im.image.diff_ids[i];
    RETURN_IF_ERROR(PutCacheRecord(images_, tags[i].get<std::string>(), l));
    ++n;
  }
  Print(" ---> imported " + std::to_string(n) + " cached steps from " +
        spec.ref);
  // The cache is not an image to keep under that name; its records are.
  return images_->Remove(ref);
}

Status BuildRun::ExportCache(const CacheSpec& spec, const Stage& last) {
  ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(spec.ref));
  Image cache;
  cache.architecture = arch_;
  cache.os = os_;
  cache.variant = variant_;
  cache.created = Rfc3339(o_.source_date_epoch);
  std::vector<LayerDescriptor> layers;
  json tags = json::array();
  std::set<std::string> seen;
  auto add = [&](const Stage& st) {
    for (size_t i = 0; i < st.layers.size() && i < st.layer_keys.size(); ++i) {
      if (st.layer_keys[i].empty() || !seen.insert(st.layer_keys[i]).second)
        continue;
      layers.push_back(st.layers[i]);
      cache.diff_ids.push_back(st.image.diff_ids[i]);
      cache.history.push_back({cache.created, "ocibuild cache", "", false});
      tags.push_back(CacheTag(st.layer_keys[i]));
    }
  };
  if (spec.max) {
    for (const auto& st : stages_)
      if (!st.layer_keys.empty()) add(st);
  } else {
    add(last);
  }
  cache.config.labels[kCacheLabel] = tags.dump();
  RETURN_IF_ERROR(
      images_->Commit(ref, cache, layers, ManifestFormat::kOci).status());
  TransferOptions to = o_.transfer;
  std::ostringstream quiet;
  Status pushed = PushImage(*images_, ref, paths_.Pushed(), to, quiet);
  Status removed = images_->Remove(ref);
  if (!pushed.ok()) return pushed.WithContext("--cache-to " + spec.ref);
  Print(" ---> exported " + std::to_string(layers.size()) +
        " cached steps to " + spec.ref);
  return removed;
}

}  // namespace ocib::build
