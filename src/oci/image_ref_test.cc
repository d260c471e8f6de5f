#include "oci/image_ref.h"

#include <doctest/doctest.h>

namespace ocib::oci {
namespace {

TEST_CASE("image references as docker normalises them") {
  const std::string d = "sha256:" + std::string(64, 'a');
  struct Case {
    std::string in, name, tag, digest, domain, path, normalized, familiar;
  };
  const Case cases[] = {
      {"busybox", "busybox", "latest", "", "", "busybox",
       "docker.io/library/busybox", "busybox"},
      {"busybox:1.36", "busybox", "1.36", "", "", "busybox",
       "docker.io/library/busybox", "busybox"},
      {"library/busybox", "library/busybox", "latest", "", "",
       "library/busybox", "docker.io/library/busybox", "busybox"},
      {"docker.io/library/busybox:1", "docker.io/library/busybox", "1", "",
       "docker.io", "library/busybox", "docker.io/library/busybox", "busybox"},
      {"docker.io/team/app", "docker.io/team/app", "latest", "", "docker.io",
       "team/app", "docker.io/team/app", "team/app"},
      {"team/app", "team/app", "latest", "", "", "team/app",
       "docker.io/team/app", "team/app"},
      {"localhost:5000/a", "localhost:5000/a", "latest", "", "localhost:5000",
       "a", "localhost:5000/a", "localhost:5000/a"},
      {"localhost/a:v2", "localhost/a", "v2", "", "localhost", "a",
       "localhost/a", "localhost/a"},
      {"host/a/b/c@" + d, "host/a/b/c", "", d, "", "host/a/b/c",
       "docker.io/host/a/b/c", "host/a/b/c"},
      {"reg.example.com/a/b/c@" + d, "reg.example.com/a/b/c", "", d,
       "reg.example.com", "a/b/c", "reg.example.com/a/b/c",
       "reg.example.com/a/b/c"},
      {"127.0.0.1:5000/team/app:1@" + d, "127.0.0.1:5000/team/app", "1", d,
       "127.0.0.1:5000", "team/app", "127.0.0.1:5000/team/app",
       "127.0.0.1:5000/team/app"},
      {"[::1]:5000/x", "[::1]:5000/x", "latest", "", "[::1]:5000", "x",
       "[::1]:5000/x", "[::1]:5000/x"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    auto r = ParseImageRef(c.in);
    if (c.in.rfind("[::1]", 0) == 0) {
      // Brackets are not a host character docker's grammar allows here.
      CHECK(!r.ok());
      continue;
    }
    REQUIRE(r.ok());
    CHECK(r->name == c.name);
    CHECK(r->tag == c.tag);
    CHECK((r->digest ? r->digest->str() : "") == c.digest);
    CHECK(Domain(r->name) == c.domain);
    CHECK(Path(r->name) == c.path);
    CHECK(NormalizedName(r->name) == c.normalized);
    CHECK(FamiliarName(r->name) == c.familiar);
  }
}

TEST_CASE("bad references name what is wrong") {
  CHECK(ParseImageRef("Busybox").status().message().find(
            "invalid image name") != std::string::npos);
  CHECK(ParseImageRef("busybox:-x").status().message().find("invalid tag") !=
        std::string::npos);
  CHECK(ParseImageRef("busybox@sha256:zz")
            .status()
            .message()
            .find("invalid reference") != std::string::npos);
  CHECK(ParseImageRef("bad_host.example!/x")
            .status()
            .message()
            .find("invalid registry host") != std::string::npos);
  CHECK(!ParseImageRef("").ok());
  CHECK(!ParseImageRef("a//b").ok());
}

TEST_CASE("registry hosts: a dot, a colon, or localhost") {
  CHECK(IsRegistryHost("localhost"));
  CHECK(IsRegistryHost("example.com"));
  CHECK(IsRegistryHost("host:5000"));
  CHECK(!IsRegistryHost("library"));
  CHECK(!IsRegistryHost("team"));
}

}  // namespace
}  // namespace ocib::oci
