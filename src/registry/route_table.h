// The API's dispatch table, as Distribution's handlers/app.go: one row per
// endpoint and method, naming the handler and whether it writes. It is the
// one place where checks that depend on the kind of request hook in
// (authorization scopes, a read-only mode). Path matching is in routes.h.
// Immutable; thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "registry/handlers.h"

namespace ocib::registry {

struct RouteSpec {
  Endpoint endpoint;
  std::string_view method;  // GET rows also answer HEAD when head is set
  bool head;
  bool writes;      // changes the store (push, delete, upload)
  unsigned action;  // auth::Action the caller needs (0: none)
  Handler handler;
};

// Every row of the API.
const std::vector<RouteSpec>& ApiRoutes();

// The row for an endpoint and method, or null (405 METHOD NOT ALLOWED).
const RouteSpec* FindRoute(Endpoint endpoint, std::string_view method);

}  // namespace ocib::registry
