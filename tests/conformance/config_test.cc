// ocireg's command line and configuration file: documented defaults load,
// unknown keys and bad values stop the server with a message naming the key.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "registry_process.h"
#include "temp_dir.h"

using namespace ocib::testing;

namespace {

// Runs ocireg with args; returns {exit status, stderr}.
std::pair<int, std::string> Run(const std::string& args) {
  std::string cmd = OciregPath() + " " + args + " 2>&1 >/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 256> buf;
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string Write(const TempDir& d, const std::string& body) {
  std::string path = d.path() + "/c.json";
  std::ofstream(path) << body;
  return path;
}

}  // namespace

TEST_CASE("config: unknown keys and bad values are rejected naming the key") {
  TempDir d;
  auto [rc, err] = Run("serve --config " +
                       Write(d, "{\"listen\":\"127.0.0.1:0\",\"colour\":1}"));
  CHECK(rc != 0);
  CHECK(err.find("colour") != std::string::npos);
  std::tie(rc, err) =
      Run("serve --config " + Write(d, "{\"threads\":\"many\"}"));
  CHECK(rc != 0);
  CHECK(err.find("threads") != std::string::npos);
  std::tie(rc, err) =
      Run("serve --config " + Write(d, "{\"max_manifest_bytes\":-1}"));
  CHECK(rc != 0);
  CHECK(err.find("max_manifest_bytes") != std::string::npos);
  std::tie(rc, err) =
      Run("serve --config " + Write(d, "{\"written_cache_mib\":-1}"));
  CHECK(rc != 0);
  CHECK(err.find("written_cache_mib") != std::string::npos);
  std::tie(rc, err) =
      Run("serve --config " + Write(d, "{\"log_format\":\"xml\"}"));
  CHECK(err.find("log_format") != std::string::npos);
  std::tie(rc, err) = Run("serve --config " + Write(d, "not json"));
  CHECK(rc != 0);
  std::tie(rc, err) = Run("serve --listen nonsense --root " + d.path() + "/s");
  CHECK(rc != 0);
  CHECK(err.find("listen") != std::string::npos);
  std::tie(rc, err) =
      Run("serve --config " +
          Write(d, R"({"proxy":{"upstreams":[{"url":"ftp://x"}]}})"));
  CHECK(rc != 0);
  CHECK(err.find("proxy.upstreams[0]") != std::string::npos);
  std::tie(rc, err) = Run(
      "serve --config " +
      Write(d, R"({"proxy":{"upstreams":[{"url":"http://a","colour":1}]}})"));
  CHECK(rc != 0);
  CHECK(err.find("proxy.upstreams[0].colour") != std::string::npos);
  std::tie(rc, err) = Run(
      "serve --config " +
      Write(
          d,
          R"({"proxy":{"upstreams":[{"url":"http://a"},{"url":"http://b"}]}})"));
  CHECK(rc != 0);
  CHECK(err.find("docker.io") !=
        std::string::npos);  // two upstreams for one namespace
  std::tie(rc, err) = Run(
      "serve --config " +
      Write(
          d,
          R"({"proxy":{"upstreams":[{"url":"http://a","tag_freshness_seconds":-1}]}})"));
  CHECK(rc != 0);
  CHECK(err.find("tag_freshness_seconds") != std::string::npos);
  std::tie(rc, err) = Run("serve --listen 127.0.0.1:0 --root " + d.path() +
                          "/m --mirror notaurl");
  CHECK(rc != 0);
  CHECK(err.find("--mirror") != std::string::npos);
  std::tie(rc, err) = Run("serve --bogus");
  CHECK(rc == 2);
  std::tie(rc, err) = Run("");
  CHECK(rc == 2);
}

TEST_CASE("config: the documented default file loads and flags override it") {
  TempDir d;
  std::string conf = std::string(OCIB_SOURCE_DIR) + "/conf/registry.json";
  RegistryProcess reg(d.path() + "/store",
                      {"--config", conf, "--listen", "127.0.0.1:0"});
  auto r = reg.Client()->Get("/v2/");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("config: JSON access log format") {
  TempDir d;
  std::string conf = Write(d, "{\"log_format\":\"json\"}");
  std::string log;
  {
    RegistryProcess reg(d.path() + "/store",
                        {"--config", conf, "--listen", "127.0.0.1:0", "--root",
                         d.path() + "/store"});
    reg.Client()->Get("/v2/");
    reg.Stop();
    std::ifstream in(reg.log_path());
    log.assign(std::istreambuf_iterator<char>(in), {});
  }
  CHECK(log.find("\"method\":\"GET\"") != std::string::npos);
  CHECK(log.find("\"status\":200") != std::string::npos);
  CHECK(log.find("\"duration_ms\"") != std::string::npos);
}
