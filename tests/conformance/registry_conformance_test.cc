// Conformance suite: the real ocireg on a free loopback port with a temp
// store, walked endpoint by endpoint as the OCI Distribution Spec v1.1
// (and the Docker Registry API v2) state. Test names carry the spec section
// and endpoint id (end-N) they check.
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "registry_process.h"
#include "store/digest.h"
#include "temp_dir.h"

using namespace ocib;
using namespace ocib::testing;
using json = nlohmann::json;

// Cases that speak plain HTTP on a raw socket (framing, pipelining,
// connection lifetimes); the run with TLS and auth (conformance_tls_auth)
// leaves them out, as the hardening suite covers the same loop.
const auto kRawSocket = doctest::test_suite("raw-socket");
// Cases that read one server process's own output (its access log); the
// run with replicas behind nginx (registry_pg) leaves them out.
const auto kOneProcess = doctest::test_suite("one-process");

namespace {

constexpr const char* kOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr const char* kOciLayer = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr const char* kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
constexpr const char* kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

std::string ErrCode(const httplib::Result& r) {
  if (!r) return "<no response>";
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.contains("errors") || j["errors"].empty())
    return "<no envelope>";
  return j["errors"][0]["code"].get<std::string>();
}

struct Fixture {
  TempDir dir;
  RegistryProcess reg{dir.path() + "/store"};
  std::unique_ptr<httplib::Client> c = reg.Client();

  // Monolithic upload (end-4b). Returns the digest.
  Digest PushBlob(const std::string& repo, const std::string& data) {
    Digest d = Digest::Of(data);
    auto r =
        c->Post(("/v2/" + repo + "/blobs/uploads/?digest=" + d.str()).c_str(),
                data, "application/octet-stream");
    REQUIRE(r);
    REQUIRE_MESSAGE(r->status == 201, r->body);
    return d;
  }

  std::string Image(const std::string& repo, const std::string& seed,
                    const char* media_type = kOciManifest,
                    json extra = json::object()) {
    std::string config =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"" + seed +
        "\"}";
    std::string layer = "layer-bytes-" + seed;
    Digest cd = PushBlob(repo, config), ld = PushBlob(repo, layer);
    bool docker = std::string(media_type) == kDockerManifest;
    json m = {
        {"schemaVersion", 2},
        {"mediaType", media_type},
        {"config",
         {{"mediaType", docker
                            ? "application/vnd.docker.container.image.v1+json"
                            : kOciConfig},
          {"digest", cd.str()},
          {"size", config.size()}}},
        {"layers",
         json::array(
             {{{"mediaType",
                docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
                       : kOciLayer},
               {"digest", ld.str()},
               {"size", layer.size()}}})}};
    for (auto& [k, v] : extra.items()) m[k] = v;
    return m.dump();
  }

  httplib::Result PutManifest(const std::string& repo, const std::string& ref,
                              const std::string& body,
                              const std::string& ct = kOciManifest) {
    return c->Put(("/v2/" + repo + "/manifests/" + ref).c_str(), body,
                  ct.c_str());
  }
};

}  // namespace

TEST_CASE("end-1: GET /v2/ answers 200 with Docker-Distribution-API-Version") {
  Fixture f;
  auto r = f.c->Get("/v2/");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Docker-Distribution-API-Version") ==
        "registry/2.0");
  auto r2 = f.c->Get("/v2");
  CHECK(r2->status == 200);
}

TEST_CASE(
    "pull/end-2: blob GET and HEAD serve bytes with digest, length and type") {
  Fixture f;
  std::string data = RandomBytes(300000, 7);
  Digest d = f.PushBlob("pull/blob", data);
  auto r = f.c->Get(("/v2/pull/blob/blobs/" + d.str()).c_str());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == data);
  CHECK(r->get_header_value("Docker-Content-Digest") == d.str());
  CHECK(r->get_header_value("Content-Type") == "application/octet-stream");
  CHECK(r->get_header_value("Content-Length") == std::to_string(data.size()));
  auto h = f.c->Head(("/v2/pull/blob/blobs/" + d.str()).c_str());
  CHECK(h->status == 200);
  CHECK(h->body.empty());
  CHECK(h->get_header_value("Content-Length") == std::to_string(data.size()));
  CHECK(h->get_header_value("Docker-Content-Digest") == d.str());
}

TEST_CASE("pull/end-2: unknown, unlinked and malformed blob digests") {
  Fixture f;
  Digest d = f.PushBlob("a/one", "only in one");
  auto r = f.c->Get(("/v2/a/one/blobs/" + Digest::Of("nope").str()).c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "BLOB_UNKNOWN");
  // A repository serves only blobs pushed or mounted into it.
  f.PushBlob("a/two", "x");
  r = f.c->Get(("/v2/a/two/blobs/" + d.str()).c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "BLOB_UNKNOWN");
  CHECK(f.c->Head(("/v2/a/two/blobs/" + d.str()).c_str())->status == 404);
  r = f.c->Get("/v2/a/one/blobs/sha256:zzzz");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
  r = f.c->Get("/v2/a/one/blobs/md5:d41d8cd98f00b204e9800998ecf8427e");
  CHECK(r->status == 400);
  r = f.c->Get(("/v2/never/pushed/blobs/" + d.str()).c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "NAME_UNKNOWN");
}

