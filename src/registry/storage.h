// Opens the store a config names: the embedded one under `root`, with
// blob bytes in files there or, when storage.s3 is set, in that bucket,
// and its records in RocksDB under root or, when database.enabled, in
// PostgreSQL (shared by replicas).
//
// Errors: kInvalidArgument for S3 settings that cannot work (no
// credentials anywhere, a bad endpoint); the store's and the object
// store's errors otherwise (kUnavailable when the endpoint cannot be
// reached).
#pragma once

#include <memory>

#include "registry/config.h"
#include "store/blob_store.h"

namespace ocib::registry {

Result<std::unique_ptr<Store>> OpenConfiguredStore(const Config& cfg,
                                                   const StoreOptions& so);

}  // namespace ocib::registry
