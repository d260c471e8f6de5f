// Disk use of a store, as an operator asks for it: per repository and per
// namespace (the name's first path component), in bytes of the unique
// blobs linked there, and for the whole store (every blob in the CAS,
// linked or not). Served by GET /admin/usage and `ocireg du`.
//
// Errors: kInternal from the store. Thread-safe (reads only).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "store/blob_store.h"
#include "util/status.h"

namespace ocib::registry {

struct UsageEntry {
  uint64_t blobs = 0;
  uint64_t bytes = 0;
};

struct Usage {
  std::map<std::string, UsageEntry> repositories;
  std::map<std::string, UsageEntry> namespaces;
  UsageEntry total;         // every blob in the store
  UsageEntry unreferenced;  // blobs no repository links (GC's candidates)
  std::string Json() const;
  std::string Table() const;  // for `ocireg du`
};

Result<Usage> ComputeUsage(Store* store);

}  // namespace ocib::registry