TEST_CASE("pull/end-2: Range requests give 206 and unsatisfiable ranges 416") {
  Fixture f;
  std::string data = RandomBytes(10000, 3);
  Digest d = f.PushBlob("range/r", data);
  std::string path = "/v2/range/r/blobs/" + d.str();
  auto r = f.c->Get(path.c_str(), {{"Range", "bytes=100-199"}});
  CHECK(r->status == 206);
  CHECK(r->body == data.substr(100, 100));
  CHECK(r->get_header_value("Content-Range") == "bytes 100-199/10000");
  r = f.c->Get(path.c_str(), {{"Range", "bytes=9990-"}});
  CHECK(r->status == 206);
  CHECK(r->body == data.substr(9990));
  r = f.c->Get(path.c_str(), {{"Range", "bytes=-5"}});
  CHECK(r->status == 206);
  CHECK(r->body == data.substr(9995));
  r = f.c->Get(path.c_str(), {{"Range", "bytes=9999-20000"}});
  CHECK(r->status == 206);
  CHECK(r->body == data.substr(9999));
  r = f.c->Get(path.c_str(), {{"Range", "bytes=10000-"}});
  CHECK(r->status == 416);
  CHECK(r->get_header_value("Content-Range") == "bytes */10000");
}

TEST_CASE(
    "push/end-4b: single POST monolithic upload, digest mismatch stores "
    "nothing") {
  Fixture f;
  std::string data = "monolithic";
  Digest d = Digest::Of(data);
  auto r = f.c->Post(("/v2/mono/blobs/uploads/?digest=" + d.str()).c_str(),
                     data, "application/octet-stream");
  CHECK(r->status == 201);
  CHECK(r->get_header_value("Location") == "/v2/mono/blobs/" + d.str());
  CHECK(r->get_header_value("Docker-Content-Digest") == d.str());
  Digest wrong = Digest::Of("other");
  r = f.c->Post(("/v2/mono/blobs/uploads/?digest=" + wrong.str()).c_str(), data,
                "application/octet-stream");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
  CHECK(f.c->Head(("/v2/mono/blobs/" + wrong.str()).c_str())->status == 404);
  r = f.c->Post("/v2/mono/blobs/uploads/?digest=sha256:123", data,
                "application/octet-stream");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
}

TEST_CASE("push/end-4a+end-6: POST then PUT monolithic upload") {
  Fixture f;
  auto r = f.c->Post("/v2/pp/blobs/uploads/", "", "application/octet-stream");
  REQUIRE(r->status == 202);
  std::string loc = r->get_header_value("Location");
  CHECK(loc.starts_with("/v2/pp/blobs/uploads/"));
  CHECK(!r->get_header_value("Docker-Upload-UUID").empty());
  CHECK(r->get_header_value("Range") == "0-0");
  std::string data = RandomBytes(2 << 20, 9);
  Digest d = Digest::Of(data);
  r = f.c->Put((loc + "?digest=" + d.str()).c_str(), data,
               "application/octet-stream");
  CHECK(r->status == 201);
  CHECK(r->get_header_value("Location") == "/v2/pp/blobs/" + d.str());
  CHECK(r->get_header_value("Docker-Content-Digest") == d.str());
  CHECK(f.c->Get(("/v2/pp/blobs/" + d.str()).c_str())->body == data);
  // The session is gone after it closed.
  r = f.c->Get(loc.c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "BLOB_UPLOAD_UNKNOWN");
}

TEST_CASE("push/end-6: closing PUT with a wrong, missing or malformed digest") {
  Fixture f;
  auto r = f.c->Post("/v2/bad/blobs/uploads/", "", "application/octet-stream");
  std::string loc = r->get_header_value("Location");
  r = f.c->Put(loc.c_str(), "abc", "application/octet-stream");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
  r = f.c->Put((loc + "?digest=sha256:xyz").c_str(), "abc",
               "application/octet-stream");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
  r = f.c->Put((loc + "?digest=" + Digest::Of("abd").str()).c_str(), "abc",
               "application/octet-stream");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
  CHECK(
      f.c->Head(("/v2/bad/blobs/" + Digest::Of("abc").str()).c_str())->status ==
      404);
  CHECK(
      f.c->Head(("/v2/bad/blobs/" + Digest::Of("abd").str()).c_str())->status ==
      404);
}

TEST_CASE(
    "push/end-5: chunked upload with PATCH, status, out-of-order 416, final "
    "chunk in PUT") {
  Fixture f;
  std::string data = RandomBytes(3 * 100000 + 123, 11);
  Digest d = Digest::Of(data);
  auto r =
      f.c->Post("/v2/chunk/ed/blobs/uploads/", "", "application/octet-stream");
  REQUIRE(r->status == 202);
  std::string loc = r->get_header_value("Location");
  // First chunk must start at 0.
  r = f.c->Patch(loc.c_str(), {{"Content-Range", "5-9"}}, data.substr(5, 5),
                 "application/octet-stream");
  CHECK(r->status == 416);
  uint64_t off = 0;
  for (int i = 0; i < 3; ++i) {
    std::string chunk = data.substr(off, 100000);
    std::string range =
        std::to_string(off) + "-" + std::to_string(off + chunk.size() - 1);
    r = f.c->Patch(loc.c_str(), {{"Content-Range", range}}, chunk,
                   "application/octet-stream");
    REQUIRE(r->status == 202);
    CHECK(r->get_header_value("Range") ==
          "0-" + std::to_string(off + chunk.size() - 1));
    CHECK(!r->get_header_value("Location").empty());
    loc = r->get_header_value("Location");
    off += chunk.size();
  }
  // Replaying a chunk (overlap) and skipping ahead (gap) are both 416.
  r = f.c->Patch(loc.c_str(), {{"Content-Range", "0-99999"}},
                 data.substr(0, 100000), "application/octet-stream");
  CHECK(r->status == 416);
  r = f.c->Patch(loc.c_str(),
                 {{"Content-Range",
                   std::to_string(off + 1) + "-" + std::to_string(off + 1)}},
                 "x", "application/octet-stream");
  CHECK(r->status == 416);
  r = f.c->Get(loc.c_str());
  CHECK(r->status == 204);
  CHECK(r->get_header_value("Range") == "0-" + std::to_string(off - 1));
  CHECK(!r->get_header_value("Location").empty());
  CHECK(!r->get_header_value("Docker-Upload-UUID").empty());
  // The final chunk rides on the closing PUT.
  std::string last = data.substr(off);
  r = f.c->Put((loc + "?digest=" + d.str()).c_str(),
               {{"Content-Range",
                 std::to_string(off) + "-" + std::to_string(data.size() - 1)}},
               last, "application/octet-stream");
  CHECK(r->status == 201);
  CHECK(f.c->Get(("/v2/chunk/ed/blobs/" + d.str()).c_str())->body == data);
}

