#include <cstdlib>
#include <filesystem>
#include <set>

#include "objstore/s3_backend.h"
#include "store_fixture.h"

namespace ocib::testing {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    std::fprintf(stderr, "%s is not set (run tests/s3/store_s3_test.sh)\n",
                 name);
    std::abort();
  }
  return v;
}

objstore::S3Options S3() {
  objstore::S3Options o;
  o.endpoint = Env("OCIB_TEST_S3_ENDPOINT");
  o.access_key = Env("OCIB_TEST_S3_ACCESS_KEY");
  o.secret_key = Env("OCIB_TEST_S3_SECRET_KEY");
  o.bucket = "ocib-store-test";
  return o;
}

// A prefix per store root: the temp directory's path without slashes.
std::string PrefixOf(const std::string& root) {
  std::string p;
  for (char c : std::filesystem::path(root).lexically_normal().string())
    p += (c == '/') ? '_' : c;
  return p + "/";
}

size_t CountUnder(const std::string& prefix, bool spools) {
  auto c = objstore::S3Client::Create(S3());
  if (!c.ok()) std::abort();
  if (spools) {  // spools with objects or an open multipart upload
    std::set<std::string> keys;
    auto p = (*c)->ListPrefixes(prefix);
    if (p.ok())
      for (auto& k : *p) keys.insert(k.substr(prefix.size()));
    auto u = (*c)->ListMultipartUploads(prefix);
    if (u.ok())
      for (auto& [k, id] : *u)
        keys.insert(k.substr(prefix.size(),
                             k.find('/', prefix.size()) - prefix.size()));
    return keys.size();
  }
  auto l = (*c)->List(prefix);
  return l.ok() ? l->size() : 0;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenTestStore(const StoreOptions& o) {
  objstore::S3BackendOptions b;
  b.s3 = S3();
  b.prefix = PrefixOf(o.root);
  b.segment_bytes = 5 << 20;  // the smallest, so tests cross segments
  ASSIGN_OR_RETURN(auto backend, objstore::NewS3Backend(b));
  return OpenStore(o, std::move(backend));
}
size_t CountBlobObjects(const std::string& root) {
  return CountUnder(PrefixOf(root) + "blobs/", false);
}
size_t CountSpoolObjects(const std::string& root) {
  return CountUnder(PrefixOf(root) + "uploads/", true);
}
void PlantBlobBytes(const std::string& root, const Digest& d,
                    const std::string& bytes) {
  auto c = objstore::S3Client::Create(S3());
  if (!c.ok() || !(*c)->PutObject(PrefixOf(root) + "blobs/sha256/" + d.hex(),
                                  bytes.data(), bytes.size())
                      .ok())
    std::abort();
}
bool SharedIndex() { return false; }
bool FileBackend() { return false; }

}  // namespace ocib::testing
