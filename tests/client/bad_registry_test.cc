// ocibuild's pull against a registry that misbehaves, served by a small
// HTTP server in the test: manifests whose bytes do not match their digest,
// blobs with wrong or extra bytes (a clear error, nothing stored), and
// transfers cut midway or answered 503 (resumed with Range, or retried).
// Also: how many blobs move at once (TransferOptions::parallel and the
// config's max-concurrent-transfers).
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "client/registry_client.h"
#include "client/user_config.h"
#include "image/image_store.h"
#include "image/transfer.h"
#include "store/blob_store.h"
#include "temp_dir.h"

using namespace ocib;
using namespace ocib::image;
using ocib::testing::RandomBytes;
using ocib::testing::TempDir;

namespace {

enum class Fault {
  kNone,
  kTagDigestHeader,  // manifest by tag with a Docker-Content-Digest of other
                     // bytes
  kDigestContent,    // manifest by digest answered with other bytes
  kCorruptLayer,     // layer bytes changed, same length
  kLongLayer,        // layer with extra bytes
  kCutThenRange,     // first GET of the layer cut midway; Range honoured after
  kCutThenIgnoreRange,  // cut, then the whole layer again with 200
  kUnavailableOnce,     // first GET of the layer answers 503
};

struct BadRegistry {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  Fault fault = Fault::kNone;
  std::string config, layer, manifest;
  Digest config_d = Digest::Of(""), layer_d = Digest::Of(""),
         manifest_d = Digest::Of("");
  std::atomic<int> layer_gets{0};
  std::string last_range;

  BadRegistry() {
    config =
        R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    layer = RandomBytes(3 << 20, 77);
    config_d = Digest::Of(config);
    layer_d = Digest::Of(layer);
    manifest =
        nlohmann::json(
            {{"schemaVersion", 2},
             {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
             {"config",
              {{"mediaType", "application/vnd.oci.image.config.v1+json"},
               {"digest", config_d.str()},
               {"size", config.size()}}},
             {"layers",
              {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                {"digest", layer_d.str()},
                {"size", layer.size()}}}}})
            .dump();
    manifest_d = Digest::Of(manifest);
    svr.Get("/v2/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{}", "application/json");
    });
    svr.Get(R"(/v2/team/app/manifests/(.+))",
            [this](const httplib::Request& req, httplib::Response& res) {
              std::string ref = req.matches[1];
              std::string body = manifest;
              std::string digest = manifest_d.str();
              if (fault == Fault::kTagDigestHeader && ref == "1")
                digest = Digest::Of("other").str();
              if (fault == Fault::kDigestContent && ref == manifest_d.str())
                body = manifest + " ";
              res.set_header("Docker-Content-Digest", digest);
              res.set_content(body,
                              "application/vnd.oci.image.manifest.v1+json");
            });
    svr.Get(R"(/v2/team/app/blobs/(.+))", [this](const httplib::Request& req,
                                                 httplib::Response& res) {
      std::string d = req.matches[1];
      if (d == config_d.str()) {
        res.set_content(config, "application/octet-stream");
        return;
      }
      if (d != layer_d.str()) {
        res.status = 404;
        return;
      }
      int n = ++layer_gets;
      last_range = req.get_header_value("Range");
      std::string body = layer;
      if (fault == Fault::kCorruptLayer) body[body.size() / 2] ^= 1;
      if (fault == Fault::kLongLayer) body += "extra";
      if ((fault == Fault::kCutThenRange ||
           fault == Fault::kCutThenIgnoreRange) &&
          n == 1) {
        // Announce every byte, send the first half, then drop the connection.
        auto shared = std::make_shared<std::string>(body);
        res.set_content_provider(
            shared->size(), "application/octet-stream",
            [shared](size_t off, size_t, httplib::DataSink& sink) {
              size_t half = shared->size() / 2;
              if (off >= half) return false;
              sink.write(shared->data() + off, half - off);
              return true;
            });
        return;
      }
      if (fault == Fault::kUnavailableOnce && n == 1) {
        res.status = 503;
        res.set_content(
            R"({"errors":[{"code":"UNAVAILABLE","message":"try later"}]})",
            "application/json");
        return;
      }
      if (fault == Fault::kCutThenIgnoreRange) {
        const_cast<httplib::Request&>(req)
            .ranges.clear();  // answer 200, whole body
        res.status = 200;
      }
      res.set_content(
          body,
          "application/octet-stream");  // httplib answers a Range with 206
    });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~BadRegistry() {
    svr.stop();
    thread.join();
  }
  std::string ref(const std::string& r = ":1") const {
    return "127.0.0.1:" + std::to_string(port) + "/team/app" + r;
  }
};