TEST_CASE(
    "push/end-5: PATCH without Content-Range streams in order (docker style)") {
  Fixture f;
  std::string data = RandomBytes(500000, 12);
  auto r =
      f.c->Post("/v2/stream/blobs/uploads/", "", "application/octet-stream");
  std::string loc = r->get_header_value("Location");
  r = f.c->Patch(loc.c_str(), data.substr(0, 200000),
                 "application/octet-stream");
  CHECK(r->status == 202);
  r = f.c->Patch(r->get_header_value("Location").c_str(), data.substr(200000),
                 "application/octet-stream");
  CHECK(r->status == 202);
  CHECK(r->get_header_value("Range") == "0-499999");
  r = f.c->Put(
      (r->get_header_value("Location") + "?digest=" + Digest::Of(data).str())
          .c_str(),
      "", "application/octet-stream");
  CHECK(r->status == 201);
}

TEST_CASE("push/end-13+end-14: upload status and cancel; unknown sessions") {
  Fixture f;
  auto r =
      f.c->Post("/v2/cancel/blobs/uploads/", "", "application/octet-stream");
  std::string loc = r->get_header_value("Location");
  f.c->Patch(loc.c_str(), "abc", "application/octet-stream");
  r = f.c->Delete(loc.c_str());
  CHECK(r->status == 204);
  r = f.c->Get(loc.c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "BLOB_UPLOAD_UNKNOWN");
  r = f.c->Delete(loc.c_str());
  CHECK(r->status == 404);
  r = f.c->Patch("/v2/cancel/blobs/uploads/0123456789abcdef0123456789abcdef",
                 "abc", "application/octet-stream");
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "BLOB_UPLOAD_UNKNOWN");
  r = f.c->Get("/v2/cancel/blobs/uploads/..%2F..%2Fetc");
  CHECK(r->status == 404);
  // A session belongs to the repository that started it.
  r = f.c->Post("/v2/owner/blobs/uploads/", "", "application/octet-stream");
  std::string id = r->get_header_value("Docker-Upload-UUID");
  r = f.c->Get(("/v2/intruder/blobs/uploads/" + id).c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "BLOB_UPLOAD_UNKNOWN");
}

TEST_CASE("push/end-11: cross-repository mount, and fallback to a session") {
  Fixture f;
  Digest d = f.PushBlob("src/repo", "shared layer");
  auto r = f.c->Post(
      ("/v2/dst/repo/blobs/uploads/?mount=" + d.str() + "&from=src/repo")
          .c_str(),
      "", "application/octet-stream");
  CHECK(r->status == 201);
  CHECK(r->get_header_value("Location") == "/v2/dst/repo/blobs/" + d.str());
  CHECK(r->get_header_value("Docker-Content-Digest") == d.str());
  CHECK(f.c->Get(("/v2/dst/repo/blobs/" + d.str()).c_str())->body ==
        "shared layer");
  // The source lacks the blob: an upload session starts instead.
  Digest missing = Digest::Of("not anywhere");
  r = f.c->Post(
      ("/v2/dst/repo/blobs/uploads/?mount=" + missing.str() + "&from=src/repo")
          .c_str(),
      "", "application/octet-stream");
  CHECK(r->status == 202);
  CHECK(r->get_header_value("Location")
            .starts_with("/v2/dst/repo/blobs/uploads/"));
  // A blob the source repository never had cannot be mounted from it.
  Digest other = f.PushBlob("third", "third's layer");
  r = f.c->Post(
      ("/v2/dst/repo/blobs/uploads/?mount=" + other.str() + "&from=src/repo")
          .c_str(),
      "", "application/octet-stream");
  CHECK(r->status == 202);
  CHECK(f.c->Head(("/v2/dst/repo/blobs/" + other.str()).c_str())->status ==
        404);
}

TEST_CASE(
    "push/manifests end-7a: PUT by tag, GET/HEAD by tag and digest, "
    "byte-exact") {
  Fixture f;
  std::string m = f.Image("img", "a");
  m.insert(m.size() - 1, "  ");  // odd whitespace must survive byte-exact
  Digest d = Digest::Of(m);
  auto r = f.PutManifest("img", "v1", m);
  REQUIRE_MESSAGE(r->status == 201, r->body);
  CHECK(r->get_header_value("Location") == "/v2/img/manifests/" + d.str());
  CHECK(r->get_header_value("Docker-Content-Digest") == d.str());
  for (std::string ref : {std::string("v1"), d.str()}) {
    auto g = f.c->Get(("/v2/img/manifests/" + ref).c_str(),
                      {{"Accept", kOciManifest}});
    CHECK(g->status == 200);
    CHECK(g->body == m);
    CHECK(g->get_header_value("Content-Type") == kOciManifest);
    CHECK(g->get_header_value("Docker-Content-Digest") == d.str());
    auto h = f.c->Head(("/v2/img/manifests/" + ref).c_str());
    CHECK(h->status == 200);
    CHECK(h->get_header_value("Content-Length") == std::to_string(m.size()));
    CHECK(h->get_header_value("Docker-Content-Digest") == d.str());
  }
  auto g = f.c->Get("/v2/img/manifests/nosuchtag");
  CHECK(g->status == 404);
  CHECK(ErrCode(g) == "MANIFEST_UNKNOWN");
  g = f.c->Get(("/v2/img/manifests/" + Digest::Of("x").str()).c_str());
  CHECK(g->status == 404);
  CHECK(ErrCode(g) == "MANIFEST_UNKNOWN");
  g = f.c->Get("/v2/nosuchrepo/manifests/v1");
  CHECK(g->status == 404);
  CHECK(ErrCode(g) == "NAME_UNKNOWN");
}

