// A client for the Docker Registry HTTP API v2 / OCI Distribution API,
// shared by ocibuild (push, pull, build caches) and ocireg's mirror. It is
// given its connection policy (Connection) and credentials; it reads no
// configuration files (user_config.h holds those readers for its callers)
// and keeps no process-wide state (tokens live in a ClientSession).
//
// Transport (see Connection): HTTPS verified with the system CAs, or with
// --ca-cert's CA; plain HTTP to loopback registries (as docker does for
// 127.0.0.0/8, ::1 and localhost); for insecure registries HTTPS without
// verification, falling back to plain HTTP. Blobs stream in both directions;
// every fetched blob and manifest is verified against its digest before it
// is stored. Errors: kNotFound for a missing manifest or blob,
// kUnavailable when the registry cannot be reached, kInvalidArgument for a
// bad answer (wrong digest, malformed reply), kFailedPrecondition for a
// refusal (401/403, NAME_INVALID, ...), each with a one-line reason.
//
// Thread-compatible: one RegistryClient per thread; a ClientSession may be
// shared by many.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "store/blob_store.h"
#include "util/mutex.h"
#include "util/status.h"

namespace ocib::client {

// A registry host from an image name: the first path component when it has
// a '.' or ':' or is "localhost". Returns "" when the name has none.
std::string RegistryHost(const std::string& image_name);
// The repository path without the host.
std::string RepositoryPath(const std::string& image_name);

// What the clients of one push, pull or mirror upstream share: bearer
// tokens (by realm, service, scope and credentials) until they expire, and
// the insecure hosts found to answer plain HTTP to a TLS hello. Thread-safe.
class ClientSession {
 public:
  bool KnownPlain(const std::string& host);
  void MarkPlain(const std::string& host);

 private:
  friend class RegistryClient;
  struct CachedToken {
    std::string token;
    std::chrono::steady_clock::time_point expires;
  };
  Mutex mu_;
  std::map<std::string, CachedToken> tokens_ GUARDED_BY(mu_);
  std::set<std::string> plain_ GUARDED_BY(mu_);
};

// How to reach registries: the connection policy the caller decides (the
// ocibuild CLI from --insecure, --ca-cert and its user config; ocireg's
// mirror from its config). The client reads no files of its own.
struct Connection {
  bool insecure = false;  // for every host this Connection is used with
  std::set<std::string>
      insecure_hosts;       // HTTPS unverified, then plain HTTP, for these
  std::string ca_cert;      // PEM file: HTTPS verified against it only
  std::string scheme;       // "http" or "https" to override the rules above
  int timeout_seconds = 0;  // connect and read timeout; 0: 10 s / 300 s
  int retries = 6;  // after a connection error, 5xx or 429, with backoff
  // Shared tokens and plain-HTTP knowledge; null: the client's own.
  std::shared_ptr<ClientSession> session;
};

// Progress of one blob transfer: bytes done so far and the total.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct FetchedManifest {
  std::string media_type;
  std::string content;
  Digest digest = Digest::Of("");
};

class RegistryClient {
 public:
  // credentials: "user:password", or "" for anonymous access (see
  // credentials.h for where callers get them). When the registry answers
  // 401 the client authenticates: Basic, or the Bearer token flow (realm,
  // service, scope; anonymous tokens too).
  RegistryClient(const std::string& host, const std::string& credentials,
                 const Connection& conn = {});
  // GET /v2/, authenticating as needed: OK when access is granted.
  Status Ping();
  ~RegistryClient();

  // True when the repository has the blob (HEAD).
  Result<bool> HasBlob(const std::string& repo, const Digest& d);
  // Cross-repository mount; false when the registry started an upload
  // instead (that session is cancelled).
  Result<bool> MountBlob(const std::string& repo, const std::string& from,
                         const Digest& d);
  // Uploads a blob from `source`: small blobs in one streamed PUT, large
  // ones in 16 MiB PATCH chunks. Connection errors and 5xx answers are
  // retried with backoff; a chunked upload resumes from the offset the
  // registry reports (GET of the upload) instead of starting over.
  Status PushBlob(const std::string& repo, const Digest& d, BlobReader& source,
                  const ProgressFn& progress = nullptr);
  // Receives one-line notes (retries, resumptions).
  void set_notes(std::function<void(const std::string&)> notes) {
    notes_ = std::move(notes);
  }
  // PUT of a manifest; checks the digest the registry answers.
  Status PushManifest(const std::string& repo, const std::string& reference,
                      const std::string& media_type,
                      const std::string& content);
  // GET with an Accept header for OCI and Docker manifests and indexes.
  // `reference` is a tag or digest; the content must hash to a digest
  // reference, and to the Docker-Content-Digest the registry sends.
  Result<FetchedManifest> GetManifest(const std::string& repo,
                                      const std::string& reference);
  // Streams a blob into the store, verifying size and digest, and links it
  // into link_repo. A transfer cut by a connection error or a 5xx answer
  // resumes with a Range request from the bytes already received (or
  // starts over if the registry ignores Range), with backoff. Nothing is
  // stored on a mismatch or when the retries run out.
  Status FetchBlob(const std::string& repo, const Digest& d, uint64_t size,
                   Ingester& store, const std::string& link_repo,
                   const ProgressFn& progress = nullptr);

  // Downloads a blob into w (which the caller commits), resuming with Range
  // after a cut; kInvalidArgument if the registry sends more than size
  // bytes or, after a cut, ignores the Range.
  Status FetchBlobInto(const std::string& repo, const Digest& d, uint64_t size,
                       BlobWriter& w, const ProgressFn& progress = nullptr);
  // HEAD of a blob: its size. kNotFound if the repository lacks it.
  Result<uint64_t> BlobSize(const std::string& repo, const Digest& d);
  // HEAD of a manifest: the digest the registry reports for reference.
  Result<Digest> HeadManifest(const std::string& repo,
                              const std::string& reference);
  // Every tag of the repository (following Link pages).
  Result<std::vector<std::string>> ListTags(const std::string& repo);

  // Blob bytes sent by PushBlob so far (for tests and progress).
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  Status Fetch(const std::string& repo, const Digest& d, uint64_t size,
               BlobWriter* w,
               const std::function<Result<BlobWriter*>()>& restart,
               const ProgressFn& progress);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t bytes_sent_ = 0;
  std::function<void(const std::string&)> notes_;
};

}  // namespace ocib::client
