#include "registry/storage.h"

#include <cstdlib>
#include <fstream>

#include "objstore/s3_backend.h"
#include "pgindex/pg_index.h"
#include "store/byte_backend.h"
#include "store/index.h"

namespace ocib::registry {
namespace {

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

// The [default] profile of an AWS shared credentials file.
Status ReadCredentialsFile(const std::string& path, std::string* key,
                           std::string* secret) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read S3 credentials file " + path);
  std::string line, section;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = Trim(line.substr(1, line.size() - 2));
      continue;
    }
    if (section != "default") continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = Trim(line.substr(0, eq)), v = Trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") *key = v;
    if (k == "aws_secret_access_key") *secret = v;
  }
  if (key->empty() || secret->empty())
    return InvalidArgument("S3 credentials file " + path +
                           " has no [default] aws_access_key_id and "
                           "aws_secret_access_key");
  return Status::Ok();
}

// A libpq keyword/value string: values quoted, ' and \ escaped.
std::string ConnInfo(const Config::Database& d) {
  std::string out;
  auto add = [&out](const char* key, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += ' ';
    out += key;
    out += "='";
    for (char c : value) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += '\'';
  };
  add("host", d.host);
  add("port", std::to_string(d.port));
  add("user", d.user);
  add("password", d.password);
  add("dbname", d.dbname);
  add("sslmode", d.sslmode);
  add("sslrootcert", d.sslrootcert);
  return out;
}

Result<std::unique_ptr<Index>> OpenConfiguredIndex(const Config& cfg,
                                                   const StoreOptions& so) {
  if (!cfg.database.enabled) return std::unique_ptr<Index>();
  pgindex::PgIndexOptions o;
  o.conninfo = ConnInfo(cfg.database);
  o.schema = cfg.database.schema;
  o.pool_size = cfg.database.pool_maxopen;
  o.connect_timeout_seconds = cfg.database.connecttimeout;
  o.read_only = so.read_only;
  auto index = pgindex::OpenPgIndex(o);
  if (!index.ok())
    return Status(index.status().code(),
                  "database: " + index.status().message());
  return index;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenConfiguredStore(const Config& cfg,
                                                   const StoreOptions& so) {
  ASSIGN_OR_RETURN(auto index, OpenConfiguredIndex(cfg, so));
  if (!cfg.s3.enabled()) return OpenStore(so, nullptr, std::move(index));
  objstore::S3BackendOptions o;
  o.s3.endpoint = cfg.s3.regionendpoint;
  o.s3.region = cfg.s3.region;
  o.s3.bucket = cfg.s3.bucket;
  o.s3.ca_file = cfg.s3.ca_file;
  o.s3.access_key = cfg.s3.accesskey;
  o.s3.secret_key = cfg.s3.secretkey;
  if (o.s3.access_key.empty() || o.s3.secret_key.empty()) {
    const char* k = std::getenv("AWS_ACCESS_KEY_ID");
    const char* s = std::getenv("AWS_SECRET_ACCESS_KEY");
    if (k && s && *k && *s) {
      o.s3.access_key = k;
      o.s3.secret_key = s;
    } else if (!cfg.s3.credentials_file.empty()) {
      RETURN_IF_ERROR(ReadCredentialsFile(cfg.s3.credentials_file,
                                          &o.s3.access_key, &o.s3.secret_key));
    } else {
      return InvalidArgument(
          "storage.s3 needs credentials: accesskey and secretkey, "
          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or credentials_file");
    }
  }
  std::string prefix = cfg.s3.rootdirectory;
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  o.prefix = prefix;
  o.segment_bytes = static_cast<uint64_t>(cfg.s3.chunksize);
  o.cache_bytes = static_cast<uint64_t>(cfg.s3.cache_mib) << 20;
  o.cache_dir =
      cfg.s3.cache_dir.empty() ? so.root + "/s3-cache" : cfg.s3.cache_dir;
  auto backend = objstore::NewS3Backend(o);
  if (!backend.ok())
    return Status(backend.status().code(),
                  "object store: " + backend.status().message());
  return OpenStore(so, std::move(*backend), std::move(index));
}

}  // namespace ocib::registry
