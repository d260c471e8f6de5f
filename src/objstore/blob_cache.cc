#include "objstore/blob_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace ocib::objstore {
namespace {

std::string NameOf(const Digest& d) {
  return std::string(d.algorithm_name()) + "-" + d.hex();
}

class CachedFile : public BlobReadHandle {
 public:
  CachedFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~CachedFile() override { ::close(fd_); }
  uint64_t size() const override { return size_; }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    if (offset > size_) return OutOfRange("read offset past end of blob");
    n = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, buf + done, n - done, offset + done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0)
        return Internal(std::string("read cached blob: ") +
                        std::strerror(errno));
      if (r == 0) break;
      done += r;
    }
    return done;
  }

 private:
  int fd_;
  uint64_t size_;
};

}  // namespace

Result<std::unique_ptr<BlobCache>> BlobCache::Open(const std::string& dir,
                                                   uint64_t budget) {
  std::unique_ptr<BlobCache> c(new BlobCache(dir, budget));
  std::error_code ec;
  std::filesystem::remove_all(dir + "/tmp", ec);
  std::filesystem::create_directories(dir + "/tmp", ec);
  if (!ec) std::filesystem::create_directories(dir + "/blobs", ec);
  if (ec) return Internal("blob cache " + dir + ": " + ec.message());
  // Taken in oldest first, so the newest end up most recent.
  std::vector<std::pair<int64_t, std::pair<std::string, uint64_t>>> found;
  for (auto& e : std::filesystem::directory_iterator(dir + "/blobs", ec)) {
    struct stat st;
    if (::stat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    found.push_back(
        {st.st_mtime,
         {e.path().filename().string(), static_cast<uint64_t>(st.st_size)}});
  }
  std::sort(found.begin(), found.end());
  std::lock_guard<std::mutex> l(c->mu_);
  for (auto& [t, f] : found) {
    c->lru_.push_front(f.first);
    c->entries_[f.first] = {f.second, c->lru_.begin()};
    c->total_ += f.second;
  }
  c->EvictLocked();
  return c;
}

std::string BlobCache::PathOf(const std::string& name) const {
  return dir_ + "/blobs/" + name;
}

int BlobCache::CreateTemp(const std::string& name, std::string* path) {
  *path = dir_ + "/tmp/" + name;
  return ::open(path->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

void BlobCache::Adopt(const std::string& path, const Digest& d, uint64_t size) {
  if (size > budget_) {
    ::unlink(path.c_str());
    return;
  }
  const std::string name = NameOf(d);
  if (::rename(path.c_str(), PathOf(name).c_str()) != 0) {
    ::unlink(path.c_str());
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end()) {  // replaced by the same bytes
    total_ -= it->second.size;
    lru_.erase(it->second.pos);
    entries_.erase(it);
  }
  lru_.push_front(name);
  entries_[name] = {size, lru_.begin()};
  total_ += size;
  EvictLocked();
}

void BlobCache::EvictLocked() {
  while (total_ > budget_ && !lru_.empty()) {
    const std::string name = lru_.back();
    lru_.pop_back();
    auto it = entries_.find(name);
    total_ -= it->second.size;
    entries_.erase(it);
    ::unlink(PathOf(name).c_str());  // open readers keep their inode
  }
}

std::unique_ptr<BlobReadHandle> BlobCache::Lookup(const Digest& d) {
  const std::string name = NameOf(d);
  uint64_t size;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.pos);
    size = it->second.size;
  }
  int fd = ::open(PathOf(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != size) {
    ::close(fd);
    return nullptr;
  }
  return std::make_unique<CachedFile>(fd, size);
}

void BlobCache::Remove(const Digest& d) {
  const std::string name = NameOf(d);
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  total_ -= it->second.size;
  lru_.erase(it->second.pos);
  entries_.erase(it);
  ::unlink(PathOf(name).c_str());
}

uint64_t BlobCache::bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return total_;
}

}  // namespace ocib::objstore
