// BlobReadHandle: random access to the bytes of one committed blob. The
// store hands them out (blob_store.h) and byte backends make them
// (byte_backend.h); neither needs the other's header for it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "util/status.h"

namespace ocib {

// Owned by the caller; thread-compatible.
class BlobReadHandle {
 public:
  virtual ~BlobReadHandle() = default;
  virtual uint64_t size() const = 0;
  // Reads up to n bytes at offset into buf. Returns the count read (0 only
  // when offset == size). kOutOfRange if offset > size.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) = 0;
  // Hands bytes [offset, offset + length) to sink in order, in pieces of
  // any size; stops with kUnavailable when sink returns false. kOutOfRange if
  // the range passes the end. Backends that can stream (an object store's
  // ranged GET) override it; this one reads 256 KiB at a time.
  virtual Status StreamRange(
      uint64_t offset, uint64_t length,
      const std::function<bool(const char*, size_t)>& sink) {
    if (offset > size() || length > size() - offset)
      return OutOfRange("range past end of blob");
    std::unique_ptr<char[]> buf(
        new char[std::min<uint64_t>(length, 256 << 10)]);
    while (length > 0) {
      Result<size_t> n =
          ReadAt(offset, buf.get(), std::min<uint64_t>(length, 256 << 10));
      if (!n.ok()) return n.status();
      if (*n == 0) return Internal("blob ended early");
      if (!sink(buf.get(), *n)) return Unavailable("read stopped");
      offset += *n;
      length -= *n;
    }
    return Status::Ok();
  }
};

}  // namespace ocib
