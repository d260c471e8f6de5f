#include "image/image_store.h"

#include <nlohmann/json.hpp>

#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/reference.h"

namespace ocib::image {

uint64_t StoredImage::size() const {
  uint64_t n = 0;
  for (const auto& l : layers) n += l.size;
  return n;
}

Result<Digest> ImageStore::PutBytes(const std::string& data,
                                    const std::string& link_repo) {
  auto w = store_->NewWriter();
  if (!w.ok()) return w.status();
  RETURN_IF_ERROR((*w)->Write(data.data(), data.size()));
  Digest d = Digest::Of(data);
  auto info = (*w)->Commit(d, data.size(), link_repo);
  if (!info.ok()) return info.status();
  return d;
}

Result<std::string> ImageStore::ReadBytes(const Digest& d) {
  ASSIGN_OR_RETURN(auto h, store_->OpenBlob(d));
  std::string out(h->size(), '\0');
  uint64_t off = 0;
  while (off < out.size()) {
    ASSIGN_OR_RETURN(size_t n,
                     h->ReadAt(off, out.data() + off, out.size() - off));
    if (n == 0) return Internal("short read of " + d.str());
    off += n;
  }
  return out;
}

Result<Digest> ImageStore::Commit(const ImageRef& ref, const Image& image,
                                  const std::vector<LayerDescriptor>& layers,
                                  ManifestFormat format) {
  std::string config = SerializeConfig(image);
  ASSIGN_OR_RETURN(Digest cd, PutBytes(config, ref.name));
  std::vector<Digest> required = {cd};
  for (const auto& l : layers) {
    RETURN_IF_ERROR(store_->LinkBlob(ref.name, l.digest)
                        .WithContext("layer " + l.digest.str()));
    required.push_back(l.digest);
  }
  ASSIGN_OR_RETURN(std::string manifest,
                   SerializeManifest(format, cd, config.size(), layers));
  ManifestRecord rec;
  rec.content = manifest;
  rec.digest = Digest::Of(manifest);
  rec.media_type =
      std::string(format == ManifestFormat::kDocker ? oci::kDockerManifest
                                                    : oci::kOciManifest);
  RETURN_IF_ERROR(store_->PutManifest(ref.name, rec, ref.tag, required, {}));
  return rec.digest;
}

Result<ManifestRecord> ImageStore::Resolve(const ImageRef& ref) {
  Digest d = Digest::Of("");
  if (ref.digest) {
    d = *ref.digest;
  } else {
    auto t = store_->ResolveTag(ref.name, ref.tag);
    if (!t.ok()) return NotFound("no local image " + ref.str());
    d = *t;
  }
  auto m = store_->GetManifest(ref.name, d);
  if (!m.ok()) return NotFound("no local image " + ref.str());
  return *m;
}

Result<StoredImage> ImageStore::Get(const ImageRef& ref) {
  StoredImage s;
  s.ref = ref;
  ASSIGN_OR_RETURN(ManifestRecord m, Resolve(ref));
  auto parsed = oci::ParseManifest(m.content, m.media_type);
  if (!parsed.ok()) return parsed.status();
  if (parsed->is_index) {
    const oci::Descriptor* pick = oci::PickPlatform(*parsed, kHostPlatform);
    if (!pick)
      return FailedPrecondition(ref.str() + " is an index with no " +
                                kHostPlatform + " image");
    auto child = store_->GetManifest(ref.name, pick->digest);
    if (!child.ok())
      return NotFound(ref.str() + ": platform manifest " + pick->digest.str() +
                      " is not local");
    s.index = std::move(m);
    m = std::move(*child);
    parsed = oci::ParseManifest(m.content, m.media_type);
    if (!parsed.ok()) return parsed.status();
    if (parsed->is_index)
      return FailedPrecondition(ref.str() + ": nested index");
  }
  s.manifest_digest = m.digest;
  s.manifest = m.content;
  s.media_type = m.media_type;
  if (!parsed->config)
    return FailedPrecondition(ref.str() + " has no image config");
  s.config_digest = parsed->config->digest;
  for (const auto& l : parsed->layers)
    s.layers.push_back({l.media_type, l.digest, static_cast<uint64_t>(l.size)});
  ASSIGN_OR_RETURN(s.config_json, ReadBytes(s.config_digest));
  ASSIGN_OR_RETURN(s.image, ParseConfig(s.config_json));
  return s;
}

Result<std::vector<StoredImage>> ImageStore::List() {
  std::vector<StoredImage> out;
  ASSIGN_OR_RETURN(Page repos, store_->ListRepositories(0, ""));
  for (const auto& name : repos.items) {
    if (name.rfind("_ocibuild/", 0) == 0)
      continue;  // the cache, untagged builds
    ASSIGN_OR_RETURN(Page tags, store_->ListTags(name, 0, ""));
    for (const auto& tag : tags.items) {
      ImageRef r{name, tag, std::nullopt};
      auto s = Get(r);
      if (s.ok()) out.push_back(std::move(*s));
    }
  }
  return out;
}

namespace {

// Links an image manifest's blobs into repo and stores it there (tagged
// when tag is not empty).
Status CopyImageManifest(Store& store, const std::string& repo,
                         const ManifestRecord& m, const std::string& tag) {
  auto parsed = oci::ParseManifest(m.content, m.media_type);
  if (!parsed.ok()) return parsed.status();
  if (parsed->is_index)
    return FailedPrecondition("nested index " + m.digest.str());
  std::vector<Digest> required;
  if (parsed->config) required.push_back(parsed->config->digest);
  for (const auto& l : parsed->layers) required.push_back(l.digest);
  for (const auto& d : required) RETURN_IF_ERROR(store.LinkBlob(repo, d));
  return store.PutManifest(repo, m, tag, required, {});
}

}  // namespace

Status ImageStore::Tag(const ImageRef& src, const ImageRef& dst) {
  if (dst.digest) return InvalidArgument("cannot tag with a digest reference");
  ASSIGN_OR_RETURN(ManifestRecord m, Resolve(src));
  auto parsed = oci::ParseManifest(m.content, m.media_type);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_index)
    return CopyImageManifest(*store_, dst.name, m, dst.tag);
  std::vector<Digest> children;
  for (const auto& c : parsed->manifests) {
    ASSIGN_OR_RETURN(ManifestRecord cm,
                     store_->GetManifest(src.name, c.digest));
    RETURN_IF_ERROR(CopyImageManifest(*store_, dst.name, cm, ""));
    children.push_back(c.digest);
  }
  return store_->PutManifest(dst.name, m, dst.tag, {}, children);
}

