// Deterministic tar streams for image layers (OCI image spec, layer.md):
// POSIX ustar headers with PAX extended headers where ustar cannot hold a
// value (long names and link targets, large sizes and ids, xattrs),
// sorted entries, hardlinks, symlinks, devices, fifos, modes and owners.
//
// TarWriter is thread-compatible (one thread at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "util/status.h"

namespace ocib::image {

using ByteSink = std::function<Status(const char* data, size_t n)>;

struct TarEntry {
  enum Type : char {
    kFile = '0',
    kHardlink = '1',
    kSymlink = '2',
    kChar = '3',
    kBlock = '4',
    kDir = '5',
    kFifo = '6',
  };
  std::string
      path;  // relative, no leading "/" or "./"; dirs without a trailing "/"
  Type type = kFile;
  uint32_t mode = 0644;  // permission bits (and setuid/setgid/sticky)
  uint64_t uid = 0, gid = 0;
  uint64_t size = 0;     // files only
  int64_t mtime = 0;     // seconds
  std::string linkname;  // hardlink and symlink targets
  uint32_t devmajor = 0, devminor = 0;
  std::map<std::string, std::string> xattrs;
};

class TarWriter {
 public:
  explicit TarWriter(ByteSink sink) : sink_(std::move(sink)) {}
  // Writes the header(s). A file's size bytes must follow through
  // WriteData before the next header.
  Status WriteHeader(const TarEntry& e);
  Status WriteData(const char* data, size_t n);
  // Pads the last file and writes the two zero blocks that end a tar.
  Status Finish();

 private:
  Status Emit(const char* data, size_t n);
  Status PadTo512();
  ByteSink sink_;
  uint64_t remaining_ = 0;  // bytes of the current file still expected
  uint64_t written_ = 0;    // bytes emitted
};

struct TreeOptions {
  // Clamp every mtime to at most this (SOURCE_DATE_EPOCH); nullopt keeps
  // mtimes as they are.
  std::optional<int64_t> clamp_mtime;
  // Skip a path (relative to the tree root) and everything below it.
  std::function<bool(const std::string& rel, bool is_dir)> exclude;
  // The tree is an overlayfs upper directory: 0/0 character devices become
  // ".wh.NAME" whiteouts, opaque directories get ".wh..wh..opq", and
  // trusted.overlay.* xattrs are dropped.
  bool overlay_upper = false;
  // Owner to record instead of the files' own (COPY --chown).
  std::optional<std::pair<uint64_t, uint64_t>> owner;
};

// Writes every entry below `root` (not root itself), sorted by name within
// each directory and parents first,
// hardlinks as links to their first path, xattrs included.
Status WriteTree(const std::string& root, TarWriter& tar,
                 const TreeOptions& options);

}  // namespace ocib::image
