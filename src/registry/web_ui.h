// The web catalog ocireg serves at / and /ui/: a page and its script and
// style, compiled into the binary (ui_assets.cc; no CDN, works offline),
// and the small JSON API they read:
//   GET /ui/api/repositories?q=TEXT&n=N&last=NAME
//       names containing TEXT, N at a time (at most 500) after NAME;
//       {"repositories": [...], "next": NAME or null, "user", "auth"}
//   GET /ui/api/repository?name=NAME
//       its tags (the newest 500) with digest, media type, size,
//       platforms and push time
//   GET /ui/api/image?name=NAME&digest=DIGEST
//       the manifest or index (platforms), the config (entrypoint, cmd,
//       env, labels, exposed ports...), layers with sizes, the history as
//       `docker history` lists it (newest first) and the referrers.
// With auth on, the API takes the same credentials as the registry (Basic,
// Bearer, client certificate) and shows only what the caller may pull;
// it answers 401 without a challenge header, so the page shows its own
// login instead of the browser's. The page renders every name as text
// (repository and tag names are attacker-controlled) under a
// Content-Security-Policy that allows only its own script and style.
//
// Thread safety: Handle from any thread.
#pragma once

#include <string>

#include "net/http.h"
#include "store/blob_store.h"

namespace ocib::registry {

class AccessControl;

class WebUi {
 public:
  // access may be null (no auth).
  WebUi(Store* store, AccessControl* access);
  // True if the path is the UI's (/, /ui, /ui/...): then `res` is filled.
  bool Handle(const net::Request& req, net::Response& res);

 private:
  void Api(const net::Request& req, net::Response& res);
  Store* store_;
  AccessControl* access_;
};

// The compiled-in assets (ui_assets.cc).
extern const char* const kUiIndexHtml;
extern const char* const kUiAppJs;
extern const char* const kUiAppCss;

}  // namespace ocib::registry
