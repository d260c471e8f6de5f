#include "registry/errcode.h"

#include <nlohmann/json.hpp>

namespace ocib::registry {
namespace {

constexpr ErrorInfo kTable[] = {
    {ErrorCode::kBlobUnknown, "BLOB_UNKNOWN", "blob unknown to registry", 404},
    {ErrorCode::kBlobUploadInvalid, "BLOB_UPLOAD_INVALID",
     "blob upload invalid", 400},
    {ErrorCode::kBlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN",
     "blob upload unknown to registry", 404},
    {ErrorCode::kDigestInvalid, "DIGEST_INVALID",
     "provided digest did not match uploaded content", 400},
    {ErrorCode::kManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN",
     "manifest references a manifest or blob unknown to registry", 400},
    {ErrorCode::kManifestInvalid, "MANIFEST_INVALID", "manifest invalid", 400},
    {ErrorCode::kManifestUnknown, "MANIFEST_UNKNOWN",
     "manifest unknown to registry", 404},
    {ErrorCode::kNameInvalid, "NAME_INVALID", "invalid repository name", 400},
    {ErrorCode::kNameUnknown, "NAME_UNKNOWN",
     "repository name not known to registry", 404},
    {ErrorCode::kSizeInvalid, "SIZE_INVALID",
     "provided length did not match content length", 400},
    {ErrorCode::kUnauthorized, "UNAUTHORIZED", "authentication required", 401},
    {ErrorCode::kDenied, "DENIED", "requested access to the resource is denied",
     403},
    {ErrorCode::kUnsupported, "UNSUPPORTED", "the operation is unsupported",
     405},
    {ErrorCode::kTooManyRequests, "TOOMANYREQUESTS", "too many requests", 429},
    {ErrorCode::kRangeInvalid, "BLOB_UPLOAD_INVALID",
     "requested range not satisfiable", 416},
    {ErrorCode::kPaginationNumberInvalid, "UNSUPPORTED",
     "invalid number of results requested (n)", 400},
    {ErrorCode::kManifestTooLarge, "SIZE_INVALID",
     "manifest exceeds the size limit", 413},
    {ErrorCode::kNotFound, "UNSUPPORTED", "no such endpoint", 404},
    {ErrorCode::kMethodNotAllowed, "UNSUPPORTED",
     "method not allowed on this endpoint", 405},
    {ErrorCode::kUnavailable, "TOOMANYREQUESTS", "resource busy, retry later",
     429},
    {ErrorCode::kStorageUnavailable, "UNAVAILABLE", "storage unavailable", 503},
    {ErrorCode::kUpstreamUnavailable, "UNAVAILABLE",
     "upstream registry unavailable", 503},
    {ErrorCode::kUnknown, "UNKNOWN", "unknown error", 500},
};

}  // namespace

const ErrorInfo& Info(ErrorCode code) {
  for (const auto& e : kTable)
    if (e.code == code) return e;
  return kTable[sizeof(kTable) / sizeof(kTable[0]) - 1];
}

std::string ErrorBody(ErrorCode code, std::string_view detail) {
  const ErrorInfo& i = Info(code);
  nlohmann::json e = {{"code", i.name}, {"message", i.message}};
  if (!detail.empty()) e["detail"] = std::string(detail);
  nlohmann::json body = {{"errors", nlohmann::json::array({e})}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ErrorCode StatusToError(const Status& s, ErrorCode not_found) {
  switch (s.code()) {
    case Code::kNotFound:
      return not_found;
    case Code::kDigestMismatch:
      return ErrorCode::kDigestInvalid;
    case Code::kSizeMismatch:
      return ErrorCode::kSizeInvalid;
    case Code::kInvalidArgument:
      return ErrorCode::kDigestInvalid;
    case Code::kFailedPrecondition:
      return ErrorCode::kRangeInvalid;
    case Code::kOutOfRange:
      return ErrorCode::kRangeInvalid;
    case Code::kUnavailable:
      return ErrorCode::kUnavailable;
    case Code::kUnreachable:
      return ErrorCode::kStorageUnavailable;
    default:
      return ErrorCode::kUnknown;
  }
}

}  // namespace ocib::registry
