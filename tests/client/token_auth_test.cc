// The registry client's Bearer token flow (distribution's token auth:
// 401 with realm/service/scope, a token fetched from the realm, the request
// repeated with it), against a small token-auth server in the test, as the
// client issue allows until ocireg has auth of its own.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "client/registry_client.h"
#include "store/digest.h"

using namespace ocib;

namespace {

struct TokenServer {
  httplib::Server svr;
  int port = 0;
  std::thread thread;
  std::atomic<int> token_requests{0};
  std::string last_query;
  std::string last_token_auth;

  TokenServer() {
    svr.Get("/token", [this](const httplib::Request& req,
                             httplib::Response& res) {
      ++token_requests;
      last_query =
          req.get_param_value("service") + "|" + req.get_param_value("scope");
      last_token_auth = req.get_header_value("Authorization");
      std::string auth = req.get_header_value("Authorization");
      if (auth.empty()) {  // anonymous: a pull-only token
        res.set_content("{\"token\":\"anon\"}", "application/json");
      } else if (auth == "Basic YWxpY2U6czNjcmV0") {  // alice:s3cret
        res.set_content("{\"access_token\":\"alice-token\",\"expires_in\":300}",
                        "application/json");
      } else {
        res.status = 401;
        res.set_content(
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad "
            "credentials\"}]}",
            "application/json");
      }
    });
    svr.Get("/v2/",
            [this](const httplib::Request& req, httplib::Response& res) {
              std::string auth = req.get_header_value("Authorization");
              bool ok = auth == "Bearer alice-token" || auth == "Bearer anon";
              if (!ok) {
                res.status = 401;
                res.set_header(
                    "WWW-Authenticate",
                    "Bearer realm=\"http://127.0.0.1:" + std::to_string(port) +
                        "/token\",service=\"test-registry\",scope=\"repository:"
                        "team/app:pull\"");
                res.set_content(
                    "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":"
                    "\"authentication required\"}]}",
                    "application/json");
                return;
              }
              res.status = 200;
              res.set_content("{}", "application/json");
            });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~TokenServer() {
    svr.stop();
    thread.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port); }
};

}  // namespace

TEST_CASE(
    "Bearer challenge: credentials are sent to the realm and the token is "
    "used") {
  TokenServer ts;
  client::RegistryClient c(ts.host(), "alice:s3cret");
  Status s = c.Ping();
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(ts.token_requests.load() == 1);
  CHECK(ts.last_query == "test-registry|repository:team/app:pull");
  CHECK(ts.last_token_auth == "Basic YWxpY2U6czNjcmV0");
  // The token is kept: the next request needs no new one.
  CHECK(c.Ping().ok());
  CHECK(ts.token_requests.load() == 1);
}

TEST_CASE("Bearer challenge without credentials gets an anonymous token") {
  TokenServer ts;
  client::RegistryClient c(ts.host(), "");
  CHECK(c.Ping().ok());
  CHECK(ts.last_token_auth.empty());
}

TEST_CASE(
    "wrong credentials: the token endpoint refuses and the error says so in "
    "one line") {
  TokenServer ts;
  client::RegistryClient c(ts.host(), "alice:wrong");
  Status s = c.Ping();
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(s.message().find("token request") != std::string::npos);
  CHECK(s.message().find('\n') == std::string::npos);
}

TEST_CASE(
    "tokens are cached per scope in a session until they expire: a second "
    "client asks for none") {
  TokenServer ts;
  client::Connection conn;
  conn.session = std::make_shared<client::ClientSession>();
  client::RegistryClient a(ts.host(), "alice:s3cret", conn);
  REQUIRE(a.Ping().ok());
  int after_first = ts.token_requests.load();
  client::RegistryClient b(ts.host(), "alice:s3cret", conn);
  CHECK(b.Ping().ok());
  CHECK(ts.token_requests.load() == after_first);
  // Other credentials are another cache entry.
  client::RegistryClient anon(ts.host(), "", conn);
  CHECK(anon.Ping().ok());
  CHECK(ts.token_requests.load() == after_first + 1);
  // No process-wide cache: a client in another session asks again.
  client::RegistryClient other(ts.host(), "alice:s3cret");
  CHECK(other.Ping().ok());
  CHECK(ts.token_requests.load() == after_first + 2);
}
