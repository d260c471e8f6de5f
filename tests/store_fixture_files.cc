// The byte side of the store fixture: blob bytes in files under the
// store's root. Paired with an index side: store_fixture_rocks.cc (RocksDB,
// blob_store_test) or store_fixture_pg.cc (PostgreSQL, blob_store_pg_test).
#include <filesystem>
#include <fstream>

#include "store_fixture.h"

namespace ocib::testing {
namespace {
size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file()) ++n;
  return n;
}
}  // namespace

size_t CountBlobObjects(const std::string& root) {
  return CountFiles(root + "/blobs");
}
size_t CountSpoolObjects(const std::string& root) {
  return CountFiles(root + "/uploads");
}
void PlantBlobBytes(const std::string& root, const Digest& d,
                    const std::string& bytes) {
  std::string dir = root + "/blobs/sha256/" + d.hex().substr(0, 2);
  std::filesystem::create_directories(dir);
  std::ofstream f(dir + "/" + d.hex(), std::ios::binary);
  f << bytes;
}
bool FileBackend() { return true; }

}  // namespace ocib::testing
