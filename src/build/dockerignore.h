// .dockerignore: which context paths COPY and ADD leave out. Patterns are
// Go filepath.Match patterns plus "**" and "!" exceptions; the last
// matching rule wins, and a path is excluded when it or a parent matches
// (the Dockerfile reference, .dockerignore file).
//
// Immutable after Load; thread-safe to query.
#pragma once

#include <regex>
#include <string>
#include <vector>

#include "util/status.h"

namespace ocib::build {

class DockerIgnore {
 public:
  // Reads the rules from `file`; a missing file means no rules.
  Status Load(const std::string& file);
  // Adds one rule, as a line of the file would (COPY --exclude patterns).
  void Add(const std::string& pattern);
  // `rel`: a clean path relative to the context root.
  bool Excluded(const std::string& rel) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::regex re;
    bool exclude;
  };
  std::vector<Rule> rules_;
};

}  // namespace ocib::build
