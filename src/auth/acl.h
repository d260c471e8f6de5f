// Who may do what: the access-control list of ocireg's configuration, and
// the "scope" strings of Docker's token authentication.
//
// An ACL is a list of groups and rules:
//   {"groups": {"devs": ["alice", "bob"]},
//    "rules": [{"repository": "team/**", "users": ["alice"],
//               "groups": ["devs"], "actions": ["pull", "push"]},
//              {"repository": "public/*", "anonymous": true,
//               "actions": ["pull"]},
//              {"users": ["*"], "actions": ["catalog"]}]}
// A rule applies to a user named in "users" ("*": every authenticated
// user) or a member of one of its "groups"; with "anonymous": true it
// applies to everyone, clients without credentials included. "repository" is a
// glob on the name: '*' matches within one path component, '**' across
// components,
// '?' one character; without it the rule covers every repository.
// Actions: pull, push, delete, catalog (list the catalog) and admin (all
// of them). Grants add up; what no rule grants is denied.
//
// Pure values; thread-safe once made. Errors: kInvalidArgument naming the
// rule and key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace ocib::auth {

enum Action : unsigned {
  kPull = 1,
  kPush = 2,
  kDelete = 4,
  kCatalog = 8,
  kAllActions = kPull | kPush | kDelete | kCatalog,
};

// "pull" -> kPull ... "admin" and "*" -> kAllActions; 0 if unknown.
unsigned ParseAction(std::string_view name);
// kPull|kPush -> "pull,push".
std::string ActionList(unsigned actions);

// Glob match as described above.
bool GlobMatch(std::string_view pattern, std::string_view name);

class Acl {
 public:
  static Result<Acl> Parse(std::string_view json_text);
  // The actions `user` ("" = anonymous) may take on `repository`.
  unsigned Granted(std::string_view user, std::string_view repository) const;
  // True if `user` may list the catalog.
  bool MayListCatalog(std::string_view user) const;
  // True if `user` holds admin on every repository (a rule with "admin"
  // and no repository, or "**"): registry operations such as GC.
  bool IsAdmin(std::string_view user) const;

 private:
  struct Rule {
    std::string pattern;  // "" = every repository
    std::vector<std::string> users, groups;
    bool anonymous = false;
    unsigned actions = 0;
  };
  bool Applies(const Rule& r, std::string_view user) const;
  std::vector<Rule> rules_;
  std::vector<std::pair<std::string, std::vector<std::string>>> groups_;
};

// One entry of a token scope: "repository:team/app:pull,push",
// "registry:catalog:*".
struct Scope {
  std::string type;  // "repository", "registry"
  std::string name;
  std::vector<std::string> actions;
  std::string str() const;
};

// Parses a space-separated scope parameter; entries that do not parse are
// skipped.
std::vector<Scope> ParseScopes(std::string_view text);

}  // namespace ocib::auth
