// RocksDB-backed Store. See blob_store.h for the contract and keys.h for
// the key layout.
#include "store/blob_store.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <unordered_map>

#include "store/byte_backend.h"
#include "store/index.h"
#include "store/keys.h"
#include "util/mutex.h"

namespace ocib {
namespace {

// An index failure as the store reports it: `what` and the index's short
// reason (the index logs the details).
Status IndexError(const Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.code() == Code::kNotFound) return NotFound(what);
  return Status(s.code(), what + ": " + s.message());
}

}  // namespace

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A touch time value ("l" links, "z" entries): 8 bytes, or empty (stores
// written before touch times: as old as can be).
std::string TimeValue(int64_t micros) {
  return keys::Encoder().U64(static_cast<uint64_t>(micros)).out();
}
int64_t ParseTime(std::string_view v) {
  uint64_t t = 0;
  keys::Decoder d(v);
  return d.U64(&t) ? static_cast<int64_t>(t) : 0;
}

bool ValidUploadId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Spool keys are derived from the id, never the id itself.
std::string SpoolKeyForSession(const std::string& id) {
  return "s-" + Digest::Of(id).hex().substr(0, 40);
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  RAND_bytes(buf.data(), static_cast<int>(bytes));
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : buf) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

struct BlobRecord {
  // Where the bytes are. Records written before this was kept say
  // neither (kUnknown): their bytes may be a file.
  enum Placement : uint64_t { kUnknown = 0, kInline = 1, kFile = 2 };
  uint64_t size = 0;
  uint64_t refs = 0;
  uint64_t placement = kUnknown;
  bool may_have_file() const { return placement != kInline; }
  std::string Encode() const {
    keys::Encoder e;
    e.U64(size).U64(refs);
    if (placement != kUnknown) e.U64(placement);  // older readers stop before
    return e.out();
  }
  static bool Decode(std::string_view v, BlobRecord* r) {
    keys::Decoder d(v);
    if (!d.U64(&r->size) || !d.U64(&r->refs)) return false;
    r->placement = kUnknown;
    return d.done() || d.U64(&r->placement);
  }
};

struct UploadRecord {
  std::string repo;
  uint64_t updated = 0;
  std::string Encode() const {
    return keys::Encoder().Str(repo).U64(updated).out();
  }
  static bool Decode(std::string_view v, UploadRecord* r) {
    keys::Decoder d(v);
    return d.Str(&r->repo) && d.U64(&r->updated);
  }
};

std::string EncodeAnnotations(keys::Encoder& e,
                              const std::map<std::string, std::string>& a) {
  e.U64(a.size());
  for (auto& [k, v] : a) e.Str(k).Str(v);
  return e.out();
}

bool DecodeAnnotations(keys::Decoder& d,
                       std::map<std::string, std::string>* a) {
  uint64_t n;
  if (!d.U64(&n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!d.Str(&k) || !d.Str(&v)) return false;
    (*a)[k] = v;
  }
  return true;
}

std::string EncodeManifest(const ManifestRecord& m) {
  keys::Encoder e;
  e.Str(m.media_type)
      .Str(m.subject ? m.subject->str() : "")
      .Str(m.artifact_type);
  EncodeAnnotations(e, m.annotations);
  e.Str(m.content);
  e.U64(static_cast<uint64_t>(m.touched_micros));
  return e.out();
}

Result<ManifestRecord> DecodeManifest(const Digest& digest,
                                      std::string_view v) {
  ManifestRecord m;
  m.digest = digest;
  keys::Decoder d(v);
  std::string subject;
  if (!d.Str(&m.media_type) || !d.Str(&subject) || !d.Str(&m.artifact_type) ||
      !DecodeAnnotations(d, &m.annotations) || !d.Str(&m.content))
    return Internal("corrupt manifest record " + digest.str());
  uint64_t touched = 0;  // absent in records written before touch times
  if (!d.done() && d.U64(&touched))
    m.touched_micros = static_cast<int64_t>(touched);
  if (!subject.empty()) {
    auto s = Digest::Parse(subject);
    if (!s.ok()) return Internal("corrupt manifest subject");
    m.subject = *s;
  }
  return m;
}

std::string EncodeReferrer(const ManifestRecord& m) {
  keys::Encoder e;
  e.Str(m.media_type).U64(m.content.size()).Str(m.artifact_type);
  return EncodeAnnotations(e, m.annotations);
}

// Per-session state that lives only in memory: the running hash and whether
// a writer holds the session.
struct SessionState {
  bool busy = false;
  std::optional<Hasher> hasher;  // valid for `hashed` bytes
  uint64_t hashed = 0;
  // Known here to have no spool yet (begun or left with no bytes spooled),
  // so resuming needs no OpenSpool.
  bool no_spool = false;
  // An idle session's open spool, kept when reopening it costs round trips
  // (SpoolFile::CheapToReopen).
  std::unique_ptr<SpoolFile> spool;
};

class IndexStore;

class Writer : public BlobWriter {
 public:
  // spool may be null: the bytes then stay in memory until they pass
  // kInlineMax (or the writer closes uncommitted), and a blob committed
  // from memory is kept in the database, with no file at all.
  Writer(IndexStore* store, std::string session_id, std::string spool_key,
         std::unique_ptr<SpoolFile> spool, Hasher hasher)
      : store_(store),
        session_id_(std::move(session_id)),
        spool_key_(std::move(spool_key)),
        spool_(std::move(spool)),
        hasher_(std::move(hasher)),
        hashed_(spool_ ? spool_->size() : 0),
        published_(spool_.get()) {}
  ~Writer() override;

  static constexpr size_t kInlineMax = 64 << 10;

  uint64_t offset() const override {
    return spool_ ? spool_->size() : inline_size_.load();
  }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    if (SpoolFile* s = published_.load(std::memory_order_acquire))
      return s->ReadAt(offset, buf, n);
    uint64_t have = inline_size_.load(std::memory_order_acquire);
    if (offset > have) return OutOfRange("read offset past the bytes written");
    n = static_cast<size_t>(std::min<uint64_t>(n, have - offset));
    if (n > 0) std::memcpy(buf, inline_buf_.get() + offset, n);
    return n;
  }
  Status Flush() override;
  Status ExpectOffset(uint64_t offset) const override {
    if (offset != this->offset())
      return FailedPrecondition("upload is at offset " +
                                std::to_string(this->offset()) + ", not " +
                                std::to_string(offset));
    return Status::Ok();
  }
  // Moves the bytes held in memory into a new spool file.
  Status Materialize();
  Status Write(const char* data, size_t n) override;
  Status WriteLocal(const char* data, size_t n) {
    if (done_) return FailedPrecondition("writer already committed");
    WaitHash();
    if (!spool_ && inline_size_ + n <= kInlineMax) {
      if (!inline_buf_) inline_buf_.reset(new char[kInlineMax]);
      std::memcpy(inline_buf_.get() + inline_size_, data, n);
      inline_size_.store(inline_size_ + n, std::memory_order_release);
      if (hash_valid_) {
        hasher_.Update(data, n);
        hashed_ += n;
      }
      return Status::Ok();
    }
    if (!spool_) RETURN_IF_ERROR(Materialize());
    bool async = hash_valid_ && n >= kAsyncHashMin;
    if (async) {
      // Hash this piece on another core while the bytes go to the spool
      // and the caller receives the next piece.
      hash_buf_.assign(data, data + n);
      StartHash();
    }
    return AppendHashed(data, n, async);
  }
  Status WriteTake(std::string& buf) override {
    if (done_ || !spool_ || !hash_valid_ || buf.size() < kAsyncHashMin ||
        !SpaceOk()) {
      Status s = Write(buf.data(), buf.size());
      buf.clear();
      return s;
    }
    // Same as Write, without the copy: hash from the caller's buffer.
    WaitHash();
    hash_buf_.swap(buf);
    buf.clear();
    StartHash();
    return AppendHashed(hash_buf_.data(), hash_buf_.size(), true);
  }
  bool SpaceOk();
  void StartHash() {
    pending_hash_ = std::async(std::launch::async, [this] {
      hasher_.Update(hash_buf_.data(), hash_buf_.size());
    });
  }
  // Appends to the spool; the bytes are hashed here unless `async` started
  // that already.
  Status AppendHashed(const char* data, size_t n, bool async) {
    Status s = spool_->Append(data, n);
    if (!s.ok()) {
      WaitHash();
      hash_valid_ = false;  // spool may hold a prefix of data
      return s;
    }
    if (hash_valid_) {
      if (!async) hasher_.Update(data, n);
      hashed_ += n;
    }
    return Status::Ok();
  }
  void WaitHash() {
    if (pending_hash_.valid()) pending_hash_.get();
  }
  Result<BlobInfo> Commit(const Digest& expected,
                          std::optional<uint64_t> expected_size,
                          const std::string& link_repo) override;

 private:
  friend class IndexStore;
  IndexStore* store_;
  // With a shared index: this process's hold on the session (one writer
  // across processes); released after the spool closes.
  std::unique_ptr<IndexLock> session_lock_;
  std::string session_id_;  // empty for NewWriter()
  std::string spool_key_;
  std::unique_ptr<SpoolFile> spool_;
  Hasher hasher_;
  uint64_t hashed_;
  bool hash_valid_ = true;
  bool done_ = false;
  static constexpr size_t kAsyncHashMin = 256 << 10;
  std::string hash_buf_;            // the piece being hashed
  std::future<void> pending_hash_;  // running Update over hash_buf_
  // Bytes before a spool exists; never reallocated, so ReadAt on other
  // threads can read below inline_size_.
  std::unique_ptr<char[]> inline_buf_;
  std::atomic<uint64_t> inline_size_{0};
  std::atomic<SpoolFile*> published_;  // spool_, once it exists
};

