#include "objstore/s3_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <future>
#include <map>
#include <mutex>

#include "objstore/blob_cache.h"

namespace ocib::objstore {
namespace {

constexpr uint64_t kMinPart = 5ull << 20;     // S3's smallest part
constexpr uint64_t kMaxCopy = 5ull << 30;     // S3's largest CopyObject
constexpr uint64_t kCopyPart = 512ull << 20;  // parts of a larger copy

std::string OffsetName(uint64_t off) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(off));
  return buf;
}

// What a spool's objects say about it.
struct SpoolState {
  std::string upload_id;  // empty: no multipart upload yet
  std::vector<CompletedPart> parts;
  uint64_t parts_bytes = 0;
  uint64_t tail_size = 0;  // bytes in tail-<parts_bytes>
  bool sealed = false;     // uploads/<key>/data exists
  bool sealing = false;    // Seal began (uploads/<key>/sealing): no appends
  uint64_t sealed_size = 0;
  int64_t modified = 0;
  std::vector<std::string> objects;  // every object under the spool's prefix
};

class S3Backend;

class S3Spool : public SpoolFile {
 public:
  S3Spool(S3Backend* b, std::string key, SpoolState st);
  ~S3Spool() override;

  uint64_t size() const override {
    std::lock_guard<std::mutex> l(mu_);
    return Size();
  }
  Status Append(const char* data, size_t n) override;
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override;
  Status Sync() override { return Flush(); }
  Status Flush() override;
  Status Seal() override;
  bool ReadableWhileOpen() const override { return false; }
  bool CheapToReopen() const override { return false; }
  int64_t modified_unix() const override {
    std::lock_guard<std::mutex> l(mu_);
    return st_.modified;
  }

  // For Promote: the sealed object and its size; empty if not sealed.
  std::pair<std::string, uint64_t> SealedObject() {
    std::lock_guard<std::mutex> l(mu_);
    if (!st_.sealed) return {"", 0};
    return {DataKey(), st_.sealed_size};
  }
  // For RemoveSpool: waits for a part in flight; returns the upload id.
  std::string Quiesce() {
    std::lock_guard<std::mutex> l(mu_);
    WaitInflight().IgnoreError();
    return st_.upload_id;
  }
  // Called by Promote: the bytes now live at blob_key.
  void Promoted(const std::string& blob_key) {
    std::lock_guard<std::mutex> l(mu_);
    promoted_key_ = blob_key;
  }
  const std::string& key() const { return key_; }

 private:
  uint64_t Size() const {
    return st_.sealed ? st_.sealed_size
                      : st_.parts_bytes + inflight_data_.size() +
                            (tail_loaded_ ? pending_.size() : st_.tail_size);
  }
  std::string DataKey() const;
  std::string SealingKey() const;
  std::string TailKey(uint64_t off) const;
  Status Usable() const {
    if (broken_)
      return Unreachable("spool " + key_ + " lost a part; reopen it");
    return Status::Ok();
  }
  Status EnsureUpload();
  // Reads the stored tail back into pending_ (before appending to it).
  Status LoadTail();
  // Sends pending_ as the next part in the background, once the part
  // before it is done.
  Status StartPart();
  Status WaitInflight();

  S3Backend* const b_;
  const std::string key_;
  mutable std::mutex mu_;
  SpoolState st_;
  // The bytes past the parts (and past a part in flight). When
  // tail_loaded_ is false they are only in the tail object (st_.tail_size
  // of them), so an idle spool holds no memory.
  std::string pending_;
  bool tail_loaded_ = true;
  bool tail_stored_ = false;  // pending_ equals the stored tail
  std::future<Result<std::string>> inflight_;
  std::string inflight_data_;
  std::string promoted_key_;
  // A part failed: what the bucket holds is no longer known here, so the
  // spool refuses further use and the store reopens it from the bucket.
  bool broken_ = false;
  // The local cache's copy of every byte appended (fresh spools only).
  int cache_fd_ = -1;
  std::string cache_path_;
  uint64_t cache_written_ = 0;

 public:
  // Starts the local copy (CreateSpool).
  void StartCache(BlobCache* cache) {
    cache_fd_ = cache->CreateTemp("s-" + key_, &cache_path_);
  }
  // Hands over a complete local copy (path and size) for the cache, after
  // Seal; false if there is none.
  bool TakeCache(std::string* path, uint64_t* size) {
    std::lock_guard<std::mutex> l(mu_);
    if (cache_fd_ < 0 || !st_.sealed || cache_written_ != st_.sealed_size)
      return false;
    ::close(cache_fd_);
    cache_fd_ = -1;
    *path = std::move(cache_path_);
    *size = cache_written_;
    return true;
  }

