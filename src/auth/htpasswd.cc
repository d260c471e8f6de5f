#include "auth/htpasswd.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "util/mutex.h"

namespace ocib::auth {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxCache = 10000;  // remembered successful checks

// A bcrypt hash of a random password, checked for users that do not exist.
constexpr const char* kDummyHash =
    "$2y$10$rpN4C5.u8z4nTswRWSZvoOLuYso1yKEk8Qh9cwf2ggPObwgbXUtIG";

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  struct timespec mtime {};
  bool operator==(const FileId& o) const {
    return dev == o.dev && ino == o.ino && size == o.size &&
           mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

bool StatFile(const std::string& path, FileId* id) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  id->size = st.st_size;
  id->mtime = st.st_mtim;
  return true;
}

std::string CacheKey(std::string_view user, std::string_view password) {
  std::string in;
  in.reserve(user.size() + 1 + password.size());
  in.append(user).push_back('\0');
  in.append(password);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  OPENSSL_cleanse(in.data(), in.size());
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

bool IsBcrypt(std::string_view h) {
  return h.size() == 60 && h[0] == '$' && h[1] == '2' &&
         (h[2] == 'y' || h[2] == 'b' || h[2] == 'a') && h[3] == '$';
}

}  // namespace

Status ParseHtpasswd(std::string_view text,
                     std::vector<std::pair<std::string, std::string>>* out) {
  out->clear();
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text =
        nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos || line[b] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return Status(Code::kInvalidArgument,
                    "line " + std::to_string(line_no) + ": not user:hash");
    std::string_view hash = line.substr(colon + 1);
    if (!IsBcrypt(hash))
      return Status(Code::kInvalidArgument,
                    "line " + std::to_string(line_no) +
                        ": only bcrypt entries are supported (htpasswd -B)");
    out->emplace_back(std::string(line.substr(0, colon)), std::string(hash));
  }
  return Status::Ok();
}

bool BcryptMatches(std::string_view password, const std::string& hash) {
  // crypt_data is large; one per thread.
  thread_local std::unique_ptr<crypt_data> data;
  if (!data) data = std::make_unique<crypt_data>();
  std::string pw(password);
  if (pw.find('\0') != std::string::npos) return false;
  data->initialized = 0;
  const char* out =
      crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof *data);
  OPENSSL_cleanse(pw.data(), pw.size());
  if (!out || out[0] == '*') return false;
  size_t n = std::char_traits<char>::length(out);
  return n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
}

class Htpasswd::Impl {
 public:
  explicit Impl(std::string path) : path_(std::move(path)) {}

  Status Load() EXCLUDES(mu_) {
    FileId id;
    if (!StatFile(path_, &id))
      return Status(Code::kNotFound, "htpasswd: cannot read " + path_);
    std::ifstream in(path_, std::ios::binary);
    if (!in) return Status(Code::kNotFound, "htpasswd: cannot read " + path_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<std::pair<std::string, std::string>> entries;
    if (Status s = ParseHtpasswd(ss.str(), &entries); !s.ok())
      return Status(Code::kInvalidArgument,
                    "htpasswd " + path_ + ": " + s.message());
    std::unordered_map<std::string, std::string> users(entries.begin(),
                                                       entries.end());
    MutexLock l(&mu_);
    users_ = std::move(users);
    id_ = id;
    ++generation_;
    cache_.clear();
    return Status::Ok();
  }

  // Re-reads the file if it changed; at most once a second.
  void MaybeReload() EXCLUDES(mu_) {
    int64_t now = Clock::now().time_since_epoch().count();
    int64_t last = last_check_.load(std::memory_order_relaxed);
    if (now - last < std::chrono::nanoseconds(std::chrono::seconds(1)).count())
      return;
    if (!last_check_.compare_exchange_strong(last, now)) return;
    FileId id;
    bool exists = StatFile(path_, &id);
    {
      MutexLock l(&mu_);
      if (exists && id == id_) return;
    }
    Status s = Load();
    if (!s.ok()) {
      MutexLock l(&mu_);
      if (!(id == bad_id_))
        std::fprintf(stderr, "ocireg: %s (keeping the previous users)\n",
                     s.message().c_str());
      bad_id_ = id;
    }
  }

  bool Verify(std::string_view user, std::string_view password) EXCLUDES(mu_) {
    MaybeReload();
    std::string key = CacheKey(user, password);
    std::string hash;
    uint64_t gen;
    {
      MutexLock l(&mu_);
      if (cache_.count(key)) return true;
      auto it = users_.find(std::string(user));
      hash = it == users_.end() ? std::string(kDummyHash) : it->second;
      gen = generation_;
      if (it == users_.end()) gen = ~uint64_t{0};
    }
    bool ok = BcryptMatches(password, hash) && gen != ~uint64_t{0};
    if (!ok) return false;
    MutexLock l(&mu_);
    if (gen != generation_) return ok;  // the file changed meanwhile
    if (cache_.size() >= kMaxCache) cache_.clear();
    cache_.insert(std::move(key));
    return true;
  }

  bool VerifyCached(std::string_view user, std::string_view password)
      EXCLUDES(mu_) {
    MaybeReload();
    std::string key = CacheKey(user, password);
    MutexLock l(&mu_);
    return cache_.count(key) > 0;
  }

  bool HasUser(std::string_view user) EXCLUDES(mu_) {
    MaybeReload();
    MutexLock l(&mu_);
    return users_.count(std::string(user)) > 0;
  }

  Status Reload() {
    last_check_.store(0);
    return Load();
  }

 private:
  const std::string path_;
  std::atomic<int64_t> last_check_{0};
  Mutex mu_;
  std::unordered_map<std::string, std::string> users_ GUARDED_BY(mu_);
  std::unordered_set<std::string> cache_ GUARDED_BY(mu_);
  uint64_t generation_ GUARDED_BY(mu_) = 0;
  FileId id_ GUARDED_BY(mu_);
  FileId bad_id_ GUARDED_BY(mu_);
};

Htpasswd::Htpasswd(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Htpasswd::~Htpasswd() = default;

Result<std::unique_ptr<Htpasswd>> Htpasswd::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>(path);
  if (Status s = impl->Load(); !s.ok()) return s;
  return std::unique_ptr<Htpasswd>(new Htpasswd(std::move(impl)));
}

bool Htpasswd::Verify(std::string_view user, std::string_view password) {
  return impl_->Verify(user, password);
}
bool Htpasswd::VerifyCached(std::string_view user, std::string_view password) {
  return impl_->VerifyCached(user, password);
}
bool Htpasswd::HasUser(std::string_view user) { return impl_->HasUser(user); }
Status Htpasswd::Reload() { return impl_->Reload(); }

}  // namespace ocib::auth
