// Mirror: ocireg's pull-through cache of upstream registries.
//
// Which requests it serves: a repository whose first component names an
// upstream's namespace ("docker.io/library/busybox"), a request carrying
// containerd's ?ns= for one, or, for the upstream that serves unqualified
// names (docker.io by default), any name whose first component is not a
// host ("library/busybox", as docker's registry-mirrors sends it). Cached
// content lives in the store under "<namespace>/<upstream repository>", so
// every way of asking shares one copy. Other names are local repositories.
//
// Behaviour:
//  - Manifests by digest: from the cache, else fetched, verified, stored.
//  - Manifests by tag: from the cache while younger than the upstream's
//    freshness interval; then rechecked with a HEAD upstream (unchanged:
//    kept; changed: the new one is fetched). If upstream fails (5xx, 429,
//    timeout, unreachable) the cached copy is served.
//  - Blobs: from the cache, else streamed from upstream into the store
//    while clients read the growing copy; one upstream fetch per digest no
//    matter how many clients ask, and a client that leaves does not stop
//    it. The digest is checked at the end: a mismatch or a cut transfer
//    stores nothing and fails the readers.
//  - Tag lists: from upstream, else the cached tags.
// Errors: kNotFound when upstream says so; kUnavailable naming the
// upstream when it cannot answer and nothing is cached.
//
// Thread-safe. The destructor waits for fetches in flight.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/registry_client.h"
#include "metrics/metrics.h"
#include "registry/config.h"
#include "store/blob_store.h"
#include "util/mutex.h"
#include "util/status.h"

namespace ocib::registry {

// How a request was answered, for the access log and the counters.
enum class CacheOutcome { kNone, kHit, kMiss, kStale };
const char* OutcomeName(CacheOutcome o);

class Mirror {
 public:
  struct Target {
    const Upstream* upstream;
    std::string upstream_repo;  // the name upstream
    std::string local_repo;     // the name in the store
  };
  // Per upstream (by namespace), for the metrics: requests answered from
  // the cache (hits), fetched (misses), served stale while the upstream
  // failed; upstream failures; latency of metadata requests upstream.
  struct UpstreamStats {
    std::string ns;
    uint64_t hits = 0, misses = 0, stale = 0, errors = 0;
    metrics::Histogram::Snapshot latency;
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, upstream_errors = 0;  // totals
    std::vector<UpstreamStats> upstreams;
  };

  Mirror(std::vector<Upstream> upstreams, Store* store);
  ~Mirror();

  // The upstream serving `name` (ns: containerd's ?ns=, may be empty), or
  // nullopt for a local repository.
  std::optional<Target> Resolve(const std::string& name,
                                const std::string& ns) const;

  Result<ManifestRecord> Manifest(const Target& t, const std::string& reference,
                                  CacheOutcome* outcome);
  // A reader over the blob; ReadAt blocks until the bytes have arrived.
  Result<std::shared_ptr<BlobReadHandle>> Blob(const Target& t, const Digest& d,
                                               CacheOutcome* outcome);
  // Size only (HEAD): from the cache, else asked upstream.
  Result<uint64_t> BlobSize(const Target& t, const Digest& d,
                            CacheOutcome* outcome);
  Result<std::vector<std::string>> Tags(const Target& t, CacheOutcome* outcome);

  Stats stats() const;

 private:
  struct Fetch;
  void RunFetch(std::shared_ptr<Fetch> f, Target t);
  void Count(const Upstream& u, CacheOutcome o);
  void Failed(const Upstream& u);
  // Runs call() (a request upstream), recording its latency.
  template <class F>
  auto Timed(const Upstream& u, F&& call);
  // A client for upstream u: cheap to make; its credentials (read once,
  // at construction) and its session (tokens, plain-HTTP knowledge) are
  // the upstream's, shared by every request.
  client::RegistryClient UpstreamClient(const Upstream& u, int retries) const;

  const std::vector<Upstream> upstreams_;
  Store* const store_;
  struct Counters {
    std::atomic<uint64_t> hits{0}, misses{0}, stale{0}, errors{0};
    metrics::Histogram latency{&metrics::DefaultSecondsBuckets()};
  };
  struct UpstreamState {
    std::string credentials;  // "user:password" or ""
    std::shared_ptr<client::ClientSession> session;
    std::unique_ptr<Counters> counters;
  };
  std::map<const Upstream*, UpstreamState>
      upstream_state_;  // fixed after construction

  Mutex fresh_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> checked_
      GUARDED_BY(fresh_mu_);  // repo\ntag

  Mutex fetch_mu_;
  CondVar fetch_cv_;
  std::map<std::string, std::shared_ptr<Fetch>> fetches_
      GUARDED_BY(fetch_mu_);               // by digest
  int running_ GUARDED_BY(fetch_mu_) = 0;  // fetch threads
};

}  // namespace ocib::registry