Status ImageStore::Remove(const ImageRef& ref) {
  ASSIGN_OR_RETURN(ManifestRecord m, Resolve(ref));
  if (!ref.digest) RETURN_IF_ERROR(store_->DeleteTag(ref.name, ref.tag));
  ASSIGN_OR_RETURN(Page tags, store_->ListTags(ref.name, 0, ""));
  for (const auto& t : tags.items) {
    auto d = store_->ResolveTag(ref.name, t);
    if (d.ok() && *d == m.digest) {
      if (ref.digest)
        return FailedPrecondition(ref.str() + " is still tagged as " +
                                  ref.name + ":" + t);
      return Status::Ok();  // another tag keeps the manifest
    }
  }
  RETURN_IF_ERROR(store_->DeleteManifest(ref.name, m.digest));
  auto parsed = oci::ParseManifest(m.content, m.media_type);
  if (parsed.ok() && parsed->is_index) {
    // Platform manifests go with their index unless a tag names them.
    for (const auto& c : parsed->manifests) {
      bool tagged = false;
      for (const auto& t : tags.items) {
        auto d = store_->ResolveTag(ref.name, t);
        tagged = tagged || (d.ok() && *d == c.digest);
      }
      if (!tagged) store_->DeleteManifest(ref.name, c.digest).IgnoreError();
    }
  }
  return Status::Ok();
}

}  // namespace ocib::image
