// ByteBackend: where blob bytes live. The store keeps every record in
// RocksDB and asks a ByteBackend only to stage bytes (spools), promote a
// finished spool into the content-addressed area, and read or remove
// promoted blobs. The interface is narrow so an S3-compatible backend can
// be added beside the file one (multipart upload as spool, copy+delete or
// complete as promote).
//
// Spool keys are chosen by the store (hex strings it derives itself); a
// backend never sees a client-supplied string.
//
// Thread safety: a backend is thread-safe; a SpoolFile is used by one
// thread at a time, except that ReadAt of bytes already appended may run
// on other threads during an Append.

#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/blob_read_handle.h"
#include "store/digest.h"
#include "util/status.h"

namespace ocib {

class SpoolFile {
 public:
  virtual ~SpoolFile() = default;
  virtual uint64_t size() const = 0;
  // Appends all n bytes or returns kInternal (size() then tells how many
  // bytes the backend holds).
  virtual Status Append(const char* data, size_t n) = 0;
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) = 0;
  // Makes the bytes durable.
  virtual Status Sync() = 0;
  // Makes appended bytes that the backend still holds in memory visible to
  // a later OpenSpool or Promote (in any process). A no-op for backends
  // that write through.
  virtual Status Flush() { return Status::Ok(); }
  // Ends appending (the store calls it at commit, before hashing and
  // Promote): afterwards every byte is readable with ReadAt.
  virtual Status Seal() { return Flush(); }
  // False when ReadAt of some appended bytes fails with kUnavailable until
  // Seal (an object store's multipart upload): the store then hashes such
  // a spool only at commit.
  virtual bool ReadableWhileOpen() const { return true; }
  // False when OpenSpool costs round trips: the store then keeps the
  // spool of an idle upload session open between its requests.
  virtual bool CheapToReopen() const { return true; }
  // Last modification time, seconds since the epoch.
  virtual int64_t modified_unix() const = 0;
};

class ByteBackend {
 public:
  virtual ~ByteBackend() = default;
  // Creates an empty spool, replacing any spool of that key.
  virtual Result<std::unique_ptr<SpoolFile>> CreateSpool(
      const std::string& key) = 0;
  // kNotFound if the spool does not exist.
  virtual Result<std::unique_ptr<SpoolFile>> OpenSpool(
      const std::string& key) = 0;
  // Succeeds if absent.
  virtual Status RemoveSpool(const std::string& key) = 0;
  virtual Result<std::vector<std::string>> ListSpools() = 0;
  // Atomically moves the spool's bytes to the CAS location of d, replacing
  // anything there, and makes the move durable when the backend syncs.
  virtual Status Promote(const std::string& key, const Digest& d) = 0;
  // kNotFound if there are no bytes for d.
  virtual Result<std::unique_ptr<BlobReadHandle>> Open(const Digest& d) = 0;
  // Succeeds if absent.
  virtual Status Remove(const Digest& d) = 0;
  // A URL any client can GET d's bytes from for expires_seconds (an
  // object store's presigned URL); kFailedPrecondition if the backend has
  // none.
  virtual Result<std::string> ReadURL(const Digest& d, int expires_seconds) {
    (void)d;
    (void)expires_seconds;
    return FailedPrecondition("blob bytes have no URL here");
  }
  // Appends the digest of every blob whose bytes the backend holds.
  virtual Status ListBlobs(std::vector<Digest>* out) = 0;
};

// Files under root: blobs/<algorithm>/<2 hex>/<hex> and uploads/<key>.
// With sync, Promote fsyncs the directory after the rename (the store
// syncs the file itself). Written bytes beyond the most recent
// written_cache_bytes are dropped from the page cache once on disk (0: left to
// the kernel).
Result<std::unique_ptr<ByteBackend>> NewFileBackend(
    const std::string& root, bool sync, uint64_t written_cache_bytes);

}  // namespace ocib
