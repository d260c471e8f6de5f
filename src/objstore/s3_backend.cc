#include "objstore/s3_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

namespace ocib::objstore {
namespace {

constexpr uint64_t kMinPart = 5ull << 20;  // S3's smallest multipart part

struct Segment {
  std::string key;
  uint64_t offset = 0;
  uint64_t size = 0;
};

std::string OffsetName(uint64_t off) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(off));
  return buf;
}

class S3Backend;

class S3Spool : public SpoolFile {
 public:
  S3Spool(S3Backend* b, std::string key, std::vector<Segment> segs,
          int64_t modified);
  ~S3Spool() override;

  uint64_t size() const override {
    std::lock_guard<std::mutex> l(mu_);
    return pending_off_ + pending_.size();
  }
  Status Append(const char* data, size_t n) override;
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override;
  Status Sync() override { return Flush(); }
  Status Flush() override {
    std::lock_guard<std::mutex> l(mu_);
    return WriteTail();
  }
  int64_t modified_unix() const override {
    std::lock_guard<std::mutex> l(mu_);
    return modified_;
  }

  // Called by Promote: the bytes now live at blob_key.
  void Promoted(const std::string& blob_key) {
    std::lock_guard<std::mutex> l(mu_);
    promoted_key_ = blob_key;
  }
  const std::string& key() const { return key_; }

 private:
  // Writes pending_ as the segment at pending_off_. A tail shorter than a
  // part stays in memory too, and is rewritten longer by the next write.
  Status WriteTail();

  S3Backend* const b_;
  const std::string key_;
  mutable std::mutex mu_;
  std::vector<Segment> segs_;  // written, each complete, in offset order
  std::string pending_;        // bytes from pending_off_ on
  uint64_t pending_off_ = 0;
  bool pending_stored_ = false;  // pending_ is already the last segment
  int64_t modified_ = 0;
  std::string promoted_key_;
};

class S3ReadHandle : public BlobReadHandle {
 public:
  S3ReadHandle(S3Client* c, std::string key, uint64_t size)
      : c_(c), key_(std::move(key)), size_(size) {}
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
    return c_->GetRange(key_, offset, length, sink);
  }

 private:
  S3Client* c_;
  std::string key_;
  uint64_t size_;
};

class S3Backend : public ByteBackend {
 public:
  S3Backend(S3BackendOptions o, std::unique_ptr<S3Client> c)
      : o_(std::move(o)), c_(std::move(c)) {}

  S3Client* client() { return c_.get(); }
  uint64_t segment_bytes() const { return o_.segment_bytes; }
  std::string SegmentKey(const std::string& spool, uint64_t off) const {
    return SpoolPrefix(spool) + OffsetName(off);
  }
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

  Result<std::unique_ptr<SpoolFile>> CreateSpool(
      const std::string& key) override {
    RETURN_IF_ERROR(RemoveSpool(key));
    return std::unique_ptr<SpoolFile>(
        new S3Spool(this, key, {}, static_cast<int64_t>(std::time(nullptr))));
  }

  Result<std::unique_ptr<SpoolFile>> OpenSpool(
      const std::string& key) override {
    ASSIGN_OR_RETURN(auto segs, Segments(key));
    if (segs.empty()) return NotFound("no spool " + key);
    int64_t modified = 0;
    for (const auto& s : segs) modified = std::max(modified, s.second);
    std::vector<Segment> v;
    for (auto& s : segs) v.push_back(std::move(s.first));
    return std::unique_ptr<SpoolFile>(
        new S3Spool(this, key, std::move(v), modified));
  }

  Status RemoveSpool(const std::string& key) override {
    ASSIGN_OR_RETURN(auto objs, c_->List(SpoolPrefix(key)));
    std::vector<std::string> keys;
    for (auto& o : objs) keys.push_back(std::move(o.key));
    if (keys.empty()) return Status::Ok();
    return c_->DeleteObjects(keys);
  }

  Result<std::vector<std::string>> ListSpools() override {
    const std::string p = o_.prefix + "uploads/";
    ASSIGN_OR_RETURN(auto prefixes, c_->ListPrefixes(p));
    std::vector<std::string> out;
    for (auto& s : prefixes)
      if (s.size() > p.size()) out.push_back(s.substr(p.size()));
    return out;
  }

  Status Promote(const std::string& key, const Digest& d) override {
    ASSIGN_OR_RETURN(auto segs, Segments(key));
    if (segs.empty())
      return Internal("promote: spool " + key + " has no bytes");
    const std::string to = BlobKey(d);
    if (segs.size() == 1) {
      RETURN_IF_ERROR(c_->CopyObject(segs[0].first.key, to));
    } else {
      ASSIGN_OR_RETURN(std::string id, c_->CreateMultipartUpload(to));
      std::vector<CompletedPart> parts;
      Status s;
      for (size_t i = 0; i < segs.size() && s.ok(); ++i) {
        const Segment& g = segs[i].first;
        if (g.size < kMinPart && i + 1 < segs.size()) {
          s = Internal("promote: spool " + key + " has a short middle segment");
          break;
        }
        auto etag = c_->UploadPartCopy(to, id, static_cast<int>(i + 1), g.key,
                                       0, g.size - 1);
        if (!etag.ok())
          s = etag.status();
        else
          parts.push_back({static_cast<int>(i + 1), *etag});
      }
      if (s.ok()) s = c_->CompleteMultipartUpload(to, id, parts);
      if (!s.ok()) {
        c_->AbortMultipartUpload(to, id).IgnoreError();
        return s;
      }
    }
    {
      std::lock_guard<std::mutex> l(open_mu_);
      auto [a, b] = open_.equal_range(key);
      for (auto it = a; it != b; ++it) it->second->Promoted(to);
    }
    std::vector<std::string> keys;
    for (auto& s : segs) keys.push_back(s.first.key);
    // Segments left by a failure here are only spool garbage: the blob is
    // complete, and recovery removes spools without a session.
    c_->DeleteObjects(keys).IgnoreError();
    return Status::Ok();
  }

