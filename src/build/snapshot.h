// The copy-and-compare snapshotter, for hosts where overlayfs cannot be
// mounted: the image's layers are copied into one directory, its metadata
// recorded, the step runs there, and the differences become a directory in
// overlay-upper form (changed and new entries, 0/0 character devices for
// deletions), which the builder writes as the layer like an overlay upper.
//
// Changes are found by comparing type, mode, owner, size, link target,
// mtime and ctime (ctime cannot be set back by a process, so a rewrite that
// restores size and mtime is still seen). Requires root. Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "util/status.h"

namespace ocib::build {

// Copies the layer directories (overlay format, top first) into rootfs,
// applying whiteouts and opaque directories.
Status MaterializeLayers(const std::vector<std::string>& lowers,
                         const std::string& rootfs);

class TreeSnapshot {
 public:
  static Result<TreeSnapshot> Take(const std::string& root);
  // Writes what changed in root since the snapshot into diff_dir (created).
  Status Diff(const std::string& root, const std::string& diff_dir) const;

 private:
  struct Meta {
    unsigned mode = 0;
    unsigned uid = 0, gid = 0;
    long long size = 0;
    long long mtime_ns = 0, ctime_ns = 0;
    std::string link;
    bool operator==(const Meta& o) const {
      return mode == o.mode && uid == o.uid && gid == o.gid && size == o.size &&
             mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns && link == o.link;
    }
  };
  static Status Walk(const std::string& root, std::map<std::string, Meta>* out);
  std::map<std::string, Meta> entries_;
};

}  // namespace ocib::build
