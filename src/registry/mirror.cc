#include "registry/mirror.h"

#include <algorithm>
#include <thread>

#include "client/registry_client.h"
#include "client/user_config.h"
#include "oci/image_ref.h"
#include "oci/manifest.h"
#include "registry/manifest_service.h"

namespace ocib::registry {
namespace {

using Clock = std::chrono::steady_clock;

// A failure of upstream itself (not an answer like 404).
bool UpstreamDown(const Status& s) {
  return !s.ok() && s.code() != Code::kNotFound &&
         s.code() != Code::kInvalidArgument;
}

Status Named(const Upstream& u, const Status& s) {
  if (s.code() == Code::kNotFound) return s;
  return Status(Code::kUnavailable, "upstream " + u.url + ": " + s.message());
}

}  // namespace

const char* OutcomeName(CacheOutcome o) {
  switch (o) {
    case CacheOutcome::kHit:
      return "hit";
    case CacheOutcome::kMiss:
      return "miss";
    case CacheOutcome::kStale:
      return "stale";
    case CacheOutcome::kNone:
      break;
  }
  return "";
}

// One upstream download shared by every reader of the digest.
struct Mirror::Fetch {
  Digest digest = Digest::Of("");
  Mutex mu;
  CondVar cv;
  enum State { kStarting, kRunning, kDone, kFailed };
  State state GUARDED_BY(mu) = kStarting;
  uint64_t size = 0;  // set (under mu) before kRunning, constant after
  uint64_t available GUARDED_BY(mu) = 0;  // bytes written
  Status error GUARDED_BY(mu);
  // Set before kRunning and kept until the last reader goes: readers read
  // it while the fetch thread writes and commits (BlobWriter::ReadAt).
  std::unique_ptr<BlobWriter> writer;
};

namespace {

// Reads a Fetch as it grows.
class FetchReader : public BlobReadHandle {
 public:
  FetchReader(std::shared_ptr<void> keep,
              std::function<Result<size_t>(uint64_t, char*, size_t)> read,
              uint64_t size)
      : keep_(std::move(keep)), read_(std::move(read)), size_(size) {}
  uint64_t size() const override { return size_; }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    return read_(offset, buf, n);
  }

 private:
  std::shared_ptr<void> keep_;
  std::function<Result<size_t>(uint64_t, char*, size_t)> read_;
  uint64_t size_;
};

}  // namespace

Mirror::Mirror(std::vector<Upstream> upstreams, Store* store)
    : upstreams_(std::move(upstreams)), store_(store) {
  for (const auto& u : upstreams_) {
    UpstreamState& st = upstream_state_[&u];
    if (!u.username.empty())
      st.credentials = u.username + ":" + u.password;
    else if (!u.credentials_file.empty())
      st.credentials = client::DockerConfigCredentials(u.credentials_file)
                           .Credentials(u.host());
    st.session = std::make_shared<client::ClientSession>();
    st.counters = std::make_unique<Counters>();
  }
}

client::RegistryClient Mirror::UpstreamClient(const Upstream& u,
                                              int retries) const {
  const UpstreamState& st = upstream_state_.at(&u);
  client::Connection conn;
  conn.scheme = u.scheme();
  conn.timeout_seconds = static_cast<int>(u.timeout_seconds);
  conn.retries = retries;
  conn.session = st.session;
  return client::RegistryClient(u.host(), st.credentials, conn);
}

Mirror::~Mirror() {
  MutexLock l(&fetch_mu_);
  while (running_ != 0) fetch_cv_.Wait(&fetch_mu_);
}

std::optional<Mirror::Target> Mirror::Resolve(const std::string& name,
                                              const std::string& ns) const {
  if (!ns.empty())
    for (const auto& u : upstreams_)
      if (u.ns == ns) return Target{&u, name, u.ns + "/" + name};
  size_t slash = name.find('/');
  std::string first = name.substr(0, slash);
  if (slash != std::string::npos)
    for (const auto& u : upstreams_)
      if (u.ns == first) return Target{&u, name.substr(slash + 1), name};
  if (slash == std::string::npos || !oci::IsRegistryHost(first))
    for (const auto& u : upstreams_)
      if (u.unqualified) return Target{&u, name, u.ns + "/" + name};
  return std::nullopt;
}

