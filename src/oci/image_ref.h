// Image references as docker and Distribution write them
// (distribution/reference's grammar and normalize.go), in one place:
//
//   [DOMAIN/]PATH[:TAG][@DIGEST]
//
// DOMAIN is the first path component when it has a '.' or ':' or is
// "localhost" (IsRegistryHost); PATH follows the distribution spec's name
// grammar (oci/reference.h). Docker Hub names may be short: "busybox" is
// docker.io/library/busybox, "team/app" is docker.io/team/app
// (NormalizedName); FamiliarName gives the short form back.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/digest.h"
#include "util/status.h"

namespace ocib::oci {

inline constexpr std::string_view kDockerHubDomain = "docker.io";

struct ImageRef {
  std::string name;              // as written: "team/app", "localhost:5000/app"
  std::string tag;               // "latest" when neither tag nor digest given
  std::optional<Digest> digest;  // name@digest
  // "name:tag", "name@digest" or "name:tag@digest".
  std::string str() const;
};

// True when a first path component names a registry host.
bool IsRegistryHost(std::string_view component);

// The registry host the name starts with, or "" (Docker Hub, implied).
std::string Domain(std::string_view name);
// The repository path without the host.
std::string Path(std::string_view name);

// Parses "name[:tag][@digest]"; kInvalidArgument naming what is wrong.
Result<ImageRef> ParseImageRef(std::string_view text);

// Docker's fully qualified name: "busybox" -> "docker.io/library/busybox",
// "team/app" -> "docker.io/team/app", other hosts unchanged.
std::string NormalizedName(std::string_view name);
// Docker's short form: "docker.io/library/x" -> "x", "docker.io/team/x" ->
// "team/x", other hosts unchanged.
std::string FamiliarName(std::string_view name);

}  // namespace ocib::oci
