#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>

#include "store/byte_backend.h"

namespace ocib {
namespace {

namespace fs = std::filesystem;

Status Errno(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Keeps the page cache held by written blob bytes under a budget: the
// oldest written ranges beyond it are dropped once on disk. Large pushes
// then recycle the pages of earlier ones instead of taking fresh memory
// and evicting everything else (manifests, the database, hot blobs).
class WrittenCache {
 public:
  explicit WrittenCache(uint64_t budget) : budget_(budget) {}

  // Records that [off, off+len) of fd was just written. Ranges under
  // kMinRange are not tracked (small blobs and tails cost little cache),
  // and at most kMaxRanges are, each holding its file open.
  void Add(const std::shared_ptr<Fd>& fd, uint64_t off, uint64_t len) {
    if (budget_ == 0 || len < kMinRange) return;
    std::vector<Range> drop;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!q_.empty() && q_.back().fd == fd &&
          q_.back().off + q_.back().len == off)
        q_.back().len += len;
      else
        q_.push_back({fd, off, len});
      total_ += len;
      while (total_ > budget_ || q_.size() > kMaxRanges) {
        Range& r = q_.front();
        uint64_t n =
            total_ > budget_ ? std::min(r.len, total_ - budget_) : r.len;
        drop.push_back({r.fd, r.off, n});
        r.off += n;
        r.len -= n;
        total_ -= n;
        if (r.len == 0) q_.pop_front();
      }
    }
    // The kernel keeps pages under write-back, so wait for it first (long
    // finished when the budget is large next to the disk's queue).
    for (const Range& r : drop) {
      ::sync_file_range(r.fd->get(), r.off, r.len, SYNC_FILE_RANGE_WAIT_BEFORE);
      ::posix_fadvise(r.fd->get(), r.off, r.len, POSIX_FADV_DONTNEED);
    }
  }

 private:
  struct Range {
    std::shared_ptr<Fd> fd;  // keeps the file open across rename
    uint64_t off, len;
  };
  static constexpr uint64_t kMinRange = 1 << 20;
  static constexpr size_t kMaxRanges = 512;
  const uint64_t budget_;
  std::mutex mu_;
  std::deque<Range> q_;
  uint64_t total_ = 0;
};

Result<size_t> PreadSome(int fd, uint64_t size, uint64_t offset, char* buf,
                         size_t n) {
  if (offset > size) return OutOfRange("read offset past end of blob");
  if (offset + n > size) n = size - offset;
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, offset + done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno("pread");
    }
    if (r == 0) break;
    done += r;
  }
  return done;
}

Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) return Errno("open dir " + dir);
  if (::fsync(fd.get()) != 0) return Errno("fsync dir " + dir);
  return Status::Ok();
}

class FileReadHandle : public BlobReadHandle {
 public:
  FileReadHandle(int fd, uint64_t size) : fd_(fd), size_(size) {}
  uint64_t size() const override { return size_; }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    return PreadSome(fd_.get(), size_, offset, buf, n);
  }

 private:
  Fd fd_;
  uint64_t size_;
};

class FileSpool : public SpoolFile {
 public:
  FileSpool(int fd, uint64_t size, WrittenCache* cache)
      : fd_(std::make_shared<Fd>(fd)), size_(size), cache_(cache) {}
  // size_ is atomic: ReadAt may run on other threads while Append runs.
  ~FileSpool() override {
    // An upload arrives in many requests, each with its own SpoolFile:
    // start write-back of this request's bytes now, so the fsync at
    // commit does not have to write the whole blob.
    StartWriteBack();
  }
  uint64_t size() const override { return size_; }
  Status Append(const char* data, size_t n) override {
    while (n > 0) {
      ssize_t w = ::pwrite(fd_->get(), data, n, size_.load());
      if (w < 0) {
        if (errno == EINTR) continue;
        return Errno("write spool");
      }
      size_ += w;
      data += w;
      n -= w;
      unsynced_ += w;
    }
    if (unsynced_ >= kWriteBackBytes) StartWriteBack();
    return Status::Ok();
  }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    return PreadSome(fd_->get(), size_, offset, buf, n);
  }
  Status Sync() override {
    if (::fdatasync(fd_->get()) != 0) return Errno("fdatasync spool");
    return Status::Ok();
  }
  int64_t modified_unix() const override {
    struct stat st;
    if (::fstat(fd_->get(), &st) != 0) return 0;
    return st.st_mtime;
  }

 private:
  static constexpr uint64_t kWriteBackBytes = 8u << 20;

  // Starts (does not wait for) write-back of the bytes appended since the
  // last call, so the fsync at commit has little left to do and the
  // written-bytes cache can drop these pages later.
  void StartWriteBack() {
    if (unsynced_ == 0) return;
    uint64_t off = size_ - unsynced_;
    ::sync_file_range(fd_->get(), off, unsynced_, SYNC_FILE_RANGE_WRITE);
    cache_->Add(fd_, off, unsynced_);
    unsynced_ = 0;
  }

  std::shared_ptr<Fd> fd_;
  std::atomic<uint64_t> size_;
  WrittenCache* cache_;
  uint64_t unsynced_ = 0;
};

