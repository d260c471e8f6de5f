// BlobReadHandle: random access to the bytes of one committed blob. The
// store hands them out (blob_store.h) and byte backends make them
// (byte_backend.h); neither needs the other's header for it.
#pragma once

#include <cstddef>
#include <cstdint>

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
};

}  // namespace ocib
