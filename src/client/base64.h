// Base64 (RFC 4648, with padding) for HTTP Basic credentials and docker's
// config.json "auth" entries. Internal to the client library. Pure;
// thread-safe.
#pragma once

#include <string>

namespace ocib::client {

std::string Base64(const std::string& in);
// "" for input that is not base64.
std::string Unbase64(const std::string& in);

}  // namespace ocib::client
