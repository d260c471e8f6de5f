// The content-addressable store shared by ocireg and ocibuild.
//
// Two levels (as in Distribution's linked blob store):
//   * a global CAS of blobs, addressed by Digest, whose bytes live behind a
//     ByteBackend (files today; an object store later) and whose records live
//     in RocksDB, the store of record;
//   * a per-repository index: blob links (a repository serves only blobs
//     linked into it), manifests kept byte-exact with their media type, tags,
//     and referrers (subject digest -> referrer descriptors).
//
// Ingest lifecycle (both direct writes and resumable upload sessions):
//
//   NewWriter()              BeginUpload(repo) -> id     (record persisted)
//        |                   ResumeUpload(id) -> writer  (exclusive; after a
//        |                        |                       restart the hash is
//        v                        v                       rebuilt from bytes)
//   writer->Write(...)*      writer->ExpectOffset(o); writer->Write(...)*
//        |                        |   (writer destroyed: session stays, its
//        |                        |    offset is what was written)
//        v                        v
//   writer->Commit(digest, size, link_repo)
//
// Commit fsyncs the bytes, checks size then digest, moves the bytes into the
// CAS and writes the blob record, the optional repository link and the
// session removal in one atomic RocksDB WriteBatch. Before that batch the
// blob is invisible: a crash at any point leaves either no blob or a
// complete, verified one. Committing a digest that already exists discards
// the new bytes and succeeds. A failed verification discards the session.
//
// Reference counting: every blob record counts the repository links to it.
// A blob whose count is zero is also listed in an "unreferenced" set, so a
// garbage collector can find candidates without walking every blob
// (ListUnreferencedBlobs / DeleteBlob).
//
// Touch times, for a garbage collector's grace window (all microseconds
// since the epoch, by the system clock): a link records when it was last
// made or required by a manifest PUT; a manifest when it was put or last
// required by another manifest (an index's child, a referrer's subject);
// an unreferenced blob when it lost its last link (that link's touch time)
// or was last committed unlinked. The *IfIdle operations act only on what
// was not touched since a cutoff, checked under the metadata lock, so a
// collector that decided from an earlier snapshot (ReadRepository) can
// never remove what a concurrent push has just come to depend on.
//
// Thread safety: a Store is thread-safe. Byte I/O runs without store locks;
// metadata read-check-write sequences (link, unlink, manifest put/delete,
// commit, blob delete) are serialised by one internal mutex and applied as
// RocksDB WriteBatches, so a manifest commit that requires a blob link and a
// concurrent unlink of that blob cannot both succeed. One writer at a time
// per upload session: ResumeUpload on a busy session returns kUnavailable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/blob_read_handle.h"
#include "store/digest.h"
#include "util/status.h"

