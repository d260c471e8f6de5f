// Downloads of plain URLs (ADD https://...): HTTP or HTTPS verified with
// the system CAs, redirects followed, streamed to a sink, with an optional
// digest check (ADD --checksum).
//
// Errors: kInvalidArgument for a URL that is not http(s)://HOST[/PATH] or
// a checksum mismatch; kUnavailable when the server cannot be reached;
// kNotFound for 404/410; kFailedPrecondition for any other non-200 answer;
// a sink error as it is. Thread-safe (no shared state).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "store/digest.h"
#include "util/status.h"

namespace ocib::client {

struct UrlFetchOptions {
  int connect_timeout_seconds = 10;
  int read_timeout_seconds = 60;
  std::optional<Digest> checksum;  // the body must hash to this
};

Status FetchUrl(const std::string& url,
                const std::function<Status(const char*, size_t)>& sink,
                const UrlFetchOptions& options = {});

}  // namespace ocib::client
