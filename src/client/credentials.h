// Where registry credentials come from. RegistryClient takes a
// "user:password" string; callers get it from a CredentialSource: docker's
// config.json (DockerConfigCredentials, user_config.h: `ocibuild login`,
// ocireg's mirror `credentials_file`), fixed credentials, or none.
// Implementations are thread-safe.
#pragma once

#include <string>

namespace ocib::client {

class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // "user:password" for host, or "" for anonymous access.
  virtual std::string Credentials(const std::string& host) const = 0;
};

// The same credentials for every host ("" for none).
class FixedCredentials : public CredentialSource {
 public:
  explicit FixedCredentials(std::string credentials)
      : credentials_(std::move(credentials)) {}
  std::string Credentials(const std::string&) const override {
    return credentials_;
  }

 private:
  const std::string credentials_;
};

}  // namespace ocib::client
