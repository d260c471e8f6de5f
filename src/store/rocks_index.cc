// The embedded Index: one RocksDB database, used by one process.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <cstdio>

#include "store/index.h"
#include "util/mutex.h"

namespace ocib {
namespace {

// RocksDB's messages name files; callers (and so clients) get a short
// reason instead, and the full text goes to the server's stderr.
Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return NotFound("no such key");
  std::fprintf(stderr, "ocib store: rocksdb: %s\n", s.ToString().c_str());
  const char* reason = s.IsNoSpace()   ? "no space left on the store's disk"
                       : s.IsIOError() ? "database I/O error"
                                       : "database error";
  return Internal(reason);
}

class RocksSnapshot : public IndexSnapshot {
 public:
  RocksSnapshot(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~RocksSnapshot() override { db_->ReleaseSnapshot(snap_); }
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

class RocksIterator : public IndexIterator {
 public:
  RocksIterator(rocksdb::DB* db, std::string_view prefix,
                const rocksdb::Snapshot* snap)
      : prefix_(prefix), end_(IndexPrefixEnd(prefix)) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    if (!end_.empty()) {
      upper_ = rocksdb::Slice(end_);
      ro.iterate_upper_bound = &upper_;
    }
    it_.reset(db->NewIterator(ro));
  }
  void Seek(std::string_view target) override {
    if (target < prefix_) target = prefix_;
    it_->Seek(rocksdb::Slice(target.data(), target.size()));
  }
  bool Valid() const override {
    return it_->Valid() && it_->key().starts_with(prefix_);
  }
  void Next() override { it_->Next(); }
  std::string_view key() const override { return it_->key().ToStringView(); }
  std::string_view value() const override {
    return it_->value().ToStringView();
  }
  Status status() const override { return FromRocks(it_->status()); }

 private:
  std::string prefix_, end_;
  rocksdb::Slice upper_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

class RocksIndex : public Index {
 public:
  explicit RocksIndex(RocksIndexOptions o) : o_(std::move(o)) {}
  ~RocksIndex() override {
    if (!db_) return;
    // Memtables go to table files at a clean close, so the next open (say
    // `ocireg gc` on the stopped store) replays no log into memory.
    if (!o_.read_only)
      db_->Flush(rocksdb::FlushOptions()).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }

  Status Open() {
    rocksdb::Options o;
    o.create_if_missing = !o_.read_only;
    // Recovery replays the log into memory without writing tables, so a
    // store on a full disk still opens (and serves reads).
    o.avoid_flush_during_recovery = true;
    // No preallocated log space (about 70 MiB a log): the store's space
    // guard counts what is really used.
    o.allow_fallocate = false;
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
    // TSan builds only: Debian's RocksDB is not instrumented, and its write
    // groups hand one thread's batch to another through atomics TSan
    // cannot see. One writer per group keeps the reports to our own code.
    o.max_write_batch_group_size_bytes = 1;
#endif
#endif
    o.max_open_files = 256;
    o.keep_log_file_num = 3;
    if (o_.write_buffer_bytes > 0) o.write_buffer_size = o_.write_buffer_bytes;
    {
      rocksdb::BlockBasedTableOptions t;
      if (o_.block_cache_bytes > 0)
        t.block_cache = rocksdb::NewLRUCache(o_.block_cache_bytes);
      // Most point reads ask for keys that are not there (a pending
      // promotion, a link not yet made): a Bloom filter answers those
      // without reading data blocks.
      bool bloom = true;
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
      // TSan builds only: opening a table with a filter initialises a
      // function-local static inside (uninstrumented) RocksDB, whose guard
      // TSan cannot see. Without the filter reads are slower, not different.
      bloom = false;
#endif
#endif
      if (bloom) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    }
    o.IncreaseParallelism(2);
    rocksdb::DB* raw = nullptr;
    if (o_.read_only) {
      auto s = rocksdb::DB::OpenForReadOnly(o, o_.dir, &raw);
      if (!s.ok()) return NotFound("no store database (" + s.ToString() + ")");
    } else {
      auto s = rocksdb::DB::Open(o, o_.dir, &raw);
      if (!s.ok()) return Internal("open database: " + s.ToString());
    }
    db_.reset(raw);
    return Status::Ok();
  }

  Status Get(std::string_view key, std::string* value) override {
    return FromRocks(db_->Get(rocksdb::ReadOptions(),
                              rocksdb::Slice(key.data(), key.size()), value));
  }

  Status Write(const IndexBatch& batch, bool sync) override {
    rocksdb::WriteBatch b;
    for (const auto& op : batch.ops()) {
      if (op.put)
        b.Put(op.key, op.value);
      else
        b.Delete(op.key);
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync && o_.sync;
    return FromRocks(db_->Write(wo, &b));
  }

  // Group commit: batches are written without waiting for the disk; one
  // WAL sync then covers every batch written before it started, so
  // concurrent committers share syncs.
  Status Sync() override {
    if (!o_.sync) return Status::Ok();
    uint64_t target = db_->GetLatestSequenceNumber();
    MutexLock l(&sync_mu_);
    if (synced_seq_ >= target) return Status::Ok();
    uint64_t covering = db_->GetLatestSequenceNumber();
    RETURN_IF_ERROR(FromRocks(db_->SyncWAL()));
    synced_seq_ = covering;
    return Status::Ok();
  }

  std::unique_ptr<IndexIterator> NewIterator(
      std::string_view prefix, const IndexSnapshot* snapshot) override {
    const rocksdb::Snapshot* snap =
        snapshot ? static_cast<const RocksSnapshot*>(snapshot)->get() : nullptr;
    return std::make_unique<RocksIterator>(db_.get(), prefix, snap);
  }

  Result<std::unique_ptr<IndexSnapshot>> GetSnapshot() override {
    return std::unique_ptr<IndexSnapshot>(new RocksSnapshot(db_.get()));
  }

  // One process per database: the caller's in-process mutexes suffice.
  Result<std::unique_ptr<IndexLock>> Lock(std::vector<uint64_t>) override {
    return std::unique_ptr<IndexLock>();
  }
  Result<std::unique_ptr<IndexLock>> TryLock(uint64_t) override {
    return std::unique_ptr<IndexLock>();
  }
  bool Shared() const override { return false; }

  Status Resume() override {
    auto r = db_->Resume();
    if (!r.ok()) return FromRocks(r);
    std::fprintf(stderr, "ocib store: database resumed after a write error\n");
    return Status::Ok();
  }

  uint64_t SizeBytes() override {
    uint64_t out = 0, v = 0;
    if (db_->GetIntProperty("rocksdb.total-sst-files-size", &v)) out += v;
    if (db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &v)) out += v;
    return out;
  }

  std::string Name() const override { return "rocksdb"; }

 private:
  const RocksIndexOptions o_;
  std::unique_ptr<rocksdb::DB> db_;
  Mutex sync_mu_;
  uint64_t synced_seq_ GUARDED_BY(sync_mu_) = 0;
};

}  // namespace

Result<std::unique_ptr<Index>> OpenRocksIndex(
    const RocksIndexOptions& options) {
  auto index = std::make_unique<RocksIndex>(options);
  RETURN_IF_ERROR(index->Open());
  return std::unique_ptr<Index>(std::move(index));
}

}  // namespace ocib