TEST_CASE(
    "push/manifests end-7b: PUT by digest with tag parameters answers "
    "OCI-Tag") {
  Fixture f;
  std::string m = f.Image("tagged", "b");
  Digest d = Digest::Of(m);
  auto r = f.PutManifest("tagged", d.str() + "?tag=1.0&tag=latest", m);
  REQUIRE(r->status == 201);
  CHECK(r->get_header_value_count("OCI-Tag") == 2);
  CHECK(f.c->Get("/v2/tagged/manifests/1.0")->body == m);
  CHECK(f.c->Get("/v2/tagged/manifests/latest")->body == m);
  r = f.PutManifest("tagged", Digest::Of("different").str(), m);
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
}

TEST_CASE(
    "push/manifests: MANIFEST_BLOB_UNKNOWN, MANIFEST_INVALID, 413 and "
    "NAME_INVALID") {
  Fixture f;
  json m = {{"schemaVersion", 2},
            {"mediaType", kOciManifest},
            {"config",
             {{"mediaType", kOciConfig},
              {"digest", Digest::Of("c").str()},
              {"size", 1}}},
            {"layers", json::array()}};
  auto r = f.PutManifest("mv", "v1", m.dump());
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "MANIFEST_BLOB_UNKNOWN");
  CHECK(f.c->Get("/v2/mv/manifests/v1")->status == 404);
  r = f.PutManifest("mv", "v1", "{not json", kOciManifest);
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "MANIFEST_INVALID");
  r = f.PutManifest("mv", "v1",
                    "{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}",
                    "text/plain");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "MANIFEST_INVALID");
  r = f.PutManifest("mv", "v1", "{\"schemaVersion\":1}", kOciManifest);
  CHECK(ErrCode(r) == "MANIFEST_INVALID");
  r = f.PutManifest("mv", "v1",
                    "{\"schemaVersion\":2,\"mediaType\":\"" +
                        std::string(kOciManifest) +
                        "\",\"config\":{\"mediaType\":\"x\",\"digest\":"
                        "\"sha256:1\",\"size\":1}}");
  CHECK(ErrCode(r) == "MANIFEST_INVALID");
  // Content-Type and mediaType disagree.
  r = f.PutManifest("mv", "v1", f.Image("mv", "z"), kDockerManifest);
  CHECK(ErrCode(r) == "MANIFEST_INVALID");
  std::string big(5 << 20, ' ');
  r = f.PutManifest("mv", "v1", "{" + big + "}");
  CHECK(r->status == 413);
  r = f.PutManifest("mv", "bad:tag", f.Image("mv", "y"));
  CHECK(r->status == 400);
  r = f.PutManifest("mv", "-badtag", f.Image("mv", "y"));
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "MANIFEST_INVALID");
  for (std::string bad : {"UPPER/case", "a//b", "-a", "a-", "a..b", "a/.b"}) {
    r = f.c->Get(("/v2/" + bad + "/tags/list").c_str());
    CHECK_MESSAGE(r->status == 400, bad);
    CHECK(ErrCode(r) == "NAME_INVALID");
  }
}

TEST_CASE(
    "pull/end-3: a reference that is not a valid tag is an unknown manifest "
    "(404), as the OCI suite expects") {
  Fixture f;
  std::string m = f.Image("inv", "i");
  REQUIRE(f.PutManifest("inv", "v1", m)->status == 201);
  for (const std::string& ref : std::vector<std::string>{
           ".INVALID_MANIFEST_NAME", "-dash", std::string(129, 'a')}) {
    CAPTURE(ref);
    std::string path = "/v2/inv/manifests/" + ref;
    auto r = f.c->Get(path.c_str());
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(ErrCode(r) == "MANIFEST_UNKNOWN");
    r = f.c->Head(path.c_str());
    REQUIRE(r);
    CHECK(r->status == 404);
    r = f.c->Delete(path.c_str());
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(ErrCode(r) == "MANIFEST_UNKNOWN");
  }
}