// A small blob held in the database.
class MemoryReadHandle : public BlobReadHandle {
 public:
  explicit MemoryReadHandle(std::string bytes) : bytes_(std::move(bytes)) {}
  uint64_t size() const override { return bytes_.size(); }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    if (offset > bytes_.size())
      return OutOfRange("read offset past end of blob");
    n = std::min<size_t>(n, bytes_.size() - offset);
    if (n > 0) std::memcpy(buf, bytes_.data() + offset, n);
    return n;
  }

 private:
  std::string bytes_;
};

class IndexStore : public Store {
 public:
  // For Writer: a new spool file, or removal of one.
  Result<std::unique_ptr<SpoolFile>> NewSpool(const std::string& key) {
    return bytes_->CreateSpool(key);
  }
  void DropSpool(const std::string& key) {
    bytes_->RemoveSpool(key).IgnoreError();
  }

  IndexStore(StoreOptions opts, std::unique_ptr<ByteBackend> bytes,
             std::unique_ptr<Index> index)
      : opts_(std::move(opts)),
        bytes_(std::move(bytes)),
        index_(std::move(index)) {}

  // Refuses writes while the store's disk has less than reserved_bytes
  // free, so RocksDB itself never runs out of space (its writes then fail
  // hard, and the packaged build aborts on a later one). Once space is
  // back, a database stopped by an earlier write error is resumed.
  Status CheckSpace() {
    if (opts_.read_only || opts_.reserved_bytes == 0) return Status::Ok();
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    if (now - space_checked_ms_.load(std::memory_order_relaxed) > 50) {
      struct statvfs st;
      if (::statvfs(opts_.root.c_str(), &st) == 0)
        free_bytes_.store(static_cast<uint64_t>(st.f_bavail) * st.f_frsize,
                          std::memory_order_relaxed);
      space_checked_ms_.store(now, std::memory_order_relaxed);
    }
    if (free_bytes_.load(std::memory_order_relaxed) < opts_.reserved_bytes)
      return Internal("storage full: less than " +
                      std::to_string(opts_.reserved_bytes >> 20) +
                      " MiB free on the store's disk");
    if (db_error_.load()) {
      std::lock_guard<std::mutex> l(resume_mu_);
      if (db_error_.load()) {
        RETURN_IF_ERROR(IndexError(index_->Resume(), "resume database"));
        db_error_.store(false);
      }
    }
    return Status::Ok();
  }

  // A write to the database failed: later writes try Resume() first.
  Status Written(const Status& s, const std::string& what) {
    if (s.code() == Code::kInternal) db_error_.store(true);
    return IndexError(s, what);
  }
  Status PutOne(std::string_view key, std::string_view value,
                bool sync = false) {
    IndexBatch b;
    b.Put(key, value);
    return index_->Write(b, sync);
  }
  Status DeleteOne(std::string_view key, bool sync = false) {
    IndexBatch b;
    b.Delete(key);
    return index_->Write(b, sync);
  }

  std::string ReservePath() const { return opts_.root + "/reserved-space"; }

