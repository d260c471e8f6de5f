// AWS Signature Version 4 for S3-compatible object stores: the
// Authorization header of a request, and presigned URLs. Pure functions
// of their inputs (no clock, no I/O), so they are checked against AWS's
// published examples.
//
// Thread safety: stateless.
#pragma once

#include <map>
#include <string>

namespace ocib::objstore {

struct SigV4Credentials {
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  std::string service = "s3";
};

// What a signature covers. `path` is the request path as sent (already
// URI-encoded, see UriEncode); `query` holds decoded names and values;
// `headers` maps lower-case names to values, and every one is signed
// (host and x-amz-date must be among them; for S3 also
// x-amz-content-sha256, whose value is `payload_hash`).
struct SigV4Request {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;
  std::string payload_hash;  // hex SHA-256 of the body, or UNSIGNED-PAYLOAD
};

// The value of the Authorization header. amz_date is YYYYMMDDTHHMMSSZ and
// must equal headers["x-amz-date"].
std::string SignV4(const SigV4Credentials& creds, const SigV4Request& req,
                   const std::string& amz_date);

// The query string (without '?') of a presigned GET or HEAD of `path` on
// `host`, valid for expires_seconds from amz_date.
std::string PresignV4(const SigV4Credentials& creds, const std::string& method,
                      const std::string& host, const std::string& path,
                      const std::string& amz_date, int expires_seconds);

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay,
// everything else becomes %XX (upper case); '/' stays when keep_slash.
std::string UriEncode(const std::string& s, bool keep_slash);

// Lower-case hex SHA-256 of data.
std::string Sha256Hex(const char* data, size_t n);

// YYYYMMDDTHHMMSSZ for a Unix time.
std::string AmzDate(long long unix_seconds);

}  // namespace ocib::objstore