TEST_CASE("push/manifests: image index, Docker schema 2 and manifest list") {
  Fixture f;
  std::string a = f.Image("multi", "amd64"), b = f.Image("multi", "arm64");
  REQUIRE(f.PutManifest("multi", Digest::Of(a).str(), a)->status == 201);
  json idx = {
      {"schemaVersion", 2},
      {"mediaType", kOciIndex},
      {"manifests",
       json::array(
           {{{"mediaType", kOciManifest},
             {"digest", Digest::Of(a).str()},
             {"size", a.size()},
             {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}},
            {{"mediaType", kOciManifest},
             {"digest", Digest::Of(b).str()},
             {"size", b.size()},
             {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}}})}};
  // A child the repository does not hold.
  auto r = f.PutManifest("multi", "latest", idx.dump(), kOciIndex);
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "MANIFEST_BLOB_UNKNOWN");
  REQUIRE(f.PutManifest("multi", Digest::Of(b).str(), b)->status == 201);
  r = f.PutManifest("multi", "latest", idx.dump(), kOciIndex);
  CHECK(r->status == 201);
  auto g = f.c->Get("/v2/multi/manifests/latest");
  CHECK(g->get_header_value("Content-Type") == kOciIndex);
  CHECK(g->body == idx.dump());

  std::string dm = f.Image("docker", "d", kDockerManifest);
  r = f.PutManifest("docker", "v2", dm, kDockerManifest);
  REQUIRE(r->status == 201);
  CHECK(f.c->Get("/v2/docker/manifests/v2")->get_header_value("Content-Type") ==
        kDockerManifest);
  json list = {
      {"schemaVersion", 2},
      {"mediaType", kDockerList},
      {"manifests",
       json::array(
           {{{"mediaType", kDockerManifest},
             {"digest", Digest::Of(dm).str()},
             {"size", dm.size()},
             {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}})}};
  r = f.PutManifest("docker", "list", list.dump(), kDockerList);
  CHECK(r->status == 201);
  CHECK(
      f.c->Get("/v2/docker/manifests/list")->get_header_value("Content-Type") ==
      kDockerList);
}

TEST_CASE(
    "content discovery end-8a/8b: tags list in lexical order with n, last and "
    "Link") {
  Fixture f;
  std::string m = f.Image("tags/repo", "t");
  for (std::string t : {"b", "a", "C", "latest", "1.0", "a_2"})
    REQUIRE(f.PutManifest("tags/repo", t, m)->status == 201);
  auto r = f.c->Get("/v2/tags/repo/tags/list");
  REQUIRE(r->status == 200);
  json j = json::parse(r->body);
  CHECK(j["name"] == "tags/repo");
  CHECK(j["tags"] == json::array({"1.0", "C", "a", "a_2", "b", "latest"}));
  CHECK(!r->has_header("Link"));
  r = f.c->Get("/v2/tags/repo/tags/list?n=2");
  j = json::parse(r->body);
  CHECK(j["tags"] == json::array({"1.0", "C"}));
  CHECK(r->get_header_value("Link") ==
        "</v2/tags/repo/tags/list?last=C&n=2>; rel=\"next\"");
  r = f.c->Get("/v2/tags/repo/tags/list?last=C&n=2");
  CHECK(json::parse(r->body)["tags"] == json::array({"a", "a_2"}));
  r = f.c->Get("/v2/tags/repo/tags/list?last=a_2&n=5");
  CHECK(json::parse(r->body)["tags"] == json::array({"b", "latest"}));
  CHECK(!r->has_header("Link"));
  r = f.c->Get("/v2/tags/repo/tags/list?last=b");
  CHECK(json::parse(r->body)["tags"] == json::array({"latest"}));
  r = f.c->Get("/v2/tags/repo/tags/list?n=0");
  CHECK(r->status == 200);
  CHECK(json::parse(r->body)["tags"].empty());
  CHECK(!r->has_header("Link"));
  r = f.c->Get("/v2/tags/repo/tags/list?n=-1");
  CHECK(r->status == 400);
  r = f.c->Get("/v2/tags/repo/tags/list?n=abc");
  CHECK(r->status == 400);
  r = f.c->Get("/v2/no/such/repo/tags/list");
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "NAME_UNKNOWN");
}

TEST_CASE("catalog: repositories in lexical order with n, last and Link") {
  Fixture f;
  for (std::string repo : {"zeta", "alpha/b", "alpha", "mid"})
    f.PushBlob(repo, "x");
  auto r = f.c->Get("/v2/_catalog");
  REQUIRE(r->status == 200);
  CHECK(json::parse(r->body)["repositories"] ==
        json::array({"alpha", "alpha/b", "mid", "zeta"}));
  r = f.c->Get("/v2/_catalog?n=2");
  CHECK(json::parse(r->body)["repositories"] ==
        json::array({"alpha", "alpha/b"}));
  CHECK(r->get_header_value("Link") ==
        "</v2/_catalog?last=alpha/b&n=2>; rel=\"next\"");
  r = f.c->Get("/v2/_catalog?n=2&last=alpha/b");
  CHECK(json::parse(r->body)["repositories"] == json::array({"mid", "zeta"}));
  CHECK(!r->has_header("Link"));
}

