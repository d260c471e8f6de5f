// A ByteBackend (store/byte_backend.h) on an S3-compatible object store,
// so blob bytes live in a bucket while the store's records stay in its
// index.
//
// Layout under the configured prefix:
//   blobs/<algorithm>/<hex>          a promoted blob, named by digest
//   uploads/<spool key>/<offset>     a spool's bytes, in segments named by
//                                    their first byte's offset (16 hex)
//
// A spool gathers appended bytes in memory and writes a segment object
// once segment_bytes have gathered, and on Flush or Sync. Every segment
// but the last is at least 5 MiB (a spool reopened with a short last
// segment reads it back and rewrites it longer), so Promote can assemble
// the blob with a server-side multipart copy (or one copy for a single
// segment) without the bytes passing through this process again, then
// deletes the segments. Memory per open spool stays under segment_bytes
// plus one append, whatever the blob size. A spool's state is only its
// objects, so any process with the same bucket can reopen it.
//
// Reads stream with ranged GETs. Bytes are signed with their SHA-256
// (the server checks it) and the store verifies every blob's digest as it
// arrives.
//
// Thread safety: as ByteBackend.
#pragma once

#include <memory>
#include <string>

#include "objstore/s3_client.h"
#include "store/byte_backend.h"

namespace ocib::objstore {

struct S3BackendOptions {
  S3Options s3;
  std::string prefix;                   // e.g. "registry/"; "" or ending in '/'
  uint64_t segment_bytes = 8ull << 20;  // at least 5 MiB
  bool create_bucket = true;            // create it at start if missing
};

// Connects and (optionally) creates the bucket. kInvalidArgument for bad
// options; kUnreachable or kInternal when the store cannot be reached or
// refuses.
Result<std::unique_ptr<ByteBackend>> NewS3Backend(
    const S3BackendOptions& options);

}  // namespace ocib::objstore
