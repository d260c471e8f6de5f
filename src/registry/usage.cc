#include "registry/usage.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

namespace ocib::registry {
namespace {

std::string Namespace(const std::string& repo) {
  return repo.substr(0, repo.find('/'));
}

}  // namespace

Result<Usage> ComputeUsage(Store* store) {
  Usage u;
  std::map<Digest, uint64_t> sizes;
  RETURN_IF_ERROR(store->WalkBlobs([&](const BlobInfo& b) {
    sizes[b.digest] = b.size;
    ++u.total.blobs;
    u.total.bytes += b.size;
    if (b.refs == 0) {
      ++u.unreferenced.blobs;
      u.unreferenced.bytes += b.size;
    }
  }));
  std::map<std::string, std::set<Digest>> per_ns;
  std::string last;
  while (true) {
    ASSIGN_OR_RETURN(Page p, store->ListRepositories(1000, last));
    for (const auto& repo : p.items) {
      ASSIGN_OR_RETURN(RepositoryContents c, store->ReadRepository(repo));
      UsageEntry& e = u.repositories[repo];
      auto& ns = per_ns[Namespace(repo)];
      for (const auto& [d, touched] : c.links) {
        auto it = sizes.find(d);
        if (it == sizes.end()) continue;
        ++e.blobs;
        e.bytes += it->second;
        ns.insert(d);
      }
    }
    if (!p.more || p.items.empty()) break;
    last = p.items.back();
  }
  for (const auto& [name, digests] : per_ns) {
    UsageEntry& e = u.namespaces[name];
    for (const auto& d : digests) {
      ++e.blobs;
      e.bytes += sizes[d];
    }
  }
  return u;
}

std::string Usage::Json() const {
  nlohmann::json j;
  auto entry = [](const UsageEntry& e) {
    return nlohmann::json{{"blobs", e.blobs}, {"bytes", e.bytes}};
  };
  j["total"] = entry(total);
  j["unreferenced"] = entry(unreferenced);
  j["namespaces"] = nlohmann::json::object();
  for (const auto& [n, e] : namespaces) j["namespaces"][n] = entry(e);
  j["repositories"] = nlohmann::json::object();
  for (const auto& [n, e] : repositories) j["repositories"][n] = entry(e);
  return j.dump();
}

std::string Usage::Table() const {
  std::string out;
  char line[600];
  auto row = [&](const char* kind, const std::string& name,
                 const UsageEntry& e) {
    std::snprintf(line, sizeof line, "%-12s %14llu %8llu  %s\n", kind,
                  (unsigned long long)e.bytes, (unsigned long long)e.blobs,
                  name.c_str());
    out += line;
  };
  std::snprintf(line, sizeof line, "%-12s %14s %8s  %s\n", "KIND", "BYTES",
                "BLOBS", "NAME");
  out += line;
  for (const auto& [n, e] : namespaces) row("namespace", n, e);
  for (const auto& [n, e] : repositories) row("repository", n, e);
  row("unreferenced", "-", unreferenced);
  row("total", "-", total);
  return out;
}

}  // namespace ocib::registry