TEST_CASE(
    "content discovery end-12a/12b: referrers with subject, artifactType and "
    "filters") {
  Fixture f;
  std::string subject = f.Image("ref", "subject");
  Digest sd = Digest::Of(subject);
  REQUIRE(f.PutManifest("ref", "v1", subject)->status == 201);
  // Unknown subject: an empty index, never 404.
  auto r =
      f.c->Get(("/v2/ref/referrers/" + Digest::Of("nothing").str()).c_str());
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == kOciIndex);
  CHECK(json::parse(r->body)["manifests"].empty());
  r = f.c->Get(("/v2/unknown/repo/referrers/" + sd.str()).c_str());
  CHECK(r->status == 200);
  // A signature with artifactType, and an SBOM whose type comes from config.
  Digest empty = f.PushBlob("ref", "{}");
  json subj = {{"mediaType", kOciManifest},
               {"digest", sd.str()},
               {"size", subject.size()}};
  json sig = {{"schemaVersion", 2},
              {"mediaType", kOciManifest},
              {"artifactType", "application/vnd.example.sig"},
              {"config",
               {{"mediaType", "application/vnd.oci.empty.v1+json"},
                {"digest", empty.str()},
                {"size", 2}}},
              {"layers", json::array()},
              {"subject", subj},
              {"annotations", {{"org.example.signer", "ci"}}}};
  Digest sbom_cfg = f.PushBlob("ref", "{\"sbom\":true}");
  json sbom = {{"schemaVersion", 2},
               {"mediaType", kOciManifest},
               {"config",
                {{"mediaType", "application/vnd.example.sbom"},
                 {"digest", sbom_cfg.str()},
                 {"size", 13}}},
               {"layers", json::array()},
               {"subject", subj}};
  r = f.PutManifest("ref", Digest::Of(sig.dump()).str(), sig.dump());
  REQUIRE(r->status == 201);
  CHECK(r->get_header_value("OCI-Subject") == sd.str());
  REQUIRE(f.PutManifest("ref", Digest::Of(sbom.dump()).str(), sbom.dump())
              ->status == 201);
  r = f.c->Get(("/v2/ref/referrers/" + sd.str()).c_str());
  REQUIRE(r->status == 200);
  json idx = json::parse(r->body);
  CHECK(idx["schemaVersion"] == 2);
  CHECK(idx["mediaType"] == kOciIndex);
  REQUIRE(idx["manifests"].size() == 2);
  std::map<std::string, json> by_type;
  for (auto& d : idx["manifests"]) by_type[d["artifactType"]] = d;
  REQUIRE(by_type.count("application/vnd.example.sig"));
  REQUIRE(by_type.count("application/vnd.example.sbom"));
  CHECK(by_type["application/vnd.example.sig"]["digest"] ==
        Digest::Of(sig.dump()).str());
  CHECK(by_type["application/vnd.example.sig"]["size"] == sig.dump().size());
  CHECK(by_type["application/vnd.example.sig"]["annotations"]
               ["org.example.signer"] == "ci");
  CHECK(!r->has_header("OCI-Filters-Applied"));
  r = f.c->Get(("/v2/ref/referrers/" + sd.str() +
                "?artifactType=application/vnd.example.sbom")
                   .c_str());
  CHECK(r->get_header_value("OCI-Filters-Applied") == "artifactType");
  idx = json::parse(r->body);
  REQUIRE(idx["manifests"].size() == 1);
  CHECK(idx["manifests"][0]["artifactType"] == "application/vnd.example.sbom");
  r = f.c->Get("/v2/ref/referrers/sha256:bad");
  CHECK(r->status == 400);
  CHECK(ErrCode(r) == "DIGEST_INVALID");
  // Deleting a referrer removes it from the list.
  CHECK(
      f.c->Delete(("/v2/ref/manifests/" + Digest::Of(sig.dump()).str()).c_str())
          ->status == 202);
  idx = json::parse(f.c->Get(("/v2/ref/referrers/" + sd.str()).c_str())->body);
  CHECK(idx["manifests"].size() == 1);
}

TEST_CASE("content management end-9/end-10: delete tags, manifests and blobs") {
  Fixture f;
  std::string m = f.Image("del", "m");
  Digest d = Digest::Of(m);
  REQUIRE(f.PutManifest("del", "keep", m)->status == 201);
  REQUIRE(f.PutManifest("del", "drop", m)->status == 201);
  auto r = f.c->Delete("/v2/del/manifests/drop");
  CHECK(r->status == 202);
  CHECK(f.c->Get("/v2/del/manifests/drop")->status == 404);
  CHECK(f.c->Get("/v2/del/manifests/keep")->status == 200);
  CHECK(f.c->Delete("/v2/del/manifests/drop")->status == 404);
  r = f.c->Delete(("/v2/del/manifests/" + d.str()).c_str());
  CHECK(r->status == 202);
  CHECK(f.c->Get(("/v2/del/manifests/" + d.str()).c_str())->status == 404);
  r = f.c->Get("/v2/del/manifests/keep");
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "MANIFEST_UNKNOWN");
  r = f.c->Delete(("/v2/del/manifests/" + d.str()).c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "MANIFEST_UNKNOWN");
  r = f.c->Delete(("/v2/nosuch/manifests/" + d.str()).c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "NAME_UNKNOWN");
  Digest b = f.PushBlob("del", "blob to delete");
  CHECK(f.c->Delete(("/v2/del/blobs/" + b.str()).c_str())->status == 202);
  r = f.c->Get(("/v2/del/blobs/" + b.str()).c_str());
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "BLOB_UNKNOWN");
  CHECK(f.c->Delete(("/v2/del/blobs/" + b.str()).c_str())->status == 404);
  CHECK(f.c->Delete("/v2/del/blobs/sha256:short")->status == 400);
}

TEST_CASE("errors: unknown endpoints and methods answer in the JSON envelope") {
  Fixture f;
  auto r = f.c->Get("/v2/x/unknown/thing");
  CHECK(r->status == 404);
  CHECK(ErrCode(r) == "UNSUPPORTED");
  r = f.c->Post("/v2/x/manifests/v1", "", "application/json");
  CHECK(r->status == 405);
  CHECK(ErrCode(r) == "UNSUPPORTED");
  r = f.c->Put("/v2/", "", "application/json");
  CHECK(r->status == 405);
}

