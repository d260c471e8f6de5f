// Layer blobs: a tar stream compressed (gzip or zstd, or not at all) into
// the store, with the uncompressed digest (the diff ID an image config
// lists) and the compressed digest and size (the manifest's descriptor).
//
// Compression is deterministic: gzip headers carry no name and mtime 0.
// Thread-compatible.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "image/tar_writer.h"
#include "store/blob_store.h"
#include "util/mutex.h"

namespace ocib::image {

enum class Compression { kNone, kGzip, kZstd };

// "gzip", "zstd" or "none"; kInvalidArgument otherwise.
Result<Compression> ParseCompression(const std::string& name);
// The OCI layer media type for the compression.
std::string LayerMediaType(Compression c);

struct LayerInfo {
  Digest digest = Digest::Of("");   // compressed blob
  uint64_t size = 0;                // compressed bytes
  Digest diff_id = Digest::Of("");  // uncompressed tar
  uint64_t uncompressed_size = 0;
  std::string media_type;
};

class LayerWriter {
 public:
  // Starts a layer ingest in `store`.
  static Result<std::unique_ptr<LayerWriter>> Create(Ingester& store,
                                                     Compression c);
  ~LayerWriter();

  // The tar to write entries into.
  TarWriter& tar() { return *tar_; }
  // Finishes the tar, flushes the compressor and commits the blob.
  Result<LayerInfo> Commit();
  // For a tar made elsewhere (import): bytes go in as they are, and
  // CommitRaw() commits without adding the end-of-archive blocks.
  Status WriteRaw(const char* data, size_t n) { return Uncompressed(data, n); }
  Result<LayerInfo> CommitRaw();

 private:
  LayerWriter() = default;
  Status Uncompressed(const char* data, size_t n);
  Status Compress(const char* data, size_t n);
  Status Compressed(const char* data, size_t n);
  // Compression runs on a second thread: the tar side hands it 1 MiB
  // pieces through a short queue.
  Status Enqueue(std::string piece);
  Status StopWorker();
  void Worker();
  // gzip runs block-parallel, as pigz does: fixed 256 KiB blocks, each
  // deflated on its own thread with the previous 32 KiB as dictionary and
  // ended with a sync flush, written in order. The output depends only on
  // the input, never on timing.
  Status SubmitGzipBlock(std::string block);
  Status DrainGzip(size_t keep);
  std::string gz_dict_;
  std::deque<std::future<std::string>> gz_jobs_;
  uint32_t gz_crc_ = 0;

  struct Codec;
  Compression compression_ = Compression::kGzip;
  std::unique_ptr<BlobWriter> blob_;
  std::unique_ptr<TarWriter> tar_;
  std::unique_ptr<Codec> codec_;
  Hasher diff_hasher_, blob_hasher_;
  uint64_t uncompressed_ = 0, compressed_ = 0;
  std::string pending_;  // tar bytes not yet handed to the worker
  std::thread worker_;
  Mutex mu_;
  CondVar cv_;
  std::deque<std::string> queue_ GUARDED_BY(mu_);
  bool closing_ GUARDED_BY(mu_) = false;
  Status worker_status_ GUARDED_BY(mu_);
};

}  // namespace ocib::image