namespace ocib {

struct StoreOptions {
  std::string root;  // created if missing; holds db/, blobs/, uploads/
  // Upload sessions idle longer than this are reclaimed by
  // PurgeExpiredUploads().
  std::chrono::seconds upload_expiry = std::chrono::hours(1);
  // Open upload sessions allowed at once, in all and per repository
  // (0: no limit). BeginUpload past either returns kUnavailable.
  size_t max_uploads = 10000;
  size_t max_uploads_per_repo = 1000;
  // fsync blob bytes and the RocksDB WAL at commit. Off only for benchmarks
  // of the upper layers; durability across power loss needs it on.
  bool sync = true;
  // Page cache kept for the most recently written blob bytes; older
  // written bytes are dropped from it once on disk, so big pushes recycle
  // pages instead of evicting everything else. 0 leaves it to the kernel.
  uint64_t written_cache_bytes = 1ull << 30;
  // Writes are refused (kInternal, "storage full") while the store's disk
  // has less free space than this, so the database never hits ENOSPC; a
  // reserve file of up to half of it is given back at open. 0: no guard.
  uint64_t reserved_bytes = 256ull << 20;
  // Opens a snapshot for reading only: no lock (other processes may write
  // meanwhile; their later writes are not seen), no recovery, no fsync.
  // Every write fails. kNotFound if there is no store at root yet.
  bool read_only = false;
  // RocksDB's block cache; 0 keeps its default (8 MiB). One-shot tools
  // (ocireg gc, du) use less.
  uint64_t block_cache_bytes = 0;
  // RocksDB's memtable size; 0 keeps the default (64 MiB).
  uint64_t write_buffer_bytes = 0;
};

struct BlobInfo {
  Digest digest;
  uint64_t size = 0;
  uint64_t refs = 0;  // repository links to the blob
};

// Appends bytes to an ingest. Owned by the caller; one thread at a time.
// Destroying a writer without Commit keeps an upload session (its bytes and
// offset) and discards a NewWriter() ingest.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // Bytes accepted so far.
  virtual uint64_t offset() const = 0;
  // kFailedPrecondition unless offset == this->offset(): chunks must arrive
  // in order and are never overwritten.
  virtual Status ExpectOffset(uint64_t offset) const = 0;
  virtual Status Write(const char* data, size_t n) = 0;
  // Write(buf.data(), buf.size()) that may take buf's storage instead of
  // copying it; buf is left empty, its capacity kept for reuse.
  virtual Status WriteTake(std::string& buf) {
    Status s = Write(buf.data(), buf.size());
    buf.clear();
    return s;
  }
  // Reads bytes already written: up to n at offset, where offset <= the
  // offset() seen after an earlier Write returned. Unlike the other
  // methods, safe to call from other threads while one thread writes or
  // commits (a mirror serves a blob while it arrives); the bytes stay
  // readable until the writer is destroyed, whatever Commit returned.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) = 0;
  // Makes the bytes written so far survive the writer (and the process):
  // an upload request calls it before acknowledging them. Bytes go to the
  // spool anyway; some backends hold the last ones in memory until then.
  // On failure the session keeps what its spool holds (GetUpload).
  virtual Status Flush() { return Status::Ok(); }
  // Verifies and publishes the bytes (see the lifecycle above).
  // expected_size: if set, kSizeMismatch when it differs.
  // kDigestMismatch when the bytes hash to another digest.
  // link_repo: if non-empty, also links the blob into that repository in
  // the same atomic batch.
  // After Commit (successful or not) the writer must not be used again.
  virtual Result<BlobInfo> Commit(const Digest& expected,
                                  std::optional<uint64_t> expected_size,
                                  const std::string& link_repo = "") = 0;
};

struct UploadStatus {
  std::string id;
  std::string repo;
  uint64_t offset = 0;
  int64_t updated_unix = 0;  // last Begin/Write time, seconds
};

// A manifest as the registry stores it. The store keeps `content` byte-exact
// and never parses it; the other fields are supplied by the caller.
struct ManifestRecord {
  Digest digest = Digest::Of("");
  std::string media_type;
  std::string content;
  std::optional<Digest> subject;  // OCI 1.1 `subject`, indexed as referrer
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
  // Set by the store: when the manifest was put or last required by
  // another (see touch times above). Ignored by PutManifest.
  int64_t touched_micros = 0;
};

// A repository's index as of one moment (ReadRepository).
struct TagEntry {
  std::string name;
  Digest digest = Digest::Of("");
  int64_t pushed_micros = 0;  // last PUT of the tag (0: before push times)
};
struct RepositoryContents {
  std::vector<std::pair<Digest, int64_t>> links;  // digest, touched
  std::vector<ManifestRecord> manifests;
  std::vector<TagEntry> tags;
};

struct ReferrerRecord {
  Digest digest = Digest::Of("");
  std::string media_type;
  uint64_t size = 0;
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
};

struct Page {
  std::vector<std::string> items;
  bool more = false;  // true when items after the last returned one exist
};

