// The image model the builder works on: OCI image config (with Docker's
// fields), history, and the manifest that ties config and layers together,
// with their canonical JSON.
//
// Serialization is deterministic: object keys sorted, no insignificant
// white space, so equal images give equal digests. Parse functions return
// kInvalidArgument on malformed JSON. Values; thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/digest.h"
#include "util/status.h"

namespace ocib::image {

struct Healthcheck {
  std::vector<std::string>
      test;  // ["NONE"] or ["CMD", ...] or ["CMD-SHELL", cmd]
  int64_t interval_ns = 0, timeout_ns = 0, start_period_ns = 0,
          start_interval_ns = 0;
  int retries = 0;
};

struct ContainerConfig {
  std::vector<std::string> env;  // "K=V", in order of definition
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  std::set<std::string> exposed_ports;  // "80/tcp"
  std::set<std::string> volumes;
  std::optional<Healthcheck> healthcheck;
  std::vector<std::string> shell;    // SHELL (Docker extension)
  std::vector<std::string> onbuild;  // recorded triggers

  std::optional<std::string> GetEnv(const std::string& key) const;
  void SetEnv(const std::string& key, const std::string& value);
};

struct HistoryEntry {
  std::string created;  // RFC 3339
  std::string created_by;
  std::string comment;
  bool empty_layer = false;
};

struct Image {
  std::string architecture = "amd64";
  std::string os = "linux";
  std::string variant;
  std::string created;  // RFC 3339; empty: omitted
  std::string author;
  ContainerConfig config;
  std::vector<Digest> diff_ids;
  std::vector<HistoryEntry> history;
};

std::string SerializeConfig(const Image& image);
Result<Image> ParseConfig(std::string_view json);

struct LayerDescriptor {
  std::string media_type;
  Digest digest = Digest::Of("");
  uint64_t size = 0;
};

enum class ManifestFormat { kOci, kDocker };

// The manifest for a config blob and layers. Docker format maps the layer
// and config media types to Docker's (zstd layers have no Docker type and
// are refused with kInvalidArgument).
Result<std::string> SerializeManifest(
    ManifestFormat format, const Digest& config_digest, uint64_t config_size,
    const std::vector<LayerDescriptor>& layers);

// RFC 3339 UTC ("2026-11-27T07:52:00Z") for seconds since the epoch.
std::string Rfc3339(int64_t unix_seconds);

}  // namespace ocib::image
