#include "net/http_parser.h"

#include <strings.h>

#include <cstring>

namespace ocib::net {
namespace {

constexpr size_t kMaxChunkLine = 4096;  // chunk-size line with extensions
constexpr size_t kMaxTrailerBytes = 16 << 10;
constexpr size_t kMaxRanges = 16;

// tchar (RFC 9110 §5.6.2).
bool IsTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

// field-vchar, SP or HTAB (obs-text allowed).
bool IsFieldChar(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!IsTchar(c)) return false;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;  // < 10^18: no overflow
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool ContainsTokenNoCase(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (EqualsNoCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

HeadResult Error(int status, const char* message) {
  HeadResult r;
  r.kind = HeadResult::kError;
  r.status = status;
  r.message = message;
  return r;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int h = HexValue(s[i + 1]), l = HexValue(s[i + 2]);
      if (h >= 0 && l >= 0) {
        out.push_back(static_cast<char>(h * 16 + l));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

void ParseQuery(std::string_view q,
                std::multimap<std::string, std::string>* out) {
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key = PercentDecode(pair.substr(0, eq), true);
      std::string value = eq == std::string_view::npos
                              ? ""
                              : PercentDecode(pair.substr(eq + 1), true);
      out->emplace(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
}

bool ParseRangeHeader(std::string_view v, std::vector<ByteRange>* out) {
  out->clear();
  v = Trim(v);
  if (v.size() < 6 || !EqualsNoCase(v.substr(0, 6), "bytes=")) return false;
  v.remove_prefix(6);
  std::vector<ByteRange> ranges;
  while (true) {
    size_t comma = v.find(',');
    std::string_view spec = Trim(v.substr(0, comma));
    size_t dash = spec.find('-');
    if (dash == std::string_view::npos || ranges.size() == kMaxRanges)
      return false;
    std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
    uint64_t first = 0, last = 0;
    if (a.empty()) {  // suffix: -N
      if (!ParseDecimal(b, &last)) return false;
      ranges.emplace_back(-1, static_cast<int64_t>(last));
    } else {
      if (!ParseDecimal(a, &first)) return false;
      if (b.empty()) {
        ranges.emplace_back(static_cast<int64_t>(first), -1);
      } else {
        // last < first is kept: the server answers it 416, as the OCI
        // conformance suite expects.
        if (!ParseDecimal(b, &last)) return false;
        ranges.emplace_back(static_cast<int64_t>(first),
                            static_cast<int64_t>(last));
      }
    }
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  *out = std::move(ranges);
  return true;
}

bool ParseContentRange(std::string_view v, uint64_t* start, uint64_t* end) {
  if (v.starts_with("bytes ") || v.starts_with("bytes=")) v.remove_prefix(6);
  size_t dash = v.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 >= v.size())
    return false;
  return ParseDecimal(v.substr(0, dash), start) &&
         ParseDecimal(v.substr(dash + 1), end) && *end >= *start;
}

HeadResult ParseRequestHead(std::string_view in, const HeadLimits& limits,
                            Request* req, uint64_t* body_length, bool* chunked,
                            bool* keep_alive) {
  // Skip empty lines before the request line (RFC 9112 §2.2), a few only.
  size_t pos = 0;
  for (int i = 0; i < 4 && pos < in.size(); ++i) {
    if (in.compare(pos, 2, "\r\n") == 0)
      pos += 2;
    else if (in[pos] == '\n')
      pos += 1;
    else
      break;
  }
  // Finds the end of the line starting at `pos`: LF or CRLF. Bare CR is
  // an error (a parser that took it as a line end would disagree).
  auto next_line = [&](std::string_view* line, size_t* after) -> int {
    size_t lf = in.find('\n', pos);
    size_t limit = limits.max_header_bytes;
    if (lf == std::string_view::npos) return in.size() > limit ? 431 : 0;
    if (lf >= limit) return 431;
    size_t end = lf;
    if (end > pos && in[end - 1] == '\r') --end;
    *line = in.substr(pos, end - pos);
    if (line->find('\r') != std::string_view::npos) return 400;
    *after = lf + 1;
    return 1;
  };

  std::string_view line;
  size_t after = 0;
  int r = next_line(&line, &after);
  if (r == 0) {
    // Not a whole line yet: refuse at once what cannot start a request
    // (a TLS ClientHello on the plain port, binary noise), so such a
    // client gets its answer now instead of at the header deadline.
    std::string_view part = in.substr(pos);
    size_t sp = part.find(' ');
    std::string_view method = part.substr(0, sp);
    if (!method.empty() && part[0] != '\r' &&
        (!IsToken(method) || method.size() > 32))
      return Error(400, "malformed request line");
    return HeadResult{};
  }
  if (r == 431) return Error(414, "request line too long");
  if (r != 1) return Error(400, "malformed request line");
  // method SP request-target SP HTTP-version
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos)
    return Error(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method) || method.size() > 32)
    return Error(400, "malformed method");
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." ||
      (version[7] != '0' && version[7] != '1')) {
    if (version.starts_with("HTTP/"))
      return Error(505, "HTTP version not supported");
    return Error(400, "malformed request line");
  }
  if (target.empty() || target.front() != '/')
    return Error(400, "request target must be a path");
  for (unsigned char c : target)
    if (c <= 0x20 || c == 0x7f) return Error(400, "malformed request target");

  req->method.assign(method);
  req->target.assign(target);
  req->minor_version = version[7] - '0';
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  size_t hash = raw_path.find('#');
  if (hash != std::string_view::npos) raw_path = raw_path.substr(0, hash);
  req->path = PercentDecode(raw_path, false);
  req->query.clear();
  req->params.clear();
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    size_t qh = query.find('#');
    if (qh != std::string_view::npos) query = query.substr(0, qh);
    req->query.assign(query);
    ParseQuery(query, &req->params);
  }
  req->headers.clear();
  req->ranges.clear();
  pos = after;

  bool have_length = false, have_te = false;
  uint64_t length = 0;
  std::string_view te_value;
  std::string connection;
  bool have_host = false;
  size_t count = 0;
  while (true) {
    r = next_line(&line, &after);
    if (r == 0) return HeadResult{};
    if (r == 431) return Error(431, "request header section too large");
    if (r != 1) return Error(400, "malformed header line");
    pos = after;
    if (line.empty()) break;
    if (++count > limits.max_headers)
      return Error(431, "too many header fields");
    if (line.front() == ' ' || line.front() == '\t')
      return Error(400, "obsolete line folding");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return Error(400, "malformed header line");
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Error(400, "malformed header name");
    std::string_view value = Trim(line.substr(colon + 1));
    for (unsigned char c : value)
      if (!IsFieldChar(c)) return Error(400, "malformed header value");
    if (EqualsNoCase(name, "Content-Length")) {
      // "5" or "5, 5": every value (across fields too) the same number.
      std::string_view list = value;
      while (true) {
        size_t comma = list.find(',');
        uint64_t n;
        if (!ParseDecimal(Trim(list.substr(0, comma)), &n))
          return Error(400, "invalid Content-Length");
        if (have_length && n != length)
          return Error(400, "conflicting Content-Length values");
        have_length = true;
        length = n;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else if (EqualsNoCase(name, "Transfer-Encoding")) {
      if (have_te) return Error(501, "unsupported transfer coding");
      have_te = true;
      te_value = value;
    } else if (EqualsNoCase(name, "Host")) {
      if (have_host) return Error(400, "more than one Host header");
      have_host = true;
    } else if (EqualsNoCase(name, "Connection")) {
      if (!connection.empty()) connection += ',';
      connection.append(value);
    }
    req->headers.emplace(std::string(name), std::string(value));
  }
  if (req->minor_version == 1 && !have_host)
    return Error(400, "missing Host header");
  if (have_te) {
    if (req->minor_version == 0)
      return Error(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!EqualsNoCase(te_value, "chunked"))
      return Error(501, "unsupported transfer coding");
    if (have_length)
      return Error(400, "both Content-Length and Transfer-Encoding");
  }
  *chunked = have_te;
  *body_length = have_te ? 0 : length;
  if (req->minor_version == 0)
    *keep_alive = ContainsTokenNoCase(connection, "keep-alive");
  else
    *keep_alive = !ContainsTokenNoCase(connection, "close");
  auto range = req->headers.find("Range");
  if (range != req->headers.end())
    ParseRangeHeader(range->second, &req->ranges);
  HeadResult ok;
  ok.kind = HeadResult::kComplete;
  ok.consumed = pos;
  return ok;
}

ChunkedDecoder::State ChunkedDecoder::Feed(
    const char* p, size_t n, size_t* consumed,
    const std::function<bool(const char*, size_t)>& out) {
  size_t i = 0;
  auto fail = [&] {
    phase_ = kFailed;
    *consumed = i;
    return kError;
  };
  while (i < n) {
    switch (phase_) {
      case kSize: {
        char c = p[i++];
        if (c != '\n') {
          if (line_.size() >= kMaxChunkLine) return fail();
          line_.push_back(c);
          continue;
        }
        std::string_view l = line_;
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        size_t ext = l.find(';');
        std::string_view hex = l.substr(0, ext);
        while (!hex.empty() && (hex.back() == ' ' || hex.back() == '\t'))
          hex.remove_suffix(1);
        if (hex.empty() || hex.size() > 15) return fail();
        uint64_t size = 0;
        for (char h : hex) {
          int v = HexValue(h);
          if (v < 0) return fail();
          size = size * 16 + static_cast<uint64_t>(v);
        }
        if (l.find('\r') != std::string_view::npos) return fail();
        line_.clear();
        left_ = size;
        phase_ = size == 0 ? kTrailer : kData;
        break;
      }
      case kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(left_, n - i));
        data_bytes_ += take;
        left_ -= take;
        if (!out(p + i, take)) {
          i += take;
          stopped_ = true;
          return fail();
        }
        i += take;
        if (left_ == 0) phase_ = kDataCrlf;
        break;
      }
      case kDataCrlf: {
        char c = p[i++];
        if (c == '\r' && line_.empty()) {
          line_.push_back(c);
        } else if (c == '\n') {
          line_.clear();
          phase_ = kSize;
        } else {
          return fail();
        }
        break;
      }
      case kTrailer: {
        char c = p[i++];
        if (++trailer_bytes_ > kMaxTrailerBytes) return fail();
        if (c != '\n') {
          line_.push_back(c);
          continue;
        }
        std::string_view l = line_;
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        if (l.find('\r') != std::string_view::npos) return fail();
        bool end = l.empty();
        line_.clear();
        if (end) {
          phase_ = kFinished;
          *consumed = i;
          return kDone;
        }
        break;
      }
      case kFinished:
        *consumed = i;
        return kDone;
      case kFailed:
        return fail();
    }
  }
  *consumed = i;
  if (phase_ == kFinished) return kDone;
  if (phase_ == kFailed) return kError;
  return kNeedMore;
}

bool CaseInsensitiveLess::operator()(const std::string& a,
                                     const std::string& b) const {
  return ::strcasecmp(a.c_str(), b.c_str()) < 0;
}

}  // namespace ocib::net
