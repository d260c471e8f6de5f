#include "build/dockerfile_parser.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

namespace ocib::build {
namespace {

const std::map<std::string, Keyword>& Keywords() {
  static const std::map<std::string, Keyword> k = {
      {"FROM", Keyword::kFrom},
      {"RUN", Keyword::kRun},
      {"CMD", Keyword::kCmd},
      {"LABEL", Keyword::kLabel},
      {"MAINTAINER", Keyword::kMaintainer},
      {"EXPOSE", Keyword::kExpose},
      {"ENV", Keyword::kEnv},
      {"ADD", Keyword::kAdd},
      {"COPY", Keyword::kCopy},
      {"ENTRYPOINT", Keyword::kEntrypoint},
      {"VOLUME", Keyword::kVolume},
      {"USER", Keyword::kUser},
      {"WORKDIR", Keyword::kWorkdir},
      {"ARG", Keyword::kArg},
      {"ONBUILD", Keyword::kOnbuild},
      {"STOPSIGNAL", Keyword::kStopsignal},
      {"HEALTHCHECK", Keyword::kHealthcheck},
      {"SHELL", Keyword::kShell}};
  return k;
}

// Flags each instruction accepts; a flag in `bools` takes no value.
struct FlagSpec {
  std::set<std::string> names;
  std::set<std::string> bools;
};

const FlagSpec* FlagsFor(const std::string& kw) {
  static const std::map<std::string, FlagSpec> m = {
      {"FROM", {{"platform"}, {}}},
      {"COPY",
       {{"from", "chown", "chmod", "link", "exclude", "parents"},
        {"link", "parents"}}},
      {"ADD",
       {{"chown", "chmod", "checksum", "keep-git-dir", "link", "exclude"},
        {"link", "keep-git-dir"}}},
      {"RUN", {{"mount", "network", "security"}, {}}},
      {"HEALTHCHECK",
       {{"interval", "timeout", "start-period", "start-interval", "retries"},
        {}}},
  };
  auto it = m.find(kw);
  return it == m.end() ? nullptr : &it->second;
}

std::string Trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

std::string Upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool ValidStageName(std::string_view n) {
  if (n.empty() || !std::isalpha(static_cast<unsigned char>(n[0])))
    return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.')
      return false;
  return true;
}

class Parser {
 public:
  Parser(std::string filename, char escape)
      : file_(std::move(filename)), escape_(escape) {}

  Status Error(int line, const std::string& kw, const std::string& why) const {
    return InvalidArgument(file_ + ":" + std::to_string(line) + ": " +
                           (kw.empty() ? "" : kw + ": ") + why);
  }

  // Parses one logical line into ins. `nested` for ONBUILD's instruction.
  Status ParseInstruction(const std::string& logical, int line,
                          Instruction* ins, bool nested) {
    std::string t = Trim(logical);
    size_t sp = 0;
    while (sp < t.size() && !std::isspace(static_cast<unsigned char>(t[sp])))
      ++sp;
    ins->keyword = Upper(t.substr(0, sp));
    ins->line = line;
    ins->text = t;
    std::string rest = Trim(std::string_view(t).substr(sp));
    const std::string& kw = ins->keyword;
    auto known = Keywords().find(kw);
    if (known == Keywords().end())
      return Error(line, "", "unknown instruction: " + t.substr(0, sp));
    ins->kind = known->second;
    if (nested && (kw == "ONBUILD" || kw == "FROM" || kw == "MAINTAINER"))
      return Error(line, "ONBUILD",
                   kw + " is not allowed as an ONBUILD trigger");

    // Flags.
    if (const FlagSpec* spec = FlagsFor(kw)) {
      while (rest.rfind("--", 0) == 0) {
        size_t end = 0;
        while (end < rest.size() &&
               !std::isspace(static_cast<unsigned char>(rest[end])))
          ++end;
        std::string tok = rest.substr(2, end - 2);
        std::string name = tok, value;
        size_t eq = tok.find('=');
        bool has_value = eq != std::string::npos;
        if (has_value) {
          name = tok.substr(0, eq);
          value = tok.substr(eq + 1);
        }
        if (!spec->names.count(name))
          return Error(line, kw, "unknown flag: --" + name);
        if (!has_value && !spec->bools.count(name))
          return Error(
              line, kw,
              "flag --" + name + " needs a value (--" + name + "=...)");
        if (has_value && value.empty())
          return Error(line, kw, "flag --" + name + " has an empty value");
        ins->flags.emplace_back(name, has_value ? value : "true");
        rest = Trim(std::string_view(rest).substr(end));
      }
    }
    ins->rest = rest;

    if (kw == "HEALTHCHECK") {
      std::vector<std::string> w = SplitWords(rest, escape_);
      if (w.empty()) return Error(line, kw, "needs NONE or CMD");
      std::string sub = Upper(w[0]);
      if (sub == "NONE") {
        if (w.size() != 1 || !ins->flags.empty())
          return Error(line, kw, "NONE takes no arguments or flags");
        ins->subcommand = "NONE";
        return Status::Ok();
      }
      if (sub != "CMD")
        return Error(line, kw, "needs NONE or CMD, got " + w[0]);
      ins->subcommand = "CMD";
      std::string cmd = Trim(std::string_view(rest).substr(3));
      if (cmd.empty()) return Error(line, kw, "CMD needs a command");
      ins->rest = cmd;
      return ParseForm(ins, line, /*json_allowed=*/true,
                       /*json_required=*/false);
    }
    if (kw == "ONBUILD") {
      if (rest.empty()) return Error(line, kw, "needs an instruction");
      Instruction inner;
      RETURN_IF_ERROR(ParseInstruction(rest, line, &inner, true));
      ins->subcommand = inner.keyword;
      ins->args = {rest};
      return Status::Ok();
    }
    bool json_ok = kw == "RUN" || kw == "CMD" || kw == "ENTRYPOINT" ||
                   kw == "SHELL" || kw == "COPY" || kw == "ADD" ||
                   kw == "VOLUME";
    RETURN_IF_ERROR(ParseForm(ins, line, json_ok, kw == "SHELL"));
    return CheckArgs(*ins);
  }

