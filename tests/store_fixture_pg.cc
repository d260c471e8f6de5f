// The index side of the store fixture: records in PostgreSQL, a schema per
// store root (bytes: store_fixture_files.cc). OCIB_TEST_PG is the libpq
// connection string, set by tests/pg/store_pg_test.sh after it starts a
// throwaway server.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "pgindex/pg_index.h"
#include "store/byte_backend.h"
#include "store_fixture.h"

namespace ocib::testing {

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
bool SharedIndex() { return true; }

}  // namespace ocib::testing
