// The store's Index in PostgreSQL, shared by several registry replicas
// (store/index.h has the contract). Uses libpq.
//
// Schema: versioned migrations, applied at open under an advisory lock (so
// replicas starting together apply each once); a database whose schema is
// newer than this binary's is refused. Records are rows of one table keyed
// by the store's byte keys (bytea, compared bytewise as RocksDB does), so
// a prefix scan and tag or catalog pagination are an index seek plus a
// bounded scan (LIMIT), never a walk.
//
// Mapping of the contract:
//   - Write: one statement (deletes and upserts of the batch's final state
//     per key), so one transaction and one round trip.
//   - Sync: nothing to do; a committed statement is durable
//     (synchronous_commit).
//   - Snapshots: a REPEATABLE READ READ ONLY transaction on a connection
//     held until the snapshot is released.
//   - Lock/TryLock: session-level advisory locks on one connection kept for
//     locks. Lock polls pg_try_advisory_lock, so a waiting caller never
//     blocks the others sharing that connection.
// Errors: a lost server gives kUnreachable (the connection is re-made on
// the next call); locks held on a lost connection are gone with it.
// Thread safety: thread-safe; connections come from a bounded pool.
#pragma once

#include <memory>
#include <string>

#include "store/index.h"

namespace ocib::pgindex {

struct PgIndexOptions {
  // A libpq connection string ("host=127.0.0.1 port=5432 dbname=registry
  // user=registry") or URI.
  std::string conninfo;
  // The PostgreSQL schema holding the tables (created if missing), so
  // several registries can share one database; [a-z_][a-z0-9_]*.
  std::string schema = "public";
  int pool_size = 8;
  // Open without migrating, in read-only transactions (kNotFound when the
  // schema holds no store).
  bool read_only = false;  // connections for queries (plus one for locks)
  int connect_timeout_seconds = 5;
};

// The schema version this binary writes and understands.
int SchemaVersion();

// Connects, applies missing migrations, and checks the schema version.
// kUnreachable when the server cannot be reached, kFailedPrecondition when
// the database's schema is newer than SchemaVersion().
Result<std::unique_ptr<Index>> OpenPgIndex(const PgIndexOptions& options);

}  // namespace ocib::pgindex
