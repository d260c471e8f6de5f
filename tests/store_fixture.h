// Which byte backend and which index a store test binary runs on. The
// store's unit suite (src/store/blob_store_test.cc) is one source built
// three times, each with a byte side and an index side:
//   blob_store_test:    store_fixture_files.cc (blob bytes in files under
//                       the root) + store_fixture_rocks.cc (RocksDB);
//   blob_store_pg_test: store_fixture_files.cc + store_fixture_pg.cc
//                       (records in PostgreSQL, a schema per store;
//                       OCIB_TEST_PG, set by tests/pg/store_pg_test.sh);
//   blob_store_s3_test: store_fixture_s3.cc (bytes in an S3 bucket, a
//                       prefix per store, records in RocksDB; the endpoint
//                       from OCIB_TEST_S3_ENDPOINT, _ACCESS_KEY and
//                       _SECRET_KEY, set by tests/s3/store_s3_test.sh).
#pragma once

#include <memory>
#include <string>

#include "store/blob_store.h"

namespace ocib::testing {

// OpenStore(o) with this binary's backend.
Result<std::unique_ptr<Store>> OpenTestStore(const StoreOptions& o);
// How many promoted blobs, and spools, the backend holds for the store at
// root (files under root, or objects under its prefix).
size_t CountBlobObjects(const std::string& root);
size_t CountSpoolObjects(const std::string& root);
// Stores bytes for d where the backend keeps promoted blobs, without a
// record (what a crash between a record's and the bytes' removal leaves).
void PlantBlobBytes(const std::string& root, const Digest& d,
                    const std::string& bytes);
// True when bytes are files under the root (tests of page-cache and file
// descriptor behaviour only apply then).
bool FileBackend();
// True when the records are in an index other processes share (PostgreSQL):
// several stores may open one root, and a read-only open sees the latest
// records rather than a snapshot.
bool SharedIndex();

}  // namespace ocib::testing
