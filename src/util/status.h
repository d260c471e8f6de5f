// Status and Result<T>: errors as values at module borders.
//
// A Status is either OK or carries a Code and a one-line message. Codes are
// few and each has one meaning callers may branch on:
//   kInvalidArgument     the input is malformed (bad digest, bad name, bad
//                        offset encoding). Retrying the same call fails again.
//   kNotFound            the named thing does not exist.
//   kAlreadyExists       the thing exists (most callers treat it as success).
//   kFailedPrecondition  the state does not allow the call (e.g. a write at an
//                        offset other than the session's current one).
//   kOutOfRange          a read past the end of a blob.
//   kDigestMismatch      bytes do not hash to the digest the caller expected.
//   kSizeMismatch        bytes do not have the size the caller expected.
//   kUnavailable         transient: a lock is held elsewhere; retry later.
//   kUnreachable         a service the call depends on (an object store)
//                        cannot be reached or fails; retry later.
//   kInternal            I/O or database failure; the message says which.
//
// Status and Result are values; they are thread-compatible (const use from
// many threads is safe) and [[nodiscard]]: an ignored error must be
// ignored explicitly with IgnoreError().
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ocib {

enum class Code {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kOutOfRange,
  kDigestMismatch,
  kSizeMismatch,
  kUnavailable,
  kInternal,
  kUnreachable,
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Returns a Status with the same code and `context: message`.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

  // Makes dropping an error greppable.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return Status(Code::kInvalidArgument, std::move(m));
}
inline Status NotFound(std::string m) {
  return Status(Code::kNotFound, std::move(m));
}
inline Status AlreadyExists(std::string m) {
  return Status(Code::kAlreadyExists, std::move(m));
}
inline Status FailedPrecondition(std::string m) {
  return Status(Code::kFailedPrecondition, std::move(m));
}
inline Status OutOfRange(std::string m) {
  return Status(Code::kOutOfRange, std::move(m));
}
inline Status Unavailable(std::string m) {
  return Status(Code::kUnavailable, std::move(m));
}
inline Status Unreachable(std::string m) {
  return Status(Code::kUnreachable, std::move(m));
}
inline Status Internal(std::string m) {
  return Status(Code::kInternal, std::move(m));
}

// Holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ocib

#define OCIB_CONCAT_INNER(a, b) a##b
#define OCIB_CONCAT(a, b) OCIB_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)    \
  do {                           \
    ::ocib::Status _st = (expr); \
    if (!_st.ok()) return _st;   \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(OCIB_CONCAT(_res_, __LINE__), lhs, expr)