class FileBackend : public ByteBackend {
 public:
  FileBackend(std::string root, bool sync, uint64_t written_cache_bytes)
      : root_(std::move(root)), sync_(sync), cache_(written_cache_bytes) {}

  Status Init() {
    std::error_code ec;
    fs::create_directories(root_ + "/uploads", ec);
    if (ec) return Internal("create " + root_ + "/uploads: " + ec.message());
    fs::create_directories(root_ + "/blobs", ec);
    if (ec) return Internal("create " + root_ + "/blobs: " + ec.message());
    return Status::Ok();
  }

  Result<std::unique_ptr<SpoolFile>> CreateSpool(
      const std::string& key) override {
    int fd = ::open(SpoolPath(key).c_str(),
                    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("create spool");
    return std::unique_ptr<SpoolFile>(new FileSpool(fd, 0, &cache_));
  }

  Result<std::unique_ptr<SpoolFile>> OpenSpool(
      const std::string& key) override {
    int fd = ::open(SpoolPath(key).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("upload bytes missing");
      return Errno("open spool");
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Errno("stat spool");
    }
    return std::unique_ptr<SpoolFile>(new FileSpool(fd, st.st_size, &cache_));
  }

  Status RemoveSpool(const std::string& key) override {
    if (::unlink(SpoolPath(key).c_str()) != 0 && errno != ENOENT)
      return Errno("remove spool");
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListSpools() override {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(root_ + "/uploads", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      out.push_back(it->path().filename().string());
    }
    if (ec) return Internal("list uploads: " + ec.message());
    return out;
  }

  Status Promote(const std::string& key, const Digest& d) override {
    std::string dir = BlobDir(d);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return Internal("create " + dir + ": " + ec.message());
    }
    std::string to = dir + "/" + d.hex();
    if (::rename(SpoolPath(key).c_str(), to.c_str()) != 0)
      return Errno("rename spool into CAS");
    if (sync_) return SyncDir(dir);
    return Status::Ok();
  }

  Result<std::unique_ptr<BlobReadHandle>> Open(const Digest& d) override {
    std::string path = BlobDir(d) + "/" + d.hex();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("blob bytes missing");
      return Errno("open blob");
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Errno("stat blob");
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<BlobReadHandle>(new FileReadHandle(fd, st.st_size));
  }

  Status Remove(const Digest& d) override {
    std::string path = BlobDir(d) + "/" + d.hex();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return Errno("remove blob");
    return Status::Ok();
  }

  Status ListBlobs(std::vector<Digest>* out) override {
    std::error_code ec;
    std::filesystem::path top(root_ + "/blobs");
    if (!std::filesystem::exists(top, ec)) return Status::Ok();
    for (const auto& alg : std::filesystem::directory_iterator(top, ec))
      for (const auto& fan : std::filesystem::directory_iterator(alg, ec))
        for (const auto& f : std::filesystem::directory_iterator(fan, ec)) {
          auto d = Digest::Parse(alg.path().filename().string() + ":" +
                                 f.path().filename().string());
          if (d.ok()) out->push_back(*d);
        }
    if (ec) return Errno("list blobs");
    return Status::Ok();
  }

 private:
  std::string SpoolPath(const std::string& key) const {
    return root_ + "/uploads/" + key;
  }
  std::string BlobDir(const Digest& d) const {
    return root_ + "/blobs/" + std::string(d.algorithm_name()) + "/" +
           d.hex().substr(0, 2);
  }

  const std::string root_;
  const bool sync_;
  WrittenCache cache_;
};

}  // namespace

Result<std::unique_ptr<ByteBackend>> NewFileBackend(
    const std::string& root, bool sync, uint64_t written_cache_bytes) {
  auto b = std::make_unique<FileBackend>(root, sync, written_cache_bytes);
  RETURN_IF_ERROR(b->Init());
  return std::unique_ptr<ByteBackend>(std::move(b));
}

}  // namespace ocib
