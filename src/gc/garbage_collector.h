// Online garbage collection of a store: mark what tagged manifests (and,
// unless delete_untagged, every manifest) reach, then remove the rest,
// while pushes and pulls go on. Used by ocireg (schedule, admin endpoint,
// `ocireg gc`) and by ocibuild (rmi, prune) on its local store.
//
// Per repository, from one snapshot (Store::ReadRepository): roots are the
// tagged manifests, plus every untagged one unless delete_untagged (but
// not a referrer whose subject is gone: it goes with its subject), plus
// any touched within min_age. Marking follows an index's children, a
// manifest's subject and its referrers (a referrer lives while its
// subject does; a signature of a deleted image goes with it), and keeps
// the config and layers of each marked manifest. Then unmarked manifests
// and links are removed with the store's *IfIdle operations, and blobs
// left without any link are deleted, record first, then bytes; bytes
// without a record (a crash in a sweep) are removed at the end.
//
// Safety: every removal is conditional on "not touched since the cutoff"
// (now - min_age), checked under the store's metadata lock, and a
// manifest PUT touches everything it depends on in the same lock, so a
// push that comes to depend on something after the snapshot keeps it.
// With min_age 0 the cutoff is the start of the run.
//
// Errors: kInternal from the store. A manifest that does not parse keeps
// every link of its repository (nothing is removed there).
// Thread-safe: runs beside any store use; one run at a time (the caller
// serialises runs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/blob_store.h"
#include "util/status.h"

namespace ocib::gc {

// A retention policy for the repositories whose name matches `repository`
// (a glob as the ACL's; the first matching rule applies). A tag stays if
// it matches keep_tags, is among the keep_newest most recently pushed, or
// was pushed within remove_older_than; with neither count nor age rule
// every tag stays. Untagged manifests older than keep_untagged_for go
// (even without delete_untagged). Applied before GC's mark.
struct RetentionRule {
  std::string repository;          // "" = every repository
  int64_t keep_newest = -1;        // -1: no count rule
  std::string keep_tags;           // ECMAScript regex; "" = none
  int64_t remove_older_than = -1;  // seconds; -1: no age rule
  int64_t keep_untagged_for = -1;  // seconds; -1: as gc.delete_untagged
};

struct GcOptions {
  int64_t min_age_seconds = 3600;
  bool delete_untagged = false;
  bool dry_run = false;  // only count and list what would go
  // Online runs: after each batch of work, pause twice as long as it
  // took, so the collector takes at most a third of a core from requests.
  bool pace = false;
  // Tests only: a pause between the mark and the sweep of each
  // repository, widening the window a concurrent push could race.
  int sweep_delay_ms = 0;
  std::vector<RetentionRule> retention;
};

struct GcStats {
  uint64_t repositories = 0;
  uint64_t manifests_deleted = 0;
  uint64_t links_removed = 0;
  uint64_t blobs_deleted = 0;
  uint64_t bytes_reclaimed = 0;
  uint64_t orphan_blobs = 0;  // bytes without a record, removed
  uint64_t repositories_removed = 0;
  uint64_t tags_removed = 0;  // by retention rules
  double seconds = 0;
  std::vector<std::string> would_delete;  // dry run: "repo@digest", digests
  std::string Summary() const;            // one line for the log
};

Result<GcStats> CollectGarbage(Store* store, const GcOptions& options);

// Checks a rule (its regex compiles, its numbers make sense).
Status ValidateRetention(const RetentionRule& rule);

// Parses a duration such as "90s", "15m", "1h", "7d", "0s" (also "1h30m").
Result<int64_t> ParseDurationSeconds(const std::string& text);

}  // namespace ocib::gc
