#include "image/image.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "oci/media_types.h"

namespace ocib::image {
namespace {

using json = nlohmann::json;

json Strings(const std::vector<std::string>& v) { return json(v); }

template <typename T>
void GetTo(const json& j, const char* key, T* out) {
  if (j.contains(key) && !j[key].is_null()) *out = j[key].get<T>();
}

}  // namespace

std::optional<std::string> ContainerConfig::GetEnv(
    const std::string& key) const {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 &&
        e[key.size()] == '=')
      return e.substr(key.size() + 1);
  return std::nullopt;
}

void ContainerConfig::SetEnv(const std::string& key, const std::string& value) {
  for (auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 &&
        e[key.size()] == '=') {
      e = key + "=" + value;
      return;
    }
  env.push_back(key + "=" + value);
}

std::string SerializeConfig(const Image& im) {
  json c = json::object();
  const ContainerConfig& cc = im.config;
  if (!cc.env.empty()) c["Env"] = Strings(cc.env);
  if (cc.entrypoint) c["Entrypoint"] = Strings(*cc.entrypoint);
  if (cc.cmd) c["Cmd"] = Strings(*cc.cmd);
  if (!cc.working_dir.empty()) c["WorkingDir"] = cc.working_dir;
  if (!cc.user.empty()) c["User"] = cc.user;
  if (!cc.stop_signal.empty()) c["StopSignal"] = cc.stop_signal;
  if (!cc.labels.empty()) c["Labels"] = cc.labels;
  if (!cc.exposed_ports.empty()) {
    json p = json::object();
    for (const auto& port : cc.exposed_ports) p[port] = json::object();
    c["ExposedPorts"] = p;
  }
  if (!cc.volumes.empty()) {
    json v = json::object();
    for (const auto& vol : cc.volumes) v[vol] = json::object();
    c["Volumes"] = v;
  }
  if (cc.healthcheck) {
    json h = {{"Test", cc.healthcheck->test}};
    if (cc.healthcheck->interval_ns)
      h["Interval"] = cc.healthcheck->interval_ns;
    if (cc.healthcheck->timeout_ns) h["Timeout"] = cc.healthcheck->timeout_ns;
    if (cc.healthcheck->start_period_ns)
      h["StartPeriod"] = cc.healthcheck->start_period_ns;
    if (cc.healthcheck->start_interval_ns)
      h["StartInterval"] = cc.healthcheck->start_interval_ns;
    if (cc.healthcheck->retries) h["Retries"] = cc.healthcheck->retries;
    c["Healthcheck"] = h;
  }
  if (!cc.shell.empty()) c["Shell"] = Strings(cc.shell);
  if (!cc.onbuild.empty()) c["OnBuild"] = Strings(cc.onbuild);

  json j = {{"architecture", im.architecture}, {"os", im.os}, {"config", c}};
  if (!im.variant.empty()) j["variant"] = im.variant;
  if (!im.created.empty()) j["created"] = im.created;
  if (!im.author.empty()) j["author"] = im.author;
  json diff = json::array();
  for (const auto& d : im.diff_ids) diff.push_back(d.str());
  j["rootfs"] = {{"type", "layers"}, {"diff_ids", diff}};
  json hist = json::array();
  for (const auto& h : im.history) {
    json e = json::object();
    if (!h.created.empty()) e["created"] = h.created;
    if (!h.created_by.empty()) e["created_by"] = h.created_by;
    if (!h.comment.empty()) e["comment"] = h.comment;
    if (h.empty_layer) e["empty_layer"] = true;
    hist.push_back(e);
  }
  j["history"] = hist;
  return j.dump();
}

