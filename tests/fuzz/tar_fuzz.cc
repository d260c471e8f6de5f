// libFuzzer target: the tar reader behind gzip/zstd detection
// (build/tar_reader.h), reading every entry's data.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "image/tar_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t pos = 0;
  ocib::image::ByteSource src = [&](char* buf,
                                    size_t n) -> ocib::Result<size_t> {
    size_t k = std::min(n, size - pos);
    std::memcpy(buf, data + pos, k);
    pos += k;
    return k;
  };
  char buf[4096];
  (void)ocib::image::ReadTar(
      ocib::image::Decompressing(src),
      [&](const ocib::image::TarEntry&, const auto& read) {
        while (true) {
          auto n = read(buf, sizeof buf);
          if (!n.ok()) return n.status();
          if (*n == 0) return ocib::Status::Ok();
        }
      });
  return 0;
}
