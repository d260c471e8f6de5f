#include "auth/acl.h"

#include <nlohmann/json.hpp>

namespace ocib::auth {
namespace {

Status Bad(size_t rule, const std::string& what) {
  return Status(Code::kInvalidArgument,
                "acl rule " + std::to_string(rule) + ": " + what);
}

bool StringList(const nlohmann::json& j, std::vector<std::string>* out) {
  if (!j.is_array()) return false;
  for (const auto& e : j) {
    if (!e.is_string() || e.get<std::string>().empty()) return false;
    out->push_back(e.get<std::string>());
  }
  return true;
}

}  // namespace

unsigned ParseAction(std::string_view a) {
  if (a == "pull") return kPull;
  if (a == "push") return kPush;
  if (a == "delete") return kDelete;
  if (a == "catalog") return kCatalog;
  if (a == "admin" || a == "*") return kAllActions;
  return 0;
}

std::string ActionList(unsigned actions) {
  std::string out;
  for (auto [bit, name] : {std::pair{kPull, "pull"},
                           {kPush, "push"},
                           {kDelete, "delete"},
                           {kCatalog, "catalog"}})
    if (actions & bit) out += (out.empty() ? "" : ",") + std::string(name);
  return out;
}

bool GlobMatch(std::string_view pattern, std::string_view n) {
  // Tokens: a character, kAny ('?'), kStar ('*'), kDeep ('**').
  enum : int { kAny = -1, kStar = -2, kDeep = -3 };
  std::vector<int> t;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '*') {
      bool deep = i + 1 < pattern.size() && pattern[i + 1] == '*';
      while (i + 1 < pattern.size() && pattern[i + 1] == '*') ++i;
      t.push_back(deep ? kDeep : kStar);
    } else {
      t.push_back(pattern[i] == '?' ? static_cast<int>(kAny)
                                    : static_cast<unsigned char>(pattern[i]));
    }
  }
  // m[i][j]: t[i:] matches n[j:]; filled from the ends.
  size_t T = t.size(), N = n.size();
  std::vector<std::vector<char>> m(T + 1, std::vector<char>(N + 1, 0));
  m[T][N] = 1;
  for (size_t i = T; i-- > 0;)
    for (size_t j = N + 1; j-- > 0;) {
      bool more = j < N;
      if (t[i] == kStar || t[i] == kDeep)
        m[i][j] = m[i + 1][j] ||
                  (more && (t[i] == kDeep || n[j] != '/') && m[i][j + 1]);
      else if (more &&
               (t[i] == kAny ? n[j] != '/'
                             : t[i] == static_cast<unsigned char>(n[j])))
        m[i][j] = m[i + 1][j + 1];
    }
  return m[0][0];
}

Result<Acl> Acl::Parse(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object())
    return Status(Code::kInvalidArgument, "acl: not a JSON object");
  Acl acl;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "groups" && it.key() != "rules")
      return Status(Code::kInvalidArgument, "acl: unknown key " + it.key());
  if (j.contains("groups")) {
    if (!j["groups"].is_object())
      return Status(Code::kInvalidArgument, "acl: groups must be an object");
    for (auto it = j["groups"].begin(); it != j["groups"].end(); ++it) {
      std::vector<std::string> members;
      if (!StringList(it.value(), &members))
        return Status(Code::kInvalidArgument,
                      "acl: group " + it.key() + " must list user names");
      acl.groups_.emplace_back(it.key(), std::move(members));
    }
  }
  if (!j.contains("rules") || !j["rules"].is_array())
    return Status(Code::kInvalidArgument, "acl: rules must be an array");
  size_t i = 0;
  for (const auto& r : j["rules"]) {
    ++i;
    if (!r.is_object()) return Bad(i, "not an object");
    Rule rule;
    for (auto it = r.begin(); it != r.end(); ++it) {
      const std::string& k = it.key();
      const auto& v = it.value();
      if (k == "repository") {
        if (!v.is_string() || v.get<std::string>().empty())
          return Bad(i, "repository must be a glob");
        rule.pattern = v.get<std::string>();
      } else if (k == "users") {
        if (!StringList(v, &rule.users)) return Bad(i, "users must list names");
      } else if (k == "groups") {
        if (!StringList(v, &rule.groups))
          return Bad(i, "groups must list names");
        for (const auto& g : rule.groups) {
          bool known = false;
          for (const auto& [name, m] : acl.groups_) known |= name == g;
          if (!known) return Bad(i, "unknown group " + g);
        }
      } else if (k == "anonymous") {
        if (!v.is_boolean()) return Bad(i, "anonymous must be true or false");
        rule.anonymous = v.get<bool>();
      } else if (k == "actions") {
        std::vector<std::string> names;
        if (!StringList(v, &names) || names.empty())
          return Bad(i, "actions must list actions");
        for (const auto& a : names) {
          unsigned bit = ParseAction(a);
          if (!bit)
            return Bad(i, "unknown action " + a +
                              " (pull, push, delete, catalog, admin)");
          rule.actions |= bit;
        }
      } else {
        return Bad(i, "unknown key " + k);
      }
    }
    if (!rule.actions) return Bad(i, "no actions");
    if (rule.users.empty() && rule.groups.empty() && !rule.anonymous)
      return Bad(i, "names no users, groups or anonymous");
    acl.rules_.push_back(std::move(rule));
  }
  return acl;
}

bool Acl::Applies(const Rule& r, std::string_view user) const {
  if (r.anonymous) return true;  // what anonymous callers may, anyone may
  if (user.empty()) return false;
  for (const auto& u : r.users)
    if (u == "*" || u == user) return true;
  for (const auto& g : r.groups)
    for (const auto& [name, members] : groups_)
      if (name == g)
        for (const auto& m : members)
          if (m == user) return true;
  return false;
}

unsigned Acl::Granted(std::string_view user, std::string_view repo) const {
  unsigned granted = 0;
  for (const auto& r : rules_)
    if ((r.pattern.empty() || GlobMatch(r.pattern, repo)) && Applies(r, user))
      granted |= r.actions;
  return granted & (kPull | kPush | kDelete);
}

bool Acl::MayListCatalog(std::string_view user) const {
  for (const auto& r : rules_)
    if ((r.actions & kCatalog) && Applies(r, user)) return true;
  return false;
}

bool Acl::IsAdmin(std::string_view user) const {
  for (const auto& r : rules_)
    if (r.actions == kAllActions && (r.pattern.empty() || r.pattern == "**") &&
        !user.empty() && Applies(r, user))
      return true;
  return false;
}

std::string Scope::str() const {
  std::string a;
  for (const auto& x : actions) a += (a.empty() ? "" : ",") + x;
  return type + ":" + name + ":" + a;
}

std::vector<Scope> ParseScopes(std::string_view text) {
  std::vector<Scope> out;
  while (!text.empty()) {
    size_t sp = text.find(' ');
    std::string_view item = text.substr(0, sp);
    text =
        sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    size_t first = item.find(':');
    size_t last = item.rfind(':');
    if (first == std::string_view::npos || first == last) continue;
    Scope s;
    s.type = std::string(item.substr(0, first));
    s.name = std::string(item.substr(first + 1, last - first - 1));
    std::string_view acts = item.substr(last + 1);
    while (!acts.empty()) {
      size_t c = acts.find(',');
      if (c != 0) s.actions.emplace_back(acts.substr(0, c));
      acts =
          c == std::string_view::npos ? std::string_view() : acts.substr(c + 1);
    }
    if (s.type.empty() || s.name.empty() || s.actions.empty()) continue;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ocib::auth