  Status ParseForm(Instruction* ins, int line, bool json_allowed,
                   bool json_required) {
    const std::string& rest = ins->rest;
    const std::string& kw = ins->keyword;
    bool looks_json = false;
    if (json_allowed && !rest.empty() && rest[0] == '[') {
      std::string inner = Trim(std::string_view(rest).substr(1));
      looks_json = !inner.empty() && (inner[0] == '"' || inner[0] == ']');
    }
    if (looks_json) {
      auto j = nlohmann::json::parse(rest, nullptr, false);
      bool ok = !j.is_discarded() && j.is_array();
      if (ok)
        for (const auto& e : j) ok = ok && e.is_string();
      if (!ok) return Error(line, kw, "malformed JSON array: " + rest);
      ins->exec_form = true;
      for (const auto& e : j) ins->args.push_back(e.get<std::string>());
      return Status::Ok();
    }
    if (json_required)
      return Error(line, kw,
                   "requires the JSON array form, e.g. [\"/bin/sh\", \"-c\"]");
    ins->args = SplitWords(rest, escape_);
    return Status::Ok();
  }

  Status CheckArgs(const Instruction& ins) {
    const std::string& kw = ins.keyword;
    size_t n = ins.args.size();
    int line = ins.line;
    if (kw == "FROM") {
      if (n == 3 && Upper(ins.args[1]) == "AS") {
        if (!ValidStageName(ins.args[2]))
          return Error(line, kw, "invalid stage name \"" + ins.args[2] + "\"");
        return Status::Ok();
      }
      if (n != 1)
        return Error(line, kw, "expects an image and optionally AS <name>");
    } else if (kw == "COPY" || kw == "ADD") {
      if (n < 2)
        return Error(line, kw, "needs at least one source and a destination");
    } else if (kw == "RUN") {
      if (!ins.exec_form && ins.rest.empty())
        return Error(line, kw, "needs a command");
      if (ins.exec_form && n == 0) return Error(line, kw, "needs a command");
    } else if (kw == "SHELL") {
      if (n == 0) return Error(line, kw, "needs at least the shell executable");
    } else if (kw == "ENV" || kw == "LABEL" || kw == "ARG" || kw == "EXPOSE" ||
               kw == "VOLUME" || kw == "MAINTAINER") {
      if (n == 0) return Error(line, kw, "needs at least one argument");
      if (kw == "ENV" && ins.args[0].find('=') == std::string::npos && n < 2)
        return Error(line, kw,
                     "needs a value: ENV key=value (or ENV key value)");
      if (kw == "LABEL")
        for (const auto& a : ins.args)
          if (a.find('=') == std::string::npos)
            return Error(line, kw,
                         "expects key=value pairs, got \"" + a + "\"");
    } else if (kw == "USER" || kw == "WORKDIR" || kw == "STOPSIGNAL") {
      if (n != 1) return Error(line, kw, "takes exactly one argument");
    }
    return Status::Ok();
  }

