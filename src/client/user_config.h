// The registry client's user-side configuration files, read by the
// programs that use the client (the ocibuild CLI, ocireg's mirror), never
// by the client itself:
//
// * docker's credential file, $DOCKER_CONFIG/config.json or
//   ~/.docker/config.json ("auths": {host: {"auth": base64(user:password)}}),
//   so `docker login` and `ocibuild login` share credentials;
// * ocibuild's own ($XDG_CONFIG_HOME or ~/.config)/ocibuild/config.json:
//   {"insecure-registries": [...], "max-concurrent-transfers": 3,
//    "default-registry": "host:port"}.
//
// Missing or malformed files read as empty. Thread-compatible.
#pragma once

#include <set>
#include <string>

#include "client/credentials.h"
#include "util/status.h"

namespace ocib::client {

std::string DockerConfigPath();

// Credentials from a docker-style config.json, read once at construction.
class DockerConfigCredentials : public CredentialSource {
 public:
  explicit DockerConfigCredentials(
      const std::string& path = DockerConfigPath());
  std::string Credentials(const std::string& host) const override;

 private:
  std::string json_;  // the file's text
};

// `ocibuild login` / `logout`: writes docker's config.json (mode 0600).
Status StoreCredentials(const std::string& host, const std::string& user,
                        const std::string& password);
// kNotFound when there was nothing to remove.
Status RemoveCredentials(const std::string& host);

std::string ClientConfigPath();

struct UserConfig {
  std::set<std::string> insecure_registries;
  int max_concurrent_transfers = 3;  // 1-32, as docker's default 3
  std::string default_registry;      // for names without a host
};
UserConfig LoadUserConfig();

}  // namespace ocib::client
