#include "registry/web_ui.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "auth/acl.h"
#include "oci/manifest.h"
#include "registry/access_control.h"

namespace ocib::registry {
namespace {

using json = nlohmann::json;

void SecurityHeaders(net::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; "
                 "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                 "form-action 'none'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
}

void SendJson(net::Response& res, int status, const json& j) {
  res.status = status;
  SecurityHeaders(res);
  // Names come from clients: bad UTF-8 is replaced, never thrown on.
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

std::string Iso(int64_t micros) {
  if (micros <= 0) return "";
  std::time_t t = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Platform(const oci::Descriptor& d) {
  std::string p =
      d.platform_os.value_or("?") + "/" + d.platform_arch.value_or("?");
  if (d.platform_variant) p += "/" + *d.platform_variant;
  return p;
}

// Size of what a manifest references (config and layers); for an index,
// the sum over its children found in `by_digest`.
// Sizes come from clients: negative ones count 0 and the sum is unsigned.
uint64_t ContentSize(const oci::Manifest& m,
                     const std::map<Digest, const ManifestRecord*>& by_digest,
                     int depth = 0) {
  auto size = [](int64_t n) { return n > 0 ? static_cast<uint64_t>(n) : 0; };
  uint64_t total = 0;
  if (m.config) total += size(m.config->size);
  for (const auto& l : m.layers) total += size(l.size);
  if (depth < 2)
    for (const auto& c : m.manifests) {
      auto it = by_digest.find(c.digest);
      if (it == by_digest.end()) continue;
      auto child =
          oci::ParseManifest(it->second->content, it->second->media_type);
      if (child.ok()) total += ContentSize(*child, by_digest, depth + 1);
    }
  return total;
}

Result<std::string> ReadSmallBlob(Store* store, const Digest& d,
                                  uint64_t limit) {
  ASSIGN_OR_RETURN(auto h, store->OpenBlob(d));
  if (h->size() > limit) return InvalidArgument("too large");
  std::string out(h->size(), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ASSIGN_OR_RETURN(size_t n,
                     h->ReadAt(got, out.data() + got, out.size() - got));
    if (n == 0) break;
    got += n;
  }
  out.resize(got);
  return out;
}

// j[key] if it is a string, else "" (configs come from clients).
std::string StrField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

json StrList(const json& v) {
  json out = json::array();
  if (v.is_array())
    for (const auto& e : v)
      if (e.is_string()) out.push_back(e);
  return out;
}

}  // namespace

WebUi::WebUi(Store* store, AccessControl* access)
    : store_(store), access_(access) {}

bool WebUi::Handle(const net::Request& req, net::Response& res) {
  const std::string& p = req.path;
  if (p != "/" && p != "/ui" && p.rfind("/ui/", 0) != 0) return false;
  if (req.method != "GET" && req.method != "HEAD") {
    res.set_header("Allow", "GET, HEAD");
    SendJson(res, 405, {{"error", "method not allowed"}});
    return true;
  }
  if (p.rfind("/ui/api/", 0) == 0) {
    Api(req, res);
    return true;
  }
  SecurityHeaders(res);
  res.status = 200;
  if (p == "/ui/app.js")
    res.set_content(kUiAppJs, "text/javascript; charset=utf-8");
  else if (p == "/ui/app.css")
    res.set_content(kUiAppCss, "text/css; charset=utf-8");
  else if (p == "/" || p == "/ui" || p == "/ui/")
    res.set_content(kUiIndexHtml, "text/html; charset=utf-8");
  else
    SendJson(res, 404, {{"error", "not found"}});
  return true;
}

void WebUi::Api(const net::Request& req, net::Response& res) {
  Principal who;
  if (access_) {
    if (!access_->Authenticate(req, "", &who, res)) {
      // No challenge header: the page shows its own login form.
      res.headers.erase("WWW-Authenticate");
      int status = res.status == 429 ? 429 : 401;
      res.headers.erase("Content-Type");
      SendJson(res, status,
               {{"error", status == 429 ? "too many failed logins; wait"
                                        : "wrong user name or password"}});
      return;
    }
    res.log_user = who.user;
  }
  auto may_pull = [&](const std::string& repo) {
    return !access_ || (access_->Granted(who, repo) & auth::kPull) != 0;
  };
  const std::string what = req.path.substr(8);  // after "/ui/api/"
  if (what == "repositories") {
    std::string q = req.get_param_value("q");
    size_t n = 50;
    if (req.has_param("n"))
      n = std::clamp<size_t>(
          std::strtoul(req.get_param_value("n").c_str(), nullptr, 10), 1, 500);
    std::string last = req.get_param_value("last");
    json names = json::array();
    std::string next;
    bool more = false;
    while (!more) {
      auto page = store_->ListRepositories(1000, last);
      if (!page.ok())
        return SendJson(res, 500, {{"error", "cannot list repositories"}});
      for (const auto& name : page->items) {
        last = name;
        if (!q.empty() && name.find(q) == std::string::npos) continue;
        if (!may_pull(name)) continue;
        if (names.size() == n) {
          more = true;
          break;
        }
        names.push_back(name);
        next = name;
      }
      if (!page->more || page->items.empty()) break;
    }
    return SendJson(res, 200,
                    {{"repositories", names},
                     {"next", more ? json(next) : json(nullptr)},
                     {"user", who.user},
                     {"auth", access_ != nullptr}});
  }
  std::string name = req.get_param_value("name");
  if (name.empty() || !store_->RepositoryExists(name) || !may_pull(name))
    return SendJson(res, 404, {{"error", "no such repository"}});
  auto contents = store_->ReadRepository(name);
  if (!contents.ok())
    return SendJson(res, 500, {{"error", "cannot read the repository"}});
  std::map<Digest, const ManifestRecord*> by_digest;
  for (const auto& m : contents->manifests) by_digest[m.digest] = &m;
  if (what == "repository") {
    json tags = json::array();
    std::vector<TagEntry> sorted = contents->tags;
    std::sort(sorted.begin(), sorted.end(),
              [](const TagEntry& a, const TagEntry& b) {
                return a.pushed_micros != b.pushed_micros
                           ? a.pushed_micros > b.pushed_micros
                           : a.name < b.name;
              });
    // The newest kMaxTags: a page stays bounded however many tags a
    // pusher makes (each may mean a config read).
    constexpr size_t kMaxTags = 500;
    const bool truncated = sorted.size() > kMaxTags;
    if (truncated) sorted.resize(kMaxTags);
    for (const auto& t : sorted) {
      json tag = {{"tag", t.name},
                  {"digest", t.digest.str()},
                  {"pushed", Iso(t.pushed_micros)}};
      auto it = by_digest.find(t.digest);
      if (it != by_digest.end()) {
        auto m =
            oci::ParseManifest(it->second->content, it->second->media_type);
        tag["mediaType"] = it->second->media_type;
        if (m.ok()) {
          tag["size"] = ContentSize(*m, by_digest);
          json platforms = json::array();
          for (const auto& c : m->manifests)
            if (c.platform_os) platforms.push_back(Platform(c));
          if (!m->is_index && m->config) {
            auto cfg = ReadSmallBlob(store_, m->config->digest, 256 << 10);
            json cj = cfg.ok() ? json::parse(*cfg, nullptr, false) : json();
            if (cj.is_object() && !StrField(cj, "os").empty())
              platforms.push_back(StrField(cj, "os") + "/" +
                                  StrField(cj, "architecture"));
          }
          tag["platforms"] = platforms;
        }
      }
      tags.push_back(tag);
    }
    return SendJson(res, 200,
                    {{"name", name},
                     {"tags", tags},
                     {"truncated", truncated},
                     {"tagCount", contents->tags.size()}});
  }
  if (what != "image") return SendJson(res, 404, {{"error", "not found"}});
  auto d = Digest::Parse(req.get_param_value("digest"));
  if (!d.ok() || !by_digest.count(*d))
    return SendJson(res, 404, {{"error", "no such image"}});
  const ManifestRecord& rec = *by_digest[*d];
  auto m = oci::ParseManifest(rec.content, rec.media_type);
  if (!m.ok())
    return SendJson(res, 422, {{"error", "manifest does not parse"}});
  json out = {
      {"repository", name},          {"digest", d->str()},
      {"mediaType", rec.media_type}, {"isIndex", m->is_index},
      {"manifest", rec.content},     {"size", ContentSize(*m, by_digest)}};
  json tags = json::array();
  for (const auto& t : contents->tags)
    if (t.digest == *d) tags.push_back(t.name);
  out["tags"] = tags;
  json platforms = json::array();
  for (const auto& c : m->manifests)
    platforms.push_back({{"platform", c.platform_os ? Platform(c) : ""},
                         {"digest", c.digest.str()},
                         {"mediaType", c.media_type},
                         {"size", c.size},
                         {"present", by_digest.count(c.digest) > 0}});
  out["platforms"] = platforms;
  json layers = json::array();
  for (const auto& l : m->layers)
    layers.push_back({{"digest", l.digest.str()},
                      {"size", l.size},
                      {"mediaType", l.media_type}});
  out["layers"] = layers;
  if (m->config) {
    out["configDigest"] = m->config->digest.str();
    auto text = ReadSmallBlob(store_, m->config->digest, 4 << 20);
    json cj = text.ok() ? json::parse(*text, nullptr, false) : json();
    if (cj.is_object()) {
      json c = cj.value("config", json::object());
      if (!c.is_object()) c = json::object();
      json ports = json::array();
      if (c.contains("ExposedPorts") && c["ExposedPorts"].is_object())
        for (auto it = c["ExposedPorts"].begin(); it != c["ExposedPorts"].end();
             ++it)
          ports.push_back(it.key());
      json labels = json::object();
      if (c.contains("Labels") && c["Labels"].is_object())
        for (auto it = c["Labels"].begin(); it != c["Labels"].end(); ++it)
          if (it.value().is_string()) labels[it.key()] = it.value();
      out["config"] = {{"os", StrField(cj, "os")},
                       {"architecture", StrField(cj, "architecture")},
                       {"created", StrField(cj, "created")},
                       {"entrypoint", StrList(c.value("Entrypoint", json()))},
                       {"cmd", StrList(c.value("Cmd", json()))},
                       {"env", StrList(c.value("Env", json()))},
                       {"workingDir", StrField(c, "WorkingDir")},
                       {"user", StrField(c, "User")},
                       {"labels", labels},
                       {"exposedPorts", ports}};
      // As `docker history`: newest first; a step that made a layer shows
      // that layer's size, an empty one 0.
      json history = json::array();
      size_t layer = 0;
      if (cj.contains("history") && cj["history"].is_array())
        for (const auto& h : cj["history"]) {
          if (!h.is_object()) continue;
          bool empty = h.contains("empty_layer") &&
                       h["empty_layer"].is_boolean() &&
                       h["empty_layer"].get<bool>();
          int64_t size = 0;
          std::string layer_digest;
          if (!empty && layer < m->layers.size()) {
            size = m->layers[layer].size;
            layer_digest = m->layers[layer].digest.str();
            ++layer;
          }
          history.push_back({{"created", StrField(h, "created")},
                             {"createdBy", StrField(h, "created_by")},
                             {"comment", StrField(h, "comment")},
                             {"emptyLayer", empty},
                             {"size", size},
                             {"layer", layer_digest}});
        }
      std::reverse(history.begin(), history.end());
      out["history"] = history;
    }
  }
  json referrers = json::array();
  if (auto refs = store_->ListReferrers(name, *d); refs.ok())
    for (const auto& r : *refs)
      referrers.push_back({{"digest", r.digest.str()},
                           {"artifactType", r.artifact_type},
                           {"mediaType", r.media_type},
                           {"size", r.size}});
  out["referrers"] = referrers;
  return SendJson(res, 200, out);
}

}  // namespace ocib::registry