  const std::string file_;
  const char escape_;
};

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

class Expander {
 public:
  Expander(std::string_view in, const Env& env, char escape, bool text = false)
      : in_(in), env_(env), esc_(escape), text_(text) {}

  // Expands until end of input, or (when stop is set) an unquoted `stop`.
  Result<std::string> Run(char stop = 0) {
    std::string out;
    bool single = false, dbl = false;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (!single && !dbl && stop && c == stop) return out;
      if (text_) {
        // Here-document text: quotes are plain characters, and the escape
        // character only makes a following '$' literal.
        if (c == esc_ && pos_ + 1 < in_.size() && in_[pos_ + 1] == '$') {
          out += '$';
          pos_ += 2;
        } else if (c == '$') {
          ASSIGN_OR_RETURN(std::string v, Variable());
          out += v;
        } else {
          out += c;
          ++pos_;
        }
        continue;
      }
      if (single) {
        if (c == '\'')
          single = false;
        else
          out += c;
        ++pos_;
        continue;
      }
      if (c == esc_) {
        if (pos_ + 1 >= in_.size()) {
          out += c;
          ++pos_;
          continue;
        }
        char n = in_[pos_ + 1];
        if (dbl && n != '$' && n != '"' && n != esc_ && n != '`') out += c;
        out += n;
        pos_ += 2;
        continue;
      }
      if (c == '\'' && !dbl) {
        single = true;
        ++pos_;
        continue;
      }
      if (c == '"') {
        dbl = !dbl;
        ++pos_;
        continue;
      }
      if (c == '$') {
        ASSIGN_OR_RETURN(std::string v, Variable());
        out += v;
        continue;
      }
      out += c;
      ++pos_;
    }
    if (single || dbl)
      return InvalidArgument("unterminated quote in \"" + std::string(in_) +
                             "\"");
    if (stop)
      return InvalidArgument("missing '}' in \"" + std::string(in_) + "\"");
    return out;
  }

 private:
  // At '$'. Reads a reference and returns its value.
  Result<std::string> Variable() {
    ++pos_;  // '$'
    if (pos_ >= in_.size()) return std::string("$");
    if (in_[pos_] == '{') {
      ++pos_;
      size_t start = pos_;
      while (pos_ < in_.size() && IsNameChar(in_[pos_])) ++pos_;
      std::string name(in_.substr(start, pos_ - start));
      if (name.empty())
        return InvalidArgument("bad substitution in \"" + std::string(in_) +
                               "\"");
      if (pos_ >= in_.size())
        return InvalidArgument("missing '}' in \"" + std::string(in_) + "\"");
      auto it = env_.find(name);
      bool set = it != env_.end();
      bool nonempty = set && !it->second.empty();
      char c = in_[pos_];
      if (c == '}') {
        ++pos_;
        return set ? it->second : std::string();
      }
      bool colon = false;
      if (c == ':') {
        colon = true;
        ++pos_;
        if (pos_ >= in_.size())
          return InvalidArgument("bad substitution in \"" + std::string(in_) +
                                 "\"");
        c = in_[pos_];
      }
      if (c != '-' && c != '+')
        return InvalidArgument("unsupported modifier '" + std::string(1, c) +
                               "' in ${" + name + "}");
      ++pos_;
      ASSIGN_OR_RETURN(std::string word, Run('}'));
      ++pos_;  // '}'
      bool present = colon ? nonempty : set;
      if (c == '-') return present ? it->second : word;
      return present ? word : std::string();
    }
    size_t start = pos_;
    if (!(std::isalpha(static_cast<unsigned char>(in_[pos_])) ||
          in_[pos_] == '_'))
      return std::string("$");
    while (pos_ < in_.size() && IsNameChar(in_[pos_])) ++pos_;
    auto it = env_.find(std::string(in_.substr(start, pos_ - start)));
    return it == env_.end() ? std::string() : it->second;
  }

  std::string_view in_;
  const Env& env_;
  char esc_;
  bool text_;
  size_t pos_ = 0;
};

}  // namespace

