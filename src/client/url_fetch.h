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
#include <utility>
#include <vector>

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

// POSTs body to url (http, or https verified with the system CAs) with
// the given headers, within timeout_seconds for connecting, sending and
// each read. Returns the answer's status code; kInvalidArgument for a
// malformed URL, kUnavailable when there is no answer (refused, timed out).
Result<int> PostUrl(
    const std::string& url,
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body, const std::string& content_type,
    int timeout_seconds);

}  // namespace ocib::client