void Mirror::Count(const Upstream& u, CacheOutcome o) {
  Counters& c = *upstream_state_.at(&u).counters;
  if (o == CacheOutcome::kHit) ++c.hits;
  if (o == CacheOutcome::kMiss) ++c.misses;
  if (o == CacheOutcome::kStale) {
    ++c.stale;
    ++c.errors;  // served stale because the upstream failed
  }
}

void Mirror::Failed(const Upstream& u) {
  ++upstream_state_.at(&u).counters->errors;
}

template <class F>
auto Mirror::Timed(const Upstream& u, F&& call) {
  auto t0 = Clock::now();
  auto r = call();
  upstream_state_.at(&u).counters->latency.Observe(
      std::chrono::duration<double>(Clock::now() - t0).count());
  return r;
}

Mirror::Stats Mirror::stats() const {
  Stats out;
  for (const auto& u : upstreams_) {
    const Counters& c = *upstream_state_.at(&u).counters;
    UpstreamStats us;
    us.ns = u.ns;
    us.hits = c.hits.load();
    us.misses = c.misses.load();
    us.stale = c.stale.load();
    us.errors = c.errors.load();
    us.latency = c.latency.snapshot();
    out.hits += us.hits;
    out.misses += us.misses;
    out.upstream_errors += us.errors;
    out.upstreams.push_back(std::move(us));
  }
  return out;
}

Result<ManifestRecord> Mirror::Manifest(const Target& t,
                                        const std::string& reference,
                                        CacheOutcome* outcome) {
  const Upstream& u = *t.upstream;
  auto store_fetched = [&](const client::FetchedManifest& f,
                           const std::string& tag) -> Result<ManifestRecord> {
    // The same record a push makes (manifest_service.h), so a mirrored
    // manifest with a subject is in the referrers index.
    auto prepared = PrepareManifest(f.content, f.media_type, f.digest);
    if (!prepared.ok())
      return InvalidArgument(
          "upstream " + u.url +
          " sent an invalid manifest: " + prepared.status().message());
    // Blobs and children arrive when clients ask for them.
    RETURN_IF_ERROR(
        store_->PutManifest(t.local_repo, prepared->record, tag, {}, {}));
    return prepared->record;
  };
  if (reference.find(':') != std::string::npos) {
    ASSIGN_OR_RETURN(Digest d, Digest::Parse(reference));
    if (auto m = store_->GetManifest(t.local_repo, d); m.ok()) {
      Count(*t.upstream, *outcome = CacheOutcome::kHit);
      return *m;
    }
    auto c = UpstreamClient(u, 0);
    auto f =
        Timed(u, [&] { return c.GetManifest(t.upstream_repo, reference); });
    if (!f.ok()) {
      if (UpstreamDown(f.status())) Failed(*t.upstream);
      return Named(u, f.status());
    }
    Count(*t.upstream, *outcome = CacheOutcome::kMiss);
    return store_fetched(*f, "");
  }
  const std::string key = t.local_repo + "\n" + reference;
  auto cached = store_->ResolveTag(t.local_repo, reference);
  if (cached.ok()) {
    bool fresh;
    {
      MutexLock l(&fresh_mu_);
      auto it = checked_.find(key);
      fresh = it != checked_.end() &&
              Clock::now() - it->second <
                  std::chrono::seconds(u.tag_freshness_seconds);
    }
    auto local = store_->GetManifest(t.local_repo, *cached);
    if (fresh && local.ok()) {
      Count(*t.upstream, *outcome = CacheOutcome::kHit);
      return *local;
    }
    auto c = UpstreamClient(u, 0);
    auto head =
        Timed(u, [&] { return c.HeadManifest(t.upstream_repo, reference); });
    if (head.ok() && *head == *cached && local.ok()) {
      MutexLock l(&fresh_mu_);
      checked_[key] = Clock::now();
      Count(*t.upstream, *outcome = CacheOutcome::kHit);
      return *local;
    }
    if (!head.ok() && UpstreamDown(head.status()) && local.ok()) {
      Count(*t.upstream,
            *outcome = CacheOutcome::kStale);  // upstream down: the cached copy
      return *local;
    }
    if (!head.ok() && head.status().code() == Code::kNotFound)
      return head.status();
  }
  auto c = UpstreamClient(u, 0);
  auto f = Timed(u, [&] { return c.GetManifest(t.upstream_repo, reference); });
  if (!f.ok()) {
    if (cached.ok() && UpstreamDown(f.status())) {
      if (auto local = store_->GetManifest(t.local_repo, *cached); local.ok()) {
        Count(*t.upstream, *outcome = CacheOutcome::kStale);
        return *local;
      }
    }
    if (UpstreamDown(f.status())) Failed(*t.upstream);
    return Named(u, f.status());
  }
  ASSIGN_OR_RETURN(ManifestRecord rec, store_fetched(*f, reference));
  {
    MutexLock l(&fresh_mu_);
    checked_[key] = Clock::now();
  }
  Count(*t.upstream, *outcome = CacheOutcome::kMiss);
  return rec;
}

