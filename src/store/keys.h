// The RocksDB key space of the store, in one place.
//
// One column family; the first byte of a key names its kind:
//
//   "S"                                     schema version, "2" (see below)
//   "H"                                     last readiness probe's time
//   "b" <digest>                            blob record: size, refs
//   "i" <digest>                            a small blob's bytes, kept in
//                                           the database instead of a file
//   "p" <digest>                            promote intent (crash recovery:
//                                           bytes may exist without record)
//   "z" <digest>                            blob with refs == 0 (GC set)
//   "u" <upload id>                         session: repo, updated time
//   "h" <upload id>                         a session's running hash: the
//                                           bytes it covers, its state
//                                           (shared indexes only)
//   "R" <repo>                              repository exists
//   "l" <repo> \0 <digest>                  blob linked into repo
//   "m" <repo> \0 <digest>                  manifest record
//   "t" <repo> \0 <tag>                     tag -> digest text
//   "T" <repo> \0 <tag>                     tag's push time (absent: 0)
//   "f" <repo> \0 <subject> \0 <digest>     referrer record
//   "q" <queue> \0 <seq, 8 bytes BE>        a durable queue's entry
//
// Digests appear as their text form ("sha256:<hex>"). Repository names can
// not contain \0 (the registry validates them), so "<repo>\0" is a prefix
// that never matches a longer repository name; byte order of keys is the
// lexical order the listing APIs need.
//
// Values use length-prefixed strings and fixed 64-bit little-endian
// integers (Encoder/Decoder below).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/digest.h"

namespace ocib::keys {

// "2" added inline small blobs ('i' keys); "1" stores open as they are.
inline constexpr std::string_view kSchemaVersion = "2";

std::string Schema();
std::string Probe();
std::string Blob(const Digest& d);
std::string Pending(const Digest& d);
// Bytes of a small blob kept in the database instead of a file.
std::string Inline(const Digest& d);
std::string Unreferenced(const Digest& d);
std::string Upload(const std::string& id);
std::string HashState(const std::string& id);
std::string Repo(const std::string& repo);
std::string LinkPrefix(const std::string& repo);
std::string Link(const std::string& repo, const Digest& d);
std::string ManifestPrefix(const std::string& repo);
std::string Manifest(const std::string& repo, const Digest& d);
std::string TagPrefix(const std::string& repo);
std::string Tag(const std::string& repo, const std::string& tag);
// When the tag was last pushed ("T" <repo> \0 <tag>, microseconds).
std::string TagTime(const std::string& repo, const std::string& tag);
std::string ReferrerPrefix(const std::string& repo, const Digest& subject);
std::string Referrer(const std::string& repo, const Digest& subject,
                     const Digest& d);
std::string QueuePrefix(const std::string& queue);
std::string QueueEntry(const std::string& queue, uint64_t seq);
inline constexpr char kQueueKind = 'q';

inline constexpr char kBlobKind = 'b';
inline constexpr char kPendingKind = 'p';
inline constexpr char kUnreferencedKind = 'z';
inline constexpr char kUploadKind = 'u';
inline constexpr char kHashStateKind = 'h';
inline constexpr char kRepoKind = 'R';
inline constexpr char kInlineKind = 'i';

class Encoder {
 public:
  Encoder& U64(uint64_t v);
  Encoder& Str(std::string_view s);
  const std::string& out() const { return out_; }

 private:
  std::string out_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  bool U64(uint64_t* v);
  bool Str(std::string* s);
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace ocib::keys
