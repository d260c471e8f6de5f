// The mirror when its upstream misbehaves, against the real ocireg with
// --mirror pointing at a small upstream in the test that can answer 503,
// 429, or not at all: a cached tag is still served (and logged as stale),
// an uncached image fails with UNAVAILABLE naming the upstream, and a
// hanging upstream costs no more than the configured timeout.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "registry_process.h"
#include "store/digest.h"
#include "temp_dir.h"

using namespace ocib;
using namespace ocib::testing;

namespace {

enum class Mode { kOk, k503, k429, kHang };

struct FakeUpstream {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::atomic<Mode> mode{Mode::kOk};
  std::atomic<int> manifest_requests{0};
  std::string manifest;
  Digest digest = Digest::Of("");

  FakeUpstream() {
    manifest = nlohmann::json(
                   {{"schemaVersion", 2},
                    {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                    {"config",
                     {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                      {"digest", Digest::Of("{}").str()},
                      {"size", 2}}},
                    {"layers", nlohmann::json::array()}})
                   .dump();
    digest = Digest::Of(manifest);
    svr.Get("/v2/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{}", "application/json");
    });
    auto answer = [this](const httplib::Request&, httplib::Response& res) {
      ++manifest_requests;
      switch (mode.load()) {
        case Mode::kOk:
          res.set_header("Docker-Content-Digest", digest.str());
          res.set_content(manifest,
                          "application/vnd.oci.image.manifest.v1+json");
          return;
        case Mode::k503:
          res.status = 503;
          return;
        case Mode::k429:
          res.status = 429;
          return;
        case Mode::kHang:
          std::this_thread::sleep_for(std::chrono::seconds(4));
          res.status = 503;
          return;
      }
    };
    svr.Get(R"(/v2/library/(app|other)/manifests/(.+))", answer);
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~FakeUpstream() {
    svr.stop();
    thread.join();
  }
};

std::string Log(const RegistryProcess& reg) {
  std::this_thread::sleep_for(
      std::chrono::milliseconds(300));  // flushed every 100 ms
  std::ifstream in(reg.log_path());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE(
    "mirror: upstream 503, 429 or timeout serves the cached tag; uncached "
    "images fail naming the upstream") {
  FakeUpstream up;
  TempDir dir;
  std::string conf = dir.path() + "/mirror.json";
  std::ofstream(conf)
      << R"({"proxy":{"upstreams":[{"url":"http://127.0.0.1:)" << up.port
      << R"(","tag_freshness_seconds":0,"timeout_seconds":1}]}})";
  RegistryProcess reg(dir.path() + "/store", {"--config", conf});
  auto c = reg.Client();
  c->set_read_timeout(30, 0);
  const char* accept = "application/vnd.oci.image.manifest.v1+json";

  auto r = c->Get("/v2/library/app/manifests/1", {{"Accept", accept}});
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK(r->body == up.manifest);
  CHECK(Log(reg).find("cache=miss") != std::string::npos);

  for (Mode m : {Mode::k503, Mode::k429, Mode::kHang}) {
    CAPTURE(static_cast<int>(m));
    up.mode = m;
    int before = up.manifest_requests.load();
    auto t0 = std::chrono::steady_clock::now();
    r = c->Get("/v2/library/app/manifests/1", {{"Accept", accept}});
    double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    REQUIRE(r);
    CHECK(r->status == 200);  // the cached copy
    CHECK(r->body == up.manifest);
    CHECK(r->get_header_value("Docker-Content-Digest") == up.digest.str());
    CHECK(up.manifest_requests.load() >
          before);  // upstream was asked first (freshness 0)
    if (m == Mode::kHang)
      CHECK(took < 3.5);  // the 1 s timeout, not the 4 s hang
  }
  std::string log = Log(reg);
  CHECK(log.find("cache=stale") != std::string::npos);

  up.mode = Mode::k503;
  r = c->Get("/v2/library/other/manifests/1", {{"Accept", accept}});
  REQUIRE(r);
  CHECK(r->status == 503);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  REQUIRE(!j.is_discarded());
  CHECK(j["errors"][0]["code"] == "UNAVAILABLE");
  CHECK(j["errors"][0]["detail"].get<std::string>().find(
            "upstream http://127.0.0.1:" + std::to_string(up.port)) !=
        std::string::npos);

  // Back to normal: the cached tag is confirmed again.
  up.mode = Mode::kOk;
  r = c->Get("/v2/library/app/manifests/1", {{"Accept", accept}});
  REQUIRE(r);
  CHECK(r->status == 200);
}
