// A ByteBackend (store/byte_backend.h) on an S3-compatible object store,
// so blob bytes live in a bucket while the store's records stay in its
// index.
//
// Layout under the configured prefix:
//   blobs/<algorithm>/<hex>          a promoted blob, named by digest
//   uploads/<spool key>/data         a spool: a multipart upload, then
//                                    (sealed) the object it completed into
//   uploads/<spool key>/tail-<off>   the spool's last bytes past its parts
//                                    (fewer than a part), from offset <off>
//
// A spool is a multipart upload. Appended bytes gather in memory and go
// up as a part once segment_bytes have gathered (one part uploads in the
// background while the next gathers); at Flush (a request's end) bytes
// short of a part go to the tail object, and are read back and sent as a
// part once more arrive. Memory per open spool stays under two segments,
// whatever the blob size, and an idle spool holds none. A spool's state is
// its objects and upload, so any process can reopen it.
//
// Parts cannot be read before the upload completes: ReadAt of bytes in
// parts answers kUnavailable until Seal completes the upload into
// uploads/<key>/data. Promote then copies that object to its digest's key
// (a copy by reference on Ceph RGW; a multipart copy past 5 GiB) and
// deletes it. Removing a spool aborts its upload.
//
// Reads stream with ranged GETs, or come from the local blob cache. Bytes are
// signed with their SHA-256 (the server checks it); the store verifies each
// blob's digest.
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
  // A local cache of blob bytes (blob_cache.h) of at most cache_bytes
  // under cache_dir: blobs written through this backend and blobs read
  // whole from the store are served from it until evicted. 0: no cache.
  std::string cache_dir;
  uint64_t cache_bytes = 0;
};

// Connects and (optionally) creates the bucket. kInvalidArgument for bad
// options; kUnreachable or kInternal when the store cannot be reached or
// refuses.
Result<std::unique_ptr<ByteBackend>> NewS3Backend(
    const S3BackendOptions& options);

}  // namespace ocib::objstore