 private:
  void DropCache() {
    if (cache_fd_ < 0) return;
    ::close(cache_fd_);
    ::unlink(cache_path_.c_str());
    cache_fd_ = -1;
  }
  void CacheAppend(const char* data, size_t n) {
    while (cache_fd_ >= 0 && n > 0) {
      ssize_t w = ::write(cache_fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return DropCache();
      data += w;
      n -= w;
      cache_written_ += w;
    }
  }
};

class S3ReadHandle : public BlobReadHandle {
 public:
  S3ReadHandle(S3Client* c, std::string key, uint64_t size, BlobCache* cache,
               const Digest& d)
      : c_(c), key_(std::move(key)), size_(size), cache_(cache), d_(d) {}
  uint64_t size() const override { return size_; }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    if (offset > size_) return OutOfRange("read offset past end of blob");
    n = std::min<uint64_t>(n, size_ - offset);
    size_t got = 0;
    RETURN_IF_ERROR(c_->GetRange(key_, offset, n, [&](const char* d, size_t k) {
      if (got + k > n) return false;
      std::memcpy(buf + got, d, k);
      got += k;
      return true;
    }));
    return got;
  }
  Status StreamRange(
      uint64_t offset, uint64_t length,
      const std::function<bool(const char*, size_t)>& sink) override {
    if (offset > size_ || length > size_ - offset)
      return OutOfRange("range past end of blob");
    if (!cache_ || offset != 0 || length != size_ || size_ == 0)
      return c_->GetRange(key_, offset, length, sink);
    // A whole read also fills the local cache.
    static std::atomic<uint64_t> counter{0};
    std::string path;
    int fd = cache_->CreateTemp(
        "r-" + d_.hex() + "-" + std::to_string(counter++), &path);
    uint64_t copied = 0;
    Status s = c_->GetRange(key_, 0, size_, [&](const char* p, size_t n) {
      if (fd >= 0) {
        size_t done = 0;
        while (done < n) {
          ssize_t w = ::write(fd, p + done, n - done);
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) break;
          done += w;
        }
        copied += done;
      }
      return sink(p, n);
    });
    if (fd >= 0) {
      ::close(fd);
      if (s.ok() && copied == size_)
        cache_->Adopt(path, d_, size_);
      else
        ::unlink(path.c_str());
    }
    return s;
  }

 private:
  S3Client* c_;
  std::string key_;
  uint64_t size_;
  BlobCache* cache_;
  Digest d_;
};

class S3Backend : public ByteBackend {
 public:
  S3Backend(S3BackendOptions o, std::unique_ptr<S3Client> c,
            std::unique_ptr<BlobCache> cache)
      : o_(std::move(o)), c_(std::move(c)), cache_(std::move(cache)) {}
  ~S3Backend() override {
    // Spools must go before their store; a leaked one (a crash stand-in in
    // tests) must not write through a destroyed client.
    std::lock_guard<std::mutex> l(open_mu_);
    for (auto& [k, s] : open_) s->Quiesce();
  }

  S3Client* client() { return c_.get(); }
  uint64_t segment_bytes() const { return o_.segment_bytes; }
  std::string SpoolPrefix(const std::string& spool) const {
    return o_.prefix + "uploads/" + spool + "/";
  }
  std::string BlobKey(const Digest& d) const {
    return o_.prefix + "blobs/" +
           (d.algorithm() == DigestAlgorithm::kSha256 ? "sha256/" : "sha512/") +
           d.hex();
  }

  void Register(S3Spool* s) {
    std::lock_guard<std::mutex> l(open_mu_);
    open_.emplace(s->key(), s);
  }
  void Unregister(S3Spool* s) {
    std::lock_guard<std::mutex> l(open_mu_);
    auto [a, b] = open_.equal_range(s->key());
    for (auto it = a; it != b; ++it)
      if (it->second == s) {
        open_.erase(it);
        break;
      }
  }