  // The reserve file holds space that is given back to RocksDB at open
  // (recovery writes), then taken again when the disk has room.
  void TakeReserve() {
    if (opts_.reserved_bytes == 0) return;
    uint64_t size = std::min<uint64_t>(opts_.reserved_bytes / 2, 64ull << 20);
    int fd =
        ::open(ReservePath().c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    struct statvfs st;
    if (::fstatvfs(fd, &st) == 0 &&
        static_cast<uint64_t>(st.f_bavail) * st.f_frsize >=
            size + opts_.reserved_bytes) {
      if (::posix_fallocate(fd, 0, static_cast<off_t>(size)) != 0)
        (void)!::ftruncate(fd, 0);
    }
    ::close(fd);
  }

  Status Open() {
    if (!opts_.read_only) ::unlink(ReservePath().c_str());
    if (!index_) {
      RocksIndexOptions ro;
      ro.dir = opts_.root + "/db";
      ro.read_only = opts_.read_only;
      ro.sync = opts_.sync;
      ro.block_cache_bytes = opts_.block_cache_bytes;
      ro.write_buffer_bytes = opts_.write_buffer_bytes;
      auto opened = OpenRocksIndex(ro);
      if (!opened.ok()) {
        if (opts_.read_only)
          return NotFound("no store at " + opts_.root + " (" +
                          opened.status().message() + ")");
        return opened.status();
      }
      index_ = std::move(*opened);
    }
    if (opts_.read_only) {
      std::string v;
      Status s = index_->Get(keys::Schema(), &v);
      if (s.code() == Code::kNotFound)
        return NotFound("no store at " + opts_.root);
      if (!s.ok() || (v != keys::kSchemaVersion && v != "1"))
        return FailedPrecondition("store schema version \"" + v +
                                  "\" is not supported");
      return Status::Ok();
    }
    std::string v;
    Status s = index_->Get(keys::Schema(), &v);
    if (s.code() == Code::kNotFound || (s.ok() && v == "1")) {
      // New, or version 1 (no inline blobs yet), which is a valid version 2.
      RETURN_IF_ERROR(IndexError(
          PutOne(keys::Schema(), keys::kSchemaVersion, /*sync=*/true),
          "write schema"));
    } else if (!s.ok()) {
      return IndexError(s, "read schema");
    } else if (v != keys::kSchemaVersion) {
      return FailedPrecondition("store schema version " + v +
                                " is not supported (want " +
                                std::string(keys::kSchemaVersion) + ")");
    }
    RETURN_IF_ERROR(Recover());
    TakeReserve();
    return Status::Ok();
  }

  // --- BlobReader ---
  Result<BlobInfo> StatBlob(const Digest& d) override {
    BlobRecord r;
    RETURN_IF_ERROR(GetBlobRecord(d, &r));
    return BlobInfo{d, r.size, r.refs};
  }

  Result<std::unique_ptr<BlobReadHandle>> OpenBlob(const Digest& d) override {
    BlobRecord r;
    RETURN_IF_ERROR(GetBlobRecord(d, &r));
    std::string bytes;
    auto s = index_->Get(keys::Inline(d), &bytes);
    if (s.ok())
      return std::unique_ptr<BlobReadHandle>(
          new MemoryReadHandle(std::move(bytes)));
    if (s.code() != Code::kNotFound) return IndexError(s, "read inline blob");
    return bytes_->Open(d);
  }

  Result<std::string> BlobURL(const Digest& d, int expires_seconds) override {
    BlobRecord r;
    RETURN_IF_ERROR(GetBlobRecord(d, &r));
    std::string unused;
    if (r.placement == BlobRecord::kInline ||
        (r.placement == BlobRecord::kUnknown &&
         index_->Get(keys::Inline(d), &unused).ok()))
      return FailedPrecondition("blob is kept in the database");
    return bytes_->ReadURL(d, expires_seconds);
  }

  // --- Ingester ---
  Result<std::unique_ptr<BlobWriter>> NewWriter() override {
    std::string key = "t-" + RandomHex(16);
    return std::unique_ptr<BlobWriter>(
        new Writer(this, "", key, nullptr, Hasher()));
  }

  Result<std::string> BeginUpload(const std::string& repo) override {
    RETURN_IF_ERROR(CheckSpace());
    std::string id = RandomHex(16);
    {
      MutexLock l(&uploads_mu_);
      size_t& in_repo = uploads_per_repo_[repo];
      if ((opts_.max_uploads > 0 && upload_repo_.size() >= opts_.max_uploads) ||
          (opts_.max_uploads_per_repo > 0 &&
           in_repo >= opts_.max_uploads_per_repo)) {
        if (in_repo == 0) uploads_per_repo_.erase(repo);
        return Unavailable(
            "too many open upload sessions; finish or cancel some, or retry "
            "later");
      }
      ++in_repo;
      upload_repo_[id] = repo;
    }
    // No spool yet: it is created when bytes first need one.
    UploadRecord rec{repo, static_cast<uint64_t>(NowUnix())};
    // Not synced: a session lost to a power cut is just restarted by the
    // client; a later synced write covers it anyway.
    IndexBatch b;
    b.Put(keys::Upload(id), rec.Encode());
    // Shared: "no bytes yet" is known to every process (see HashState).
    if (index_->Shared())
      b.Put(keys::HashState(id), HashStateValue(0, Hasher()));
    if (Status s = Written(index_->Write(b), "write upload record"); !s.ok()) {
      ForgetUpload(id);
      return s;
    }
    MutexLock l(&sessions_mu_);
    auto& st = sessions_[id];
    st.hasher.emplace();
    st.hashed = 0;
    st.no_spool = true;
    return id;
  }

  Result<std::unique_ptr<BlobWriter>> ResumeUpload(
      const std::string& id) override {
    UploadRecord rec;
    RETURN_IF_ERROR(GetUploadRecord(id, &rec));
    std::optional<Hasher> hasher;
    uint64_t hashed = 0;
    std::unique_ptr<SpoolFile> spool;
    bool no_spool = false;
    {
      MutexLock l(&sessions_mu_);
      auto& st = sessions_[id];
      if (st.busy)
        return Unavailable("upload " + id + " is in use by another request");
      st.busy = true;
      hasher = std::move(st.hasher);
      hashed = st.hashed;
      st.hasher.reset();
      spool = std::move(st.spool);
      no_spool = st.no_spool;
    }
    std::unique_ptr<IndexLock> session_lock;
    if (index_->Shared()) {
      auto l = HoldSession(id);
      if (!l.ok()) {
        Release(id, std::nullopt, 0);
        return l.status();
      }
      session_lock = std::move(*l);
      // Another process may have written since: start from the stored
      // bytes, and from the running hash saved with them when it covers
      // exactly those bytes (bytes below an offset never change).
      hasher.reset();
      hashed = 0;
      spool.reset();
      no_spool = false;
      if (auto saved = GetHashState(id)) {
        hashed = saved->first;
        hasher = std::move(saved->second);
        no_spool = hashed == 0;  // none was made since (Materialize)
      }
    }
    // No spool file: nothing was written yet (it is created lazily).
    if (!spool && !no_spool) {
      if (auto opened = bytes_->OpenSpool(SpoolKeyForSession(id));
          opened.ok()) {
        spool = std::move(*opened);
      } else if (opened.status().code() != Code::kNotFound) {
        Release(id, std::nullopt, 0);
        return opened.status();
      }
    }
    uint64_t size = spool ? spool->size() : 0;
    if ((!hasher || hashed != size) && spool && !spool->ReadableWhileOpen()) {
      // The bytes cannot be read back yet: they are hashed at commit.
      auto* w = new Writer(this, id, SpoolKeyForSession(id), std::move(spool),
                           Hasher());
      w->hash_valid_ = false;
      w->session_lock_ = std::move(session_lock);
      return std::unique_ptr<BlobWriter>(w);
    }
    if (!hasher || hashed != size) {
      // After a restart (or a failed write) the hash state is rebuilt from
      // the spooled bytes.
      if (spool) {
        auto h = HashSpool(*spool, DigestAlgorithm::kSha256);
        if (!h.ok()) {
          Release(id, std::nullopt, 0);
          return h.status();
        }
        hasher = std::move(*h);
      } else {
        hasher.emplace();
      }
    }
    auto* w = new Writer(this, id, SpoolKeyForSession(id), std::move(spool),
                         std::move(*hasher));
    w->session_lock_ = std::move(session_lock);
    return std::unique_ptr<BlobWriter>(w);
  }

  // --- UploadManager ---
  Result<UploadStatus> GetUpload(const std::string& id) override {
    UploadRecord rec;
    RETURN_IF_ERROR(GetUploadRecord(id, &rec));
    if (index_->Shared()) {
      // What the last request to end stored, without asking the bytes.
      if (auto saved = GetHashState(id))
        return UploadStatus{id, rec.repo, saved->first,
                            static_cast<int64_t>(rec.updated)};
    }
    {
      MutexLock l(&sessions_mu_);
      auto it = sessions_.find(id);
      if (it != sessions_.end() && !it->second.busy) {
        if (it->second.spool)
          return UploadStatus{
              id, rec.repo, it->second.spool->size(),
              std::max<int64_t>(rec.updated,
                                it->second.spool->modified_unix())};
        if (it->second.no_spool)
          return UploadStatus{id, rec.repo, 0,
                              static_cast<int64_t>(rec.updated)};
      }
    }
    auto spool = bytes_->OpenSpool(SpoolKeyForSession(id));
    if (!spool.ok()) {
      if (spool.status().code() != Code::kNotFound) return spool.status();
      return UploadStatus{
          id, rec.repo, 0,
          static_cast<int64_t>(rec.updated)};  // nothing written yet
    }
    return UploadStatus{
        id, rec.repo, (*spool)->size(),
        std::max<int64_t>(rec.updated, (*spool)->modified_unix())};
  }

  Status AbortUpload(const std::string& id) override {
    UploadRecord rec;
    RETURN_IF_ERROR(GetUploadRecord(id, &rec));
    {
      MutexLock l(&sessions_mu_);
      auto it = sessions_.find(id);
      if (it != sessions_.end() && it->second.busy)
        return Unavailable("upload " + id + " is in use by another request");
      if (it != sessions_.end()) it->second.busy = true;
    }
    auto held = HoldSession(id);
    Status s = held.ok() ? RemoveSession(id) : held.status();
    MutexLock l(&sessions_mu_);
    sessions_.erase(id);
    return s;
  }

  Result<size_t> PurgeExpiredUploads(
      std::chrono::system_clock::time_point now) override {
    int64_t cutoff =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch())
            .count() -
        opts_.upload_expiry.count();
    std::vector<std::string> expired;
    {
      std::string prefix(1, keys::kUploadKind);
      auto it = index_->NewIterator(prefix);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
           it->Next()) {
        UploadRecord rec;
        std::string id = std::string(it->key()).substr(1);
        if (!UploadRecord::Decode(it->value(), &rec)) {
          expired.push_back(id);
          continue;
        }
        // Last activity: creation, or the last write to the spool.
        int64_t active = rec.updated;
        auto spool = bytes_->OpenSpool(SpoolKeyForSession(id));
        if (spool.ok())
          active = std::max<int64_t>(active, (*spool)->modified_unix());
        else if (spool.status().code() != Code::kNotFound)
          continue;  // cannot tell (the object store is unreachable): keep
        if (active < cutoff) expired.push_back(id);
      }
      RETURN_IF_ERROR(IndexError(it->status(), "scan uploads"));
    }
    size_t removed = 0;
    for (const auto& id : expired) {
      {
        MutexLock l(&sessions_mu_);
        auto& st = sessions_[id];
        if (st.busy) continue;
        st.busy = true;
      }
      auto held = HoldSession(id);  // another process may be writing to it
      Status s = held.ok() ? RemoveSession(id) : Status::Ok();
      {
        MutexLock l(&sessions_mu_);
        sessions_.erase(id);
      }
      RETURN_IF_ERROR(s);
      if (held.ok()) ++removed;
    }
    if (index_->Shared()) RETURN_IF_ERROR(SweepShared(cutoff));
    return removed;
  }

  // With a shared index, what recovery at open does for one process: stray
  // spools (no session record) idle since before the cutoff are removed
  // (another process's ingest in flight keeps writing to its spool), and
  // sessions that ended in another process leave this one's counts.
  Status SweepShared(int64_t cutoff) {
    std::set<std::string> live;
    {
      std::string up(1, keys::kUploadKind);
      auto it = index_->NewIterator(up);
      for (it->Seek(up); it->Valid(); it->Next())
        live.insert(SpoolKeyForSession(std::string(it->key()).substr(1)));
      RETURN_IF_ERROR(IndexError(it->status(), "scan uploads"));
    }
    ASSIGN_OR_RETURN(auto spools, bytes_->ListSpools());
    for (const auto& key : spools) {
      if (live.count(key)) continue;
      auto spool = bytes_->OpenSpool(key);
      if (!spool.ok() || (*spool)->modified_unix() >= cutoff) continue;
      spool->reset();
      bytes_->RemoveSpool(key).IgnoreError();
    }
    std::vector<std::string> ended;
    {
      MutexLock l(&uploads_mu_);
      for (const auto& [id, repo] : upload_repo_)
        if (!live.count(SpoolKeyForSession(id))) ended.push_back(id);
    }
    for (const auto& id : ended) {
      {
        MutexLock l(&sessions_mu_);
        auto it = sessions_.find(id);
        if (it != sessions_.end() && it->second.busy) continue;
      }
      ForgetUpload(id);
    }
    return Status::Ok();
  }

  // --- BlobAdmin ---
  Result<std::vector<Digest>> ListUnreferencedBlobs(size_t limit) override {
    std::vector<Digest> out;
    std::string prefix(1, keys::kUnreferencedKind);
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix);
         it->Valid() && it->key().starts_with(prefix) && out.size() < limit;
         it->Next()) {
      auto d = Digest::Parse(it->key().substr(1));
      if (d.ok()) out.push_back(*d);
    }
    RETURN_IF_ERROR(IndexError(it->status(), "scan unreferenced"));
    return out;
  }

  Status DeleteBlob(const Digest& d) override {
    ASSIGN_OR_RETURN(Held dl, LockStripes({d}));
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      BlobRecord r;
      RETURN_IF_ERROR(GetBlobRecord(d, &r));
      if (r.refs > 0)
        return FailedPrecondition(d.str() + " is linked in " +
                                  std::to_string(r.refs) + " repositories");
      IndexBatch b;
      b.Delete(keys::Blob(d));
      b.Delete(keys::Unreferenced(d));
      b.Delete(keys::Inline(d));
      RETURN_IF_ERROR(Written(index_->Write(b), "delete blob record"));
      CountBlobs(-1, -static_cast<int64_t>(r.size));
    }
    RETURN_IF_ERROR(Durable());
    // The record is gone, so the bytes are unreachable; remove them after
    // the metadata lock is released.
    return bytes_->Remove(d);
  }

  Status WalkBlobs(const std::function<void(const BlobInfo&)>& fn) override {
    std::string prefix(1, keys::kBlobKind);
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      auto d = Digest::Parse(it->key().substr(1));
      BlobRecord r;
      if (!d.ok() || !BlobRecord::Decode(it->value(), &r))
        return Internal("corrupt blob record");
      fn(BlobInfo{*d, r.size, r.refs});
    }
    return IndexError(it->status(), "walk blobs");
  }

  // --- RepositoryIndex ---
  Status LinkBlob(const std::string& repo, const Digest& d) override {
    RETURN_IF_ERROR(CheckSpace());
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      IndexBatch b;
      RETURN_IF_ERROR(LinkLocked(repo, d, nullptr, &b));
      RETURN_IF_ERROR(Written(index_->Write(b), "link blob"));
    }
    return Durable();
  }

  Status UnlinkBlob(const std::string& repo, const Digest& d) override {
    RETURN_IF_ERROR(UnlinkLocked(repo, d));
    return Durable();
  }

  Status UnlinkLocked(const std::string& repo, const Digest& d) {
    ASSIGN_OR_RETURN(Held l, LockMeta());
    if (!Exists(keys::Link(repo, d)))
      return NotFound(d.str() + " is not linked in " + repo);
    IndexBatch b;
    StageUnlink(repo, d, NowMicros(), &b);
    return Written(index_->Write(b), "unlink blob");
  }

  // REQUIRES: meta_mu_ held, the link exists. Adds to b the link's removal
  // and the blob's lower count; at zero the blob is unreferenced since
  // `since` (microseconds).
  void StageUnlink(const std::string& repo, const Digest& d, int64_t since,
                   IndexBatch* b) {
    BlobRecord r;
    b->Delete(keys::Link(repo, d));
    if (!GetBlobRecord(d, &r).ok()) return;
    if (r.refs > 0) --r.refs;
    b->Put(keys::Blob(d), r.Encode());
    if (r.refs == 0) b->Put(keys::Unreferenced(d), TimeValue(since));
  }

  // REQUIRES: meta_mu_ held. Stages the unlink if the link was last touched
  // before the cutoff: kNotFound if not linked, kFailedPrecondition if
  // touched since.
  Status StageUnlinkIfIdle(const std::string& repo, const Digest& d,
                           int64_t cutoff, IndexBatch* b) {
    std::string v;
    if (!index_->Get(keys::Link(repo, d), &v).ok())
      return NotFound(d.str() + " is not linked in " + repo);
    int64_t touched = ParseTime(v);
    if (touched >= cutoff)
      return FailedPrecondition(d.str() + " was touched since the cutoff");
    // Unreferenced since its last link was last touched.
    StageUnlink(repo, d, touched, b);
    return Status::Ok();
  }

  // REQUIRES: d's stripe lock and meta_mu_ held. Stages the deletion of
  // the blob's record if it has been unreferenced since before the cutoff
  // (*size: its bytes): kNotFound if absent, kFailedPrecondition if linked
  // or touched since.
  Status StageDeleteIfIdle(const Digest& d, int64_t cutoff, IndexBatch* b,
                           BlobRecord* r) {
    RETURN_IF_ERROR(GetBlobRecord(d, r));
    std::string z;
    if (r->refs > 0 || !index_->Get(keys::Unreferenced(d), &z).ok())
      return FailedPrecondition(d.str() + " is linked");
    if (ParseTime(z) >= cutoff)
      return FailedPrecondition(d.str() + " was touched since the cutoff");
    b->Delete(keys::Blob(d));
    b->Delete(keys::Unreferenced(d));
    b->Delete(keys::Inline(d));
    return Status::Ok();
  }

  // Locks held by one request: in-process mutexes and, with a shared
  // index, the index locks of the same keys (other processes' holders).
  class Held {
   public:
    Held() = default;
    Held(Held&&) = default;
    Held& operator=(Held&&) = default;
    ~Held() { Release(); }
    void Release() {
      index_lock_.reset();  // other processes first, then this one's threads
      mutexes_.clear();
    }

   private:
    friend class IndexStore;
    std::vector<std::unique_lock<std::mutex>> mutexes_;
    std::unique_ptr<IndexLock> index_lock_;
  };

  // Index lock keys: one for the metadata lock, one per digest stripe, one
  // per upload session (top nibble 7) and one per queue (top nibble 5):
  // never each other's or the meta's (top nibble 6).
  // REQUIRES: ValidUploadId(id) (32 random hex digits).
  static uint64_t SessionLockKey(const std::string& id) {
    return 0x7000000000000000ull | std::stoull(id.substr(0, 15), nullptr, 16);
  }

  // With a shared index, the session's cross-process lock (null without
  // one): kUnavailable while another process writes to the session.
  Result<std::unique_ptr<IndexLock>> HoldSession(const std::string& id) {
    if (!index_->Shared() || !ValidUploadId(id))
      return std::unique_ptr<IndexLock>();
    auto l = index_->TryLock(SessionLockKey(id));
    if (l.ok()) return l;
    if (l.status().code() == Code::kUnavailable)
      return Unavailable("upload " + id + " is in use by another request");
    return IndexError(l.status(), "lock upload " + id);
  }
  static constexpr uint64_t kLockBase = 0x6f636962ull << 32;  // "ocib"
  static constexpr uint64_t kMetaLockKey = kLockBase;
  static constexpr uint64_t kCollectorLockKey = kLockBase + 0x8000;
  static uint64_t StripeLockKey(size_t stripe) {
    return kLockBase + 1 + stripe;
  }

  // The metadata lock (see meta_mu_).
  Result<Held> LockMeta() {
    Held h;
    h.mutexes_.emplace_back(meta_mu_);
    if (index_->Shared()) {
      auto l = index_->Lock({kMetaLockKey});
      if (!l.ok()) return IndexError(l.status(), "lock the index");
      h.index_lock_ = std::move(*l);
    }
    return h;
  }

  // The stripe locks of ds, in ascending order (no deadlock with a
  // committer, which holds one); taken before the metadata lock.
  Result<Held> LockStripes(const std::vector<Digest>& ds) {
    std::vector<size_t> stripes;
    for (const auto& d : ds) stripes.push_back(StripeOf(d));
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    Held h;
    for (size_t s : stripes) h.mutexes_.emplace_back(digest_locks_[s]);
    if (index_->Shared()) {
      std::vector<uint64_t> keys;
      for (size_t s : stripes) keys.push_back(StripeLockKey(s));
      auto l = index_->Lock(std::move(keys));
      if (!l.ok()) return IndexError(l.status(), "lock the index");
      h.index_lock_ = std::move(*l);
    }
    return h;
  }

  // After the records of `gone` were deleted, with no stripe lock held:
  // makes the deletions durable, then removes the bytes, save where the
  // same content was committed again meanwhile (its new record or promote
  // intent keeps them). Returns their size. Leftovers: RemoveOrphanBytes.
  Result<uint64_t> RemoveBytesOf(
      const std::vector<std::pair<Digest, BlobRecord>>& gone) {
    // Records before bytes. With no file to remove there is nothing to
    // order: a batch lost to a crash only brings garbage back for the
    // next run, and requests do not wait behind a sync of ours.
    if (std::any_of(gone.begin(), gone.end(),
                    [](const auto& g) { return g.second.may_have_file(); }))
      RETURN_IF_ERROR(Durable());
    uint64_t bytes = 0;
    for (const auto& [d, r] : gone) {
      bytes += r.size;
      if (!r.may_have_file()) continue;  // went with its record
      ASSIGN_OR_RETURN(Held dl, LockStripes({d}));
      if (Exists(keys::Blob(d)) || Exists(keys::Pending(d))) continue;
      bytes_->Remove(d).IgnoreError();
    }
    return bytes;
  }

  Result<BlobInfo> StatLinkedBlob(const std::string& repo,
                                  const Digest& d) override {
    if (!Exists(keys::Link(repo, d)))
      return NotFound(d.str() + " is not linked in " + repo);
    return StatBlob(d);
  }

  Status PutManifest(const std::string& repo, const ManifestRecord& m,
                     const std::string& tag,
                     const std::vector<Digest>& required_blobs,
                     const std::vector<Digest>& required_manifests) override {
    RETURN_IF_ERROR(CheckSpace());
    RETURN_IF_ERROR(
        PutManifestLocked(repo, m, tag, required_blobs, required_manifests));
    return Durable();
  }

  Status PutManifestLocked(const std::string& repo, const ManifestRecord& m,
                           const std::string& tag,
                           const std::vector<Digest>& required_blobs,
                           const std::vector<Digest>& required_manifests) {
    ASSIGN_OR_RETURN(Held l, LockMeta());
    for (const auto& d : required_blobs)
      if (!Exists(keys::Link(repo, d))) return NotFound(d.str());
    for (const auto& d : required_manifests)
      if (!Exists(keys::Manifest(repo, d))) return NotFound(d.str());
    // Everything this manifest depends on is touched with it, so a
    // collector's earlier decision cannot remove it (see blob_store.h).
    const int64_t now = NowMicros();
    IndexBatch b;
    for (const auto& d : required_blobs)
      b.Put(keys::Link(repo, d), TimeValue(now));
    std::vector<Digest> touched = required_manifests;
    if (m.subject) touched.push_back(*m.subject);
    for (const auto& d : touched) {
      if (d == m.digest) continue;
      std::string v;
      if (!index_->Get(keys::Manifest(repo, d), &v).ok()) continue;
      ASSIGN_OR_RETURN(ManifestRecord child, DecodeManifest(d, v));
      child.touched_micros = now;
      b.Put(keys::Manifest(repo, d), EncodeManifest(child));
    }
    ManifestRecord stored = m;
    stored.touched_micros = now;
    b.Put(keys::Manifest(repo, m.digest), EncodeManifest(stored));
    if (!tag.empty()) {
      b.Put(keys::Tag(repo, tag), m.digest.str());
      b.Put(keys::TagTime(repo, tag), TimeValue(now));
    }
    if (m.subject)
      b.Put(keys::Referrer(repo, *m.subject, m.digest), EncodeReferrer(m));
    b.Put(keys::Repo(repo), "");
    return Written(index_->Write(b), "put manifest");
  }

  Result<ManifestRecord> GetManifest(const std::string& repo,
                                     const Digest& d) override {
    std::string v;
    auto s = index_->Get(keys::Manifest(repo, d), &v);
    if (s.code() == Code::kNotFound)
      return NotFound("manifest " + d.str() + " not in " + repo);
    RETURN_IF_ERROR(IndexError(s, "get manifest"));
    return DecodeManifest(d, v);
  }

  Result<Digest> ResolveTag(const std::string& repo,
                            const std::string& tag) override {
    std::string v;
    auto s = index_->Get(keys::Tag(repo, tag), &v);
    if (s.code() == Code::kNotFound)
      return NotFound("tag " + tag + " not in " + repo);
    RETURN_IF_ERROR(IndexError(s, "get tag"));
    return Digest::Parse(v);
  }

  Status DeleteManifest(const std::string& repo, const Digest& d) override {
    RETURN_IF_ERROR(DeleteManifestLocked(repo, d));
    return Durable();
  }

  Status DeleteManifestLocked(const std::string& repo, const Digest& d) {
    ASSIGN_OR_RETURN(Held l, LockMeta());
    std::string v;
    auto s = index_->Get(keys::Manifest(repo, d), &v);
    if (s.code() == Code::kNotFound)
      return NotFound("manifest " + d.str() + " not in " + repo);
    RETURN_IF_ERROR(IndexError(s, "get manifest"));
    ASSIGN_OR_RETURN(ManifestRecord m, DecodeManifest(d, v));
    IndexBatch b;
    b.Delete(keys::Manifest(repo, d));
    if (m.subject) b.Delete(keys::Referrer(repo, *m.subject, d));
    std::string prefix = keys::TagPrefix(repo);
    std::string digest_text = d.str();
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      if (it->value() == digest_text) {
        b.Delete(it->key());
        std::string time_key = std::string(it->key());
        time_key[0] = 'T';
        b.Delete(time_key);
      }
    }
    RETURN_IF_ERROR(IndexError(it->status(), "scan tags"));
    return Written(index_->Write(b), "delete manifest");
  }

  Status DeleteTag(const std::string& repo, const std::string& tag) override {
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      if (!Exists(keys::Tag(repo, tag)))
        return NotFound("tag " + tag + " not in " + repo);
      IndexBatch b;
      b.Delete(keys::Tag(repo, tag));
      b.Delete(keys::TagTime(repo, tag));
      RETURN_IF_ERROR(Written(index_->Write(b), "delete tag"));
    }
    return Durable();
  }

  Status DeleteTagIfUnchanged(const std::string& repo, const std::string& tag,
                              const Digest& d, int64_t pushed) override {
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      std::string v, t;
      if (!index_->Get(keys::Tag(repo, tag), &v).ok())
        return NotFound("tag " + tag + " not in " + repo);
      bool timed = index_->Get(keys::TagTime(repo, tag), &t).ok();
      if (v != d.str() || (timed ? ParseTime(t) : 0) != pushed)
        return FailedPrecondition("tag " + tag + " was pushed again");
      IndexBatch b;
      b.Delete(keys::Tag(repo, tag));
      b.Delete(keys::TagTime(repo, tag));
      RETURN_IF_ERROR(Written(index_->Write(b), "delete tag"));
    }
    return Durable();
  }

  Result<Page> ListTags(const std::string& repo, size_t n,
                        const std::string& last) override {
    return List(keys::TagPrefix(repo), n, last);
  }

  Result<Page> ListRepositories(size_t n, const std::string& last) override {
    return List(std::string(1, keys::kRepoKind), n, last);
  }

  bool RepositoryExists(const std::string& repo) override {
    return Exists(keys::Repo(repo));
  }

  Result<std::vector<ReferrerRecord>> ListReferrers(
      const std::string& repo, const Digest& subject) override {
    std::vector<ReferrerRecord> out;
    std::string prefix = keys::ReferrerPrefix(repo, subject);
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      auto d = Digest::Parse(it->key().substr(prefix.size()));
      if (!d.ok()) return Internal("corrupt referrer key");
      ReferrerRecord r;
      r.digest = *d;
      keys::Decoder dec(it->value());
      if (!dec.Str(&r.media_type) || !dec.U64(&r.size) ||
          !dec.Str(&r.artifact_type) || !DecodeAnnotations(dec, &r.annotations))
        return Internal("corrupt referrer record");
      out.push_back(std::move(r));
    }
    RETURN_IF_ERROR(IndexError(it->status(), "scan referrers"));
    return out;
  }

  // --- for a garbage collector ---
  Status WalkUnreferenced(
      const std::function<void(const Digest&, int64_t)>& fn) override {
    std::string prefix(1, keys::kUnreferencedKind);
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      auto d = Digest::Parse(it->key().substr(1));
      if (d.ok()) fn(*d, ParseTime(it->value()));
    }
    return IndexError(it->status(), "scan unreferenced");
  }

  Status DeleteBlobIfIdle(const Digest& d, int64_t cutoff) override {
    ASSIGN_OR_RETURN(Held dl, LockStripes({d}));
    BlobRecord r;
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      IndexBatch b;
      RETURN_IF_ERROR(StageDeleteIfIdle(d, cutoff, &b, &r));
      RETURN_IF_ERROR(Written(index_->Write(b), "delete blob record"));
      CountBlobs(-1, -static_cast<int64_t>(r.size));
    }
    RETURN_IF_ERROR(Durable());
    // Record first, then bytes: a crash in between leaves orphan bytes,
    // which RemoveOrphanBytes finds, never a record without bytes.
    return r.may_have_file() ? bytes_->Remove(d) : Status::Ok();
  }

  Result<std::pair<uint64_t, uint64_t>> DeleteBlobsIfIdle(
      const std::vector<Digest>& ds, int64_t cutoff) override {
    ASSIGN_OR_RETURN(Held held, LockStripes(ds));
    std::vector<std::pair<Digest, BlobRecord>> gone;
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      IndexBatch b;
      for (const auto& d : ds) {
        BlobRecord r;
        if (StageDeleteIfIdle(d, cutoff, &b, &r).ok()) gone.emplace_back(d, r);
      }
      if (gone.empty()) return std::make_pair(uint64_t{0}, uint64_t{0});
      RETURN_IF_ERROR(Written(index_->Write(b), "delete blob records"));
      for (const auto& [d, r] : gone)
        CountBlobs(-1, -static_cast<int64_t>(r.size));
    }
    // Committers wait on these locks: release them before the sync.
    held.Release();
    ASSIGN_OR_RETURN(uint64_t bytes, RemoveBytesOf(gone));
    return std::make_pair(static_cast<uint64_t>(gone.size()), bytes);
  }

  Result<UnlinkCount> UnlinkManyIfIdle(const std::string& repo,
                                       const std::vector<Digest>& ds,
                                       int64_t cutoff) override {
    // A blob losing its last link here has been unreferenced since that
    // link's touch, before the cutoff: it is deleted in the same batch
    // (one pass instead of a later DeleteBlobsIfIdle), under its stripe
    // lock as any deletion.
    ASSIGN_OR_RETURN(Held held, LockStripes(ds));
    UnlinkCount n;
    std::vector<std::pair<Digest, BlobRecord>> gone;
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      IndexBatch b;
      for (const auto& d : ds) {
        std::string v;
        if (!index_->Get(keys::Link(repo, d), &v).ok()) continue;
        int64_t touched = ParseTime(v);
        if (touched >= cutoff) continue;  // linked again since
        ++n.links;
        b.Delete(keys::Link(repo, d));
        BlobRecord r;
        if (!GetBlobRecord(d, &r).ok()) continue;
        if (r.refs > 1) {
          --r.refs;
          b.Put(keys::Blob(d), r.Encode());
          continue;
        }
        b.Delete(keys::Blob(d));
        b.Delete(keys::Inline(d));
        b.Delete(keys::Unreferenced(d));
        gone.emplace_back(d, r);
      }
      if (n.links == 0) return n;
      RETURN_IF_ERROR(Written(index_->Write(b), "unlink blobs"));
      for (const auto& [d, r] : gone)
        CountBlobs(-1, -static_cast<int64_t>(r.size));
    }
    held.Release();
    n.blobs = gone.size();
    ASSIGN_OR_RETURN(n.bytes, RemoveBytesOf(gone));
    return n;
  }

  Result<StoreStats> Stats() override {
    StoreStats out;
    {
      MutexLock sl(&stats_mu_);
      if (!counted_) {
        // One walk of a snapshot, taken with the deltas of that moment.
        std::unique_ptr<IndexSnapshot> snap;
        int64_t n0, b0;
        {
          ASSIGN_OR_RETURN(Held l, LockMeta());
          ASSIGN_OR_RETURN(snap, index_->GetSnapshot());
          n0 = blob_delta_;
          b0 = blob_bytes_delta_;
        }
        int64_t n = 0, bytes = 0;
        std::string prefix(1, keys::kBlobKind);
        auto it = index_->NewIterator(prefix, snap.get());
        for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
             it->Next()) {
          BlobRecord r;
          if (!BlobRecord::Decode(it->value(), &r)) continue;
          ++n;
          bytes += static_cast<int64_t>(r.size);
        }
        Status st = IndexError(it->status(), "count blobs");
        it.reset();
        snap.reset();
        RETURN_IF_ERROR(st);
        blob_base_ = n - n0;
        blob_bytes_base_ = bytes - b0;
        counted_ = true;
      }
      ASSIGN_OR_RETURN(Held l, LockMeta());
      out.blobs =
          static_cast<uint64_t>(std::max<int64_t>(0, blob_base_ + blob_delta_));
      out.blob_bytes = static_cast<uint64_t>(
          std::max<int64_t>(0, blob_bytes_base_ + blob_bytes_delta_));
    }
    {
      MutexLock l(&uploads_mu_);
      out.uploads_open = upload_repo_.size();
    }
    out.database_bytes += index_->SizeBytes();
    return out;
  }

  Status ProbeWritable() override {
    if (opts_.read_only) return FailedPrecondition("opened read-only");
    RETURN_IF_ERROR(CheckSpace());
    return Written(PutOne(keys::Probe(), TimeValue(NowMicros())),
                   "readiness probe");
  }

  Result<std::pair<uint64_t, uint64_t>> RemoveOrphanBytes() override {
    uint64_t n = 0, bytes = 0;
    std::vector<Digest> all;
    RETURN_IF_ERROR(bytes_->ListBlobs(&all));
    for (const Digest& d : all) {
      ASSIGN_OR_RETURN(Held dl, LockStripes({d}));
      if (Exists(keys::Blob(d)) || Exists(keys::Pending(d))) continue;
      auto h = bytes_->Open(d);
      uint64_t size = h.ok() ? (*h)->size() : 0;
      h = Status(Code::kNotFound, "");
      if (bytes_->Remove(d).ok()) {
        ++n;
        bytes += size;
      }
    }
    return std::make_pair(n, bytes);
  }

  class IndexLease : public StoreLease {
   public:
    explicit IndexLease(std::unique_ptr<IndexLock> l) : lock_(std::move(l)) {}

   private:
    std::unique_ptr<IndexLock> lock_;
  };

  Result<std::unique_ptr<StoreLease>> Lease(uint64_t key, const char* what) {
    std::unique_ptr<IndexLock> l;
    if (index_->Shared()) {
      auto held = index_->TryLock(key);
      if (!held.ok()) {
        if (held.status().code() == Code::kUnavailable)
          return Unavailable(std::string("another process is ") + what);
        return IndexError(held.status(), "lock the index");
      }
      l = std::move(*held);
    }
    return std::unique_ptr<StoreLease>(new IndexLease(std::move(l)));
  }

  Result<std::unique_ptr<StoreLease>> HoldCollector() override {
    return Lease(kCollectorLockKey, "collecting garbage");
  }

  Result<std::unique_ptr<StoreLease>> HoldQueue(
      const std::string& queue) override {
    // FNV-1a of the name: stable across processes and builds.
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : queue) h = (h ^ c) * 1099511628211ull;
    return Lease(0x5000000000000000ull | (h & 0x0fffffffffffffffull),
                 "delivering this queue");
  }

  // --- DurableQueues ---
  Status Append(const std::vector<std::pair<std::string, std::string>>& entries)
      override {
    if (entries.empty()) return Status::Ok();
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      // With a shared index other processes append too: read again.
      if (queue_seq_ == 0 || index_->Shared()) {
        // The next sequence number: past every entry of every queue.
        std::string qp(1, keys::kQueueKind);
        auto it = index_->NewIterator(qp);
        uint64_t last = 0;
        for (it->Seek(qp); it->Valid(); it->Next()) {
          std::string_view k = it->key();
          if (k.size() < 9) continue;
          uint64_t seq = 0;
          for (size_t i = k.size() - 8; i < k.size(); ++i)
            seq = (seq << 8) | static_cast<unsigned char>(k[i]);
          last = std::max(last, seq);
        }
        RETURN_IF_ERROR(IndexError(it->status(), "scan queues"));
        queue_seq_ = std::max(queue_seq_, last + 1);
      }
      IndexBatch b;
      for (const auto& [q, payload] : entries)
        b.Put(keys::QueueEntry(q, queue_seq_++), payload);
      RETURN_IF_ERROR(Written(index_->Write(b), "queue entries"));
    }
    return Durable();
  }

  Result<std::vector<QueueEntry>> Peek(const std::string& queue,
                                       size_t max) override {
    std::vector<QueueEntry> out;
    std::string prefix = keys::QueuePrefix(queue);
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix);
         it->Valid() && it->key().starts_with(prefix) && out.size() < max;
         it->Next()) {
      std::string_view k = it->key().substr(prefix.size());
      if (k.size() != 8) continue;
      QueueEntry e;
      for (char c : k) e.seq = (e.seq << 8) | static_cast<unsigned char>(c);
      e.payload = std::string(it->value());
      out.push_back(std::move(e));
    }
    RETURN_IF_ERROR(IndexError(it->status(), "read queue"));
    return out;
  }

  Status Ack(const std::string& queue, uint64_t through) override {
    IndexBatch b;
    std::string prefix = keys::QueuePrefix(queue);
    std::string end = keys::QueueEntry(queue, through);
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) &&
                           it->key().compare(end) <= 0;
         it->Next())
      b.Delete(it->key());
    RETURN_IF_ERROR(IndexError(it->status(), "read queue"));
    if (b.Count() == 0) return Status::Ok();
    RETURN_IF_ERROR(Written(index_->Write(b), "acknowledge queue entries"));
    return Durable();
  }

  Result<uint64_t> QueueLength(const std::string& queue) override {
    uint64_t n = 0;
    std::string prefix = keys::QueuePrefix(queue);
    auto it = index_->NewIterator(prefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next())
      ++n;
    RETURN_IF_ERROR(IndexError(it->status(), "count queue"));
    return n;
  }

  Result<RepositoryContents> ReadRepository(const std::string& repo) override {
    std::unique_ptr<IndexSnapshot> snap;
    {
      // Taken under the metadata lock: a manifest PUT is wholly in it or
      // stamps its touches after it.
      ASSIGN_OR_RETURN(Held l, LockMeta());
      ASSIGN_OR_RETURN(snap, index_->GetSnapshot());
    }
    RepositoryContents out;
    RETURN_IF_ERROR(ReadRepositoryAt(*snap, repo, &out));
    return out;
  }

  Status ReadRepositoryAt(const IndexSnapshot& snap, const std::string& repo,
                          RepositoryContents* out) {
    auto scan = [&](const std::string& prefix, auto&& fn) -> Status {
      auto it = index_->NewIterator(prefix, &snap);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
           it->Next()) {
        auto key = it->key().substr(prefix.size());
        RETURN_IF_ERROR(fn(key, it->value()));
      }
      return IndexError(it->status(), "read repository");
    };
    RETURN_IF_ERROR(scan(keys::LinkPrefix(repo), [&](auto k, auto v) {
      auto d = Digest::Parse(k);
      if (!d.ok()) return Internal("corrupt link key");
      out->links.emplace_back(*d, ParseTime(v));
      return Status::Ok();
    }));
    RETURN_IF_ERROR(scan(keys::ManifestPrefix(repo), [&](auto k, auto v) {
      auto d = Digest::Parse(k);
      if (!d.ok()) return Internal("corrupt manifest key");
      auto m = DecodeManifest(*d, v);
      if (!m.ok()) return m.status();
      out->manifests.push_back(std::move(*m));
      return Status::Ok();
    }));
    RETURN_IF_ERROR(scan(keys::TagPrefix(repo), [&](auto k, auto v) {
      auto d = Digest::Parse(v);
      if (!d.ok()) return Internal("corrupt tag");
      out->tags.push_back(TagEntry{std::string(k), *d, 0});
      return Status::Ok();
    }));
    std::string tag_time_prefix = keys::TagTime(repo, "");
    size_t i = 0;
    return scan(tag_time_prefix, [&](auto k, auto v) {
      // Both scans are in tag order; a time without its tag is skipped.
      while (i < out->tags.size() && out->tags[i].name < k) ++i;
      if (i < out->tags.size() && out->tags[i].name == k)
        out->tags[i].pushed_micros = ParseTime(v);
      return Status::Ok();
    });
  }

  Status UnlinkIfIdle(const std::string& repo, const Digest& d,
                      int64_t cutoff) override {
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      IndexBatch b;
      RETURN_IF_ERROR(StageUnlinkIfIdle(repo, d, cutoff, &b));
      RETURN_IF_ERROR(Written(index_->Write(b), "unlink blob"));
    }
    return Durable();
  }

  Status DeleteManifestIfIdle(const std::string& repo, const Digest& d,
                              int64_t cutoff) override {
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      std::string v;
      auto s = index_->Get(keys::Manifest(repo, d), &v);
      if (s.code() == Code::kNotFound)
        return NotFound("manifest " + d.str() + " not in " + repo);
      RETURN_IF_ERROR(IndexError(s, "get manifest"));
      ASSIGN_OR_RETURN(ManifestRecord m, DecodeManifest(d, v));
      if (m.touched_micros >= cutoff)
        return FailedPrecondition(d.str() + " was touched since the cutoff");
      std::string prefix = keys::TagPrefix(repo), text = d.str();
      auto it = index_->NewIterator(prefix);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
           it->Next())
        if (it->value() == text)
          return FailedPrecondition(d.str() + " is tagged");
      RETURN_IF_ERROR(IndexError(it->status(), "scan tags"));
      IndexBatch b;
      b.Delete(keys::Manifest(repo, d));
      if (m.subject) b.Delete(keys::Referrer(repo, *m.subject, d));
      RETURN_IF_ERROR(Written(index_->Write(b), "delete manifest"));
    }
    return Durable();
  }

  Status RemoveRepositoryIfEmpty(const std::string& repo) override {
    {
      ASSIGN_OR_RETURN(Held l, LockMeta());
      for (const std::string& prefix :
           {keys::LinkPrefix(repo), keys::TagPrefix(repo),
            keys::ManifestPrefix(repo)}) {
        auto it = index_->NewIterator(prefix);
        it->Seek(prefix);
        if (it->Valid() && it->key().starts_with(prefix))
          return FailedPrecondition(repo + " is not empty");
      }
      RETURN_IF_ERROR(
          Written(DeleteOne(keys::Repo(repo)), "remove repository"));
    }
    return Durable();
  }

  // --- used by Writer ---
  Result<BlobInfo> CommitWriter(Writer& w, const Digest& expected,
                                std::optional<uint64_t> expected_size,
                                const std::string& link_repo) {
    w.WaitHash();
    RETURN_IF_ERROR(CheckSpace());
    uint64_t size = w.offset();
    if (expected_size && *expected_size != size) {
      DiscardWriter(w);
      return Status(Code::kSizeMismatch, "blob has " + std::to_string(size) +
                                             " bytes, expected " +
                                             std::to_string(*expected_size));
    }
    // No more appends: every byte becomes readable (an object store
    // completes its multipart upload).
    if (w.spool_) {
      Status s = w.spool_->Seal();
      if (!s.ok()) return FailCommit(w, s);
    }
    Digest actual = Digest::Of("");
    if (w.hash_valid_ && w.hashed_ == size &&
        w.hasher_.algorithm() == expected.algorithm()) {
      actual = w.hasher_.Finish();
      w.hash_valid_ = false;  // consumed: a retried commit hashes again
    } else if (!w.spool_) {
      Hasher h(expected.algorithm());
      h.Update(w.inline_buf_.get(), size);
      actual = h.Finish();
    } else {
      auto h = HashSpool(*w.spool_, expected.algorithm());
      if (!h.ok()) return FailCommit(w, h.status());
      actual = h->Finish();
    }
    if (actual != expected) {
      DiscardWriter(w);
      return Status(Code::kDigestMismatch, "content hashes to " + actual.str() +
                                               ", not " + expected.str());
    }
    // The spool stays open until the writer goes, so ReadAt keeps working
    // during and after the commit; renaming an open file is fine.
    ASSIGN_OR_RETURN(Held dl, LockStripes({expected}));
    BlobRecord existing;
    bool exists = GetBlobRecord(expected, &existing).ok();
    const bool in_db = !w.spool_;  // small: the bytes go in the commit batch
    if (!exists && !in_db) {
      // The WAL is sequential: the synced commit batch below makes this
      // intent durable too; losing it in between only leaves unreachable
      // bytes, never a visible half blob.
      RETURN_IF_ERROR(
          Written(PutOne(keys::Pending(expected), ""), "write promote intent"));
      Status s = bytes_->Promote(w.spool_key_, expected);
      // The bytes are made durable after the rename and before the record:
      // on a journalling file system the directory sync has then already
      // committed them, and the file sync finds little left to do. Until
      // the record is written nothing points at the file.
      if (s.ok() && opts_.sync) s = w.spool_->Sync();
      if (!s.ok()) return FailCommit(w, s);
    }
    ASSIGN_OR_RETURN(Held l, LockMeta());
    IndexBatch b;
    BlobRecord r;
    if (exists) {
      GetBlobRecord(expected, &r).IgnoreError();  // refs may have changed
    } else {
      r.size = size;
      r.placement = in_db ? BlobRecord::kInline : BlobRecord::kFile;
      b.Put(keys::Blob(expected), r.Encode());
      if (in_db)
        b.Put(keys::Inline(expected),
              std::string_view(size == 0 ? "" : w.inline_buf_.get(), size));
      b.Put(keys::Unreferenced(expected), TimeValue(NowMicros()));
      b.Delete(keys::Pending(expected));
    }
    if (exists && r.refs == 0 && link_repo.empty())  // uploaded again: touched
      b.Put(keys::Unreferenced(expected), TimeValue(NowMicros()));
    if (!link_repo.empty())
      RETURN_IF_ERROR(LinkLocked(link_repo, expected, &r, &b));
    if (!w.session_id_.empty()) {
      b.Delete(keys::Upload(w.session_id_));
      if (index_->Shared()) b.Delete(keys::HashState(w.session_id_));
    }
    RETURN_IF_ERROR(Written(index_->Write(b), "commit blob"));
    if (!exists) CountBlobs(1, static_cast<int64_t>(size));
    l.Release();
    RETURN_IF_ERROR(Durable());
    if (exists) bytes_->RemoveSpool(w.spool_key_).IgnoreError();
    w.done_ = true;
    if (!w.session_id_.empty()) {
      {
        MutexLock sl(&sessions_mu_);
        sessions_.erase(w.session_id_);
      }
      ForgetUpload(w.session_id_);
    }
    return BlobInfo{expected, r.size, r.refs};
  }

  // Makes every metadata write so far durable (when opts_.sync). Called
  // after releasing meta_mu_: a WAL sync covers all earlier writes, so
  // concurrent committers share syncs.
  Status Durable() {
    if (!opts_.sync) return Status::Ok();
    return Written(index_->Sync(), "sync the index");
  }

  // Called when a Writer is destroyed without a successful commit.
  void CloseWriter(Writer& w) {
    w.WaitHash();
    if (w.done_) return;
    if (w.session_id_.empty()) {
      w.spool_.reset();
      bytes_->RemoveSpool(w.spool_key_).IgnoreError();
      return;
    }
    // Bytes still in memory go to a spool file, so the session resumes.
    if (!w.spool_ && w.inline_size_ > 0 && !w.Materialize().ok()) {
      Release(w.session_id_, std::nullopt, 0);
      return;
    }
    // Bytes a backend still holds in memory go to where another writer
    // (or process) finds them; if that fails, the session keeps what was
    // stored and its hash is rebuilt from those bytes.
    if (w.spool_ && !w.spool_->Flush().ok()) {
      Release(w.session_id_, std::nullopt, 0);
      return;
    }
    // No metadata write here: the spool's modification time records the
    // session's last activity (see LastActivity).
    w.WaitHash();
    uint64_t size = w.offset();
    // With a shared index the next request may reach another process: the
    // running hash goes with the session (else it is rebuilt at commit).
    if (index_->Shared()) {
      if (w.hash_valid_ && w.hashed_ == size)
        PutOne(keys::HashState(w.session_id_), HashStateValue(size, w.hasher_))
            .IgnoreError();
      else
        DeleteOne(keys::HashState(w.session_id_)).IgnoreError();
    }
    std::unique_ptr<SpoolFile> keep;
    if (w.spool_ && !w.spool_->CheapToReopen()) {
      w.published_.store(nullptr, std::memory_order_release);
      keep = std::move(w.spool_);
    }
    if (w.hash_valid_ && w.hashed_ == size)
      Release(w.session_id_, std::move(w.hasher_), size, std::move(keep));
    else
      Release(w.session_id_, std::nullopt, 0, std::move(keep));
  }

 private:
  // A commit that failed on the bytes' way: an unreachable object store
  // keeps the session (its spool is sealed; the client retries the PUT),
  // anything else discards it.
  Status FailCommit(Writer& w, Status s) {
    if (s.code() != Code::kUnreachable || w.session_id_.empty())
      DiscardWriter(w);
    return s;
  }

  void DiscardWriter(Writer& w) {
    w.WaitHash();
    w.done_ = true;  // the spool stays open (ReadAt) until the writer goes
    if (w.session_id_.empty()) {
      bytes_->RemoveSpool(w.spool_key_).IgnoreError();
      return;
    }
    RemoveSession(w.session_id_).IgnoreError();
    MutexLock l(&sessions_mu_);
    sessions_.erase(w.session_id_);
  }

  // Ends a request's hold on session id, keeping what the next one needs.
  void Release(const std::string& id, std::optional<Hasher> h, uint64_t hashed,
               std::unique_ptr<SpoolFile> spool = nullptr) {
    MutexLock l(&sessions_mu_);
    if (index_->Shared()) {
      // The next request may reach another process: nothing kept here.
      sessions_.erase(id);
      return;
    }
    auto& st = sessions_[id];
    st.busy = false;
    st.hasher = std::move(h);
    st.hashed = hashed;
    // Only a release with no bytes written keeps "no spool" known.
    st.no_spool = st.no_spool && hashed == 0 && !spool && st.hasher;
    st.spool = std::move(spool);
  }

  Status RemoveSession(const std::string& id) {
    IndexBatch b;
    b.Delete(keys::Upload(id));
    if (index_->Shared()) b.Delete(keys::HashState(id));
    RETURN_IF_ERROR(Written(index_->Write(b), "delete upload record"));
    ForgetUpload(id);
    return bytes_->RemoveSpool(SpoolKeyForSession(id));
  }

  // The "h" record of a session (shared index only): the bytes stored when
  // its last request ended, and the running hash over them. Present only
  // while both are known: it goes when a request makes the session's spool
  // (ForgetStoredState), so a process that died mid-request leaves none,
  // and the next request then asks the bytes themselves.
  static std::string HashStateValue(uint64_t size, const Hasher& h) {
    return keys::Encoder().U64(size).Str(h.SaveState()).out();
  }
  std::optional<std::pair<uint64_t, Hasher>> GetHashState(
      const std::string& id) {
    std::string v, state;
    uint64_t size = 0;
    Hasher h;
    if (!index_->Get(keys::HashState(id), &v).ok()) return std::nullopt;
    keys::Decoder dec(v);
    if (!dec.U64(&size) || !dec.Str(&state) || !h.LoadState(state))
      return std::nullopt;
    return std::make_pair(size, std::move(h));
  }

 public:
  // Called by a session's Writer before it makes the spool.
  Status ForgetStoredState(const std::string& session_id) {
    if (!index_->Shared() || session_id.empty()) return Status::Ok();
    return Written(DeleteOne(keys::HashState(session_id)),
                   "update upload record");
  }

 private:
  // Drops an ended session from the open-session counts.
  void ForgetUpload(const std::string& id) {
    MutexLock l(&uploads_mu_);
    auto it = upload_repo_.find(id);
    if (it == upload_repo_.end()) return;
    auto c = uploads_per_repo_.find(it->second);
    if (c != uploads_per_repo_.end() && --c->second == 0)
      uploads_per_repo_.erase(c);
    upload_repo_.erase(it);
  }

  Result<Hasher> HashSpool(SpoolFile& spool, DigestAlgorithm a) {
    Hasher h(a);
    std::vector<char> buf(1 << 20);
    uint64_t off = 0;
    while (off < spool.size()) {
      ASSIGN_OR_RETURN(size_t n, spool.ReadAt(off, buf.data(), buf.size()));
      if (n == 0) break;
      h.Update(buf.data(), n);
      off += n;
    }
    return h;
  }

  // REQUIRES: meta_mu_ held. Adds the link (if new) to b. `known` is the
  // blob record if the caller already has it (it is updated in place).
  Status LinkLocked(const std::string& repo, const Digest& d, BlobRecord* known,
                    IndexBatch* b) {
    BlobRecord r;
    if (known) {
      r = *known;
    } else {
      RETURN_IF_ERROR(GetBlobRecord(d, &r));
    }
    if (Exists(keys::Link(repo, d))) {
      b->Put(keys::Link(repo, d), TimeValue(NowMicros()));  // touched
      return Status::Ok();
    }
    ++r.refs;
    b->Put(keys::Link(repo, d), TimeValue(NowMicros()));
    b->Put(keys::Blob(d), r.Encode());
    b->Delete(keys::Unreferenced(d));
    b->Put(keys::Repo(repo), "");
    if (known) *known = r;
    return Status::Ok();
  }

  Status GetBlobRecord(const Digest& d, BlobRecord* r) {
    std::string v;
    auto s = index_->Get(keys::Blob(d), &v);
    if (s.code() == Code::kNotFound)
      return NotFound("blob " + d.str() + " not found");
    RETURN_IF_ERROR(IndexError(s, "get blob"));
    if (!BlobRecord::Decode(v, r)) return Internal("corrupt blob record");
    return Status::Ok();
  }

  Status GetUploadRecord(const std::string& id, UploadRecord* r) {
    if (!ValidUploadId(id)) return NotFound("unknown upload");
    std::string v;
    auto s = index_->Get(keys::Upload(id), &v);
    if (s.code() == Code::kNotFound) return NotFound("unknown upload " + id);
    RETURN_IF_ERROR(IndexError(s, "get upload"));
    if (!UploadRecord::Decode(v, r)) return Internal("corrupt upload record");
    return Status::Ok();
  }

  bool Exists(const std::string& key) {
    std::string v;
    return index_->Get(key, &v).ok();
  }

  Result<Page> List(const std::string& prefix, size_t n,
                    const std::string& last) {
    Page p;
    auto it = index_->NewIterator(prefix);
    it->Seek(prefix + last);
    for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string name = std::string(it->key()).substr(prefix.size());
      if (!last.empty() && name <= last) continue;
      if (n > 0 && p.items.size() == n) {
        p.more = true;
        break;
      }
      p.items.push_back(std::move(name));
    }
    RETURN_IF_ERROR(IndexError(it->status(), "list"));
    return p;
  }

  // Crash recovery, run once at open (single-threaded). With a shared
  // index, other processes' promotions and spools are in flight: nothing
  // is removed here (the collector reclaims what a crashed one left).
  Status Recover() {
    if (index_->Shared()) return Status::Ok();
    std::vector<std::string> pending;
    std::set<std::string> live_spools;
    {
      std::string pp(1, keys::kPendingKind);
      auto it = index_->NewIterator(pp);
      for (it->Seek(pp); it->Valid(); it->Next())
        pending.push_back(std::string(it->key()).substr(1));
      RETURN_IF_ERROR(IndexError(it->status(), "scan for recovery"));
    }
    {
      std::string up(1, keys::kUploadKind);
      auto it = index_->NewIterator(up);
      MutexLock l(&uploads_mu_);
      for (it->Seek(up); it->Valid(); it->Next()) {
        std::string id = std::string(it->key()).substr(1);
        live_spools.insert(SpoolKeyForSession(id));
        UploadRecord rec;
        if (UploadRecord::Decode(it->value(), &rec)) {
          ++uploads_per_repo_[rec.repo];
          upload_repo_[id] = rec.repo;
        }
      }
      RETURN_IF_ERROR(IndexError(it->status(), "scan for recovery"));
    }
    for (const auto& text : pending) {
      auto d = Digest::Parse(text);
      if (d.ok() && !Exists(keys::Blob(*d))) {
        // Bytes may have been promoted without their record: unreachable.
        RETURN_IF_ERROR(bytes_->Remove(*d));
      }
      RETURN_IF_ERROR(
          IndexError(DeleteOne(std::string(1, keys::kPendingKind) + text,
                               /*sync=*/true),
                     "clear promote intent"));
    }
    ASSIGN_OR_RETURN(auto spools, bytes_->ListSpools());
    for (const auto& key : spools)
      if (!live_spools.count(key)) RETURN_IF_ERROR(bytes_->RemoveSpool(key));
    return Status::Ok();
  }

  std::atomic<int64_t> space_checked_ms_{0};
  std::atomic<uint64_t> free_bytes_{UINT64_MAX};
  std::atomic<bool> db_error_{false};
  std::mutex resume_mu_;

  size_t StripeOf(const Digest& d) const {
    return std::hash<std::string>()(d.hex()) % digest_locks_.size();
  }

  // Constant after Open().
  const StoreOptions opts_;
  std::unique_ptr<ByteBackend> bytes_;
  std::unique_ptr<Index> index_;  // batches made durable by Durable()

  // Group commit: metadata batches are written under meta_mu_ without
  // waiting for the disk; Durable() then syncs outside the lock, and one
  // sync covers every batch written before it started.

  // Serialises metadata read-check-write sequences. Never held across
  // network I/O; lock order: stripe locks before meta_mu_ (LockMeta).
  std::mutex meta_mu_;
  // Serialises promotion of one digest against its deletion.
  // Many stripes: a collector's batch holds up to 32 (BatchSize online),
  // and a commit of another digest rarely waits for it.
  std::array<std::mutex, 1024> digest_locks_;

  // Blob records made (+) and deleted (-) since open, changed under
  // meta_mu_ with the write; Stats() adds them to one walk of a snapshot.
  void CountBlobs(int64_t n, int64_t bytes) {
    blob_delta_ += n;
    blob_bytes_delta_ += bytes;
  }
  int64_t blob_delta_ = 0, blob_bytes_delta_ = 0;  // guarded by meta_mu_
  uint64_t queue_seq_ = 0;  // next queue entry; 0: not read yet (meta_mu_)
  Mutex stats_mu_;
  bool counted_ GUARDED_BY(stats_mu_) = false;
  // The records at open: a walk's figure less the deltas at its snapshot.
  int64_t blob_base_ GUARDED_BY(stats_mu_) = 0;
  int64_t blob_bytes_base_ GUARDED_BY(stats_mu_) = 0;

  Mutex sessions_mu_;
  std::unordered_map<std::string, SessionState> sessions_
      GUARDED_BY(sessions_mu_);
  // Open upload sessions, for the caps in StoreOptions.
  Mutex uploads_mu_;
  std::unordered_map<std::string, std::string> upload_repo_
      GUARDED_BY(uploads_mu_);  // id -> repo
  std::unordered_map<std::string, size_t> uploads_per_repo_
      GUARDED_BY(uploads_mu_);
};