TEST_CASE(
    "robustness: malformed requests never crash the server or leave data" *
    kRawSocket) {
  Fixture f;
  const char* garbage[] = {
      "GARBAGE\r\n\r\n",
      "GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      "PATCH /v2/r/blobs/uploads/0123456789abcdef0123456789abcdef "
      "HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
      "GET "
      "/v2/r/blobs/"
      "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 "
      "HTTP/1.1\r\nRange: bytes=zz\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
  };
  for (const char* g : garbage) {
    int s = RawConnect(f.reg.port());
    CHECK(::send(s, g, strlen(g), MSG_NOSIGNAL) > 0);
    ::shutdown(s, SHUT_WR);
    char buf[512];
    while (::recv(s, buf, sizeof buf, 0) > 0) {
    }
    ::close(s);
  }
  // A chunked upload whose client disappears mid-body keeps what arrived
  // and commits nothing.
  auto r = f.c->Post("/v2/cut/blobs/uploads/", "", "application/octet-stream");
  std::string loc = r->get_header_value("Location");
  {
    int s = RawConnect(f.reg.port());
    std::string req = "PUT " + loc +
                      "?digest=" + Digest::Of(std::string(1000, 'a')).str() +
                      " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                      std::string(400, 'a');
    CHECK(::send(s, req.data(), req.size(), MSG_NOSIGNAL) > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::close(s);
  }
  // The server notices the cut connection and keeps what arrived.
  for (int i = 0; i < 100; ++i) {
    r = f.c->Get(loc.c_str());
    if (r && r->get_header_value("Range") == "0-399") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(r->status == 204);
  CHECK(r->get_header_value("Range") == "0-399");
  CHECK(f.c->Head(("/v2/cut/blobs/" + Digest::Of(std::string(1000, 'a')).str())
                      .c_str())
            ->status == 404);
  auto alive = f.reg.Client()->Get("/v2/");
  REQUIRE(alive);
  CHECK(alive->status == 200);
}

// Reads from s until `count` complete responses (headers plus
// Content-Length bytes; HEAD answers have no body) arrived, the peer
// closed, or 5 s passed. Returns the status codes in order.
std::vector<int> ReadResponses(int s, int count, std::vector<bool> head) {
  timeval tv{5, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string in;
  std::vector<int> codes;
  char buf[4096];
  while (static_cast<int>(codes.size()) < count) {
    size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::string h = in.substr(0, end);
      size_t len = 0, p = h.find("Content-Length: ");
      if (p != std::string::npos) len = std::stoul(h.substr(p + 16));
      if (head[codes.size()]) len = 0;
      if (in.size() >= end + 4 + len) {
        codes.push_back(std::stoi(h.substr(9, 3)));
        in.erase(0, end + 4 + len);
        continue;
      }
    }
    ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, n);
  }
  return codes;
}

TEST_CASE(
    "connections: pipelined requests on one connection are answered in order" *
    kRawSocket) {
  Fixture f;
  std::string m = f.Image("pipe", "p");
  REQUIRE(f.PutManifest("pipe", "v1", m)->status == 201);
  int s = RawConnect(f.reg.port());
  // Three requests in one segment: the second and third arrive with the
  // first, before any answer is written.
  std::string reqs =
      "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /v2/pipe/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /v2/pipe/manifests/nope HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(s, reqs.data(), reqs.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(reqs.size()));
  CHECK(ReadResponses(s, 3, {false, true, false}) ==
        std::vector<int>{200, 200, 404});
  // The connection stays usable for a request after the pipelined ones.
  std::string more = "GET /v2/pipe/tags/list HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(s, more.data(), more.size(), MSG_NOSIGNAL) > 0);
  CHECK(ReadResponses(s, 1, {false}) == std::vector<int>{200});
  ::close(s);
}

TEST_CASE(
    "connections: idle keep-alive connections close after the configured "
    "timeout" *
    kRawSocket) {
  TempDir dir;
  std::string conf = dir.path() + "/c.json";
  std::ofstream(conf) << R"({"keep_alive_timeout_seconds": 1})";
  RegistryProcess reg(dir.path() + "/store", {"--config", conf});
  int s = RawConnect(reg.port());
  std::string req = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(s, req.data(), req.size(), MSG_NOSIGNAL) > 0);
  REQUIRE(ReadResponses(s, 1, {false}) == std::vector<int>{200});
  auto t0 = std::chrono::steady_clock::now();
  // Still open a little later: a second request is answered.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(::send(s, req.data(), req.size(), MSG_NOSIGNAL) > 0);
  REQUIRE(ReadResponses(s, 1, {false}) == std::vector<int>{200});
  // Then idle: the server closes it after about a second.
  t0 = std::chrono::steady_clock::now();
  char c;
  timeval tv{5, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  CHECK(::recv(s, &c, 1, 0) == 0);
  double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  CHECK(waited > 0.5);
  CHECK(waited < 3.0);
  ::close(s);
}

TEST_CASE("connections: SIGTERM closes idle keep-alive connections at once" *
          kRawSocket) {
  TempDir dir;
  std::string conf = dir.path() + "/c.json";
  std::ofstream(conf) << R"({"keep_alive_timeout_seconds": 600})";
  RegistryProcess reg(dir.path() + "/store", {"--config", conf});
  std::vector<int> socks;
  std::string req = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 64; ++i) {
    int s = RawConnect(reg.port());
    REQUIRE(::send(s, req.data(), req.size(), MSG_NOSIGNAL) > 0);
    REQUIRE(ReadResponses(s, 1, {false}) == std::vector<int>{200});
    socks.push_back(s);
  }
  auto t0 = std::chrono::steady_clock::now();
  int st = reg.Stop();
  double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(took < 2.0);
  for (int s : socks) {
    char c;
    CHECK(::recv(s, &c, 1, 0) == 0);  // closed by the server, not reset
    ::close(s);
  }
}