Result<Image> ParseConfig(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("image config is not a JSON object");
  try {
    Image im;
    GetTo(j, "architecture", &im.architecture);
    GetTo(j, "os", &im.os);
    GetTo(j, "variant", &im.variant);
    GetTo(j, "created", &im.created);
    GetTo(j, "author", &im.author);
    if (j.contains("config") && j["config"].is_object()) {
      const json& c = j["config"];
      ContainerConfig& cc = im.config;
      GetTo(c, "Env", &cc.env);
      if (c.contains("Entrypoint") && c["Entrypoint"].is_array())
        cc.entrypoint = c["Entrypoint"].get<std::vector<std::string>>();
      if (c.contains("Cmd") && c["Cmd"].is_array())
        cc.cmd = c["Cmd"].get<std::vector<std::string>>();
      GetTo(c, "WorkingDir", &cc.working_dir);
      GetTo(c, "User", &cc.user);
      GetTo(c, "StopSignal", &cc.stop_signal);
      GetTo(c, "Labels", &cc.labels);
      if (c.contains("ExposedPorts") && c["ExposedPorts"].is_object())
        for (auto it = c["ExposedPorts"].begin(); it != c["ExposedPorts"].end();
             ++it)
          cc.exposed_ports.insert(it.key());
      if (c.contains("Volumes") && c["Volumes"].is_object())
        for (auto it = c["Volumes"].begin(); it != c["Volumes"].end(); ++it)
          cc.volumes.insert(it.key());
      if (c.contains("Healthcheck") && c["Healthcheck"].is_object()) {
        const json& h = c["Healthcheck"];
        Healthcheck hc;
        GetTo(h, "Test", &hc.test);
        GetTo(h, "Interval", &hc.interval_ns);
        GetTo(h, "Timeout", &hc.timeout_ns);
        GetTo(h, "StartPeriod", &hc.start_period_ns);
        GetTo(h, "StartInterval", &hc.start_interval_ns);
        GetTo(h, "Retries", &hc.retries);
        cc.healthcheck = hc;
      }
      GetTo(c, "Shell", &cc.shell);
      GetTo(c, "OnBuild", &cc.onbuild);
    }
    if (j.contains("rootfs") && j["rootfs"].contains("diff_ids"))
      for (const auto& d : j["rootfs"]["diff_ids"]) {
        auto dg = Digest::Parse(d.get<std::string>());
        if (!dg.ok())
          return InvalidArgument("image config: bad diff_id: " +
                                 dg.status().message());
        im.diff_ids.push_back(*dg);
      }
    if (j.contains("history") && j["history"].is_array())
      for (const auto& h : j["history"]) {
        HistoryEntry e;
        GetTo(h, "created", &e.created);
        GetTo(h, "created_by", &e.created_by);
        GetTo(h, "comment", &e.comment);
        GetTo(h, "empty_layer", &e.empty_layer);
        im.history.push_back(e);
      }
    return im;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("image config: ") + e.what());
  }
}

Result<std::string> SerializeManifest(
    ManifestFormat format, const Digest& config_digest, uint64_t config_size,
    const std::vector<LayerDescriptor>& layers) {
  bool docker = format == ManifestFormat::kDocker;
  json ls = json::array();
  for (const auto& l : layers) {
    std::string mt = l.media_type;
    if (docker) {
      if (mt == oci::kOciLayerGzip)
        mt = std::string(oci::kDockerLayerGzip);
      else if (mt == oci::kOciLayerTar)
        mt = "application/vnd.docker.image.rootfs.diff.tar";
      else
        return InvalidArgument("Docker manifests have no media type for " + mt +
                               "; use --format oci");
    }
    ls.push_back(
        {{"mediaType", mt}, {"digest", l.digest.str()}, {"size", l.size}});
  }
  json m = {{"schemaVersion", 2},
            {"mediaType", docker ? oci::kDockerManifest : oci::kOciManifest},
            {"config",
             {{"mediaType", docker ? oci::kDockerConfig : oci::kOciConfig},
              {"digest", config_digest.str()},
              {"size", config_size}}},
            {"layers", ls}};
  return m.dump();
}

std::string Rfc3339(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ocib::image
