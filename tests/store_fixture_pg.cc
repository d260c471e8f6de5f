// The store's unit suite with its records in PostgreSQL (a schema per
// store root) and blob bytes in files: OCIB_TEST_PG is the libpq
// connection string, set by tests/pg/store_pg_test.sh after it starts a
// throwaway server.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "pgindex/pg_index.h"
#include "store/byte_backend.h"
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

Result<std::unique_ptr<Store>> OpenTestStore(const StoreOptions& o) {
  const char* conninfo = std::getenv("OCIB_TEST_PG");
  if (!conninfo || !*conninfo) {
    std::fprintf(stderr,
                 "OCIB_TEST_PG is not set (run tests/pg/store_pg_test.sh)\n");
    std::abort();
  }
  pgindex::PgIndexOptions p;
  p.conninfo = conninfo;
  char name[32];
  std::snprintf(name, sizeof name, "t%016zx",
                std::hash<std::string>()(
                    std::filesystem::weakly_canonical(o.root).string()));
  p.schema = name;
  p.read_only = o.read_only;
  ASSIGN_OR_RETURN(auto index, pgindex::OpenPgIndex(p));
  return OpenStore(o, nullptr, std::move(index));
}
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
  std::ofstream(dir + "/" + d.hex(), std::ios::binary) << bytes;
}
bool SharedIndex() { return true; }
bool FileBackend() { return true; }

}  // namespace ocib::testing
