#include "registry/quota.h"

#include <cstdio>
#include <set>

namespace ocib::registry {

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

const QuotaRule* Quotas::For(const std::string& repo) const {
  const QuotaRule* best = nullptr;
  for (const auto& r : rules_)
    if ((repo == r.ns || repo.rfind(r.ns + "/", 0) == 0) &&
        (!best || r.ns.size() > best->ns.size()))
      best = &r;  // the longest prefix
  return best;
}

Status Quotas::Check(Store* store, const std::string& repo, const Digest* d,
                     uint64_t size) const {
  const QuotaRule* rule = For(repo);
  if (!rule) return Status::Ok();
  std::set<Digest> held;
  std::string last;
  while (true) {
    ASSIGN_OR_RETURN(Page p, store->ListRepositories(1000, last));
    for (const auto& name : p.items) {
      if (name != rule->ns && name.rfind(rule->ns + "/", 0) != 0) continue;
      ASSIGN_OR_RETURN(RepositoryContents c, store->ReadRepository(name));
      for (const auto& [digest, touched] : c.links) held.insert(digest);
    }
    if (!p.more || p.items.empty()) break;
    last = p.items.back();
  }
  if (d && held.count(*d)) return Status::Ok();
  uint64_t used = 0;
  for (const auto& digest : held) {
    auto info = store->StatBlob(digest);
    if (info.ok()) used += info->size;
  }
  if (used + size <= rule->bytes) return Status::Ok();
  return Status(Code::kFailedPrecondition,
                "quota exceeded for namespace " + rule->ns + ": using " +
                    HumanBytes(used) + " of " + HumanBytes(rule->bytes) +
                    ", this blob needs " + HumanBytes(size));
}

}  // namespace ocib::registry
