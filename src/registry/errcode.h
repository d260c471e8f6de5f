// The registry's error codes and their wire form, in one table.
//
// Every API error leaves the server through ErrorBody(): the spec's JSON
// envelope {"errors":[{"code","message","detail"}]} with the HTTP status
// from the table. StatusToError() is the single place that maps a store
// Status to a wire code. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace ocib::registry {

enum class ErrorCode {
  kBlobUnknown,
  kBlobUploadInvalid,
  kBlobUploadUnknown,
  kDigestInvalid,
  kManifestBlobUnknown,
  kManifestInvalid,
  kManifestUnknown,
  kNameInvalid,
  kNameUnknown,
  kSizeInvalid,
  kUnauthorized,
  kDenied,
  kUnsupported,
  kTooManyRequests,
  kRangeInvalid,
  kPaginationNumberInvalid,
  kManifestTooLarge,
  kNotFound,
  kMethodNotAllowed,
  kUnavailable,
  kUpstreamUnavailable,
  kStorageUnavailable,
  kUnknown,
};

struct ErrorInfo {
  ErrorCode code;
  std::string_view name;     // the spec's code string, e.g. "BLOB_UNKNOWN"
  std::string_view message;  // the spec's description
  int http_status;
};

const ErrorInfo& Info(ErrorCode code);

// The JSON envelope for one error. `detail` (may be empty) is sent as a
// JSON string.
std::string ErrorBody(ErrorCode code, std::string_view detail);

// Maps a store error to the wire code a handler on `context` should send.
// `not_found` is the code for kNotFound (BLOB_UNKNOWN, MANIFEST_UNKNOWN...),
// as only the caller knows what was missing.
ErrorCode StatusToError(const Status& s, ErrorCode not_found);

}  // namespace ocib::registry