struct Local {
  TempDir dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<ImageStore> images;
  Local() {
    StoreOptions o;
    o.root = dir.path();
    auto s = OpenStore(o);
    REQUIRE(s.ok());
    store = std::move(*s);
    images = std::make_unique<ImageStore>(store.get());
  }
  Status Pull(const std::string& text, std::string* out = nullptr) {
    auto ref = ParseImageRef(text);
    REQUIRE(ref.ok());
    std::ostringstream os;
    TransferOptions opts;
    Status s = PullImage(*images, *ref, opts, os);
    if (out) *out = os.str();
    return s;
  }
  bool Has(const Digest& d) { return store->StatBlob(d).ok(); }
};

}  // namespace

TEST_CASE("a well-behaved registry: the image is pulled and verified") {
  BadRegistry reg;
  Local l;
  Status s = l.Pull(reg.ref());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(l.Has(reg.layer_d));
  CHECK(l.images->Get(*ParseImageRef(reg.ref())).ok());
}

TEST_CASE(
    "manifest whose bytes do not match the Docker-Content-Digest: error, "
    "nothing stored") {
  BadRegistry reg;
  reg.fault = Fault::kTagDigestHeader;
  Local l;
  Status s = l.Pull(reg.ref());
  REQUIRE(!s.ok());
  CHECK(s.message().find("Docker-Content-Digest") != std::string::npos);
  CHECK(s.message().find('\n') == std::string::npos);
  CHECK(!l.Has(reg.layer_d));
  CHECK(!l.Has(reg.config_d));
  CHECK(!l.images->Get(*ParseImageRef(reg.ref())).ok());
}

TEST_CASE(
    "manifest by digest answered with other bytes: error, nothing stored") {
  BadRegistry reg;
  reg.fault = Fault::kDigestContent;
  Local l;
  Status s = l.Pull(reg.ref("@" + reg.manifest_d.str()));
  REQUIRE(!s.ok());
  CHECK(s.message().find("hashes to") != std::string::npos);
  CHECK(!l.Has(reg.layer_d));
}

TEST_CASE(
    "layer bytes that do not match the digest: error, nothing stored or "
    "tagged") {
  BadRegistry reg;
  reg.fault = Fault::kCorruptLayer;
  Local l;
  Status s = l.Pull(reg.ref());
  REQUIRE(!s.ok());
  CHECK(s.message().find("hashes to") != std::string::npos);
  CHECK(!l.Has(reg.layer_d));
  CHECK(!l.images->Get(*ParseImageRef(reg.ref())).ok());
}

TEST_CASE(
    "layer longer than its descriptor: the transfer stops, nothing stored") {
  BadRegistry reg;
  reg.fault = Fault::kLongLayer;
  Local l;
  Status s = l.Pull(reg.ref());
  REQUIRE(!s.ok());
  CHECK(s.message().find("more than") != std::string::npos);
  CHECK(!l.Has(reg.layer_d));
}

TEST_CASE("a layer transfer cut midway resumes with a Range request") {
  BadRegistry reg;
  reg.fault = Fault::kCutThenRange;
  Local l;
  std::string out;
  Status s = l.Pull(reg.ref(), &out);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(reg.layer_gets.load() == 2);
  CHECK(reg.last_range ==
        "bytes=" + std::to_string(reg.layer.size() / 2) + "-");
  CHECK(out.find("retrying download") != std::string::npos);
  CHECK(l.Has(reg.layer_d));
}

TEST_CASE(
    "a registry that ignores Range after a cut: the layer starts over and "
    "verifies") {
  BadRegistry reg;
  reg.fault = Fault::kCutThenIgnoreRange;
  Local l;
  Status s = l.Pull(reg.ref());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(reg.layer_gets.load() == 2);
  CHECK(l.Has(reg.layer_d));
}

TEST_CASE("a 503 is retried with backoff") {
  BadRegistry reg;
  reg.fault = Fault::kUnavailableOnce;
  Local l;
  Status s = l.Pull(reg.ref());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(reg.layer_gets.load() == 2);
  CHECK(l.Has(reg.layer_d));
}

