#include "objstore/s3_client.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/md5.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <regex>
#include <thread>

#include "net/buffered_stream.h"

namespace ocib::objstore {
namespace {

// Inner texts of every <tag>...</tag> in xml, in order (no nesting of the
// same tag in S3's answers), with the five predefined entities decoded.
std::vector<std::string> Tags(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    size_t start = pos + open.size();
    size_t end = xml.find(close, start);
    if (end == std::string::npos) break;
    std::string v = xml.substr(start, end - start);
    std::string d;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] != '&') {
        d += v[i];
        continue;
      }
      static const std::pair<const char*, char> kEnt[] = {{"&amp;", '&'},
                                                          {"&lt;", '<'},
                                                          {"&gt;", '>'},
                                                          {"&quot;", '"'},
                                                          {"&apos;", '\''}};
      bool done = false;
      for (const auto& [e, c] : kEnt) {
        if (v.compare(i, std::strlen(e), e) == 0) {
          d += c;
          i += std::strlen(e) - 1;
          done = true;
          break;
        }
      }
      if (!done) d += '&';
    }
    out.push_back(std::move(d));
    pos = end + close.size();
  }
  return out;
}

std::string Tag(const std::string& xml, const std::string& tag) {
  auto v = Tags(xml, tag);
  return v.empty() ? "" : v[0];
}

std::string XmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

int64_t ParseIsoTime(const std::string& s) {  // 2026-11-30T06:07:47.573Z
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return timegm(&tm);
}

int64_t ParseHttpTime(const std::string& s) {  // Mon, 30 Nov 2026 06:07:47 GMT
  std::tm tm{};
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return 0;
  return timegm(&tm);
}

std::string Md5Base64(const std::string& body) {
  unsigned char md[16];
  EVP_Digest(body.data(), body.size(), md, nullptr, EVP_md5(), nullptr);
  unsigned char out[32];
  int n = EVP_EncodeBlock(out, md, sizeof md);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string ErrorText(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "cannot connect";
    case httplib::Error::Read:
      return "connection broke while reading";
    case httplib::Error::Write:
      return "connection broke while writing";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "server certificate not trusted";
    default:
      return httplib::to_string(e);
  }
}

const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace

class S3Client::Impl {
 public:
  S3Options opts;
  SigV4Credentials creds;
  bool https = false;
  std::string host;
  int port = 0;
  std::string host_header;

  std::mutex mu;
  std::vector<std::unique_ptr<httplib::ClientImpl>> idle;

