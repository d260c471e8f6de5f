#include "build/dockerignore.h"

#include <fstream>

#include "build/paths.h"

namespace ocib::build {
namespace {

std::regex ToRegex(const std::string& pat) {
  std::string re;
  for (size_t i = 0; i < pat.size(); ++i) {
    char c = pat[i];
    if (c == '*') {
      if (i + 1 < pat.size() && pat[i + 1] == '*') {
        ++i;
        if (i + 1 < pat.size() && pat[i + 1] == '/') {
          ++i;
          re += "(.*/)?";
        } else {
          re += ".*";
        }
      } else {
        re += "[^/]*";
      }
    } else if (c == '?') {
      re += "[^/]";
    } else if (c == '[') {
      size_t j = pat.find(']', i);
      if (j == std::string::npos)
        re += "\\[";
      else {
        std::string cls = pat.substr(i + 1, j - i - 1);
        if (!cls.empty() && cls[0] == '!') cls[0] = '^';
        re += "[" + cls + "]";
        i = j;
      }
    } else if (c == '\\' && i + 1 < pat.size()) {
      re += "\\";
      re += pat[++i];
    } else if (std::string(".^$|()+{}").find(c) != std::string::npos) {
      re += "\\";
      re += c;
    } else {
      re += c;
    }
  }
  return std::regex(re);
}
}  // namespace

Status DockerIgnore::Load(const std::string& file) {
  std::ifstream in(file);
  if (!in) return Status::Ok();
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() &&
           (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    size_t a = line.find_first_not_of(" \t");
    if (a == std::string::npos || line[a] == '#') continue;
    line = line.substr(a);
    Add(line);
  }
  return Status::Ok();
}

void DockerIgnore::Add(const std::string& pattern) {
  std::string line = pattern;
  bool exclude = true;
  if (!line.empty() && line[0] == '!') {
    exclude = false;
    line = line.substr(1);
  }
  std::string clean;
  if (!CleanRelative(line, &clean) || clean.empty()) return;
  rules_.push_back({ToRegex(clean), exclude});
}
bool DockerIgnore::Excluded(const std::string& rel) const {
  bool excluded = false;
  for (const auto& r : rules_) {
    // Match the path or any of its parents.
    std::string p = rel;
    bool m = false;
    while (true) {
      if (std::regex_match(p, r.re)) {
        m = true;
        break;
      }
      size_t s = p.rfind('/');
      if (s == std::string::npos) break;
      p = p.substr(0, s);
    }
    if (m) excluded = r.exclude;
  }
  return excluded;
}
}  // namespace ocib::build