// --- role interfaces: callers take the narrowest one they need ---

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // kNotFound if the blob is not in the CAS.
  virtual Result<BlobInfo> StatBlob(const Digest& d) = 0;
  virtual Result<std::unique_ptr<BlobReadHandle>> OpenBlob(const Digest& d) = 0;
  // A URL any client can GET the blob's bytes from for expires_seconds,
  // where the bytes have one (an object store's presigned URL).
  // kFailedPrecondition when they have none (files, a small blob kept in
  // the database); kNotFound if the blob is not in the CAS.
  virtual Result<std::string> BlobURL(const Digest& d, int expires_seconds) {
    (void)d;
    (void)expires_seconds;
    return FailedPrecondition("blob bytes have no URL here");
  }
};

class Ingester {
 public:
  virtual ~Ingester() = default;
  // A session-less ingest (used by the builder and monolithic uploads).
  virtual Result<std::unique_ptr<BlobWriter>> NewWriter() = 0;
  // Creates a persistent upload session for `repo`; returns its id (32
  // lowercase hex characters). kUnavailable when max_uploads or
  // max_uploads_per_repo sessions are open (retry once some end).
  virtual Result<std::string> BeginUpload(const std::string& repo) = 0;
  // kNotFound for an unknown or malformed id, kUnavailable if another
  // writer holds the session.
  virtual Result<std::unique_ptr<BlobWriter>> ResumeUpload(
      const std::string& id) = 0;
};

class UploadManager {
 public:
  virtual ~UploadManager() = default;
  // kNotFound for an unknown or malformed id.
  virtual Result<UploadStatus> GetUpload(const std::string& id) = 0;
  // Deletes the session and its bytes. kNotFound if unknown;
  // kUnavailable if a writer holds it.
  virtual Status AbortUpload(const std::string& id) = 0;
  // Reclaims sessions idle for longer than the configured expiry, measured
  // against `now`. Returns how many were removed. Busy sessions are kept.
  virtual Result<size_t> PurgeExpiredUploads(
      std::chrono::system_clock::time_point now) = 0;
};

struct StoreStats {
  uint64_t blobs = 0;
  uint64_t blob_bytes = 0;
  uint64_t uploads_open = 0;
  uint64_t database_bytes = 0;  // tables and memtables
};

// A right held until destroyed. With an index shared by several processes
// (replicas), one process holds a given lease at a time: taking it answers
// kUnavailable while another does. Otherwise always granted (a process
// serialises its own users).
class StoreLease {
 public:
  virtual ~StoreLease() = default;
};

class BlobAdmin {
 public:
  virtual ~BlobAdmin() = default;
  // Up to `limit` blobs with no repository link, in digest order.
  virtual Result<std::vector<Digest>> ListUnreferencedBlobs(size_t limit) = 0;
  // Removes an unreferenced blob from the CAS. kNotFound if absent,
  // kFailedPrecondition if still linked somewhere.
  virtual Status DeleteBlob(const Digest& d) = 0;
  // Calls fn for every blob in the CAS, in digest order. Stops early and
  // returns kInternal on a database error.
  virtual Status WalkBlobs(const std::function<void(const BlobInfo&)>& fn) = 0;
  // Calls fn for every unreferenced blob with the time it became so.
  virtual Status WalkUnreferenced(
      const std::function<void(const Digest&, int64_t since_micros)>& fn) = 0;
  // DeleteBlob, only if the blob has been unreferenced since before
  // `cutoff_micros`: kFailedPrecondition if it is linked or was touched
  // at or after the cutoff, kNotFound if absent.
  virtual Status DeleteBlobIfIdle(const Digest& d, int64_t cutoff_micros) = 0;
  // DeleteBlobIfIdle for many blobs: their records go in one batch (made
  // durable once), then their bytes. Skips the ones not idle. Returns how
  // many were deleted and their bytes.
  virtual Result<std::pair<uint64_t, uint64_t>> DeleteBlobsIfIdle(
      const std::vector<Digest>& ds, int64_t cutoff_micros) = 0;
  // Figures for an operator (metrics): blobs and their bytes in the CAS,
  // open upload sessions, the database's size. The first call walks the
  // blob records once; later ones are counters.
  virtual Result<StoreStats> Stats() = 0;
  // Readiness: a small unsynced write to the database, after the free
  // space check. kInternal past the space reserve or when the database
  // refuses writes; kFailedPrecondition when opened read-only.
  virtual Status ProbeWritable() = 0;
  // Removes CAS bytes that have no blob record and no commit in progress
  // (left by a crash between a record's deletion and its bytes').
  // Returns how many blobs' bytes went, and how many bytes.
  virtual Result<std::pair<uint64_t, uint64_t>> RemoveOrphanBytes() = 0;
  // The right to run a collection (see StoreLease).
  virtual Result<std::unique_ptr<StoreLease>> HoldCollector() = 0;
};