  Result<std::unique_ptr<BlobReadHandle>> Open(const Digest& d) override {
    std::string key = BlobKey(d);
    ASSIGN_OR_RETURN(ObjectInfo info, c_->HeadObject(key));
    return std::unique_ptr<BlobReadHandle>(
        new S3ReadHandle(c_.get(), std::move(key), info.size));
  }

  Status Remove(const Digest& d) override {
    return c_->DeleteObject(BlobKey(d));
  }

  Status ListBlobs(std::vector<Digest>* out) override {
    const std::string p = o_.prefix + "blobs/";
    ASSIGN_OR_RETURN(auto objs, c_->List(p));
    for (const auto& o : objs) {
      std::string rest = o.key.substr(p.size());  // sha256/<hex>
      size_t slash = rest.find('/');
      if (slash == std::string::npos) continue;
      auto d =
          Digest::Parse(rest.substr(0, slash) + ":" + rest.substr(slash + 1));
      if (d.ok()) out->push_back(*d);
    }
    return Status::Ok();
  }

 private:
  // The spool's segments with their modification times, checked to be
  // contiguous from offset 0.
  Result<std::vector<std::pair<Segment, int64_t>>> Segments(
      const std::string& key) {
    const std::string p = SpoolPrefix(key);
    ASSIGN_OR_RETURN(auto objs, c_->List(p));
    std::vector<std::pair<Segment, int64_t>> out;
    uint64_t expect = 0;
    for (auto& o : objs) {
      std::string name = o.key.substr(p.size());
      if (name.size() != 16 ||
          name.find_first_not_of("0123456789abcdef") != std::string::npos)
        continue;
      uint64_t off = std::stoull(name, nullptr, 16);
      if (off != expect)
        return Internal("spool " + key + " has a gap at offset " +
                        std::to_string(expect));
      expect = off + o.size;
      out.push_back({Segment{o.key, off, o.size}, o.modified_unix});
    }
    return out;
  }

  S3BackendOptions o_;
  std::unique_ptr<S3Client> c_;
  std::mutex open_mu_;
  std::multimap<std::string, S3Spool*> open_;
};

S3Spool::S3Spool(S3Backend* b, std::string key, std::vector<Segment> segs,
                 int64_t modified)
    : b_(b), key_(std::move(key)), segs_(std::move(segs)), modified_(modified) {
  if (!segs_.empty()) {
    const Segment& last = segs_.back();
    pending_off_ = last.offset + last.size;
  }
  b_->Register(this);
}

S3Spool::~S3Spool() { b_->Unregister(this); }

Status S3Spool::WriteTail() {
  if (pending_.empty() || pending_stored_) return Status::Ok();
  const std::string key = b_->SegmentKey(key_, pending_off_);
  Status s = b_->client()->PutObject(key, pending_.data(), pending_.size());
  if (!s.ok()) return s;
  modified_ = static_cast<int64_t>(std::time(nullptr));
  if (pending_.size() >= kMinPart) {
    segs_.push_back({key, pending_off_, pending_.size()});
    pending_off_ += pending_.size();
    pending_.clear();
  } else {
    pending_stored_ = true;
  }
  return Status::Ok();
}

Status S3Spool::Append(const char* data, size_t n) {
  std::lock_guard<std::mutex> l(mu_);
  if (pending_.empty() && !segs_.empty() && segs_.back().size < kMinPart) {
    // A reopened spool whose last segment is short: bring it back, so the
    // next segment written replaces it with a longer one.
    Segment last = segs_.back();
    std::string bytes;
    bytes.reserve(last.size);
    RETURN_IF_ERROR(b_->client()->GetRange(last.key, 0, last.size,
                                           [&](const char* d, size_t k) {
                                             bytes.append(d, k);
                                             return true;
                                           }));
    segs_.pop_back();
    pending_off_ = last.offset;
    pending_ = std::move(bytes);
    pending_stored_ = true;
  }
  if (n == 0) return Status::Ok();
  pending_.append(data, n);
  pending_stored_ = false;
  if (pending_.size() >= b_->segment_bytes()) return WriteTail();
  return Status::Ok();
}

Result<size_t> S3Spool::ReadAt(uint64_t offset, char* buf, size_t n) {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t size = pending_off_ + pending_.size();
  if (offset > size) return OutOfRange("read offset past end of spool");
  n = std::min<uint64_t>(n, size - offset);
  if (n == 0) return size_t{0};
  if (offset >= pending_off_) {
    std::memcpy(buf, pending_.data() + (offset - pending_off_), n);
    return n;
  }
  // A written segment: read up to its end, from the blob once promoted.
  auto it = std::upper_bound(
      segs_.begin(), segs_.end(), offset,
      [](uint64_t o, const Segment& s) { return o < s.offset; });
  --it;
  n = std::min<uint64_t>(n, it->offset + it->size - offset);
  size_t got = 0;
  auto sink = [&](const char* d, size_t k) {
    if (got + k > n) return false;
    std::memcpy(buf + got, d, k);
    got += k;
    return true;
  };
  if (!promoted_key_.empty()) {
    RETURN_IF_ERROR(b_->client()->GetRange(promoted_key_, offset, n, sink));
  } else {
    RETURN_IF_ERROR(
        b_->client()->GetRange(it->key, offset - it->offset, n, sink));
  }
  return got;
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
  return std::unique_ptr<ByteBackend>(
      new S3Backend(options, std::move(client)));
}

}  // namespace ocib::objstore
