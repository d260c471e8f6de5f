// Local images on the shared Store: an image name is a repository of the
// store, a tag is a store tag, and an image is a manifest whose config and
// layers are blobs linked into that repository. The builder's cache lives
// in a repository whose name no image can have (kCacheRepo).
//
// Thread-compatible; the Store underneath is thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "image/image.h"
#include "oci/image_ref.h"
#include "store/blob_store.h"

namespace ocib::image {

inline constexpr const char* kCacheRepo = "_ocibuild/cache";
// The platform images are built for, run on and picked from indexes by
// default.
inline constexpr const char* kHostPlatform = "linux/amd64";

// References are the shared grammar of oci/image_ref.h.
using oci::ImageRef;
using oci::ParseImageRef;

// A local image. When the reference names a multi-platform index, the
// image is the index's entry for the host platform (linux/amd64) and
// `index` holds the index itself.
struct StoredImage {
  ImageRef ref;
  Digest manifest_digest = Digest::Of("");
  std::string manifest;
  std::string media_type;
  Digest config_digest = Digest::Of("");
  std::string config_json;
  Image image;
  std::vector<LayerDescriptor> layers;
  std::optional<ManifestRecord> index;
  uint64_t size() const;  // compressed layers
};

class ImageStore {
 public:
  explicit ImageStore(Store* store) : store_(store) {}

  // Stores config and manifest, links config and layers into the
  // repository, tags the image. Returns the manifest digest.
  Result<Digest> Commit(const ImageRef& ref, const Image& image,
                        const std::vector<LayerDescriptor>& layers,
                        ManifestFormat format);
  // kNotFound naming the reference if there is no such local image.
  Result<StoredImage> Get(const ImageRef& ref);
  // The manifest the reference points at, image or index.
  Result<ManifestRecord> Resolve(const ImageRef& ref);
  // Every tagged image, by name then tag.
  Result<std::vector<StoredImage>> List();
  // Tags an image or a whole index (its platform manifests come along).
  Status Tag(const ImageRef& src, const ImageRef& dst);
  // Removes the tag; the manifest goes when no tag of the name points at it
  // (with an index, its platform manifests too).
  Status Remove(const ImageRef& ref);

  // Small blobs (configs, manifests, cache records).
  Result<Digest> PutBytes(const std::string& data,
                          const std::string& link_repo);
  Result<std::string> ReadBytes(const Digest& d);

  Store* store() { return store_; }

 private:
  Store* store_;
};

}  // namespace ocib::image