Writer::~Writer() { store_->CloseWriter(*this); }

Status Writer::Flush() {
  if (done_ || session_id_.empty()) return Status::Ok();
  if (!spool_) {
    // A session's bytes in memory go to a spool, as when the writer closes.
    if (inline_size_ == 0) return Status::Ok();
    RETURN_IF_ERROR(Materialize());
  }
  return spool_->Flush();
}

Status Writer::Write(const char* data, size_t n) {
  RETURN_IF_ERROR(store_->CheckSpace());
  return WriteLocal(data, n);
}

bool Writer::SpaceOk() { return store_->CheckSpace().ok(); }

Status Writer::Materialize() {
  RETURN_IF_ERROR(store_->ForgetStoredState(session_id_));
  ASSIGN_OR_RETURN(auto spool, store_->NewSpool(spool_key_));
  uint64_t n = inline_size_.load();
  if (n > 0) {
    Status s = spool->Append(inline_buf_.get(), n);
    if (!s.ok()) {
      spool.reset();
      store_->DropSpool(spool_key_);
      return s;
    }
  }
  spool_ = std::move(spool);
  published_.store(spool_.get(), std::memory_order_release);
  return Status::Ok();
}

Result<BlobInfo> Writer::Commit(const Digest& expected,
                                std::optional<uint64_t> expected_size,
                                const std::string& link_repo) {
  if (done_) return FailedPrecondition("writer already committed");
  return store_->CommitWriter(*this, expected, expected_size, link_repo);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  return OpenStore(options, nullptr);
}

Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options,
                                         std::unique_ptr<ByteBackend> bytes) {
  return OpenStore(options, std::move(bytes), nullptr);
}

Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options,
                                         std::unique_ptr<ByteBackend> bytes,
                                         std::unique_ptr<Index> index) {
  if (options.root.empty()) return InvalidArgument("store root is empty");
  std::error_code ec;
  std::filesystem::create_directories(options.root, ec);
  if (ec) return Internal("create " + options.root + ": " + ec.message());
  if (!bytes) {
    ASSIGN_OR_RETURN(bytes, NewFileBackend(options.root, options.sync,
                                           options.written_cache_bytes));
  }
  auto store =
      std::make_unique<IndexStore>(options, std::move(bytes), std::move(index));
  RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ocib