  // Spool keys are never reused (the store derives them from fresh random
  // ids), so nothing is replaced; a crashed spool's objects and upload are
  // removed by the store's recovery (ListSpools).
  Result<std::unique_ptr<SpoolFile>> CreateSpool(
      const std::string& key) override {
    SpoolState st;
    st.modified = static_cast<int64_t>(std::time(nullptr));
    auto spool = std::make_unique<S3Spool>(this, key, std::move(st));
    if (cache_) spool->StartCache(cache_.get());
    return std::unique_ptr<SpoolFile>(std::move(spool));
  }

  Result<std::unique_ptr<SpoolFile>> OpenSpool(
      const std::string& key) override {
    ASSIGN_OR_RETURN(SpoolState st, ReadState(key));
    if (st.upload_id.empty() && st.objects.empty())
      return NotFound("no spool " + key);
    return std::unique_ptr<SpoolFile>(new S3Spool(this, key, std::move(st)));
  }

  // Aborts every upload of the spool and deletes its objects; needs no
  // part listing, so a half-written spool always goes.
  Status RemoveSpool(const std::string& key) override {
    std::vector<std::string> ids;
    {
      std::lock_guard<std::mutex> l(open_mu_);
      auto [a, b] = open_.equal_range(key);
      for (auto it = a; it != b; ++it) {
        std::string id = it->second->Quiesce();
        if (!id.empty()) ids.push_back(id);
      }
    }
    ASSIGN_OR_RETURN(auto uploads, c_->ListMultipartUploads(DataKey(key)));
    for (auto& [k, id] : uploads)
      if (k == DataKey(key)) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (const auto& id : ids)
      RETURN_IF_ERROR(c_->AbortMultipartUpload(DataKey(key), id));
    ASSIGN_OR_RETURN(auto objs, c_->List(SpoolPrefix(key)));
    std::vector<std::string> keys;
    for (auto& o : objs) keys.push_back(std::move(o.key));
    if (keys.empty()) return Status::Ok();
    return c_->DeleteObjects(keys);
  }

