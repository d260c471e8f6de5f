#include "client/user_config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/base64.h"

namespace ocib::client {

std::string DockerConfigPath() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d)
    return std::string(d) + "/config.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.docker/config.json";
}

namespace {

nlohmann::json ReadDockerConfig() {
  std::ifstream in(DockerConfigPath());
  if (!in) return nlohmann::json::object();
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() || !j.is_object() ? nlohmann::json::object() : j;
}

Status WriteDockerConfig(const nlohmann::json& j) {
  std::string path = DockerConfigPath();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(),
                                      ec);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(1, '\t') << "\n";
    if (!out) return Internal("cannot write " + path);
  }
  ::chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Internal("cannot write " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

DockerConfigCredentials::DockerConfigCredentials(const std::string& path) {
  std::ifstream in(path);
  if (!in) return;
  std::stringstream ss;
  ss << in.rdbuf();
  json_ = ss.str();
}

std::string DockerConfigCredentials::Credentials(
    const std::string& host) const {
  nlohmann::json j = nlohmann::json::parse(json_, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("auths") ||
      !j["auths"].is_object())
    return "";
  for (const std::string& key : {host, "http://" + host, "https://" + host}) {
    if (!j["auths"].contains(key)) continue;
    const auto& e = j["auths"][key];
    if (e.contains("auth") && e["auth"].is_string())
      return Unbase64(e["auth"].get<std::string>());
  }
  return "";
}

Status StoreCredentials(const std::string& host, const std::string& user,
                        const std::string& password) {
  auto j = ReadDockerConfig();
  if (!j.contains("auths") || !j["auths"].is_object())
    j["auths"] = nlohmann::json::object();
  j["auths"][host] = {{"auth", Base64(user + ":" + password)}};
  return WriteDockerConfig(j);
}

Status RemoveCredentials(const std::string& host) {
  auto j = ReadDockerConfig();
  if (!j.contains("auths") || !j["auths"].is_object() ||
      !j["auths"].contains(host))
    return NotFound("not logged in to " + host);
  j["auths"].erase(host);
  return WriteDockerConfig(j);
}

std::string ClientConfigPath() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    return std::string(x) + "/ocibuild/config.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") +
         "/.config/ocibuild/config.json";
}

namespace {
nlohmann::json ReadClientConfig() {
  std::ifstream in(ClientConfigPath());
  if (!in) return nlohmann::json::object();
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() || !j.is_object() ? nlohmann::json::object() : j;
}
}  // namespace

UserConfig LoadUserConfig() {
  UserConfig c;
  nlohmann::json j = ReadClientConfig();
  if (j.contains("default-registry") && j["default-registry"].is_string())
    c.default_registry = j["default-registry"].get<std::string>();
  if (j.contains("max-concurrent-transfers") &&
      j["max-concurrent-transfers"].is_number_integer())
    c.max_concurrent_transfers =
        std::clamp(j["max-concurrent-transfers"].get<int>(), 1, 32);
  if (j.contains("insecure-registries") && j["insecure-registries"].is_array())
    for (const auto& h : j["insecure-registries"])
      if (h.is_string()) c.insecure_registries.insert(h.get<std::string>());
  return c;
}

}  // namespace ocib::client
