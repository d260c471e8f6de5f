// The builder's working state under one directory (`<root>/build`): every
// path the builder keeps there is named here and nowhere else.
//
//   layers/<diff id, 24 hex>   extracted layers in overlay form (whiteouts
//                              as 0/0 character devices), shared by builds
//   tmp/                       scratch space of running builds and runs
//   empty/                     an empty directory (a lower for scratch)
//   cache-mounts/<hash of id>  RUN --mount=type=cache contents, kept
//                              between builds
//   pushed/<registry host>     blob -> repository it was pushed to (mounts)
//   bundles/, runtime/         the OCI runtime's bundles and state
#pragma once

#include <string>

#include "store/digest.h"

namespace ocib::build {

struct StatePaths {
  std::string root;

  std::string Layers() const { return root + "/layers"; }
  std::string LayerDir(const Digest& diff_id) const {
    return Layers() + "/" + diff_id.hex().substr(0, 24);
  }
  std::string Tmp() const { return root + "/tmp"; }
  std::string Empty() const { return root + "/empty"; }
  std::string CacheMounts() const { return root + "/cache-mounts"; }
  // Where `push` remembers which repository of a registry holds a blob.
  std::string Pushed() const { return root + "/pushed"; }
  // OCI bundles of running steps, and runc's --root.
  std::string Bundles() const { return root + "/bundles"; }
  std::string RuntimeRoot() const { return root + "/runtime"; }
};

}  // namespace ocib::build