namespace {

// A registry whose blob GETs each take 150 ms, counting how many run at once.
struct SlowRegistry {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::map<std::string, std::string> blobs;  // digest -> bytes
  std::string manifest;
  std::atomic<int> in_flight{0}, max_in_flight{0};

  SlowRegistry() {
    std::string config =
        R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    blobs[Digest::Of(config).str()] = config;
    nlohmann::json layers = nlohmann::json::array();
    for (int i = 0; i < 5; ++i) {
      std::string l = RandomBytes(100 << 10, 900 + i);
      blobs[Digest::Of(l).str()] = l;
      layers.push_back(
          {{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
           {"digest", Digest::Of(l).str()},
           {"size", l.size()}});
    }
    manifest = nlohmann::json(
                   {{"schemaVersion", 2},
                    {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                    {"config",
                     {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                      {"digest", Digest::Of(config).str()},
                      {"size", config.size()}}},
                    {"layers", layers}})
                   .dump();
    svr.Get("/v2/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{}", "application/json");
    });
    svr.Get(R"(/v2/team/slow/manifests/(.+))", [this](const httplib::Request&,
                                                      httplib::Response& res) {
      res.set_header("Docker-Content-Digest", Digest::Of(manifest).str());
      res.set_content(manifest, "application/vnd.oci.image.manifest.v1+json");
    });
    svr.Get(R"(/v2/team/slow/blobs/(.+))",
            [this](const httplib::Request& req, httplib::Response& res) {
              int now = ++in_flight;
              for (int m = max_in_flight.load();
                   now > m && !max_in_flight.compare_exchange_weak(m, now);) {
              }
              std::this_thread::sleep_for(std::chrono::milliseconds(150));
              --in_flight;
              auto it = blobs.find(req.matches[1]);
              if (it == blobs.end()) {
                res.status = 404;
                return;
              }
              res.set_content(it->second, "application/octet-stream");
            });
    svr.new_task_queue = [] { return new httplib::ThreadPool(16); };
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~SlowRegistry() {
    svr.stop();
    thread.join();
  }
};

}  // namespace

TEST_CASE("blobs move at most `parallel` at a time, and that many do") {
  for (size_t parallel : {size_t(1), size_t(3)}) {
    CAPTURE(parallel);
    SlowRegistry reg;
    Local l;
    auto ref =
        ParseImageRef("127.0.0.1:" + std::to_string(reg.port) + "/team/slow:1");
    REQUIRE(ref.ok());
    TransferOptions opts;
    opts.parallel = parallel;
    std::ostringstream out;
    Status s = PullImage(*l.images, *ref, opts, out);
    REQUIRE_MESSAGE(s.ok(), s.ToString());
    CHECK(reg.max_in_flight.load() == static_cast<int>(parallel));
  }
}

TEST_CASE(
    "the user config: max-concurrent-transfers clamped, 3 by default; insecure "
    "and default registries") {
  TempDir d;
  const char* old = std::getenv("XDG_CONFIG_HOME");
  std::string saved = old ? old : "";
  ::setenv("XDG_CONFIG_HOME", d.path().c_str(), 1);
  CHECK(client::LoadUserConfig().max_concurrent_transfers == 3);
  CHECK(client::LoadUserConfig().insecure_registries.empty());
  std::filesystem::create_directories(d.path() + "/ocibuild");
  std::ofstream(d.path() + "/ocibuild/config.json")
      << R"({"max-concurrent-transfers": 1})";
  CHECK(client::LoadUserConfig().max_concurrent_transfers == 1);
  std::ofstream(d.path() + "/ocibuild/config.json")
      << R"({"max-concurrent-transfers": 99, "insecure-registries": ["a:5000", 7], "default-registry": "r:1"})";
  client::UserConfig c = client::LoadUserConfig();
  CHECK(c.max_concurrent_transfers == 32);
  CHECK(c.insecure_registries == std::set<std::string>{"a:5000"});
  CHECK(c.default_registry == "r:1");
  std::ofstream(d.path() + "/ocibuild/config.json") << "{not json";
  CHECK(client::LoadUserConfig().max_concurrent_transfers == 3);
  if (old)
    ::setenv("XDG_CONFIG_HOME", saved.c_str(), 1);
  else
    ::unsetenv("XDG_CONFIG_HOME");
}
