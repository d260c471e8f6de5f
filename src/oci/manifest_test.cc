#include "oci/manifest.h"

#include <doctest/doctest.h>

#include "oci/media_types.h"
#include "oci/reference.h"

using namespace ocib;
using namespace ocib::oci;

namespace {
std::string D(const char* s) { return Digest::Of(s).str(); }
}  // namespace

TEST_CASE("repository names follow the spec grammar") {
  for (const char* ok :
       {"a", "library/busybox", "a.b/c_d/e__f/g-h/i--j", "0", "a/b/c/d/e"})
    CHECK_MESSAGE(ValidRepositoryName(ok), ok);
  for (const char* bad : {"", "A", "a/", "/a", "a//b", "a_", "_a", "a___b",
                          "a..b", "a.-b", "a b", "a/B", "-", "a/-b"})
    CHECK_MESSAGE(!ValidRepositoryName(bad), bad);
  CHECK(!ValidRepositoryName(std::string(256, 'a')));
  CHECK(ValidRepositoryName(std::string(255, 'a')));
}

TEST_CASE("tags follow the spec grammar") {
  for (const char* ok : {"latest", "v1.0", "_x", "A-b_c.d", "1"})
    CHECK(ValidTag(ok));
  for (const char* bad : {"", ".x", "-x", "a:b", "a/b", "a b"})
    CHECK_MESSAGE(!ValidTag(bad), bad);
  CHECK(ValidTag(std::string(128, 'a')));
  CHECK(!ValidTag(std::string(129, 'a')));
}

TEST_CASE("referrers tag schema") {
  CHECK(ReferrersTag("sha256:" + std::string(64, 'a')) ==
        "sha256-" + std::string(64, 'a'));
  CHECK(ReferrersTag("sha512:" + std::string(128, 'b')) ==
        "sha512-" + std::string(64, 'b'));
}

TEST_CASE("image manifest with subject and artifact type") {
  std::string m =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.example.cfg","digest":")" +
      D("c") + R"(","size":1},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
      D("l") + R"(","size":5}],
    "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      D("s") + R"(","size":9},
    "annotations":{"k":"v"}})";
  auto p = ParseManifest(m, "");
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  CHECK(p->media_type == kOciManifest);
  CHECK(!p->is_index);
  CHECK(p->config->digest.str() == D("c"));
  REQUIRE(p->layers.size() == 1);
  CHECK(p->layers[0].size == 5);
  CHECK(p->subject->digest.str() == D("s"));
  CHECK(p->ReferrerArtifactType() == "application/vnd.example.cfg");
  CHECK(p->annotations.at("k") == "v");
}

TEST_CASE("index, inferred media type, Content-Type parameters ignored") {
  std::string idx =
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      D("m") +
      R"(","size":3,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}],"artifactType":"x/y"})";
  auto p = ParseManifest(
      idx, "application/vnd.oci.image.index.v1+json; charset=utf-8");
  REQUIRE(p.ok());
  CHECK(p->is_index);
  CHECK(p->manifests[0].platform_arch == "arm64");
  CHECK(p->ReferrerArtifactType() == "x/y");
  auto q = ParseManifest(idx, "");
  REQUIRE(q.ok());
  CHECK(q->media_type == kOciIndex);
}

TEST_CASE("malformed manifests are rejected with a reason") {
  const char* bad[] = {
      "",
      "[]",
      "{",
      "{\"schemaVersion\":1}",
      "{\"schemaVersion\":\"2\"}",
      R"({"schemaVersion":2,"mediaType":"text/plain"})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:00","size":1}})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[1]})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1}})",
  };
  for (const char* b : bad) {
    auto p = ParseManifest(b, "");
    CHECK_MESSAGE(!p.ok(), b);
    if (!p.ok()) CHECK(p.status().code() == Code::kInvalidArgument);
  }
  // Content-Type that disagrees with mediaType.
  auto p = ParseManifest(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})",
      "application/vnd.docker.distribution.manifest.v2+json");
  CHECK(!p.ok());
}

TEST_CASE("non-distributable layers") {
  CHECK(IsNonDistributable(kDockerForeignLayer));
  CHECK(IsNonDistributable(
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"));
  CHECK(!IsNonDistributable(kOciLayerGzip));
}

TEST_CASE(
    "PickPlatform: os/arch, optional variant, entries without platform "
    "skipped") {
  std::string idx =
      std::string(
          R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)") +
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      D("att") + R"(","size":1},)" +
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      D("amd") +
      R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}},)" +
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      D("v6") +
      R"(","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v6"}},)" +
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      D("v7") +
      R"(","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]})";
  auto m = ParseManifest(idx, "");
  REQUIRE(m.ok());
  REQUIRE(PickPlatform(*m, "linux/amd64"));
  CHECK(PickPlatform(*m, "linux/amd64")->digest.str() == D("amd"));
  CHECK(PickPlatform(*m, "linux/arm/v7")->digest.str() == D("v7"));
  CHECK(PickPlatform(*m, "linux/arm")->digest.str() == D("v6"));
  CHECK(PickPlatform(*m, "linux/arm64") == nullptr);
  CHECK(PickPlatform(*m, "windows/amd64") == nullptr);
}