// What UnlinkManyIfIdle removed: links, and blobs (with their bytes)
// that lost their last link.
struct UnlinkCount {
  uint64_t links = 0;
  uint64_t blobs = 0;
  uint64_t bytes = 0;
};

class RepositoryIndex {
 public:
  virtual ~RepositoryIndex() = default;
  // Links a CAS blob into repo (idempotent). kNotFound if not in the CAS.
  virtual Status LinkBlob(const std::string& repo, const Digest& d) = 0;
  // kNotFound if not linked.
  virtual Status UnlinkBlob(const std::string& repo, const Digest& d) = 0;
  // The blob if linked into repo, else kNotFound.
  virtual Result<BlobInfo> StatLinkedBlob(const std::string& repo,
                                          const Digest& d) = 0;

  // Stores a manifest (and tags it when `tag` is non-empty), atomically
  // checking that every digest in `required_blobs` is linked into repo and
  // every digest in `required_manifests` is a manifest of repo. On a
  // missing reference returns kNotFound whose message is the digest.
  // Putting the same digest again replaces the record (same bytes).
  virtual Status PutManifest(const std::string& repo, const ManifestRecord& m,
                             const std::string& tag,
                             const std::vector<Digest>& required_blobs,
                             const std::vector<Digest>& required_manifests) = 0;
  // kNotFound if repo has no such manifest.
  virtual Result<ManifestRecord> GetManifest(const std::string& repo,
                                             const Digest& d) = 0;
  // kNotFound if the tag does not exist.
  virtual Result<Digest> ResolveTag(const std::string& repo,
                                    const std::string& tag) = 0;
  // Deletes the manifest, every tag of repo that points at it, and its
  // referrer entry. kNotFound if absent.
  virtual Status DeleteManifest(const std::string& repo, const Digest& d) = 0;
  // kNotFound if the tag does not exist.
  virtual Status DeleteTag(const std::string& repo, const std::string& tag) = 0;
  // Tags of repo in lexical order, strictly after `last`, at most n
  // (n == 0: no limit).
  virtual Result<Page> ListTags(const std::string& repo, size_t n,
                                const std::string& last) = 0;
  // Repositories (with at least one link or manifest), lexical order.
  virtual Result<Page> ListRepositories(size_t n, const std::string& last) = 0;
  virtual bool RepositoryExists(const std::string& repo) = 0;
  // Manifests of repo whose subject is `subject`, in referrer digest order.
  virtual Result<std::vector<ReferrerRecord>> ListReferrers(
      const std::string& repo, const Digest& subject) = 0;