  std::unique_ptr<httplib::ClientImpl> Acquire() {
    {
      std::lock_guard<std::mutex> l(mu);
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    std::unique_ptr<httplib::ClientImpl> c;
    if (https) {
      auto s = std::make_unique<httplib::SSLClient>(host, port);
      if (!opts.ca_file.empty())
        s->set_ca_cert_path(opts.ca_file.c_str());
      else
        s->set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
      s->enable_server_certificate_verification(true);
      c = std::move(s);
    } else {
      c = std::make_unique<net::BufferedClient>(host, port);
    }
    c->set_keep_alive(true);
    // Small requests (listings, part completions) would otherwise wait on
    // Nagle's algorithm against the server's delayed ACK: 40 ms each.
    c->set_tcp_nodelay(true);
    c->set_url_encode(false);
    c->set_decompress(false);
    c->set_connection_timeout(opts.timeout_seconds, 0);
    c->set_read_timeout(opts.timeout_seconds, 0);
    c->set_write_timeout(opts.timeout_seconds, 0);
    return c;
  }
  void Release(std::unique_ptr<httplib::ClientImpl> c) {
    std::lock_guard<std::mutex> l(mu);
    if (idle.size() < opts.max_idle_connections) idle.push_back(std::move(c));
  }

  std::string Path(const std::string& key) const {
    std::string p = "/" + UriEncode(opts.bucket, false);
    if (!key.empty()) p += "/" + UriEncode(key, true);
    return p;
  }

  // Signed headers for a request; `extra` (lower-case names) are signed too.
  httplib::Headers Sign(const std::string& method, const std::string& path,
                        const std::multimap<std::string, std::string>& query,
                        const std::map<std::string, std::string>& extra,
                        const std::string& payload_hash) const {
    SigV4Request r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.headers = extra;
    std::string date = AmzDate(std::time(nullptr));
    r.headers["host"] = host_header;
    r.headers["x-amz-date"] = date;
    r.headers["x-amz-content-sha256"] = payload_hash;
    r.payload_hash = payload_hash;
    httplib::Headers h;
    for (const auto& [k, v] : r.headers) h.emplace(k == "host" ? "Host" : k, v);
    h.emplace("Authorization", SignV4(creds, r, date));
    return h;
  }

  static std::string QueryString(
      const std::multimap<std::string, std::string>& q) {
    std::string s;
    for (const auto& [k, v] : q) {
      s += s.empty() ? "?" : "&";
      s += UriEncode(k, false);
      if (!v.empty() || k != "uploads") s += "=" + UriEncode(v, false);
    }
    return s;
  }

  struct Answer {
    int status = 0;
    std::string body;
    httplib::Headers headers;
  };

  // Sends a request with an in-memory body; retries connection failures
  // and 5xx answers a few times.
  Result<Answer> Call(const std::string& method, const std::string& key,
                      const std::multimap<std::string, std::string>& query,
                      std::map<std::string, std::string> extra,
                      const char* body = nullptr, size_t n = 0,
                      const std::string& content_type = "") {
    const std::string path = Path(key);
    const std::string target = path + QueryString(query);
    const std::string payload_hash = n == 0 ? kEmptySha256 : Sha256Hex(body, n);
    std::string last_error;
    for (int attempt = 0; attempt < 4; ++attempt) {
      if (attempt > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(50 << attempt));
      httplib::Headers h = Sign(method, path, query, extra, payload_hash);
      auto c = Acquire();
      httplib::Result r{nullptr, httplib::Error::Unknown};
      const std::string ct =
          content_type.empty() ? "application/octet-stream" : content_type;
      if (method == "GET") {
        r = c->Get(target, h);
      } else if (method == "HEAD") {
        r = c->Head(target, h);
      } else if (method == "DELETE") {
        r = c->Delete(target, h);
      } else if (method == "PUT" || method == "POST") {
        httplib::ContentProvider p = [body](size_t off, size_t len,
                                            httplib::DataSink& sink) {
          return sink.write(body + off, len);
        };
        if (n == 0)
          r = method == "PUT" ? c->Put(target, h, "", 0, ct)
                              : c->Post(target, h, "", 0, ct);
        else
          r = method == "PUT" ? c->Put(target, h, n, p, ct)
                              : c->Post(target, h, n, p, ct);
      } else {
        return Internal("unsupported S3 method " + method);
      }
      if (!r) {
        last_error = ErrorText(r.error());
        continue;  // the connection is dropped with c
      }
      Answer a{r->status, std::move(r->body), r->headers};
      Release(std::move(c));
      if (a.status >= 500) {
        last_error =
            "HTTP " + std::to_string(a.status) + " " + Tag(a.body, "Code");
        continue;
      }
      return a;
    }
    return Unreachable("object store " + opts.endpoint + ": " + method +
                       " failed: " + last_error);
  }

  static Status Refused(const std::string& what, const Answer& a) {
    std::string code = Tag(a.body, "Code");
    std::string msg = what + ": HTTP " + std::to_string(a.status) +
                      (code.empty() ? "" : " " + code);
    if (a.status == 404) return NotFound(msg);
    if (a.status == 416) return OutOfRange(msg);
    return Internal(msg);
  }
};

S3Client::S3Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3Client::~S3Client() = default;

Result<std::unique_ptr<S3Client>> S3Client::Create(const S3Options& o) {
  static const std::regex re(
      R"(^(https?)://([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(?::([0-9]{1,5}))?/?$)");
  std::smatch m;
  if (!std::regex_match(o.endpoint, m, re))
    return InvalidArgument(
        "object store endpoint must be http(s)://HOST[:PORT], not " +
        o.endpoint);
  if (o.bucket.empty()) return InvalidArgument("object store bucket is empty");
  if (o.access_key.empty() || o.secret_key.empty())
    return InvalidArgument("object store credentials are missing");
  auto impl = std::make_unique<Impl>();
  impl->opts = o;
  impl->https = m[1].str() == "https";
  impl->host = m[2].str();
  impl->port = m[3].matched ? std::stoi(m[3].str()) : (impl->https ? 443 : 80);
  if (impl->port <= 0 || impl->port > 65535)
    return InvalidArgument("object store endpoint has a bad port");
  bool default_port = impl->port == (impl->https ? 443 : 80);
  impl->host_header =
      default_port ? impl->host : impl->host + ":" + std::to_string(impl->port);
  impl->creds = {o.access_key, o.secret_key,
                 o.region.empty() ? "us-east-1" : o.region, "s3"};
  return std::unique_ptr<S3Client>(new S3Client(std::move(impl)));
}

Status S3Client::CreateBucket() {
  ASSIGN_OR_RETURN(auto a, impl_->Call("PUT", "", {}, {}));
  if (a.status == 200) return Status::Ok();
  std::string code = Tag(a.body, "Code");
  if (a.status == 409 &&
      (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists"))
    return Status::Ok();
  return Impl::Refused("create bucket " + impl_->opts.bucket, a);
}

Status S3Client::PutObject(const std::string& key, const char* data, size_t n) {
  ASSIGN_OR_RETURN(auto a, impl_->Call("PUT", key, {}, {}, data, n));
  if (a.status != 200) return Impl::Refused("put object", a);
  return Status::Ok();
}

Result<ObjectInfo> S3Client::HeadObject(const std::string& key) {
  ASSIGN_OR_RETURN(auto a, impl_->Call("HEAD", key, {}, {}));
  if (a.status != 200) return Impl::Refused("head object", a);
  ObjectInfo info;
  info.key = key;
  auto it = a.headers.find("Content-Length");
  if (it != a.headers.end())
    info.size = std::strtoull(it->second.c_str(), nullptr, 10);
  it = a.headers.find("Last-Modified");
  if (it != a.headers.end()) info.modified_unix = ParseHttpTime(it->second);
  return info;
}

Status S3Client::GetRange(
    const std::string& key, uint64_t offset, uint64_t length,
    const std::function<bool(const char*, size_t)>& sink) {
  if (length == 0) return Status::Ok();
  const std::string path = impl_->Path(key);
  std::map<std::string, std::string> extra = {
      {"range", "bytes=" + std::to_string(offset) + "-" +
                    std::to_string(offset + length - 1)}};
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    httplib::Headers h = impl_->Sign("GET", path, {}, extra, kEmptySha256);
    auto c = impl_->Acquire();
    int status = 0;
    std::string err_body;
    bool stopped = false, sink_stopped = false;
    uint64_t got = 0;
    auto r = c->Get(
        path, h,
        [&](const httplib::Response& res) {
          status = res.status;
          return true;
        },
        [&](const char* d, size_t n) {
          // 200 is the whole object: a range from 0 only (a server that
          // ignores Range must not shift the bytes).
          if (status != 206 && !(status == 200 && offset == 0)) {
            if (err_body.size() < 4096) err_body.append(d, n);
            return true;
          }
          if (got + n > length) {
            stopped = true;
            return false;
          }
          got += n;
          if (!sink(d, n)) {
            stopped = sink_stopped = true;
            return false;
          }
          return true;
        });
    if (stopped)
      return Unreachable(got < length && sink_stopped
                             ? "read stopped"
                             : "object store sent more than the range");
    if (!r) {
      // Bytes already handed to the sink cannot be taken back.
      if (got > 0)
        return Unreachable("object store read broke: " + ErrorText(r.error()));
      last_error = ErrorText(r.error());
      continue;
    }
    impl_->Release(std::move(c));
    if (status == 206 || (status == 200 && offset == 0)) {
      if (got != length)
        return Unreachable("object store read returned " + std::to_string(got) +
                           " of " + std::to_string(length) + " bytes");
      return Status::Ok();
    }
    Impl::Answer a{status, err_body, {}};
    if (status >= 500) {
      last_error = "HTTP " + std::to_string(status);
      continue;
    }
    return Impl::Refused("get object", a);
  }
  return Unreachable("object store " + impl_->opts.endpoint +
                     ": GET failed: " + last_error);
}

Status S3Client::DeleteObject(const std::string& key) {
  ASSIGN_OR_RETURN(auto a, impl_->Call("DELETE", key, {}, {}));
  if (a.status != 204 && a.status != 200 && a.status != 404)
    return Impl::Refused("delete object", a);
  return Status::Ok();
}

Status S3Client::DeleteObjects(const std::vector<std::string>& keys) {
  for (size_t i = 0; i < keys.size(); i += 1000) {
    std::string body = "<Delete><Quiet>true</Quiet>";
    for (size_t j = i; j < std::min(keys.size(), i + 1000); ++j)
      body += "<Object><Key>" + XmlEscape(keys[j]) + "</Key></Object>";
    body += "</Delete>";
    ASSIGN_OR_RETURN(
        auto a, impl_->Call("POST", "", {{"delete", ""}},
                            {{"content-md5", Md5Base64(body)}}, body.data(),
                            body.size(), "application/xml"));
    if (a.status != 200) return Impl::Refused("delete objects", a);
    if (!Tags(a.body, "Error").empty())
      return Internal("delete objects: " + Tag(a.body, "Code"));
  }
  return Status::Ok();
}

// Every page of a ListObjectsV2 of prefix (grouped by '/' when
// delimited), each body handed to `page`.
Status S3Client::ListPages(
    const std::string& prefix, bool delimited,
    const std::function<void(const std::string&)>& page) {
  std::string token;
  for (;;) {
    std::multimap<std::string, std::string> q = {{"list-type", "2"},
                                                 {"prefix", prefix}};
    if (delimited) q.emplace("delimiter", "/");
    if (!token.empty()) q.emplace("continuation-token", token);
    ASSIGN_OR_RETURN(auto a, impl_->Call("GET", "", q, {}));
    if (a.status != 200) return Impl::Refused("list objects", a);
    page(a.body);
    if (Tag(a.body, "IsTruncated") != "true") return Status::Ok();
    std::string next = Tag(a.body, "NextContinuationToken");
    if (next.empty() || next == token)
      return Internal("list objects: truncated without a new token");
    token = next;
  }
}

Result<std::vector<ObjectInfo>> S3Client::List(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  RETURN_IF_ERROR(ListPages(prefix, false, [&](const std::string& body) {
    for (const auto& c : Tags(body, "Contents")) {
      ObjectInfo i;
      i.key = Tag(c, "Key");
      i.size = std::strtoull(Tag(c, "Size").c_str(), nullptr, 10);
      i.modified_unix = ParseIsoTime(Tag(c, "LastModified"));
      out.push_back(std::move(i));
    }
  }));
  return out;
}

Result<std::vector<std::string>> S3Client::ListPrefixes(
    const std::string& prefix) {
  std::vector<std::string> out;
  RETURN_IF_ERROR(ListPages(prefix, true, [&](const std::string& body) {
    for (const auto& c : Tags(body, "CommonPrefixes")) {
      std::string p = Tag(c, "Prefix");
      if (!p.empty() && p.back() == '/') p.pop_back();
      out.push_back(std::move(p));
    }
  }));
  return out;
}

Status S3Client::CopyObject(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(
      auto a,
      impl_->Call("PUT", to, {}, {{"x-amz-copy-source", impl_->Path(from)}}));
  if (a.status != 200 || !Tags(a.body, "Error").empty())
    return Impl::Refused("copy object", a);
  return Status::Ok();
}

Result<std::string> S3Client::CreateMultipartUpload(const std::string& key) {
  ASSIGN_OR_RETURN(auto a, impl_->Call("POST", key, {{"uploads", ""}}, {}));
  if (a.status != 200) return Impl::Refused("create multipart upload", a);
  std::string id = Tag(a.body, "UploadId");
  if (id.empty()) return Internal("create multipart upload: no UploadId");
  return id;
}

Result<std::string> S3Client::UploadPart(const std::string& key,
                                         const std::string& upload_id,
                                         int number, const char* data,
                                         size_t n) {
  ASSIGN_OR_RETURN(auto a, impl_->Call("PUT", key,
                                       {{"partNumber", std::to_string(number)},
                                        {"uploadId", upload_id}},
                                       {}, data, n));
  if (a.status != 200) return Impl::Refused("upload part", a);
  auto it = a.headers.find("ETag");
  if (it == a.headers.end() || it->second.empty())
    return Internal("upload part: no ETag");
  return it->second;
}

Result<std::vector<S3Client::PartInfo>> S3Client::ListParts(
    const std::string& key, const std::string& upload_id) {
  std::vector<PartInfo> out;
  std::string marker;
  for (;;) {
    std::multimap<std::string, std::string> q = {{"uploadId", upload_id}};
    if (!marker.empty()) q.emplace("part-number-marker", marker);
    ASSIGN_OR_RETURN(auto a, impl_->Call("GET", key, q, {}));
    if (a.status != 200) return Impl::Refused("list parts", a);
    for (const auto& p : Tags(a.body, "Part")) {
      PartInfo i;
      i.number = std::atoi(Tag(p, "PartNumber").c_str());
      i.size = std::strtoull(Tag(p, "Size").c_str(), nullptr, 10);
      i.etag = Tag(p, "ETag");
      i.modified_unix = ParseIsoTime(Tag(p, "LastModified"));
      out.push_back(std::move(i));
    }
    if (Tag(a.body, "IsTruncated") != "true") break;
    marker = Tag(a.body, "NextPartNumberMarker");
    if (marker.empty())
      return Internal("list parts: truncated without a marker");
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>>
S3Client::ListMultipartUploads(const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string key_marker, id_marker;
  for (;;) {
    std::multimap<std::string, std::string> q = {{"uploads", ""},
                                                 {"prefix", prefix}};
    if (!key_marker.empty()) {
      q.emplace("key-marker", key_marker);
      q.emplace("upload-id-marker", id_marker);
    }
    ASSIGN_OR_RETURN(auto a, impl_->Call("GET", "", q, {}));
    if (a.status != 200) return Impl::Refused("list multipart uploads", a);
    for (const auto& u : Tags(a.body, "Upload"))
      out.emplace_back(Tag(u, "Key"), Tag(u, "UploadId"));
    if (Tag(a.body, "IsTruncated") != "true") break;
    std::string next_key = Tag(a.body, "NextKeyMarker");
    std::string next_id = Tag(a.body, "NextUploadIdMarker");
    if (next_key.empty() || (next_key == key_marker && next_id == id_marker))
      return Internal("list multipart uploads: truncated without a new marker");
    key_marker = next_key;
    id_marker = next_id;
  }
  return out;
}

Result<std::string> S3Client::UploadPartCopy(const std::string& key,
                                             const std::string& upload_id,
                                             int number,
                                             const std::string& from,
                                             uint64_t first, uint64_t last) {
  ASSIGN_OR_RETURN(
      auto a,
      impl_->Call(
          "PUT", key,
          {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}},
          {{"x-amz-copy-source", impl_->Path(from)},
           {"x-amz-copy-source-range",
            "bytes=" + std::to_string(first) + "-" + std::to_string(last)}}));
  if (a.status != 200 || !Tags(a.body, "Error").empty())
    return Impl::Refused("upload part copy", a);
  std::string etag = Tag(a.body, "ETag");
  if (etag.empty()) return Internal("upload part copy: no ETag");
  return etag;
}

Status S3Client::CompleteMultipartUpload(
    const std::string& key, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  std::string body = "<CompleteMultipartUpload>";
  for (const auto& p : parts)
    body += "<Part><PartNumber>" + std::to_string(p.number) +
            "</PartNumber><ETag>" + XmlEscape(p.etag) + "</ETag></Part>";
  body += "</CompleteMultipartUpload>";
  ASSIGN_OR_RETURN(auto a,
                   impl_->Call("POST", key, {{"uploadId", upload_id}}, {},
                               body.data(), body.size(), "application/xml"));
  if (a.status != 200 || !Tags(a.body, "Error").empty())
    return Impl::Refused("complete multipart upload", a);
  return Status::Ok();
}

Status S3Client::AbortMultipartUpload(const std::string& key,
                                      const std::string& upload_id) {
  ASSIGN_OR_RETURN(auto a,
                   impl_->Call("DELETE", key, {{"uploadId", upload_id}}, {}));
  if (a.status != 204 && a.status != 200 && a.status != 404)
    return Impl::Refused("abort multipart upload", a);
  return Status::Ok();
}

std::string S3Client::PresignGet(const std::string& key,
                                 int expires_seconds) const {
  std::string path = impl_->Path(key);
  // The URL names the host exactly as signed (a default port left out).
  return std::string(impl_->https ? "https://" : "http://") +
         impl_->host_header + path + "?" +
         PresignV4(impl_->creds, "GET", impl_->host_header, path,
                   AmzDate(std::time(nullptr)), expires_seconds);
}

}  // namespace ocib::objstore