Result<uint64_t> Mirror::BlobSize(const Target& t, const Digest& d,
                                  CacheOutcome* outcome) {
  if (auto info = store_->StatBlob(d); info.ok()) {
    if (!store_->StatLinkedBlob(t.local_repo, d).ok())
      store_->LinkBlob(t.local_repo, d).IgnoreError();
    Count(*t.upstream, *outcome = CacheOutcome::kHit);
    return info->size;
  }
  auto c = UpstreamClient(*t.upstream, 0);
  auto size =
      Timed(*t.upstream, [&] { return c.BlobSize(t.upstream_repo, d); });
  if (!size.ok()) {
    if (UpstreamDown(size.status())) Failed(*t.upstream);
    return Named(*t.upstream, size.status());
  }
  Count(*t.upstream, *outcome = CacheOutcome::kMiss);
  return *size;
}

Result<std::shared_ptr<BlobReadHandle>> Mirror::Blob(const Target& t,
                                                     const Digest& d,
                                                     CacheOutcome* outcome) {
  if (store_->StatBlob(d).ok()) {
    if (!store_->StatLinkedBlob(t.local_repo, d).ok())
      RETURN_IF_ERROR(store_->LinkBlob(t.local_repo, d));
    ASSIGN_OR_RETURN(auto h, store_->OpenBlob(d));
    Count(*t.upstream, *outcome = CacheOutcome::kHit);
    return std::shared_ptr<BlobReadHandle>(std::move(h));
  }
  std::shared_ptr<Fetch> f;
  {
    MutexLock l(&fetch_mu_);
    auto it = fetches_.find(d.str());
    if (it != fetches_.end()) {
      f = it->second;
    } else {
      f = std::make_shared<Fetch>();
      f->digest = d;
      fetches_[d.str()] = f;
      ++running_;
      std::thread([this, f, t] { RunFetch(f, t); }).detach();
    }
  }
  Count(*t.upstream, *outcome = CacheOutcome::kMiss);
  uint64_t size;
  {
    MutexLock l(&f->mu);
    while (f->state == Fetch::kStarting) f->cv.Wait(&f->mu);
    if (f->state == Fetch::kFailed) return f->error;
    size = f->size;
  }
  // The last byte is held back until the digest is verified, so a reader
  // of bad bytes sees its transfer fail rather than complete.
  auto read = [f, store = store_](uint64_t offset, char* buf,
                                  size_t n) -> Result<size_t> {
    uint64_t limit;
    {
      MutexLock l(&f->mu);
      while (true) {
        limit = f->state == Fetch::kDone
                    ? f->size
                    : std::min(f->available, f->size > 0 ? f->size - 1 : 0);
        if (limit > offset || f->state != Fetch::kRunning) break;
        f->cv.Wait(&f->mu);
      }
      if (f->state == Fetch::kFailed) return f->error;
    }
    if (offset >= limit) return size_t{0};
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, limit - offset));
    Result<size_t> r = f->writer->ReadAt(offset, buf, take);
    if (r.ok() || r.status().code() != Code::kUnavailable) return r;
    // On an object store, bytes sent as parts are readable once committed.
    {
      MutexLock l(&f->mu);
      while (f->state == Fetch::kRunning) f->cv.Wait(&f->mu);
      if (f->state == Fetch::kFailed) return f->error;
    }
    r = f->writer->ReadAt(offset, buf, take);
    if (r.ok()) return r;
    // Committed as a blob that already existed: the spool went, the blob
    // has the same bytes.
    auto h = store->OpenBlob(f->digest);
    if (!h.ok()) return r;
    return (*h)->ReadAt(offset, buf, take);
  };
  return std::shared_ptr<BlobReadHandle>(
      std::make_shared<FetchReader>(f, read, size));
}

