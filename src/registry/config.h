// ocireg's configuration: the documented defaults (conf/registry.json),
// loading from a JSON file, and validation.
//
// LoadConfig rejects unknown keys and bad values with kInvalidArgument whose
// message names the key, so a typo stops the server at start instead of
// being ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gc/garbage_collector.h"
#include "net/tls.h"
#include "registry/quota.h"
#include "util/status.h"

namespace ocib::registry {

// The garbage collector's types, as the config and server use them.
using gc::CollectGarbage;
using gc::GcOptions;
using gc::GcStats;
using gc::ParseDurationSeconds;
using gc::RetentionRule;
using gc::ValidateRetention;

// One upstream of the pull-through mirror ("proxy": {"upstreams": [...]}).
struct Upstream {
  std::string url;               // http(s)://host[:port]
  std::string ns = "docker.io";  // the namespace it serves ("namespace")
  // Also serves names without a namespace, as docker's registry-mirrors
  // sends them ("unqualified"; default: namespace is docker.io).
  bool unqualified = true;
  std::string username, password;  // inline credentials, or
  std::string credentials_file;    // a docker-style config.json
  int64_t tag_freshness_seconds = 300;
  int64_t timeout_seconds = 30;
  std::string host() const;    // host[:port] of url
  std::string scheme() const;  // "http" or "https"
};

// Parses --mirror URL (docker.io) or NS=URL.
Result<Upstream> ParseMirrorFlag(const std::string& value);

// Authentication and authorization ("auth"). With none of htpasswd,
// token and token_server set, every client may do everything.
struct AuthConfig {
  std::string realm = "ocireg";  // the Basic challenge's realm
  std::string htpasswd;          // bcrypt users file
  // Tokens from an external issuer (Distribution's "token" auth).
  struct Token {
    std::string realm;           // the issuer's URL, for the challenge
    std::string service;         // "aud" of accepted tokens
    std::string issuer;          // "iss" of accepted tokens
    std::string rootcertbundle;  // PEM certificates (or public keys)
    std::string jwks;            // a JWKS file
    std::vector<std::string> algorithms = {"RS256", "ES256", "EdDSA"};
    bool enabled() const { return !realm.empty(); }
  } token;
  // ocireg's own token server at GET/POST /token, checking htpasswd.
  struct TokenServer {
    bool enabled = false;
    std::string key_file;   // PEM private key (RSA, P-256, Ed25519)
    std::string cert_file;  // optional certificate for the key (x5c)
    std::string issuer = "ocireg";
    std::string service = "ocireg";
    std::string realm;  // public URL of /token; "" = from the Host header
    int64_t expiration_seconds = 300;
    int64_t refresh_expiration_seconds = 30LL * 86400;
  } token_server;
  std::string acl_file;  // an ACL (auth/acl.h), reloaded when it changes
  std::string acl;       // or inline, as JSON text
  // Failed logins per user and per client address before a lockout.
  int max_failures = 10;
  int failure_window_seconds = 60;
  int lockout_seconds = 30;
  bool enabled() const {
    return !htpasswd.empty() || token.enabled() || token_server.enabled;
  }
};

// A webhook receiving events, as Distribution's notifications.endpoints
// (same envelope, so existing receivers work). Events are queued in the
// store before the request is answered and delivered in order, retried
// with backoff, also across restarts (registry/notifications.h).
struct NotificationEndpoint {
  std::string name;  // unique; names its queue
  std::string url;   // http(s)://host[:port]/path
  bool disabled = false;
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t timeout_seconds = 5;
  int64_t backoff_seconds = 1;  // first retry wait; doubles up to 60 s
  int64_t threshold = 3;        // accepted as Distribution's; unused
  // Events kept for the endpoint while it is down; past it new events for
  // it are dropped (logged and counted), so a dead receiver cannot fill
  // the disk ("max_pending").
  int64_t max_pending = 1000000;
  std::vector<std::string> ignored_media_types;  // "ignoredmediatypes"
  std::vector<std::string> ignored_actions;      // "ignore": {"actions"}
  // ocireg's filters: only these repositories (auth/acl.h globs) and
  // actions ("push", "pull", "delete", "mount"); empty: all.
  std::vector<std::string> repositories;
  std::vector<std::string> actions;
};

struct Config {
  std::string listen = "127.0.0.1:5000";  // host:port
  std::string root = "./data";            // store directory
  int64_t upload_expiry_seconds = 3600;   // idle upload sessions reclaimed
  int64_t max_uploads = 10000;            // open upload sessions (else 429)
  int64_t max_uploads_per_repository = 1000;
  int64_t max_manifest_bytes = 4 << 20;  // larger PUTs get 413
  int64_t max_body_bytes = 0;            // blob request bodies; 0 = no limit
  // Worker threads: requests in progress at once. Idle and half-read
  // connections hold none; workers start on demand and stop when idle.
  int threads = 256;
  int max_connections = 4096;            // open connections, idle ones included
  int header_timeout_seconds = 10;       // to send a whole request head
  int64_t max_header_bytes = 64 << 10;   // request line and headers (else 431)
  int keep_alive_timeout_seconds = 5;    // idle keep-alive connections close
  int keep_alive_max_requests = 100000;  // per connection
  int read_timeout_seconds = 60;
  int write_timeout_seconds = 60;
  std::string log_format = "text";  // "text", "json" or "off"
  bool sync = true;                 // fsync blobs and metadata at commit
  // Page cache kept for the most recently written blob bytes; older ones
  // are dropped once on disk. 0 leaves it to the kernel.
  int64_t written_cache_mib = 1024;
  // Free space kept on the store's disk: writes past it get 500 "storage
  // full" while reads go on, and they work again once space is freed.
  int64_t reserved_space_mib = 256;
  std::vector<Upstream> upstreams;  // empty: no mirror
  net::TlsConfig tls;               // cert_file empty: plain HTTP
  AuthConfig auth;
  // Refuse every write with 405 UNSUPPORTED (maintenance); re-read on
  // SIGHUP.
  bool read_only = false;
  // Online garbage collection (registry/garbage_collector.h), as
  // durations "90s", "1h", "0s"; interval 0 turns the schedule off.
  struct Gc {
    int64_t interval_seconds = 3600;
    int64_t min_age_seconds = 3600;
    bool delete_untagged = false;
  } gc;
  std::vector<RetentionRule> retention;  // "retention": [...]
  // "quotas": [{"namespace": "team", "bytes": N}] (registry/quota.h).
  std::vector<QuotaRule> quotas;
  // The operator's address ("debug": {"listen": "127.0.0.1:5001"}):
  // GET /metrics (Prometheus), /healthz and /readyz. Empty: off. Never
  // the public address.
  struct Debug {
    std::string listen;
  } debug;
  // "storage": {"s3": {...}}: blob bytes in an S3-compatible bucket
  // (objstore/s3_backend.h) instead of files under root, which keeps the
  // index. Key names follow Distribution's S3 driver.
  struct S3 {
    std::string regionendpoint;  // http(s)://HOST[:PORT]; empty: files
    std::string region = "us-east-1";
    std::string bucket;
    std::string rootdirectory;  // key prefix, e.g. "/registry"
    // Else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else the
    // [default] profile of credentials_file (AWS's shared format).
    std::string accesskey;
    std::string secretkey;
    std::string credentials_file;
    std::string ca_file;          // https: CA bundle; empty: the system's
    int64_t chunksize = 8 << 20;  // bytes gathered per part (>= 5 MiB)
    // Blob GETs answer 307 to a presigned URL (20 minutes), so the bytes
    // go from the object store to the client directly.
    bool redirect = false;
    // A local cache of blob bytes pushed through or pulled whole from this
    // replica, at most cache_mib (0: off), under cache_dir (default
    // <root>/s3-cache).
    int64_t cache_mib = 0;
    std::string cache_dir;
    bool enabled() const { return !regionendpoint.empty(); }
  } s3;
  // "database": the store's records in PostgreSQL (pgindex/pg_index.h)
  // instead of RocksDB under root, so several replicas (with blob bytes
  // in storage.s3) serve one registry. Key names follow GitLab's
  // container registry. The password may also come from PGPASSWORD or
  // ~/.pgpass (libpq's own sources).
  struct Database {
    bool enabled = false;
    std::string host = "127.0.0.1";
    int port = 5432;
    std::string user;
    std::string password;
    std::string dbname;
    std::string sslmode = "prefer";  // libpq's: disable ... verify-full
    std::string sslrootcert;
    std::string schema = "public";  // created if missing
    int connecttimeout = 5;         // seconds
    int pool_maxopen = 8;           // "pool": {"maxopen": N}
  } database;
  // The web catalog at / and /ui/ (registry/web_ui.h).
  bool ui = true;
  // "notifications": {"endpoints": [...]}
  std::vector<NotificationEndpoint> notifications;

  std::string host() const;
  int port() const;  // -1 if listen is malformed
};

// HOST:PORT split ([v6] brackets removed); port -1 if malformed.
std::string HostOf(const std::string& listen);
int PortOf(const std::string& listen);

// Reads and validates a JSON config file; keys it does not name keep their
// defaults.
Result<Config> LoadConfig(const std::string& path);
// The same from the file's text; `path` names it in messages.
Result<Config> ParseConfig(std::string_view text, const std::string& path);

// Checks every field (also after command-line overrides).
Status Validate(const Config& c);

}  // namespace ocib::registry