  // --- for a garbage collector (see touch times above) ---
  // Links, manifests (with their touch times) and tags of repo, all as of
  // one moment.
  virtual Result<RepositoryContents> ReadRepository(
      const std::string& repo) = 0;
  // Unlinks d from repo if the link was last touched before the cutoff;
  // kFailedPrecondition if touched since, kNotFound if not linked.
  virtual Status UnlinkIfIdle(const std::string& repo, const Digest& d,
                              int64_t cutoff_micros) = 0;
  // UnlinkIfIdle for many links (distinct digests) of one repository in
  // one batch; skips the ones touched since or gone. A blob whose last
  // link goes is deleted with it: it has been unreferenced since that
  // link's touch, before the cutoff, which is what DeleteBlobsIfIdle asks
  // (records in the batch, made durable, then bytes).
  virtual Result<UnlinkCount> UnlinkManyIfIdle(const std::string& repo,
                                               const std::vector<Digest>& ds,
                                               int64_t cutoff_micros) = 0;
  // Deletes an untagged manifest (and its referrer entry) last touched
  // before the cutoff; kFailedPrecondition if touched since or tagged.
  virtual Status DeleteManifestIfIdle(const std::string& repo, const Digest& d,
                                      int64_t cutoff_micros) = 0;
  // Deletes the tag if it still names `d` and was last pushed at
  // `pushed_micros` (retention decided from a snapshot);
  // kFailedPrecondition if it changed since, kNotFound if gone.
  virtual Status DeleteTagIfUnchanged(const std::string& repo,
                                      const std::string& tag, const Digest& d,
                                      int64_t pushed_micros) = 0;
  // Forgets repo (it leaves the catalog) if it has no link, manifest or
  // tag left; kFailedPrecondition otherwise.
  virtual Status RemoveRepositoryIfEmpty(const std::string& repo) = 0;
};

// Microseconds since the epoch, the unit of the store's touch times.
int64_t NowMicros();

// Durable FIFO queues of opaque entries (the registry's notifications):
// entries survive a crash once Append returns, and come back in append
// order until acknowledged. Queue names must not contain \0.
struct QueueEntry {
  uint64_t seq = 0;  // increasing across all queues
  std::string payload;
};

class DurableQueues {
 public:
  virtual ~DurableQueues() = default;
  // The right to deliver queue's entries (Peek, send, Ack), see StoreLease:
  // with several replicas one delivers, so an entry is not sent by each.
  virtual Result<std::unique_ptr<StoreLease>> HoldQueue(
      const std::string& queue) = 0;
  // Appends each (queue, payload) pair, all in one durable write.
  virtual Status Append(
      const std::vector<std::pair<std::string, std::string>>& entries) = 0;
  // Up to `max` of queue's oldest entries, oldest first.
  virtual Result<std::vector<QueueEntry>> Peek(const std::string& queue,
                                               size_t max) = 0;
  // Removes queue's entries with seq <= through (made durable).
  virtual Status Ack(const std::string& queue, uint64_t through) = 0;
  // How many entries queue holds (a walk: for metrics, not hot paths).
  virtual Result<uint64_t> QueueLength(const std::string& queue) = 0;
};

class Store : public BlobReader,
              public Ingester,
              public UploadManager,
              public BlobAdmin,
              public RepositoryIndex,
              public DurableQueues {
 public:
  // Flushes and closes the database. Writers must be destroyed first.
  ~Store() override = default;
};

// Opens (creating if needed) the store at options.root. Fails with
// kInternal if the database cannot be opened (e.g. another process holds
// it) and kFailedPrecondition on a schema version it does not know.
// Recovery on open: removes bytes of half-promoted blobs and of ingests
// that never became sessions.
Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);
// The same with blob bytes in `bytes` (e.g. an object store) instead of
// files under options.root; null means the file backend. The database
// stays under options.root.
class ByteBackend;
Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options,
                                         std::unique_ptr<ByteBackend> bytes);
// The same with the records in `index` (e.g. PostgreSQL, shared by several
// processes) instead of RocksDB under options.root; null means RocksDB.
// With a shared index, recovery at open leaves other processes' promotions
// and spools alone (the collector's RemoveOrphanBytes and upload expiry
// reclaim what a crashed process left).
class Index;
Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options,
                                         std::unique_ptr<ByteBackend> bytes,
                                         std::unique_ptr<Index> index);

}  // namespace ocib
