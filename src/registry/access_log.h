// ocireg's access log on stdout: one line per request (or one JSON object
// with log_format "json"), written under a lock and flushed by Flush()
// (the registry's janitor calls it every 100 ms). A line holds the time,
// the client's address and port, the authenticated user ("-" if none),
// the request line, status, bytes, duration and User-Agent; the mirror's
// outcome comes from the response's log_note. Audit lines (pushes, tag
// changes, deletes) go to the same stream, also with log_format "off".
// Every field a client chose is escaped, so no request can forge a line;
// no credential is ever written.
// Thread-safe.
#pragma once

#include <mutex>
#include <string>

#include "net/http.h"
#include "util/mutex.h"

namespace ocib::registry {

class AccessLog {
 public:
  explicit AccessLog(std::string format) : format_(std::move(format)) {}
  void Log(const net::Request& req, const net::Response& res, double ms);
  // "audit" line: who changed what (action: push-manifest, push-blob,
  // delete-manifest, delete-blob).
  void Audit(const net::Request& req, const std::string& user,
             const char* action, const std::string& repository,
             const std::string& reference, const std::string& digest);
  void Flush();

 private:
  const std::string format_;  // "text" or "json"
  Mutex mu_;                  // one line at a time on stdout
};

// Now as RFC 3339 UTC ("2026-11-29T21:15:28Z").
std::string Iso8601Now();

}  // namespace ocib::registry
