// Server-side TLS for HttpServer: the settings, and the OpenSSL context
// they make.
//
// A TlsContext is immutable once made; the server swaps in a new one on
// reload (SIGHUP), and connections already open keep the one they began
// with. TLS 1.2 is the minimum (1.3 preferred), renegotiation is off, and
// with client_ca_file set every client must present a certificate that
// chains to it (mTLS).
//
// Errors: MakeTlsContext returns kInvalidArgument naming the file that
// could not be used (missing, unreadable, not PEM, key not matching the
// certificate); OpenSSL's own text, which names no paths, is appended.
// Thread safety: a TlsContext may be shared by any number of threads.
#pragma once

#include <memory>
#include <string>

#include "util/status.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace ocib::net {

struct TlsConfig {
  std::string cert_file;       // PEM: the certificate, then its chain
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CAs for client certificates; "" = none
  std::string min_version = "1.2";  // "1.2" or "1.3"
  bool enabled() const { return !cert_file.empty(); }
};

class TlsContext {
 public:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_;
};

Result<std::shared_ptr<TlsContext>> MakeTlsContext(const TlsConfig& cfg);

}  // namespace ocib::net