  Result<std::vector<std::string>> ListSpools() override {
    const std::string p = o_.prefix + "uploads/";
    ASSIGN_OR_RETURN(auto prefixes, c_->ListPrefixes(p));
    ASSIGN_OR_RETURN(auto uploads, c_->ListMultipartUploads(p));
    std::vector<std::string> out;
    for (auto& s : prefixes)
      if (s.size() > p.size() && s.rfind(p, 0) == 0)
        out.push_back(s.substr(p.size()));
    for (auto& [k, id] : uploads) {
      if (k.rfind(p, 0) != 0) continue;
      std::string rest = k.substr(p.size());
      size_t slash = rest.find('/');
      if (slash != std::string::npos) out.push_back(rest.substr(0, slash));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  Status Promote(const std::string& key, const Digest& d) override {
    std::pair<std::string, uint64_t> data;
    {
      std::lock_guard<std::mutex> l(open_mu_);
      auto it = open_.find(key);
      if (it != open_.end()) data = it->second->SealedObject();
    }
    if (data.first.empty()) {  // not open here: what the bucket holds
      ASSIGN_OR_RETURN(SpoolState st, ReadState(key));
      if (!st.sealed)
        return Internal("promote: spool " + key + " is not sealed");
      data = {DataKey(key), st.sealed_size};
    }
    const std::string to = BlobKey(d);
    if (data.second <= kMaxCopy) {
      RETURN_IF_ERROR(c_->CopyObject(data.first, to));
    } else {
      RETURN_IF_ERROR(CopyLarge(data.first, data.second, to));
    }
    {
      std::lock_guard<std::mutex> l(open_mu_);
      auto [a, b] = open_.equal_range(key);
      for (auto it = a; it != b; ++it) {
        it->second->Promoted(to);
        std::string path;
        uint64_t size;
        if (cache_ && it->second->TakeCache(&path, &size))
          cache_->Adopt(path, d, size);
      }
    }
    // Left by a failure here, the object is only spool garbage: recovery
    // removes spools without a session.
    c_->DeleteObject(data.first).IgnoreError();
    return Status::Ok();
  }

  Result<std::unique_ptr<BlobReadHandle>> Open(const Digest& d) override {
    if (cache_)
      if (auto h = cache_->Lookup(d)) return h;
    std::string key = BlobKey(d);
    ASSIGN_OR_RETURN(ObjectInfo info, c_->HeadObject(key));
    return std::unique_ptr<BlobReadHandle>(
        new S3ReadHandle(c_.get(), std::move(key), info.size, cache_.get(), d));
  }

  Result<std::string> ReadURL(const Digest& d, int expires_seconds) override {
    return c_->PresignGet(BlobKey(d), expires_seconds);
  }

  Status Remove(const Digest& d) override {
    if (cache_) cache_->Remove(d);
    return c_->DeleteObject(BlobKey(d));
  }

  Status ListBlobs(std::vector<Digest>* out) override {
    const std::string p = o_.prefix + "blobs/";
    ASSIGN_OR_RETURN(auto objs, c_->List(p));
    for (const auto& o : objs) {
      if (o.key.rfind(p, 0) != 0) continue;
      std::string rest = o.key.substr(p.size());  // sha256/<hex>
      size_t slash = rest.find('/');
      if (slash == std::string::npos) continue;
      auto d =
          Digest::Parse(rest.substr(0, slash) + ":" + rest.substr(slash + 1));
      if (d.ok()) out->push_back(*d);
    }
    return Status::Ok();
  }

  std::string DataKey(const std::string& spool) const {
    return SpoolPrefix(spool) + "data";
  }
  std::string TailKey(const std::string& spool, uint64_t off) const {
    return SpoolPrefix(spool) + "tail-" + OffsetName(off);
  }

 private:
  Result<SpoolState> ReadState(const std::string& key) {
    SpoolState st;
    const std::string p = SpoolPrefix(key);
    ASSIGN_OR_RETURN(auto objs, c_->List(p));
    std::map<uint64_t, ObjectInfo> tails;
    for (auto& o : objs) {
      st.objects.push_back(o.key);
      st.modified = std::max(st.modified, o.modified_unix);
      if (o.key.rfind(p, 0) != 0) continue;
      std::string name = o.key.substr(p.size());
      if (name == "sealing") st.sealing = true;
      if (name == "data") {
        st.sealed = true;
        st.sealed_size = o.size;
      } else if (name.size() == 21 && name.rfind("tail-", 0) == 0 &&
                 name.find_first_not_of("0123456789abcdef", 5) ==
                     std::string::npos) {
        tails[std::stoull(name.substr(5), nullptr, 16)] = o;
      }
    }
    if (st.sealed) return st;
    ASSIGN_OR_RETURN(auto uploads, c_->ListMultipartUploads(DataKey(key)));
    for (auto& [k, id] : uploads)
      if (k == DataKey(key)) st.upload_id = id;  // at most one is started
    if (!st.upload_id.empty()) {
      ASSIGN_OR_RETURN(auto parts, c_->ListParts(DataKey(key), st.upload_id));
      std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) {
        return a.number < b.number;
      });
      for (size_t i = 0; i < parts.size(); ++i) {
        if (parts[i].number != static_cast<int>(i + 1))
          return Internal("spool " + key + " is missing part " +
                          std::to_string(i + 1));
        st.parts.push_back({parts[i].number, parts[i].etag});
        st.parts_bytes += parts[i].size;
        st.modified = std::max(st.modified, parts[i].modified_unix);
      }
    }
    // Only the tail that starts where the parts end is current; others
    // were superseded by a part.
    auto t = tails.find(st.parts_bytes);
    if (t != tails.end()) st.tail_size = t->second.size;
    return st;
  }

  Status CopyLarge(const std::string& from, uint64_t size,
                   const std::string& to) {
    ASSIGN_OR_RETURN(std::string id, c_->CreateMultipartUpload(to));
    std::vector<CompletedPart> parts;
    Status s;
    for (uint64_t off = 0; off < size && s.ok(); off += kCopyPart) {
      uint64_t last = std::min(size, off + kCopyPart) - 1;
      int n = static_cast<int>(parts.size() + 1);
      auto etag = c_->UploadPartCopy(to, id, n, from, off, last);
      if (!etag.ok())
        s = etag.status();
      else
        parts.push_back({n, *etag});
    }
    if (s.ok()) s = c_->CompleteMultipartUpload(to, id, parts);
    if (!s.ok()) c_->AbortMultipartUpload(to, id).IgnoreError();
    return s;
  }

  S3BackendOptions o_;
  std::unique_ptr<S3Client> c_;
  std::unique_ptr<BlobCache> cache_;  // null: no local cache
  std::mutex open_mu_;
  std::multimap<std::string, S3Spool*> open_;
};

S3Spool::S3Spool(S3Backend* b, std::string key, SpoolState st)
    : b_(b), key_(std::move(key)), st_(std::move(st)) {
  tail_loaded_ = st_.tail_size == 0;
  tail_stored_ = st_.tail_size > 0;
  b_->Register(this);
}

