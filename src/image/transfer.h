// Moving images between the local store and registries: push sends what
// the registry lacks (mounting blobs this client pushed to another
// repository of the same registry), pull fetches what the store lacks,
// choosing a platform from an index, or keeping the whole index. Both
// stream and verify every blob.
//
// A reference names its registry ("127.0.0.1:5000/team/app:1"); without
// one, $OCIBUILD_REGISTRY or the config's "default-registry" is used;
// there is no implicit Docker Hub.
// Progress goes to `out`, like docker's (see progress.h). Errors are one
// line.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "client/credentials.h"
#include "client/registry_client.h"
#include "image/image_store.h"

namespace ocib::image {

struct TransferOptions {
  client::Connection conn;  // --insecure, --ca-cert, insecure-registries
  // Credentials per registry host (the CLI: docker's config.json); null:
  // anonymous.
  std::shared_ptr<const client::CredentialSource> credentials;
  // The registry for names without a host ("default-registry" in the
  // user's config, or $OCIBUILD_REGISTRY); "" for none.
  std::string default_registry;
  std::string platform = kHostPlatform;  // pull: which entry of an index
  bool all_platforms = false;            // pull: keep the index, every platform
  bool tty = false;                      // progress bars instead of lines
  size_t parallel = 3;                   // blobs in flight
};

// Pushes an image, or a whole index (every platform manifest, then the
// index). pushed_dir keeps, per registry, which repository each pushed
// blob went to.
Status PushImage(ImageStore& images, const ImageRef& ref,
                 const std::string& pushed_dir, const TransferOptions& opts,
                 std::ostream& out);

// Fetches the image into the local store under ref's name and tag.
Status PullImage(ImageStore& images, const ImageRef& ref,
                 const TransferOptions& opts, std::ostream& out);

}  // namespace ocib::image
