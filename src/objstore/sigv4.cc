#include "objstore/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <ctime>

namespace ocib::objstore {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}

std::string Hmac(const std::string& key, const std::string& msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out,
       &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string CanonicalQuery(const std::multimap<std::string, std::string>& q) {
  std::multimap<std::string, std::string> enc;
  for (const auto& [k, v] : q)
    enc.emplace(UriEncode(k, false), UriEncode(v, false));
  std::string s;
  for (const auto& [k, v] : enc) {
    if (!s.empty()) s += '&';
    s += k + "=" + v;
  }
  return s;
}

std::string Trim(const std::string& v) {
  size_t a = v.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  size_t b = v.find_last_not_of(" \t");
  return v.substr(a, b - a + 1);
}

std::string Scope(const SigV4Credentials& c, const std::string& amz_date) {
  return amz_date.substr(0, 8) + "/" + c.region + "/" + c.service +
         "/aws4_request";
}

std::string Signature(const SigV4Credentials& c, const std::string& amz_date,
                      const std::string& canonical_request) {
  std::string sts =
      "AWS4-HMAC-SHA256\n" + amz_date + "\n" + Scope(c, amz_date) + "\n" +
      Sha256Hex(canonical_request.data(), canonical_request.size());
  std::string k = Hmac("AWS4" + c.secret_key, amz_date.substr(0, 8));
  k = Hmac(k, c.region);
  k = Hmac(k, c.service);
  k = Hmac(k, "aws4_request");
  std::string sig = Hmac(k, sts);
  return Hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

}  // namespace

std::string UriEncode(const std::string& s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Sha256Hex(const char* data, size_t n) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  EVP_Digest(data, n, md, nullptr, EVP_sha256(), nullptr);
  return Hex(md, sizeof md);
}

std::string AmzDate(long long unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string SignV4(const SigV4Credentials& creds, const SigV4Request& req,
                   const std::string& amz_date) {
  std::string canonical_headers, signed_headers;
  for (const auto& [k, v] : req.headers) {
    canonical_headers += k + ":" + Trim(v) + "\n";
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += k;
  }
  std::string creq = req.method + "\n" + req.path + "\n" +
                     CanonicalQuery(req.query) + "\n" + canonical_headers +
                     "\n" + signed_headers + "\n" + req.payload_hash;
  return "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" +
         Scope(creds, amz_date) + ",SignedHeaders=" + signed_headers +
         ",Signature=" + Signature(creds, amz_date, creq);
}

std::string PresignV4(const SigV4Credentials& creds, const std::string& method,
                      const std::string& host, const std::string& path,
                      const std::string& amz_date, int expires_seconds) {
  std::multimap<std::string, std::string> q = {
      {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
      {"X-Amz-Credential", creds.access_key + "/" + Scope(creds, amz_date)},
      {"X-Amz-Date", amz_date},
      {"X-Amz-Expires", std::to_string(expires_seconds)},
      {"X-Amz-SignedHeaders", "host"}};
  std::string query = CanonicalQuery(q);
  std::string creq = method + "\n" + path + "\n" + query + "\nhost:" + host +
                     "\n\nhost\nUNSIGNED-PAYLOAD";
  return query + "&X-Amz-Signature=" + Signature(creds, amz_date, creq);
}

}  // namespace ocib::objstore
