// libFuzzer target: the HTTP/1.1 request head, chunked body, Range,
// Content-Range and query parsers (net/http_parser.h). The first byte picks the
// parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "net/http_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace ocib::net;
  switch (data[0] % 4) {
    case 0: {
      Request req;
      uint64_t length;
      bool chunked, keep_alive;
      HeadLimits limits;
      limits.max_header_bytes = 4096;
      limits.max_headers = 32;
      auto r =
          ParseRequestHead(in, limits, &req, &length, &chunked, &keep_alive);
      if (r.kind == HeadResult::kComplete && r.consumed > in.size())
        __builtin_trap();
      if (r.kind == HeadResult::kError && (r.status < 400 || r.status > 505))
        __builtin_trap();
      break;
    }
    case 1: {
      // Fed in pieces of varying size: the decoder must agree with itself.
      ChunkedDecoder dec;
      size_t pos = 0, step = 1;
      uint64_t out = 0;
      while (pos < in.size()) {
        size_t n = std::min(step, in.size() - pos), used = 0;
        auto st =
            dec.Feed(in.data() + pos, n, &used, [&](const char*, size_t k) {
              out += k;
              return true;
            });
        if (used > n) __builtin_trap();
        pos += used;
        if (st != ChunkedDecoder::kNeedMore) break;
        step = step * 3 % 17 + 1;
      }
      if (out != dec.data_bytes()) __builtin_trap();
      break;
    }
    case 2: {
      std::vector<ByteRange> ranges;
      if (ParseRangeHeader(in, &ranges) &&
          (ranges.empty() || ranges.size() > 16))
        __builtin_trap();
      uint64_t start, end;
      if (ParseContentRange(in, &start, &end) && end < start) __builtin_trap();
      break;
    }
    case 3: {
      std::multimap<std::string, std::string> params;
      ParseQuery(in, &params);
      (void)PercentDecode(in, false);
      break;
    }
  }
  return 0;
}
