#include "gc/garbage_collector.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "auth/acl.h"
#include "oci/manifest.h"

namespace ocib::gc {
namespace {

using Clock = std::chrono::steady_clock;
// Removals per store batch: small online (short lock holds between
// requests), large offline (fewer syncs).
size_t BatchSize(const GcOptions& o) { return o.pace ? 32 : 1024; }

// With o.pace, sleeps twice as long as the work since `*since` took.
void Pace(const GcOptions& o, Clock::time_point* since) {
  if (!o.pace) return;
  auto now = Clock::now();
  std::this_thread::sleep_for(2 * (now - *since));
  *since = Clock::now();
}

// Marks and sweeps one repository. *parse_failed: a kept manifest that does
// not parse (then no link is removed).
const RetentionRule* RuleFor(const GcOptions& o, const std::string& repo) {
  for (const auto& r : o.retention)
    if (r.repository.empty() || auth::GlobMatch(r.repository, repo)) return &r;
  return nullptr;
}

// Removes the tags `rule` does not keep (from c.tags too, so the mark
// sees what is left).
Status ApplyRetention(Store* store, const std::string& repo,
                      const RetentionRule& rule, const GcOptions& o,
                      RepositoryContents* c, GcStats* st) {
  if (rule.keep_newest < 0 && rule.remove_older_than < 0) return Status::Ok();
  std::vector<TagEntry> tags = c->tags;
  std::sort(tags.begin(), tags.end(), [](const TagEntry& a, const TagEntry& b) {
    return a.pushed_micros != b.pushed_micros
               ? a.pushed_micros > b.pushed_micros
               : a.name < b.name;
  });
  std::regex keep(rule.keep_tags.empty() ? "$^" : rule.keep_tags);
  int64_t young = NowMicros() - rule.remove_older_than * 1000000;
  std::set<std::string> removed;
  for (size_t i = 0; i < tags.size(); ++i) {
    const TagEntry& t = tags[i];
    bool kept =
        (!rule.keep_tags.empty() && std::regex_search(t.name, keep)) ||
        (rule.keep_newest >= 0 && i < static_cast<size_t>(rule.keep_newest)) ||
        (rule.remove_older_than >= 0 && t.pushed_micros >= young);
    if (kept) continue;
    if (o.dry_run) {
      st->would_delete.push_back(repo + ":" + t.name);
    } else {
      Status s =
          store->DeleteTagIfUnchanged(repo, t.name, t.digest, t.pushed_micros);
      if (s.code() == Code::kFailedPrecondition) continue;  // pushed again
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
    ++st->tags_removed;
    removed.insert(t.name);
  }
  std::erase_if(c->tags,
                [&](const TagEntry& t) { return removed.count(t.name) > 0; });
  return Status::Ok();
}

// In a dry run, *dry_unlinked counts the links each blob would lose.
Status CollectRepository(Store* store, const std::string& repo,
                         const GcOptions& o, int64_t cutoff, GcStats* st,
                         std::map<Digest, uint64_t>* dry_unlinked) {
  ASSIGN_OR_RETURN(RepositoryContents c, store->ReadRepository(repo));
  const RetentionRule* rule = RuleFor(o, repo);
  bool untagged_go = o.delete_untagged;
  int64_t manifest_cutoff = cutoff;
  if (rule) {
    RETURN_IF_ERROR(ApplyRetention(store, repo, *rule, o, &c, st));
    if (rule->keep_untagged_for >= 0) {
      untagged_go = true;
      manifest_cutoff =
          std::min(cutoff, NowMicros() - rule->keep_untagged_for * 1000000);
    }
  }
  std::map<Digest, const ManifestRecord*> manifests;
  std::map<Digest, std::vector<Digest>> referrers;  // subject -> referrers
  for (const auto& m : c.manifests) {
    manifests[m.digest] = &m;
    if (m.subject) referrers[*m.subject].push_back(m.digest);
  }
  std::vector<Digest> work;
  for (const auto& t : c.tags) work.push_back(t.digest);
  // Roots: tagged manifests; every manifest unless delete_untagged, save
  // referrers whose subject is gone (they go with it); anything young.
  for (const auto& m : c.manifests) {
    bool orphan_referrer = m.subject && !manifests.count(*m.subject);
    if ((!untagged_go && !orphan_referrer) ||
        m.touched_micros >= manifest_cutoff)
      work.push_back(m.digest);
  }
  std::set<Digest> kept, blobs;
  bool parse_failed = false;
  while (!work.empty()) {
    Digest d = work.back();
    work.pop_back();
    auto it = manifests.find(d);
    if (it == manifests.end() || !kept.insert(d).second) continue;
    auto parsed =
        oci::ParseManifest(it->second->content, it->second->media_type);
    if (!parsed.ok()) {
      parse_failed = true;
      continue;
    }
    if (parsed->config) blobs.insert(parsed->config->digest);
    for (const auto& l : parsed->layers) blobs.insert(l.digest);
    for (const auto& m : parsed->manifests) work.push_back(m.digest);
    if (parsed->subject) work.push_back(parsed->subject->digest);
    auto r = referrers.find(d);
    if (r != referrers.end())
      work.insert(work.end(), r->second.begin(), r->second.end());
  }
  for (const auto& m : c.manifests) {
    if (kept.count(m.digest)) continue;
    if (o.dry_run) {
      st->would_delete.push_back(repo + "@" + m.digest.str());
      ++st->manifests_deleted;
      continue;
    }
    Status s = store->DeleteManifestIfIdle(repo, m.digest, manifest_cutoff);
    if (s.ok())
      ++st->manifests_deleted;
    else if (s.code() != Code::kFailedPrecondition &&
             s.code() != Code::kNotFound)
      return s;
  }
  if (parse_failed) {
    std::fprintf(stderr,
                 "ocireg: gc: %s has a manifest that does not parse; its "
                 "blobs are kept\n",
                 repo.c_str());
    return Status::Ok();
  }
  if (o.sweep_delay_ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(o.sweep_delay_ms));
  std::vector<Digest> unlink;
  for (const auto& [d, touched] : c.links) {
    if (blobs.count(d) || touched >= cutoff) continue;
    if (o.dry_run) {
      ++st->links_removed;
      ++(*dry_unlinked)[d];
      continue;
    }
    unlink.push_back(d);
  }
  // In batches: one store lock and one sync each, short enough that
  // pushes waiting for the lock hardly notice.
  auto since = Clock::now();
  const size_t batch = BatchSize(o);
  for (size_t i = 0; i < unlink.size(); i += batch) {
    std::vector<Digest> part(
        unlink.begin() + i,
        unlink.begin() + std::min(unlink.size(), i + batch));
    ASSIGN_OR_RETURN(UnlinkCount n,
                     store->UnlinkManyIfIdle(repo, part, cutoff));
    st->links_removed += n.links;
    st->blobs_deleted += n.blobs;
    st->bytes_reclaimed += n.bytes;
    Pace(o, &since);
  }
  if (!o.dry_run && store->RemoveRepositoryIfEmpty(repo).ok())
    ++st->repositories_removed;
  return Status::Ok();
}

}  // namespace

std::string GcStats::Summary() const {
  char buf[400];
  std::snprintf(
      buf, sizeof buf,
      "%llu repositories, %llu manifests and %llu links removed, "
      "%llu blobs (%llu bytes) reclaimed, %llu orphaned blobs, "
      "%llu empty repositories, %llu tags by retention, in %.3f s",
      (unsigned long long)repositories, (unsigned long long)manifests_deleted,
      (unsigned long long)links_removed, (unsigned long long)blobs_deleted,
      (unsigned long long)bytes_reclaimed, (unsigned long long)orphan_blobs,
      (unsigned long long)repositories_removed,
      (unsigned long long)tags_removed, seconds);
  return buf;
}

Result<GcStats> CollectGarbage(Store* store, const GcOptions& o) {
  auto t0 = Clock::now();
  // One collector across replicas sharing an index; the others skip.
  ASSIGN_OR_RETURN(auto lease, store->HoldCollector());
  GcStats st;
  int64_t cutoff = NowMicros() - o.min_age_seconds * 1000000;
  // Every repository, paged.
  std::map<Digest, uint64_t> dry_unlinked;
  std::string last;
  while (true) {
    ASSIGN_OR_RETURN(Page p, store->ListRepositories(1000, last));
    for (const auto& repo : p.items) {
      ++st.repositories;
      auto since = Clock::now();
      RETURN_IF_ERROR(
          CollectRepository(store, repo, o, cutoff, &st, &dry_unlinked));
      Pace(o, &since);
    }
    if (!p.more || p.items.empty()) break;
    last = p.items.back();
  }
  // Blobs without links. The cutoff is taken again: links removed above
  // count as unreferenced since they were last touched.
  int64_t blob_cutoff = NowMicros() - o.min_age_seconds * 1000000;
  std::vector<Digest> idle;
  RETURN_IF_ERROR(store->WalkUnreferenced([&](const Digest& d, int64_t since) {
    if (since < blob_cutoff) idle.push_back(d);
  }));
  // A dry run also counts the blobs that would lose their last link.
  for (const auto& [d, n] : dry_unlinked) {
    auto info = store->StatBlob(d);
    if (info.ok() && info->refs > 0 && info->refs <= n) idle.push_back(d);
  }
  if (o.dry_run) {
    for (const Digest& d : idle) {
      auto info = store->StatBlob(d);
      st.would_delete.push_back(d.str());
      ++st.blobs_deleted;
      if (info.ok()) st.bytes_reclaimed += info->size;
    }
  } else {
    auto since = Clock::now();
    const size_t batch = BatchSize(o);
    for (size_t i = 0; i < idle.size(); i += batch) {
      std::vector<Digest> part(idle.begin() + i,
                               idle.begin() + std::min(idle.size(), i + batch));
      ASSIGN_OR_RETURN(auto gone, store->DeleteBlobsIfIdle(part, blob_cutoff));
      st.blobs_deleted += gone.first;
      st.bytes_reclaimed += gone.second;
      Pace(o, &since);
    }
  }
  if (!o.dry_run) {
    ASSIGN_OR_RETURN(auto orphans, store->RemoveOrphanBytes());
    st.orphan_blobs = orphans.first;
    st.bytes_reclaimed += orphans.second;
  }
  st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return st;
}

Status ValidateRetention(const RetentionRule& r) {
  try {
    std::regex re(r.keep_tags.empty() ? "$^" : r.keep_tags);
  } catch (const std::regex_error&) {
    return Status(Code::kInvalidArgument,
                  "keep_tags is not a regular expression: " + r.keep_tags);
  }
  if (r.keep_newest < -1)
    return Status(Code::kInvalidArgument, "keep_newest must be >= 0");
  return Status::Ok();
}

Result<int64_t> ParseDurationSeconds(const std::string& text) {
  if (text.empty()) return Status(Code::kInvalidArgument, "empty duration");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > 100LL * 365 * 86400)
        return Status(Code::kInvalidArgument, "duration too long: " + text);
      ++i;
    }
    if (i == start || i == text.size())
      return Status(Code::kInvalidArgument,
                    "duration \"" + text + "\" must be like 90s, 15m, 1h, 7d");
    char unit = text[i++];
    int64_t mult = unit == 's'   ? 1
                   : unit == 'm' ? 60
                   : unit == 'h' ? 3600
                   : unit == 'd' ? 86400
                                 : 0;
    if (!mult)
      return Status(Code::kInvalidArgument,
                    "duration \"" + text + "\" must be like 90s, 15m, 1h, 7d");
    total += n * mult;
    // Callers multiply by 10^6 (microseconds): keep far from overflow.
    if (total > 100LL * 365 * 86400)
      return Status(Code::kInvalidArgument,
                    "duration \"" + text + "\" is longer than 100 years");
  }
  return total;
}

}  // namespace ocib::gc
