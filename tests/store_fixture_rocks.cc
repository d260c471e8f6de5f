// The index side of the store fixture: records in RocksDB under the root
// (the embedded default). Bytes: store_fixture_files.cc.
#include "store_fixture.h"

namespace ocib::testing {

Result<std::unique_ptr<Store>> OpenTestStore(const StoreOptions& o) {
  return OpenStore(o);
}
bool SharedIndex() { return false; }

}  // namespace ocib::testing
