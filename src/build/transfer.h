// Moving images between the local store and registries: push sends what
// the registry lacks (mounting blobs this client pushed to another
// repository of the same registry), pull fetches what the store lacks,
// choosing a platform from an index. Both stream and verify every blob.
//
// A reference names its registry ("127.0.0.1:5000/team/app:1"); without
// one, $OCIBUILD_REGISTRY is used; there is no implicit Docker Hub.
// Progress lines go to `out`, like docker's. Errors are one line.
#pragma once

#include <ostream>
#include <string>

#include "build/image_store.h"

namespace ocib::build {

// pushed_dir keeps, per registry, which repository each pushed blob went to.
Status PushImage(ImageStore& images, const ImageRef& ref, const std::string& pushed_dir,
                 std::ostream& out);

// Fetches the image into the local store under ref's name and tag.
Status PullImage(ImageStore& images, const ImageRef& ref, const std::string& platform,
                 std::ostream& out);

}  // namespace ocib::build
