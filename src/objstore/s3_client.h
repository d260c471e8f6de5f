// S3Client: the S3 operations the object-store byte backend needs, signed
// with SigV4 (sigv4.h) and sent path-style (http(s)://endpoint/bucket/key)
// over a pool of keep-alive connections.
//
// Keys are the caller's own strings (the backend's hex names under a
// prefix); the client URI-encodes them. Bodies sent are in memory and
// signed with their SHA-256, which the server checks; large reads stream.
//
// Errors: kNotFound for 404 (NoSuchKey, NoSuchUpload); kUnreachable when
// the server cannot be reached or answers 5xx/503 SlowDown (retried a few
// times first); kInternal for any other refusal, with the S3 error code
// in the message (never a credential).
//
// Thread safety: thread-safe; each call takes a connection from the pool.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "objstore/sigv4.h"
#include "util/status.h"

namespace ocib::objstore {

struct S3Options {
  std::string endpoint;  // http://host:port or https://host[:port]
  std::string region = "us-east-1";
  std::string bucket;
  std::string access_key;
  std::string secret_key;
  std::string ca_file;  // https: CA bundle; empty: the system's
  int timeout_seconds = 60;
  size_t max_idle_connections = 64;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t modified_unix = 0;
};

struct CompletedPart {
  int number = 0;
  std::string etag;
};

class S3Client {
 public:
  // kInvalidArgument for a malformed endpoint or missing bucket or keys.
  static Result<std::unique_ptr<S3Client>> Create(const S3Options& options);
  ~S3Client();

  // Creates the bucket; succeeds if the caller already owns it.
  Status CreateBucket();
  Status PutObject(const std::string& key, const char* data, size_t n);
  // Size and modification time; kNotFound if absent.
  Result<ObjectInfo> HeadObject(const std::string& key);
  // Streams bytes [offset, offset + length) to sink (which returns false
  // to stop: then kUnreachable). kOutOfRange if the range starts past the end.
  Status GetRange(const std::string& key, uint64_t offset, uint64_t length,
                  const std::function<bool(const char*, size_t)>& sink);
  // Succeeds if absent.
  Status DeleteObject(const std::string& key);
  // Deletes up to any number of keys (batches of 1000).
  Status DeleteObjects(const std::vector<std::string>& keys);
  // Every object whose key starts with prefix, in key order.
  Result<std::vector<ObjectInfo>> List(const std::string& prefix);
  // The distinct next path components under prefix (delimiter '/'),
  // each returned with prefix and without the trailing '/'.
  Result<std::vector<std::string>> ListPrefixes(const std::string& prefix);
  Status CopyObject(const std::string& from, const std::string& to);

  Result<std::string> CreateMultipartUpload(const std::string& key);
  // Uploads part `number` (1-based); returns its ETag.
  Result<std::string> UploadPart(const std::string& key,
                                 const std::string& upload_id, int number,
                                 const char* data, size_t n);
  struct PartInfo {
    int number = 0;
    uint64_t size = 0;
    std::string etag;
    int64_t modified_unix = 0;
  };
  // The parts uploaded so far, by number. kNotFound for an unknown upload.
  Result<std::vector<PartInfo>> ListParts(const std::string& key,
                                          const std::string& upload_id);
  // In-progress multipart uploads whose key starts with prefix:
  // {key, upload id}.
  Result<std::vector<std::pair<std::string, std::string>>> ListMultipartUploads(
      const std::string& prefix);
  // Copies [first, last] of `from` as part `number`; returns its ETag.
  Result<std::string> UploadPartCopy(const std::string& key,
                                     const std::string& upload_id, int number,
                                     const std::string& from, uint64_t first,
                                     uint64_t last);
  Status CompleteMultipartUpload(const std::string& key,
                                 const std::string& upload_id,
                                 const std::vector<CompletedPart>& parts);
  Status AbortMultipartUpload(const std::string& key,
                              const std::string& upload_id);

  // A URL anyone can GET the object with until `expires_seconds` pass.
  std::string PresignGet(const std::string& key, int expires_seconds) const;

 private:
  class Impl;
  explicit S3Client(std::unique_ptr<Impl> impl);
  Status ListPages(const std::string& prefix, bool delimited,
                   const std::function<void(const std::string&)>& page);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ocib::objstore
