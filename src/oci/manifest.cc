#include "oci/manifest.h"

#include <nlohmann/json.hpp>

#include "oci/media_types.h"

namespace ocib::oci {
namespace {

using json = nlohmann::json;

std::string_view StripParams(std::string_view ct) {
  size_t semi = ct.find(';');
  if (semi != std::string_view::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  while (!ct.empty() && ct.front() == ' ') ct.remove_prefix(1);
  return ct;
}

Status Bad(const std::string& what) { return InvalidArgument(what); }

Status ParseStringMap(const json& j, const char* field,
                      std::map<std::string, std::string>* out) {
  if (!j.contains(field)) return Status::Ok();
  const json& m = j[field];
  if (!m.is_object()) return Bad(std::string(field) + " must be an object");
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!it.value().is_string())
      return Bad(std::string(field) + " values must be strings");
    (*out)[it.key()] = it.value().get<std::string>();
  }
  return Status::Ok();
}

Result<Descriptor> ParseDescriptor(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where + " must be an object");
  Descriptor d;
  if (!j.contains("mediaType") || !j["mediaType"].is_string())
    return Bad(where + ".mediaType must be a string");
  d.media_type = j["mediaType"].get<std::string>();
  if (!j.contains("digest") || !j["digest"].is_string())
    return Bad(where + ".digest must be a string");
  auto dg = Digest::Parse(j["digest"].get<std::string>());
  if (!dg.ok()) return Bad(where + ".digest: " + dg.status().message());
  d.digest = *dg;
  if (!j.contains("size") || !j["size"].is_number_integer())
    return Bad(where + ".size must be an integer");
  d.size = j["size"].get<int64_t>();
  if (d.size < 0) return Bad(where + ".size must not be negative");
  if (j.contains("artifactType")) {
    if (!j["artifactType"].is_string())
      return Bad(where + ".artifactType must be a string");
    d.artifact_type = j["artifactType"].get<std::string>();
  }
  RETURN_IF_ERROR(
      ParseStringMap(j, "annotations", &d.annotations).WithContext(where));
  if (j.contains("urls")) {
    if (!j["urls"].is_array()) return Bad(where + ".urls must be an array");
    for (const auto& u : j["urls"]) {
      if (!u.is_string()) return Bad(where + ".urls must hold strings");
      d.urls.push_back(u.get<std::string>());
    }
  }
  if (j.contains("platform")) {
    const json& p = j["platform"];
    if (!p.is_object()) return Bad(where + ".platform must be an object");
    if (p.contains("os") && p["os"].is_string())
      d.platform_os = p["os"].get<std::string>();
    if (p.contains("architecture") && p["architecture"].is_string())
      d.platform_arch = p["architecture"].get<std::string>();
    if (p.contains("variant") && p["variant"].is_string())
      d.platform_variant = p["variant"].get<std::string>();
  }
  return d;
}

}  // namespace

std::string Manifest::ReferrerArtifactType() const {
  if (!artifact_type.empty()) return artifact_type;
  if (!is_index && config) return config->media_type;
  return "";
}

Result<Manifest> ParseManifest(std::string_view content,
                               std::string_view content_type) {
  json j = json::parse(content.begin(), content.end(), nullptr, false);
  if (j.is_discarded()) return Bad("manifest is not well-formed JSON");
  if (!j.is_object()) return Bad("manifest must be a JSON object");
  try {
    Manifest m;
    if (!j.contains("schemaVersion") ||
        !j["schemaVersion"].is_number_integer() ||
        j["schemaVersion"].get<int64_t>() != 2)
      return Bad("schemaVersion must be 2");
    std::string declared;
    if (j.contains("mediaType")) {
      if (!j["mediaType"].is_string()) return Bad("mediaType must be a string");
      declared = j["mediaType"].get<std::string>();
    }
    std::string header(StripParams(content_type));
    if (!declared.empty() && !header.empty() && declared != header &&
        IsManifestType(header))
      return Bad("Content-Type " + header + " does not match mediaType " +
                 declared);
    m.media_type = !declared.empty() ? declared : header;
    if (m.media_type.empty()) {
      // OCI allows mediaType to be absent: infer from the shape.
      m.media_type = j.contains("manifests") ? std::string(kOciIndex)
                                             : std::string(kOciManifest);
    }
    if (!IsManifestType(m.media_type))
      return Bad("unsupported manifest media type " + m.media_type);
    m.is_index = IsIndexType(m.media_type);
    if (j.contains("artifactType")) {
      if (!j["artifactType"].is_string())
        return Bad("artifactType must be a string");
      m.artifact_type = j["artifactType"].get<std::string>();
    }
    RETURN_IF_ERROR(ParseStringMap(j, "annotations", &m.annotations));
    if (j.contains("subject")) {
      ASSIGN_OR_RETURN(Descriptor s, ParseDescriptor(j["subject"], "subject"));
      m.subject = s;
    }
    if (m.is_index) {
      if (!j.contains("manifests") || !j["manifests"].is_array())
        return Bad("index needs a manifests array");
      size_t i = 0;
      for (const auto& e : j["manifests"]) {
        ASSIGN_OR_RETURN(
            Descriptor d,
            ParseDescriptor(e, "manifests[" + std::to_string(i++) + "]"));
        m.manifests.push_back(std::move(d));
      }
    } else {
      if (!j.contains("config")) return Bad("image manifest needs a config");
      ASSIGN_OR_RETURN(Descriptor c, ParseDescriptor(j["config"], "config"));
      m.config = c;
      if (!j.contains("layers") || !j["layers"].is_array()) {
        if (m.media_type == kDockerManifest)
          return Bad("manifest needs a layers array");
        if (j.contains("layers")) return Bad("layers must be an array");
      } else {
        size_t i = 0;
        for (const auto& e : j["layers"]) {
          ASSIGN_OR_RETURN(
              Descriptor d,
              ParseDescriptor(e, "layers[" + std::to_string(i++) + "]"));
          m.layers.push_back(std::move(d));
        }
      }
    }
    return m;
  } catch (const std::exception& e) {
    return Bad(std::string("manifest: ") + e.what());
  }
}

const Descriptor* PickPlatform(const Manifest& index,
                               std::string_view platform) {
  std::string_view os = platform.substr(0, platform.find('/'));
  std::string_view rest = platform.find('/') == std::string_view::npos
                              ? std::string_view()
                              : platform.substr(platform.find('/') + 1);
  std::string_view arch = rest.substr(0, rest.find('/'));
  std::string_view variant = rest.find('/') == std::string_view::npos
                                 ? std::string_view()
                                 : rest.substr(rest.find('/') + 1);
  for (const auto& d : index.manifests) {
    if (!d.platform_os || !d.platform_arch) continue;
    if (*d.platform_os != os || *d.platform_arch != arch) continue;
    if (!variant.empty() && d.platform_variant.value_or("") != variant)
      continue;
    return &d;
  }
  return nullptr;
}

}  // namespace ocib::oci
