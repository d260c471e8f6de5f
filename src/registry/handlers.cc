// What the handlers share: the request body reader, errors, pagination.
#include "registry/handlers.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "registry/access_control.h"

namespace ocib::registry {

bool Caller::May(std::string_view repository, unsigned actions) const {
  if (!access) return true;
  return (access->Granted(*who, repository) & actions) == actions;
}

bool Caller::Lists(std::string_view repository) const {
  return !access || access->Listed(*who, repository);
}

bool Body::declared_length(uint64_t* n) const {
  auto len = reader.declared_length();
  if (len) *n = *len;
  return len.has_value();
}

bool Body::Stream(const std::function<Status(const char*, size_t)>& sink,
                  Status* sink_status, uint64_t* received) {
  consumed = true;
  *received = 0;
  if (!present()) return true;
  std::string buf;
  buf.reserve(kIoChunk);
  bool ok = reader.Read([&](const char* data, size_t n) {
    *received += n;
    if (buf.size() + n > kIoChunk && !buf.empty()) {
      *sink_status = sink(buf.data(), buf.size());
      buf.clear();
      if (!sink_status->ok()) return false;
    }
    if (n >= kIoChunk) {
      *sink_status = sink(data, n);
      return sink_status->ok();
    }
    buf.append(data, n);
    return true;
  });
  if (sink_status->ok() && !buf.empty())
    *sink_status = sink(buf.data(), buf.size());
  return ok;
}

void SendError(net::Response& res, ErrorCode code, std::string_view detail) {
  res.status = Info(code).http_status;
  if (code == ErrorCode::kUnknown &&
      detail.find('/') != std::string_view::npos) {
    std::fprintf(stderr, "ocireg: internal error: %s\n",
                 net::EscapeForLog(detail).c_str());
    detail = "internal error (details in the server log)";
  } else if (code == ErrorCode::kStorageUnavailable) {
    // Names the object store's address: for the operator only.
    std::fprintf(stderr, "ocireg: storage unavailable: %s\n",
                 net::EscapeForLog(detail).c_str());
    detail = "storage unavailable, retry later (details in the server log)";
    res.set_header("Retry-After", "5");
  }
  res.set_content(ErrorBody(code, detail), "application/json");
}

void SendDenied(net::Response& res, const std::string& message) {
  res.status = 403;
  nlohmann::json e = {{"code", "DENIED"}, {"message", message}};
  res.set_content(
      nlohmann::json({{"errors", nlohmann::json::array({e})}})
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      "application/json");
}

void SendNotFound(const Services& s, RequestContext& ctx, ErrorCode code,
                  const Status& st) {
  if (st.code() != Code::kNotFound)
    return SendError(ctx.res, StatusToError(st, code), st.message());
  if (!s.store->RepositoryExists(ctx.route.name))
    return SendError(ctx.res, ErrorCode::kNameUnknown, ctx.route.name);
  SendError(ctx.res, code, st.message());
}

bool PageParams(const net::Request& req, size_t* n, bool* has_n,
                std::string* last) {
  *has_n = req.has_param("n");
  *n = 0;
  if (*has_n) {
    std::string v = req.get_param_value("n");
    if (v.empty() || v.size() > 9) return false;
    for (char c : v)
      if (c < '0' || c > '9') return false;
    *n = std::stoul(v);
  }
  *last = req.get_param_value("last");
  return true;
}

std::string UploadLocation(const std::string& name, const std::string& id) {
  return "/v2/" + name + "/blobs/uploads/" + id;
}

}  // namespace ocib::registry
