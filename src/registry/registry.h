// ocireg's HTTP front end: the Docker Registry HTTP API v2 and the OCI
// Distribution Spec v1.1 over a Store.
//
// Lifecycle: construct with a validated Config and an open Store, Bind()
// (which also reports the port when the config asks for port 0), then
// Serve() blocks until Shutdown() is called from another thread. Shutdown
// stops accepting, lets in-flight requests finish, and returns from Serve;
// the caller then destroys the Registry before the Store.
//
// Thread safety: Serve runs the handlers on a pool of config.threads
// threads, one per connection; Shutdown may be called from any thread.
#pragma once

#include <memory>

#include "gc/garbage_collector.h"
#include "registry/config.h"
#include "store/blob_store.h"
#include "util/status.h"

namespace ocib::registry {

class Registry {
 public:
  Registry(Config config, Store* store);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Reads the TLS and auth files the config names and binds the listening
  // socket. Returns the bound port. Errors name the file or key at fault.
  Result<int> Bind();
  // SIGHUP: takes read_only from `cfg`, reads the TLS certificate and key
  // and the htpasswd and ACL files again. What fails to load keeps its
  // previous value, and the error is returned. Any thread.
  Status Reload(const Config& cfg);
  // Serves until Shutdown(). REQUIRES: Bind() succeeded.
  Status Serve();
  void Shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ocib::registry
