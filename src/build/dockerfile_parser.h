// Dockerfile parsing, as ../shared/specs/dockerfile/reference.md describes:
// parser directives (`# escape=`, `# syntax=`), comments, line
// continuation, instruction keywords (case-insensitive), flags
// (`--from=...`), exec (JSON) and shell forms, here-documents (`RUN <<EOF`,
// `COPY <<EOF /path`, as BuildKit's Dockerfile 1.4 syntax); and the word
// expansion the builder applies at build time ($VAR, ${VAR}, ${VAR:-x},
// ${VAR:+x}, quotes, escapes).
//
// Errors are kInvalidArgument with "FILE:LINE: INSTRUCTION: reason".
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace ocib::build {

enum class Keyword {
  kFrom,
  kRun,
  kCmd,
  kLabel,
  kMaintainer,
  kExpose,
  kEnv,
  kAdd,
  kCopy,
  kEntrypoint,
  kVolume,
  kUser,
  kWorkdir,
  kArg,
  kOnbuild,
  kStopsignal,
  kHealthcheck,
  kShell,
};
inline constexpr size_t kKeywordCount =
    static_cast<size_t>(Keyword::kShell) + 1;

// A here-document: the lines after the instruction up to the line `name`.
struct Heredoc {
  std::string name;    // the delimiter word, unquoted
  std::string data;    // the body, each line ending in "\n"; tabs already
                       // stripped for `<<-`
  bool expand = true;  // false when the delimiter was quoted: no $VAR
                       // expansion (COPY/ADD; RUN leaves it to the shell)
};

struct Instruction {
  Keyword kind = Keyword::kFrom;
  std::string keyword;  // upper case: FROM, RUN, COPY, ...
  int line = 0;         // 1-based line of the keyword
  std::string text;     // the whole instruction, continuation joined
  std::vector<std::pair<std::string, std::string>> flags;  // --name=value
  bool exec_form = false;                                  // JSON array form
  std::vector<std::string> args;  // exec form: the array; else the words
                                  // of `rest` (quotes kept, unexpanded)
  std::string rest;               // text after keyword and flags
  // HEALTHCHECK: "NONE" or "CMD" (args/exec_form then hold the command);
  // ONBUILD: the keyword of the recorded instruction.
  std::string subcommand;
  // RUN, COPY and ADD: the here-documents the arguments name ("<<EOF"), in
  // order. For COPY/ADD a source "<<EOF" stands for heredocs[i].
  std::vector<Heredoc> heredocs;

  // The value of flag `name` (without "--"), or "" if absent.
  std::string Flag(std::string_view name) const;
  bool HasFlag(std::string_view name) const;
};

struct Dockerfile {
  std::string filename;
  char escape = '\\';
  std::vector<Instruction> instructions;
};

// True when `word` is a here-document marker (<<EOF, <<-EOF, <<"EOF",
// <<'EOF'); sets *name to the delimiter when given.
bool IsHeredocMarker(std::string_view word, std::string* name = nullptr);

// Parses and checks the structure (known instructions and flags, JSON
// forms, FROM first apart from ARG, argument counts). Does not expand
// variables: that needs the build's environment.
Result<Dockerfile> ParseDockerfile(std::string_view text,
                                   const std::string& filename);

using Env = std::map<std::string, std::string>;

// Expands variables and removes quotes in one word, as the builder does for
// ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and
// ARG. kInvalidArgument for an unterminated quote or ${...}.
Result<std::string> ExpandWord(std::string_view word, const Env& env,
                               char escape);

// Expands $VAR and ${VAR...} in here-document text (COPY <<EOF with an
// unquoted delimiter); quotes stay as they are.
Result<std::string> ExpandHeredoc(std::string_view text, const Env& env,
                                  char escape);

// Splits text into words at unquoted white space, then expands each.
Result<std::vector<std::string>> ExpandWords(std::string_view text,
                                             const Env& env, char escape);

// Splits text at unquoted white space without expanding (quotes kept).
std::vector<std::string> SplitWords(std::string_view text, char escape);

struct KeyValue {
  std::string key;
  std::string value;
  bool has_value = false;  // ARG without a default has none
};

// The pairs of ENV and LABEL ("k=v k2='v 2'", or ENV's legacy "k v w") and
// ARG ("name" or "name=default"), values expanded.
Result<std::vector<KeyValue>> ExpandKeyValues(const Instruction& ins,
                                              const Env& env, char escape);

}  // namespace ocib::build