void Mirror::RunFetch(std::shared_ptr<Fetch> f, Target t) {
  // Ends the fetch: commits the bytes when s is OK (readers go on reading
  // from the writer meanwhile), then publishes the outcome.
  auto finish = [&](Status s) {
    if (s.ok()) {
      auto info = f->writer->Commit(f->digest, f->size, t.local_repo);
      if (!info.ok())
        s = Status(info.status().code(),
                   "blob " + f->digest.str() + " from upstream " +
                       t.upstream->url + ": " + info.status().message());
    }
    {
      MutexLock l(&f->mu);
      f->state = s.ok() ? Fetch::kDone : Fetch::kFailed;
      f->error = s;
    }
    f->cv.SignalAll();
    MutexLock l(&fetch_mu_);
    fetches_.erase(f->digest.str());
    --running_;
    fetch_cv_.SignalAll();
  };
  auto c = UpstreamClient(*t.upstream, 2);
  auto size = Timed(*t.upstream,
                    [&] { return c.BlobSize(t.upstream_repo, f->digest); });
  if (!size.ok()) {
    if (UpstreamDown(size.status())) Failed(*t.upstream);
    return finish(Named(*t.upstream, size.status()));
  }
  auto w = store_->NewWriter();
  if (!w.ok()) return finish(w.status());
  {
    MutexLock l(&f->mu);
    f->writer = std::move(*w);
    f->size = *size;
    f->state = Fetch::kRunning;
  }
  f->cv.SignalAll();
  // The fetch thread alone writes; readers only read what `available`
  // says has been written.
  Status s = c.FetchBlobInto(t.upstream_repo, f->digest, *size, *f->writer,
                             [&](uint64_t done, uint64_t) {
                               {
                                 MutexLock l(&f->mu);
                                 f->available = done;
                               }
                               f->cv.SignalAll();
                             });
  if (!s.ok()) {
    if (UpstreamDown(s)) Failed(*t.upstream);
    return finish(Named(*t.upstream, s));
  }
  finish(Status::Ok());
}

Result<std::vector<std::string>> Mirror::Tags(const Target& t,
                                              CacheOutcome* outcome) {
  auto c = UpstreamClient(*t.upstream, 0);
  auto tags = Timed(*t.upstream, [&] { return c.ListTags(t.upstream_repo); });
  if (tags.ok()) {
    Count(*t.upstream, *outcome = CacheOutcome::kMiss);
    std::sort(tags->begin(), tags->end());
    return *tags;
  }
  if (!UpstreamDown(tags.status())) return tags.status();
  auto page = store_->ListTags(t.local_repo, 0, "");
  if (!page.ok() || page->items.empty()) {
    Failed(*t.upstream);
    return Named(*t.upstream, tags.status());
  }
  Count(*t.upstream, *outcome = CacheOutcome::kStale);
  return page->items;
}

}  // namespace ocib::registry