Result<std::string> ExpandHeredoc(std::string_view text, const Env& env,
                                  char escape) {
  return Expander(text, env, escape, /*text=*/true).Run();
}

std::string Instruction::Flag(std::string_view name) const {
  for (const auto& [k, v] : flags)
    if (k == name) return v;
  return "";
}

bool Instruction::HasFlag(std::string_view name) const {
  for (const auto& [k, v] : flags)
    if (k == name) return true;
  return false;
}

std::vector<std::string> SplitWords(std::string_view text, char escape) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      cur += c;
      if (c == escape && quote == '"' && i + 1 < text.size())
        cur += text[++i];
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    cur += c;
    if (c == escape && i + 1 < text.size())
      cur += text[++i];
    else if (c == '"' || c == '\'')
      quote = c;
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

Result<std::string> ExpandWord(std::string_view word, const Env& env,
                               char escape) {
  return Expander(word, env, escape).Run();
}

Result<std::vector<std::string>> ExpandWords(std::string_view text,
                                             const Env& env, char escape) {
  std::vector<std::string> out;
  for (const auto& w : SplitWords(text, escape)) {
    ASSIGN_OR_RETURN(std::string e, ExpandWord(w, env, escape));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<KeyValue>> ExpandKeyValues(const Instruction& ins,
                                              const Env& env, char escape) {
  std::vector<KeyValue> out;
  std::vector<std::string> words = SplitWords(ins.rest, escape);
  if (ins.keyword == "ENV" && !words.empty() &&
      words[0].find('=') == std::string::npos) {
    // Legacy form: ENV key the rest of the line.
    std::string value =
        Trim(std::string_view(ins.rest).substr(words[0].size()));
    ASSIGN_OR_RETURN(std::string v, ExpandWord(value, env, escape));
    out.push_back({words[0], v, true});
    return out;
  }
  for (const auto& w : words) {
    size_t eq = w.find('=');
    KeyValue kv;
    if (eq == std::string::npos) {
      if (ins.keyword != "ARG")
        return InvalidArgument(ins.keyword + " expects key=value, got \"" + w +
                               "\"");
      ASSIGN_OR_RETURN(kv.key, ExpandWord(w, env, escape));
    } else {
      ASSIGN_OR_RETURN(kv.key, ExpandWord(w.substr(0, eq), env, escape));
      ASSIGN_OR_RETURN(kv.value, ExpandWord(w.substr(eq + 1), env, escape));
      kv.has_value = true;
    }
    if (kv.key.empty())
      return InvalidArgument(ins.keyword + " names can not be blank");
    out.push_back(std::move(kv));
  }
  return out;
}

bool IsHeredocMarker(std::string_view w, std::string* name) {
  if (w.size() < 3 || w.substr(0, 2) != "<<") return false;
  w.remove_prefix(2);
  if (!w.empty() && w[0] == '-') w.remove_prefix(1);
  if (w.size() >= 2 && (w[0] == '"' || w[0] == '\'') && w.back() == w[0])
    w = w.substr(1, w.size() - 2);
  if (w.empty()) return false;
  for (char c : w)
    if (!IsNameChar(c)) return false;
  if (name) *name = std::string(w);
  return true;
}

namespace {

// RUN, COPY and ADD: reads the bodies of the here-documents the arguments
// name from the lines after *i (the instruction's last line), advancing *i
// past each terminator.
Status ReadHeredocs(const std::vector<std::string>& lines, size_t* i,
                    Instruction* ins, const std::string& filename,
                    char escape) {
  if (ins->exec_form ||
      (ins->kind != Keyword::kRun && ins->kind != Keyword::kCopy &&
       ins->kind != Keyword::kAdd))
    return Status::Ok();
  // Markers may sit anywhere in a RUN's shell text (`cat <<EOF > f`).
  std::vector<std::string> words = SplitWords(ins->rest, escape);
  for (const auto& raw : words) {
    // A marker glued to a redirection (`cat <<EOF>f`) is split the way the
    // shell splits it: the name ends at the first character not a name's.
    size_t at = raw.find("<<");
    if (at == std::string::npos) continue;
    std::string w = raw.substr(at);
    size_t end = 2;
    if (end < w.size() && w[end] == '-') ++end;
    if (end < w.size() && (w[end] == '"' || w[end] == '\'')) {
      size_t close = w.find(w[end], end + 1);
      if (close == std::string::npos) continue;
      end = close + 1;
    } else {
      while (end < w.size() && IsNameChar(w[end])) ++end;
    }
    w = w.substr(0, end);
    Heredoc h;
    if (!IsHeredocMarker(w, &h.name)) continue;
    bool chomp = w.size() > 2 && w[2] == '-';
    h.expand = w.find_first_of("\"'") == std::string::npos;
    bool closed = false;
    while (++*i < lines.size()) {
      std::string l = lines[*i];
      if (chomp)
        l.erase(0, l.find_first_not_of('\t') == std::string::npos
                       ? l.size()
                       : l.find_first_not_of('\t'));
      if (l == h.name) {
        closed = true;
        break;
      }
      h.data += l + "\n";
    }
    if (!closed)
      return InvalidArgument(filename + ":" + std::to_string(ins->line) + ": " +
                             ins->keyword + ": here-document \"" + h.name +
                             "\" has no terminating line");
    ins->heredocs.push_back(std::move(h));
  }
  return Status::Ok();
}

}  // namespace

Result<Dockerfile> ParseDockerfile(std::string_view text,
                                   const std::string& filename) {
  Dockerfile df;
  df.filename = filename;
  std::vector<std::string> lines;
  {
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      std::string l(text.substr(start, nl == std::string_view::npos
                                           ? std::string_view::npos
                                           : nl - start));
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(std::move(l));
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }
  // Parser directives: only at the very top.
  size_t i = 0;
  std::set<std::string> seen;
  for (; i < lines.size(); ++i) {
    std::string l = Trim(lines[i]);
    if (l.size() < 2 || l[0] != '#') break;
    std::string body = Trim(std::string_view(l).substr(1));
    size_t eq = body.find('=');
    if (eq == std::string::npos) break;
    std::string name = Trim(std::string_view(body).substr(0, eq));
    std::string value = Trim(std::string_view(body).substr(eq + 1));
    bool word = !name.empty();
    for (char c : name)
      word = word && std::isalnum(static_cast<unsigned char>(c));
    if (!word) break;
    std::string lname = name;
    for (char& c : lname)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lname != "escape" && lname != "syntax" && lname != "check")
      break;  // a comment
    if (!seen.insert(lname).second)
      return InvalidArgument(filename + ":" + std::to_string(i + 1) +
                             ": only one " + lname +
                             " parser directive can be used");
    if (lname == "escape") {
      if (value != "\\" && value != "`")
        return InvalidArgument(filename + ":" + std::to_string(i + 1) +
                               ": invalid escape token '" + value +
                               "' (must be ` or \\)");
      df.escape = value[0];
    }
  }
  Parser parser(filename, df.escape);
  std::string logical;
  int logical_line = 0;
  bool in_continuation = false;
  for (; i < lines.size(); ++i) {
    std::string t = Trim(lines[i]);
    if (t.empty() || t[0] == '#')
      continue;  // comments and blank lines, also inside continuations
    if (!in_continuation) logical_line = static_cast<int>(i) + 1;
    std::string raw = lines[i];
    while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back())))
      raw.pop_back();
    if (!raw.empty() && raw.back() == df.escape) {
      raw.pop_back();
      logical += raw;
      in_continuation = true;
      continue;
    }
    logical += raw;
    in_continuation = false;
    Instruction ins;
    RETURN_IF_ERROR(
        parser.ParseInstruction(logical, logical_line, &ins, false));
    RETURN_IF_ERROR(ReadHeredocs(lines, &i, &ins, filename, df.escape));
    df.instructions.push_back(std::move(ins));
    logical.clear();
  }
  if (in_continuation && !Trim(logical).empty()) {
    Instruction ins;
    RETURN_IF_ERROR(
        parser.ParseInstruction(logical, logical_line, &ins, false));
    df.instructions.push_back(std::move(ins));
  }
  bool any_from =
      std::any_of(df.instructions.begin(), df.instructions.end(),
                  [](const Instruction& i) { return i.keyword == "FROM"; });
  if (!any_from) return InvalidArgument(filename + ": no FROM instruction");
  bool from_seen = false;
  for (const auto& ins : df.instructions) {
    if (ins.keyword == "FROM")
      from_seen = true;
    else if (!from_seen && ins.keyword != "ARG")
      return parser.Error(ins.line, ins.keyword,
                          "instructions before the first FROM must be ARG");
  }
  if (!from_seen) return InvalidArgument(filename + ": no FROM instruction");
  return df;
}

}  // namespace ocib::build
