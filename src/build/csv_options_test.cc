#include "build/csv_options.h"

#include <doctest/doctest.h>

namespace ocib::build {
namespace {

TEST_CASE(
    "comma-separated options: key=value pairs in order, bare words true, empty "
    "fields skipped") {
  using P = std::vector<std::pair<std::string, std::string>>;
  CHECK(ParseCsvOptions("type=cache,target=/x,ro") ==
        P{{"type", "cache"}, {"target", "/x"}, {"ro", "true"}});
  CHECK(ParseCsvOptions("a=b=c,,d=") == P{{"a", "b=c"}, {"d", ""}});
  CHECK(ParseCsvOptions("").empty());
  CHECK(ParseCsvOptions(",,").empty());
}

}  // namespace
}  // namespace ocib::build
