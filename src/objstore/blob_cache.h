// BlobCache: local copies of blobs whose bytes live in an object store,
// so hot layers are served from this machine's disk (and page cache)
// instead of the store. A cache, never the truth: every entry is a
// committed blob's exact bytes, any entry may go at any time, and a
// replica with an empty cache serves everything from the object store.
//
// Entries come from a spool's bytes as they are written (adopted once the
// store verified and promoted the blob) and from full reads of a blob
// (adopted when the read completed). Files: <dir>/blobs/<alg>-<hex>,
// <dir>/tmp/<name> while filling. The least recently used entries are
// removed past `budget` bytes. At start, tmp/ is emptied and blobs/ is
// taken in as it is (its files were complete when renamed there).
//
// Thread safety: thread-safe. Files being filled belong to one writer.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/blob_read_handle.h"
#include "store/digest.h"
#include "util/status.h"

namespace ocib::objstore {

class BlobCache {
 public:
  // Creates the directories, empties tmp/ and takes in blobs/.
  static Result<std::unique_ptr<BlobCache>> Open(const std::string& dir,
                                                 uint64_t budget);

  // A file to fill under tmp/ (opened for writing, or -1 when it cannot
  // be made: the blob is then not cached). `name` is the caller's own
  // hex string.
  int CreateTemp(const std::string& name, std::string* path);
  // Makes a filled temp file the entry for d (size bytes), evicting the
  // least recently used entries past the budget. The caller closes fd.
  void Adopt(const std::string& path, const Digest& d, uint64_t size);
  // The entry for d, or null.
  std::unique_ptr<BlobReadHandle> Lookup(const Digest& d);
  void Remove(const Digest& d);

  uint64_t bytes() const;

 private:
  BlobCache(std::string dir, uint64_t budget)
      : dir_(std::move(dir)), budget_(budget) {}
  std::string PathOf(const std::string& name) const;
  void EvictLocked();

  const std::string dir_;
  const uint64_t budget_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // names, most recent first
  struct Entry {
    uint64_t size;
    std::list<std::string>::iterator pos;
  };
  std::unordered_map<std::string, Entry> entries_;
  uint64_t total_ = 0;
};

}  // namespace ocib::objstore
