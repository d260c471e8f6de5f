// HTTP/1.1 request parsing (RFC 9112), strict where leniency lets two
// parsers disagree on where a request ends: pure functions over bytes, no
// I/O, so each is fuzzed on its own (tests/fuzz/).
//
// ParseRequestHead reads a request line and header section. Framing rules
// (RFC 9112 §6): a Content-Length must be digits, repeated values must
// agree, Transfer-Encoding must be exactly "chunked", and a request with
// both is refused, so no body byte can be taken for the next request.
// Thread-safe: no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/http.h"

namespace ocib::net {

struct HeadLimits {
  size_t max_header_bytes = 64 << 10;  // request line + header section
  size_t max_headers = 256;            // header fields
};

struct HeadResult {
  enum Kind { kIncomplete, kComplete, kError } kind = kIncomplete;
  size_t consumed = 0;       // kComplete: bytes of the head, CRLFCRLF included
  int status = 0;            // kError: 400, 414, 431, 501 or 505
  const char* message = "";  // kError: a fixed text, safe to send
};

// Parses the head at the start of `in` into *req (method, target, path,
// query, params, version, headers, ranges). Leading empty lines are
// skipped. kIncomplete while no complete head is in `in` and it stays
// within the limits; then the caller reads more.
// On kComplete, *body_length is the Content-Length (0 without one) and
// *chunked tells a chunked body; *keep_alive what the client asked for.
HeadResult ParseRequestHead(std::string_view in, const HeadLimits& limits,
                            Request* req, uint64_t* body_length, bool* chunked,
                            bool* keep_alive);

// Decodes %XX escapes (and '+' as space when `plus_is_space`); invalid
// escapes are kept as they are.
std::string PercentDecode(std::string_view s, bool plus_is_space);

// Parses "k=v&k2=v2" into decoded pairs.
void ParseQuery(std::string_view query,
                std::multimap<std::string, std::string>* out);

// Parses a Range header value ("bytes=0-9,20-,-5"). Returns false (and
// leaves *out empty) for anything else, which RFC 9110 §14.2 lets a
// server ignore. At most 16 ranges. A range whose last byte precedes its
// first is returned as it is (unsatisfiable: the caller answers 416).
bool ParseRangeHeader(std::string_view v, std::vector<ByteRange>* out);

// Parses an upload's Content-Range: "START-END", optionally after "bytes "
// or "bytes=" (docker sends the bare form), inclusive, END >= START.
bool ParseContentRange(std::string_view v, uint64_t* start, uint64_t* end);

// Incremental decoder for a chunked body (RFC 9112 §7.1). Feed() takes
// bytes as they arrive and hands the data to `out`; extensions and
// trailers are read and dropped, within the limits.
class ChunkedDecoder {
 public:
  enum State { kNeedMore, kDone, kError };
  // Consumes a prefix of [p, p+n) (all of it unless kDone, where the rest
  // belongs to the next request) and sets *consumed. `out` returning false
  // stops decoding: Feed then returns kError with stopped() true.
  State Feed(const char* p, size_t n, size_t* consumed,
             const std::function<bool(const char*, size_t)>& out);
  bool stopped() const { return stopped_; }
  uint64_t data_bytes() const { return data_bytes_; }

 private:
  enum Phase {
    kSize,
    kData,
    kDataCrlf,
    kTrailer,
    kFinished,
    kFailed
  } phase_ = kSize;
  std::string line_;   // the size line or trailer line so far
  uint64_t left_ = 0;  // data bytes left in this chunk
  size_t trailer_bytes_ = 0;
  uint64_t data_bytes_ = 0;
  bool stopped_ = false;
};

}  // namespace ocib::net
