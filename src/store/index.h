// Index: where the store keeps its records (blob records, links, manifests,
// tags, referrers, upload sessions, queues; layout in keys.h). An ordered
// map from byte-string keys to byte-string values, compared bytewise.
//
// Two implementations: RocksDB in the store's directory (the embedded
// default, one process) and PostgreSQL (src/pgindex/, shared by several
// registry replicas).
//
// Contract:
//   - Write applies a batch atomically: a reader (in any process) sees all
//     of it or none of it. It is not durable until Sync returns (a batch
//     written with sync=true is durable when Write returns).
//   - Iterators and Get see every batch whose Write returned before they
//     started; an iterator opened at a snapshot sees exactly the batches
//     written before the snapshot was taken.
//   - Iterators are bounded by a prefix: they never show keys outside it.
//   - Lock takes exclusive locks shared with every other process using the
//     same index (one writer across replicas). A process-local index has
//     nothing to share, and its locks cost nothing. Callers hold their own
//     in-process mutex for the same key first: an index lock is not
//     exclusive between threads of one process.
// Errors: kNotFound from Get for a missing key; kUnreachable when a shared
// index cannot be reached; kInternal for anything else (the message says
// what without naming files; details go to stderr).
// Thread safety: an Index is thread-safe; an iterator or snapshot is used
// by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace ocib {

class IndexBatch {
 public:
  struct Op {
    bool put;
    std::string key, value;
  };
  void Put(std::string_view key, std::string_view value) {
    ops_.push_back(Op{true, std::string(key), std::string(value)});
  }
  void Delete(std::string_view key) {
    ops_.push_back(Op{false, std::string(key), {}});
  }
  size_t Count() const { return ops_.size(); }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

class IndexIterator {
 public:
  virtual ~IndexIterator() = default;
  // Positions at the first key >= target within the iterator's prefix.
  virtual void Seek(std::string_view target) = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  // REQUIRES: Valid(). Views stay valid until the next Seek or Next.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Not OK if the scan stopped on an error rather than at the end.
  virtual Status status() const = 0;
};

// A consistent read view; released when destroyed.
class IndexSnapshot {
 public:
  virtual ~IndexSnapshot() = default;
};

// Held locks; released when destroyed.
class IndexLock {
 public:
  virtual ~IndexLock() = default;
};

class Index {
 public:
  virtual ~Index() = default;

  virtual Status Get(std::string_view key, std::string* value) = 0;
  virtual Status Write(const IndexBatch& batch, bool sync = false) = 0;
  // Makes every batch written before the call durable.
  virtual Status Sync() = 0;

  // An iterator over the keys starting with prefix, at snapshot (or the
  // latest state when null).
  virtual std::unique_ptr<IndexIterator> NewIterator(
      std::string_view prefix, const IndexSnapshot* snapshot = nullptr) = 0;
  virtual Result<std::unique_ptr<IndexSnapshot>> GetSnapshot() = 0;

  // Exclusive locks on keys (taken in ascending order, all or none), shared
  // with the other processes on this index; blocks until held.
  virtual Result<std::unique_ptr<IndexLock>> Lock(
      std::vector<uint64_t> keys) = 0;
  // The same without waiting: kUnavailable if another process holds one.
  virtual Result<std::unique_ptr<IndexLock>> TryLock(uint64_t key) = 0;
  // True when other processes may use this index at the same time.
  virtual bool Shared() const = 0;

  // After a failed write (a full disk): tries to make writes work again.
  virtual Status Resume() { return Status::Ok(); }
  // The space the index's records take (on disk or in its database).
  virtual uint64_t SizeBytes() = 0;
  // What the index is, for logs ("rocksdb", "postgresql").
  virtual std::string Name() const = 0;
};

// The smallest key after every key starting with prefix ("" when there is
// none: the prefix is empty or all 0xff bytes).
inline std::string IndexPrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c != 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

// The embedded index: a RocksDB database at dir (created if missing unless
// read_only). block_cache_bytes and write_buffer_bytes: 0 for defaults.
struct RocksIndexOptions {
  std::string dir;
  bool read_only = false;
  bool sync = true;  // when false, Sync() does nothing
  uint64_t block_cache_bytes = 0;
  uint64_t write_buffer_bytes = 0;
};
Result<std::unique_ptr<Index>> OpenRocksIndex(const RocksIndexOptions& options);

}  // namespace ocib
