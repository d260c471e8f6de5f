#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace ocib::net {
namespace {

std::string OpenSslError() {
  unsigned long e = ERR_peek_last_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return e ? std::string(": ") + buf : std::string();
}

Status Bad(const std::string& what) {
  return Status(Code::kInvalidArgument, what + OpenSslError());
}

}  // namespace

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Result<std::shared_ptr<TlsContext>> MakeTlsContext(const TlsConfig& cfg) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (!raw) return Bad("cannot make a TLS context");
  auto ctx = std::make_shared<TlsContext>(raw);
  int min = cfg.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (cfg.min_version != "1.2" && cfg.min_version != "1.3")
    return Status(Code::kInvalidArgument,
                  "tls.min_version must be \"1.2\" or \"1.3\"");
  SSL_CTX_set_min_proto_version(raw, min);
  SSL_CTX_set_options(
      raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
               SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // TLS 1.2 suites with forward secrecy and AEAD only.
  SSL_CTX_set_cipher_list(raw,
                          "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5");
  if (SSL_CTX_use_certificate_chain_file(raw, cfg.cert_file.c_str()) != 1)
    return Bad("tls: cannot use the certificate in " + cfg.cert_file);
  if (SSL_CTX_use_PrivateKey_file(raw, cfg.key_file.c_str(),
                                  SSL_FILETYPE_PEM) != 1)
    return Bad("tls: cannot use the private key in " + cfg.key_file);
  if (SSL_CTX_check_private_key(raw) != 1)
    return Bad("tls: the key in " + cfg.key_file +
               " does not match the certificate");
  if (!cfg.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(raw, cfg.client_ca_file.c_str(),
                                      nullptr) != 1)
      return Bad("tls: cannot load client CAs from " + cfg.client_ca_file);
    STACK_OF(X509_NAME)* names =
        SSL_load_client_CA_file(cfg.client_ca_file.c_str());
    if (names) SSL_CTX_set_client_CA_list(raw, names);
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
  }
  // Resumption within this process (ids and tickets), so reconnecting
  // clients skip the full handshake.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_SERVER);
  static const unsigned char kSid[] = "ocireg";
  SSL_CTX_set_session_id_context(raw, kSid, sizeof kSid - 1);
  ERR_clear_error();
  return ctx;
}

}  // namespace ocib::net