S3Spool::~S3Spool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    WaitInflight().IgnoreError();
    DropCache();
  }
  b_->Unregister(this);
}

std::string S3Spool::DataKey() const { return b_->DataKey(key_); }
std::string S3Spool::SealingKey() const {
  return b_->SpoolPrefix(key_) + "sealing";
}
std::string S3Spool::TailKey(uint64_t off) const {
  return b_->TailKey(key_, off);
}

Status S3Spool::EnsureUpload() {
  if (!st_.upload_id.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(st_.upload_id,
                   b_->client()->CreateMultipartUpload(DataKey()));
  return Status::Ok();
}

Status S3Spool::LoadTail() {
  if (tail_loaded_) return Status::Ok();
  std::string bytes;
  bytes.reserve(st_.tail_size);
  RETURN_IF_ERROR(b_->client()->GetRange(
      TailKey(st_.parts_bytes), 0, st_.tail_size, [&](const char* d, size_t k) {
        bytes.append(d, k);
        return true;
      }));
  pending_ = std::move(bytes);
  tail_loaded_ = true;
  tail_stored_ = true;
  return Status::Ok();
}

Status S3Spool::WaitInflight() {
  if (!inflight_.valid()) return Status::Ok();
  Result<std::string> etag = inflight_.get();
  if (etag.ok()) {
    if (st_.tail_size > 0) {  // the part took the stored tail's bytes
      b_->client()->DeleteObject(TailKey(st_.parts_bytes)).IgnoreError();
      st_.tail_size = 0;
    }
    st_.parts.push_back({static_cast<int>(st_.parts.size() + 1), *etag});
    st_.parts_bytes += inflight_data_.size();
    st_.modified = static_cast<int64_t>(std::time(nullptr));
  } else {
    // The part may have landed or not: the bucket says which.
    broken_ = true;
    DropCache();
  }
  std::string().swap(inflight_data_);
  return etag.status();
}

Status S3Spool::StartPart() {
  RETURN_IF_ERROR(WaitInflight());
  RETURN_IF_ERROR(EnsureUpload());
  std::swap(inflight_data_, pending_);  // pending_ keeps the old capacity
  pending_.clear();
  tail_stored_ = false;
  S3Client* c = b_->client();
  std::string key = DataKey(), id = st_.upload_id;
  int number = static_cast<int>(st_.parts.size() + 1);
  const char* data = inflight_data_.data();
  size_t n = inflight_data_.size();
  inflight_ = std::async(std::launch::async, [=] {
    return c->UploadPart(key, id, number, data, n);
  });
  return Status::Ok();
}

Status S3Spool::Append(const char* data, size_t n) {
  std::lock_guard<std::mutex> l(mu_);
  RETURN_IF_ERROR(Usable());
  if (st_.sealed || st_.sealing)
    return FailedPrecondition("spool " + key_ + " is sealed");
  if (n == 0) return Status::Ok();
  RETURN_IF_ERROR(LoadTail());
  pending_.append(data, n);
  CacheAppend(data, n);
  tail_stored_ = false;
  if (pending_.size() >= b_->segment_bytes()) return StartPart();
  return Status::Ok();
}

Status S3Spool::Flush() {
  std::lock_guard<std::mutex> l(mu_);
  RETURN_IF_ERROR(Usable());
  if (st_.sealed) return Status::Ok();
  RETURN_IF_ERROR(WaitInflight());
  if (!tail_loaded_ || tail_stored_) return Status::Ok();
  if (pending_.size() >= kMinPart) {
    RETURN_IF_ERROR(StartPart());
    RETURN_IF_ERROR(WaitInflight());
    std::string().swap(pending_);  // idle: no memory held
    return Status::Ok();
  }
  if (pending_.empty()) return Status::Ok();
  RETURN_IF_ERROR(b_->client()->PutObject(TailKey(st_.parts_bytes),
                                          pending_.data(), pending_.size()));
  st_.tail_size = pending_.size();
  st_.modified = static_cast<int64_t>(std::time(nullptr));
  // An idle spool keeps no bytes in memory; the next Append reads them back.
  pending_.clear();
  pending_.shrink_to_fit();
  tail_loaded_ = false;
  tail_stored_ = true;
  return Status::Ok();
}

Status S3Spool::Seal() {
  std::lock_guard<std::mutex> l(mu_);
  RETURN_IF_ERROR(Usable());
  if (st_.sealed) return Status::Ok();
  RETURN_IF_ERROR(WaitInflight());
  RETURN_IF_ERROR(LoadTail());
  uint64_t size = st_.parts_bytes + pending_.size();
  S3Client* c = b_->client();
  if (!st_.parts.empty() && !pending_.empty() && !st_.sealing) {
    // A short last part ends the upload: mark it, so a crash before the
    // completion cannot leave a spool that takes more parts after it.
    RETURN_IF_ERROR(c->PutObject(SealingKey(), "", 0));
    st_.sealing = true;
  }
  if (st_.parts.empty()) {
    // Short enough for one object: no multipart upload needed.
    RETURN_IF_ERROR(
        b_->client()->PutObject(DataKey(), pending_.data(), pending_.size()));
    if (!st_.upload_id.empty())
      b_->client()
          ->AbortMultipartUpload(DataKey(), st_.upload_id)
          .IgnoreError();
  } else {
    if (!pending_.empty()) {  // the last part may be short
      RETURN_IF_ERROR(StartPart());
      RETURN_IF_ERROR(WaitInflight());
    }
    Status s = c->CompleteMultipartUpload(DataKey(), st_.upload_id, st_.parts);
    if (s.code() == Code::kNotFound) {
      // A retried Complete whose first attempt went through.
      auto head = c->HeadObject(DataKey());
      if (head.ok() && head->size == size) s = Status::Ok();
    }
    RETURN_IF_ERROR(s);
  }
  st_.sealed = true;
  st_.sealed_size = size;
  pending_.clear();
  pending_.shrink_to_fit();
  if (st_.tail_size > 0) {
    c->DeleteObject(TailKey(st_.parts_bytes)).IgnoreError();
    st_.tail_size = 0;
  }
  if (st_.sealing) c->DeleteObject(SealingKey()).IgnoreError();
  return Status::Ok();
}

Result<size_t> S3Spool::ReadAt(uint64_t offset, char* buf, size_t n) {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t size = Size();
  if (offset > size) return OutOfRange("read offset past end of spool");
  n = std::min<uint64_t>(n, size - offset);
  if (n == 0) return size_t{0};
  size_t got = 0;
  auto sink = [&](const char* d, size_t k) {
    if (got + k > n) return false;
    std::memcpy(buf + got, d, k);
    got += k;
    return true;
  };
  if (!promoted_key_.empty() || st_.sealed) {
    const std::string& key = promoted_key_.empty() ? DataKey() : promoted_key_;
    RETURN_IF_ERROR(b_->client()->GetRange(key, offset, n, sink));
    return got;
  }
  uint64_t inflight_off = st_.parts_bytes;
  uint64_t pending_off = inflight_off + inflight_data_.size();
  if (offset >= pending_off) {
    if (tail_loaded_) {
      std::memcpy(buf, pending_.data() + (offset - pending_off), n);
      return n;
    }
    RETURN_IF_ERROR(b_->client()->GetRange(TailKey(st_.parts_bytes),
                                           offset - pending_off, n, sink));
    return got;
  }
  if (offset >= inflight_off) {
    n = std::min<uint64_t>(n, pending_off - offset);
    std::memcpy(buf, inflight_data_.data() + (offset - inflight_off), n);
    return n;
  }
  return Unavailable("bytes at " + std::to_string(offset) + " of spool " +
                     key_ + " are readable once it is committed");
}

}  // namespace

Result<std::unique_ptr<ByteBackend>> NewS3Backend(
    const S3BackendOptions& options) {
  if (options.segment_bytes < kMinPart)
    return InvalidArgument("object store segment size must be at least 5 MiB");
  if (!options.prefix.empty() && options.prefix.back() != '/')
    return InvalidArgument("object store prefix must end with '/'");
  ASSIGN_OR_RETURN(auto client, S3Client::Create(options.s3));
  if (options.create_bucket) RETURN_IF_ERROR(client->CreateBucket());
  std::unique_ptr<BlobCache> cache;
  if (options.cache_bytes > 0) {
    if (options.cache_dir.empty())
      return InvalidArgument("object store cache needs a directory");
    ASSIGN_OR_RETURN(cache,
                     BlobCache::Open(options.cache_dir, options.cache_bytes));
  }
  return std::unique_ptr<ByteBackend>(
      new S3Backend(options, std::move(client), std::move(cache)));
}

}  // namespace ocib::objstore
