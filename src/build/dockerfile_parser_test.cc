#include "build/dockerfile_parser.h"

#include <doctest/doctest.h>

using namespace ocib;
using namespace ocib::build;

namespace {

Dockerfile Parse(const std::string& text) {
  auto d = ParseDockerfile(text, "Dockerfile");
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  return *d;
}

std::string ParseError(const std::string& text) {
  auto d = ParseDockerfile(text, "Dockerfile");
  REQUIRE_MESSAGE(!d.ok(), "parsed: " << text);
  CHECK(d.status().code() == Code::kInvalidArgument);
  return d.status().message();
}

std::string X(const std::string& word, const Env& env = {}, char esc = '\\') {
  auto r = ExpandWord(word, env, esc);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

}  // namespace

TEST_CASE("instructions, case, comments, blank lines and line numbers") {
  auto d = Parse(
      "# a comment\n"
      "\n"
      "from scratch AS base\n"
      "  # indented comment\n"
      "COPY a b /dst/\n"
      "run echo hi\n");
  REQUIRE(d.instructions.size() == 3);
  CHECK(d.instructions[0].keyword == "FROM");
  CHECK(d.instructions[0].args ==
        std::vector<std::string>{"scratch", "AS", "base"});
  CHECK(d.instructions[0].line == 3);
  CHECK(d.instructions[1].args == std::vector<std::string>{"a", "b", "/dst/"});
  CHECK(d.instructions[2].keyword == "RUN");
  CHECK(d.instructions[2].rest == "echo hi");
  CHECK(!d.instructions[2].exec_form);
  CHECK(d.instructions[2].line == 6);
}

TEST_CASE("line continuation, with comments and blank lines inside") {
  auto d = Parse(
      "FROM scratch\n"
      "RUN echo a \\\n"
      "# comment in the middle\n"
      "\n"
      "    b \\\n"
      "  c\n"
      "ENV X=1\n");
  REQUIRE(d.instructions.size() == 3);
  CHECK(d.instructions[1].rest == "echo a     b   c");
  CHECK(d.instructions[1].line == 2);
  CHECK(d.instructions[2].line == 7);
}

TEST_CASE("the escape directive switches to backtick") {
  auto d = Parse(
      "# escape=`\n"
      "FROM scratch\n"
      "COPY c:\\src\\ `\n"
      "  c:\\dst\\\n");
  CHECK(d.escape == '`');
  REQUIRE(d.instructions.size() == 2);
  CHECK(d.instructions[1].args ==
        std::vector<std::string>{"c:\\src\\", "c:\\dst\\"});
}

TEST_CASE("directives only count at the top and only once") {
  auto d = Parse("# comment\n# escape=`\nFROM scratch\nRUN a \\\n b\n");
  CHECK(d.escape == '\\');
  CHECK(d.instructions[1].rest == "a  b");
  CHECK(
      ParseError("# escape=`\n# escape=\\\nFROM scratch\n").find("only one") !=
      std::string::npos);
  CHECK(ParseError("# escape=x\nFROM scratch\n").find("escape") !=
        std::string::npos);
  auto s = Parse("# syntax=docker/dockerfile:1\nFROM scratch\n");
  CHECK(s.instructions.size() == 1);
}

TEST_CASE("exec and shell forms") {
  auto d = Parse(
      "FROM scratch\n"
      "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
      "CMD [\"sh\"]\n"
      "ENTRYPOINT echo $HOME\n"
      "RUN [ -f /etc/passwd ] && echo yes\n"
      "SHELL [\"/bin/sh\", \"-ec\"]\n"
      "COPY [\"a file\", \"/dst dir/\"]\n"
      "CMD []\n");
  auto& ins = d.instructions;
  CHECK(ins[1].exec_form);
  CHECK(ins[1].args ==
        std::vector<std::string>{"/bin/busybox", "--install", "-s", "/bin"});
  CHECK(ins[2].exec_form);
  CHECK(!ins[3].exec_form);
  CHECK(ins[3].rest == "echo $HOME");
  CHECK(!ins[4].exec_form);  // a shell test, not JSON
  CHECK(ins[5].args == std::vector<std::string>{"/bin/sh", "-ec"});
  CHECK(ins[6].args == std::vector<std::string>{"a file", "/dst dir/"});
  CHECK(ins[7].exec_form);
  CHECK(ins[7].args.empty());
}

TEST_CASE("flags") {
  auto d = Parse(
      "FROM --platform=linux/amd64 scratch AS a\n"
      "COPY --from=a --chown=1:2 --chmod=0755 --link x /y\n"
      "ADD --chown=app src /dst\n");
  CHECK(d.instructions[0].Flag("platform") == "linux/amd64");
  CHECK(d.instructions[1].Flag("from") == "a");
  CHECK(d.instructions[1].Flag("chown") == "1:2");
  CHECK(d.instructions[1].Flag("chmod") == "0755");
  CHECK(d.instructions[1].HasFlag("link"));
  CHECK(d.instructions[1].args == std::vector<std::string>{"x", "/y"});
  CHECK(d.instructions[2].Flag("chown") == "app");
}

TEST_CASE("HEALTHCHECK and ONBUILD") {
  auto d = Parse(
      "FROM scratch\n"
      "HEALTHCHECK --interval=5s --retries=3 CMD [\"check\", \"now\"]\n"
      "HEALTHCHECK NONE\n"
      "ONBUILD RUN echo later\n");
  CHECK(d.instructions[1].subcommand == "CMD");
  CHECK(d.instructions[1].exec_form);
  CHECK(d.instructions[1].args == std::vector<std::string>{"check", "now"});
  CHECK(d.instructions[1].Flag("interval") == "5s");
  CHECK(d.instructions[2].subcommand == "NONE");
  CHECK(d.instructions[3].subcommand == "RUN");
  CHECK(d.instructions[3].args == std::vector<std::string>{"RUN echo later"});
}

TEST_CASE("ARG before FROM is allowed; anything else is not") {
  auto d = Parse("ARG BASE=scratch\nFROM ${BASE}\n");
  CHECK(d.instructions.size() == 2);
  auto e = ParseError("ENV A=1\nFROM scratch\n");
  CHECK(e.find("Dockerfile:1: ENV") != std::string::npos);
}

TEST_CASE("bad Dockerfiles name file, line and instruction") {
  CHECK(ParseError("").find("no FROM") != std::string::npos);
  CHECK(ParseError("# only a comment\n").find("no FROM") != std::string::npos);
  CHECK(ParseError("FROM scratch\nFROBNICATE x\n")
            .find("Dockerfile:2: unknown instruction: FROBNICATE") !=
        std::string::npos);
  CHECK(ParseError("FROM scratch\nCMD [\"sh\", oops]\n")
            .find("Dockerfile:2: CMD: malformed JSON") != std::string::npos);
  CHECK(ParseError("FROM scratch\nRUN [\"unterminated\"\n")
            .find("malformed JSON") != std::string::npos);
  CHECK(ParseError("FROM scratch\nSHELL /bin/sh -c\n").find("SHELL") !=
        std::string::npos);
  CHECK(ParseError("FROM scratch\nCOPY onlyone\n").find("COPY") !=
        std::string::npos);
  CHECK(ParseError("FROM scratch\nCOPY --bogus=1 a b\n").find("unknown flag") !=
        std::string::npos);
  CHECK(ParseError("FROM scratch\nCOPY --from a b\n").find("needs a value") !=
        std::string::npos);
  CHECK(ParseError("FROM scratch\nRUN\n").find("RUN") != std::string::npos);
  CHECK(ParseError("FROM a b c d\n").find("FROM") != std::string::npos);
  CHECK(ParseError("FROM a AS 9bad\n").find("stage name") != std::string::npos);
  CHECK(ParseError("FROM scratch\nENV ONLYKEY\n").find("ENV") !=
        std::string::npos);
  CHECK(ParseError("FROM scratch\nLABEL novalue\n").find("LABEL") !=
        std::string::npos);
  CHECK(ParseError("FROM scratch\nWORKDIR a b\n").find("WORKDIR") !=
        std::string::npos);
  CHECK(
      ParseError("FROM scratch\nHEALTHCHECK SOMETIMES\n").find("HEALTHCHECK") !=
      std::string::npos);
  CHECK(ParseError("FROM scratch\nONBUILD FROM x\n").find("ONBUILD") !=
        std::string::npos);
}

TEST_CASE("variable expansion") {
  Env env = {{"A", "alpha"}, {"EMPTY", ""}, {"P", "/usr/local"}};
  auto x = [&](const std::string& w) { return X(w, env); };
  CHECK(x("$A") == "alpha");
  CHECK(x("${A}") == "alpha");
  CHECK(x("${A}_x") == "alpha_x");
  CHECK(x("$A_x") == "");  // the name is A_x
  CHECK(x("${P}/bin:$A") == "/usr/local/bin:alpha");
  CHECK(x("${UNSET:-default}") == "default");
  CHECK(x("${EMPTY:-default}") == "default");
  CHECK(x("${EMPTY-default}") == "");
  CHECK(x("${A:-default}") == "alpha");
  CHECK(x("${A:+set}") == "set");
  CHECK(x("${EMPTY:+set}") == "");
  CHECK(x("${UNSET:+set}") == "");
  CHECK(x("${UNSET:-${A}}") == "alpha");
  CHECK(x("\\$A") == "$A");
  CHECK(x("'$A'") == "$A");
  CHECK(x("\"$A b\"") == "alpha b");
  CHECK(x("\"a\\\"b\"") == "a\"b");
  CHECK(x("$") == "$");
  CHECK(x("a$1") == "a$1");
  CHECK(X("`$A", env, '`') == "$A");
  CHECK(!ExpandWord("\"open", env, '\\').ok());
  CHECK(!ExpandWord("${A", env, '\\').ok());
  CHECK(!ExpandWord("${}", env, '\\').ok());
  CHECK(!ExpandWord("${A?x}", env, '\\').ok());
}

TEST_CASE("ENV, LABEL and ARG pairs") {
  auto d = Parse(
      "ARG V=1 NODEFAULT\n"
      "FROM scratch\n"
      "ENV A=1 B=\"two words\" C=${A}x\n"
      "ENV LEGACY value with spaces\n"
      "LABEL \"com.example.k\"=\"v 1\" other='$A'\n");
  Env env = {{"A", "one"}};
  auto arg = ExpandKeyValues(d.instructions[0], env, '\\');
  REQUIRE(arg.ok());
  REQUIRE(arg->size() == 2);
  CHECK((*arg)[0].key == "V");
  CHECK((*arg)[0].has_value);
  CHECK(!(*arg)[1].has_value);
  auto e = ExpandKeyValues(d.instructions[2], env, '\\');
  REQUIRE(e.ok());
  REQUIRE(e->size() == 3);
  CHECK((*e)[1].value == "two words");
  CHECK((*e)[2].value == "onex");
  auto legacy = ExpandKeyValues(d.instructions[3], env, '\\');
  REQUIRE(legacy->size() == 1);
  CHECK((*legacy)[0].key == "LEGACY");
  CHECK((*legacy)[0].value == "value with spaces");
  auto l = ExpandKeyValues(d.instructions[4], env, '\\');
  REQUIRE(l.ok());
  CHECK((*l)[0].key == "com.example.k");
  CHECK((*l)[0].value == "v 1");
  CHECK((*l)[1].value == "$A");
}

TEST_CASE("words keep quotes until expansion") {
  CHECK(SplitWords("a \"b c\" 'd e'  f\\ g", '\\') ==
        std::vector<std::string>{"a", "\"b c\"", "'d e'", "f\\ g"});
  Env env;
  auto w = ExpandWords("a \"b c\" f\\ g", env, '\\');
  REQUIRE(w.ok());
  CHECK(*w == std::vector<std::string>{"a", "b c", "f g"});
}

TEST_CASE(
    "here-documents: bodies, <<- tab stripping, quoted delimiters, several per "
    "line") {
  auto d = ParseDockerfile(
      "FROM scratch\n"
      "RUN <<EOF\n"
      "echo one\n"
      "# not a comment here\n"
      "EOF\n"
      "RUN <<-EOT\n"
      "\techo tabs\n"
      "\tEOT\n"
      "COPY <<\"A\" <<'B' /dir/\n"
      "$X\n"
      "A\n"
      "b\n"
      "B\n"
      "RUN cat <<EOF>/out\n"
      "x\n"
      "EOF\n"
      "CMD [\"x\"]\n",
      "Dockerfile");
  REQUIRE(d.ok());
  REQUIRE(d->instructions.size() == 6);
  const auto& r = d->instructions[1];
  CHECK(r.kind == Keyword::kRun);
  REQUIRE(r.heredocs.size() == 1);
  CHECK(r.heredocs[0].name == "EOF");
  CHECK(r.heredocs[0].data == "echo one\n# not a comment here\n");
  CHECK(r.heredocs[0].expand);
  REQUIRE(d->instructions[2].heredocs.size() == 1);
  CHECK(d->instructions[2].heredocs[0].data == "echo tabs\n");
  const auto& c = d->instructions[3];
  CHECK(c.kind == Keyword::kCopy);
  REQUIRE(c.heredocs.size() == 2);
  CHECK(c.heredocs[0].name == "A");
  CHECK(c.heredocs[0].data == "$X\n");
  CHECK(!c.heredocs[0].expand);
  CHECK(c.heredocs[1].name == "B");
  CHECK(!c.heredocs[1].expand);
  REQUIRE(d->instructions[4].heredocs.size() == 1);
  CHECK(d->instructions[4].heredocs[0].data == "x\n");
  CHECK(d->instructions[5].kind == Keyword::kCmd);
  std::string name;
  CHECK(IsHeredocMarker("<<EOF", &name));
  CHECK(name == "EOF");
  CHECK(IsHeredocMarker("<<-'END'", &name));
  CHECK(name == "END");
  CHECK(!IsHeredocMarker("<<"));
  CHECK(!IsHeredocMarker("<<a-b"));
  CHECK(!IsHeredocMarker("a<<EOF"));
}

TEST_CASE("here-documents: an unterminated body is an error naming the line") {
  auto d = ParseDockerfile(
      "FROM scratch\nRUN true\nCOPY <<EOF /x\nnever closed\n", "Dockerfile");
  REQUIRE(!d.ok());
  CHECK(d.status().message() ==
        "Dockerfile:3: COPY: here-document \"EOF\" has no terminating line");
  // Exec form and other instructions take no heredocs.
  auto e = ParseDockerfile(
      "FROM scratch\nRUN [\"echo\", \"<<EOF\"]\nLABEL a=\"<<EOF\"\n",
      "Dockerfile");
  REQUIRE(e.ok());
  CHECK(e->instructions[1].heredocs.empty());
}

TEST_CASE("here-document text expands variables and keeps quotes") {
  Env env{{"A", "1"}, {"B", ""}};
  auto t =
      ExpandHeredoc("a=$A \"q\" 'r' ${B:-dflt} \\$A ${A:+set}\n", env, '\\');
  REQUIRE(t.ok());
  CHECK(*t == "a=1 \"q\" 'r' dflt $A set\n");
}
