// A writable root filesystem over an image's layers for one RUN step or
// `ocibuild run`: an overlay mount when the host allows one, else the
// copy-and-compare snapshotter (OCIBUILD_SNAPSHOTTER=copy forces it).
// Finish() leaves the step's changes in changes() in overlay-upper form
// either way (whiteouts as 0/0 character devices).
//
// Not thread-safe; one owner.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "build/runtime.h"
#include "build/snapshot.h"

namespace ocib::build {

class Workspace {
 public:
  // lowers: layer directories, top first (at least one). dir: scratch
  // space the workspace owns. `note` gets a line when overlayfs is
  // unavailable.
  static Result<std::unique_ptr<Workspace>> Create(
      const std::vector<std::string>& lowers, const std::string& dir,
      std::ostream& note);
  const std::string& rootfs() const { return rootfs_; }
  const std::string& changes() const { return upper_; }
  bool copying() const { return !mount_; }

  // Ends the step. `stubs`: mount points made for the step (relative
  // paths, parents first) that are not the step's work. Empty files among
  // them are removed; directories stay in the layer, as BuildKit leaves
  // the directories it made for mounts.
  Status Finish(const std::vector<std::string>& stubs);

 private:
  Workspace() = default;
  std::string dir_, upper_, rootfs_;
  std::unique_ptr<OverlayMount> mount_;
  std::optional<TreeSnapshot> snapshot_;
};

}  // namespace ocib::build
