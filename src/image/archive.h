// Image archives: `ocibuild save` writes one tar that is both a Docker
// archive (manifest.json, repositories: what `docker load` reads) and an OCI
// image layout (oci-layout, index.json, blobs/sha256/...); `ocibuild load`
// reads either kind (including older Docker archives with <id>/layer.tar).
//
// Blobs stream between the tar and the store; every blob read is verified
// against its digest before the image that uses it is tagged.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "image/image_store.h"

namespace ocib::image {

// Writes the images to `path` (atomically: a temp file renamed at the end).
Status SaveImages(ImageStore& images, const std::vector<ImageRef>& refs,
                  const std::string& path);

// Loads every named image of the archive at `path` ("-" for stdin); prints
// "Loaded image: NAME:TAG" lines.
Status LoadImages(ImageStore& images, const std::string& path,
                  std::ostream& out);

}  // namespace ocib::image
