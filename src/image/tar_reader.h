// Reading layer tars: decompression (gzip, zstd or none for layers; also
// xz and bzip2, which ADD extracts; detected from the bytes) and extraction
// into a directory.
//
// Extraction is safe against hostile archives: no entry is written outside
// the target (paths with "..", absolute paths and writes through symlinks
// are refused with kInvalidArgument). OCI whiteouts become overlayfs
// whiteouts (a 0/0 character device for ".wh.NAME", the
// trusted.overlay.opaque xattr for ".wh..wh..opq"), so an extracted layer
// can serve as an overlay lower directory.
#pragma once

#include <functional>
#include <string>

#include "image/tar_writer.h"
#include "util/status.h"

namespace ocib::image {

// Reads bytes (returns 0 at end).
using ByteSource = std::function<Result<size_t>(char* buf, size_t n)>;

// Wraps src in a decompressor chosen by the stream's magic bytes.
ByteSource Decompressing(ByteSource src);

// Calls on_entry for every entry (PAX and GNU long names applied). For
// files, read_data reads the entry's bytes; unread bytes are skipped.
Status ReadTar(
    ByteSource src,
    const std::function<Status(
        const TarEntry& e, const std::function<Result<size_t>(char*, size_t)>&
                               read_data)>& on_entry);

// Extracts a tar stream into dir (which must exist), in overlay format.
Status ExtractLayer(ByteSource src, const std::string& dir);

}  // namespace ocib::image