TEST_CASE("concurrency: 256 concurrent keep-alive connections are served") {
  Fixture f;
  std::string m = f.Image("conc", "c");
  REQUIRE(f.PutManifest("conc", "v1", m)->status == 201);
  constexpr int kConns = 256;
  std::atomic<int> ok{0}, failed{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kConns; ++i) {
    threads.emplace_back([&] {
      auto c = f.reg.Client();
      // Hold every connection open at once before any finishes.
      auto first = c->Get("/v2/");
      if (!first || first->status != 200) {
        ++failed;
        ++ready;
        return;
      }
      ++ready;
      while (ready.load() < kConns)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      for (int k = 0; k < 10; ++k) {
        auto r = c->Get("/v2/conc/manifests/v1");
        if (r && r->status == 200 && r->body == m)
          ++ok;
        else
          ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failed.load() == 0);
  CHECK(ok.load() == kConns * 10);
}

TEST_CASE("restart: pushed content and an interrupted chunked upload survive") {
  TempDir dir;
  std::string root = dir.path() + "/store";
  std::string m, loc, data = RandomBytes(1 << 20, 5);
  Digest layer = Digest::Of(data);
  {
    RegistryProcess reg(root);
    auto c = reg.Client();
    json cfg = {{"architecture", "amd64"}, {"os", "linux"}};
    std::string cs = cfg.dump();
    REQUIRE(
        c->Post(
             ("/v2/keep/blobs/uploads/?digest=" + Digest::Of(cs).str()).c_str(),
             cs, "application/octet-stream")
            ->status == 201);
    REQUIRE(c->Post(("/v2/keep/blobs/uploads/?digest=" + layer.str()).c_str(),
                    data, "application/octet-stream")
                ->status == 201);
    m = json({{"schemaVersion", 2},
              {"mediaType", kOciManifest},
              {"config",
               {{"mediaType", kOciConfig},
                {"digest", Digest::Of(cs).str()},
                {"size", cs.size()}}},
              {"layers", json::array({{{"mediaType", kOciLayer},
                                       {"digest", layer.str()},
                                       {"size", data.size()}}})}})
            .dump();
    REQUIRE(c->Put("/v2/keep/manifests/v1", m, kOciManifest)->status == 201);
    auto r = c->Post("/v2/keep/blobs/uploads/", "", "application/octet-stream");
    loc = r->get_header_value("Location");
    r = c->Patch(loc.c_str(), {{"Content-Range", "0-299999"}},
                 data.substr(0, 300000), "application/octet-stream");
    REQUIRE(r->status == 202);
    int st = reg.Stop();
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
  }
  RegistryProcess reg(root);
  auto c = reg.Client();
  auto g = c->Get("/v2/keep/manifests/v1");
  REQUIRE(g->status == 200);
  CHECK(g->body == m);
  CHECK(c->Get(("/v2/keep/blobs/" + layer.str()).c_str())->body == data);
  auto st = c->Get(loc.c_str());
  REQUIRE(st->status == 204);
  CHECK(st->get_header_value("Range") == "0-299999");
  auto r =
      c->Patch(loc.c_str(),
               {{"Content-Range", "300000-" + std::to_string(data.size() - 1)}},
               data.substr(300000), "application/octet-stream");
  REQUIRE(r->status == 202);
  Digest again = Digest::Of(data + "!");
  r = c->Put((loc + "?digest=" + again.str()).c_str(), "!",
             "application/octet-stream");
  CHECK(r->status == 201);
  CHECK(c->Get(("/v2/keep/blobs/" + again.str()).c_str())->body == data + "!");
}

TEST_CASE("SIGTERM lets an in-flight upload finish" * kRawSocket) {
  TempDir dir;
  RegistryProcess reg(dir.path() + "/store");
  std::string data = RandomBytes(8 << 20, 8);
  Digest d = Digest::Of(data);
  // The request is surely in flight: its headers and half its body are in
  // before the signal, the rest after.
  int s = RawConnect(reg.port());
  std::string head = "POST /v2/slow/blobs/uploads/?digest=" + d.str() +
                     " HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/octet-stream\r\nContent-Length: " +
                     std::to_string(data.size()) + "\r\n\r\n";
  auto send_all = [&](const char* p, size_t n) {
    while (n > 0) {
      ssize_t k = ::send(s, p, n, MSG_NOSIGNAL);
      REQUIRE(k > 0);
      p += k;
      n -= k;
    }
  };
  send_all(head.data(), head.size());
  send_all(data.data(), data.size() / 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  reg.Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  send_all(data.data() + data.size() / 2, data.size() - data.size() / 2);
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(s, buf, sizeof buf, 0)) > 0) {
    reply.append(buf, n);
    if (reply.find("\r\n\r\n") != std::string::npos) break;
  }
  ::close(s);
  CHECK_MESSAGE(reply.rfind("HTTP/1.1 201", 0) == 0, reply);
  int st = reg.Stop();
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  RegistryProcess again(dir.path() + "/store");
  CHECK(again.Client()->Head(("/v2/slow/blobs/" + d.str()).c_str())->status ==
        200);
}

TEST_CASE(
    "access log: one line per request with client address and port, user, "
    "method, path, status, bytes, duration and User-Agent" *
    kOneProcess) {
  TempDir dir;
  std::string log;
  {
    RegistryProcess reg(dir.path() + "/store");
    auto c = reg.Client();
    c->Get("/v2/nope/tags/list", {{"User-Agent", "probe/1.0 \"x\""}});
    reg.Stop();
    std::ifstream in(reg.log_path());
    log.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::smatch m;
  CHECK(std::regex_search(
      log, m,
      std::regex(
          "Z 127\\.0\\.0\\.1:[0-9]+ [^ ]+ \"GET /v2/nope/tags/list\" 404 "
          "[0-9]+ [0-9.]+ms \"probe/1\\.0 \\\\x22x\\\\x22\"\n")));
}
