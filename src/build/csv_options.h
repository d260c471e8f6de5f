// The comma-separated key=value options docker build and BuildKit use
// (--output, --cache-to, --secret, RUN --mount): "type=cache,target=/x,ro"
// is {("type","cache"), ("target","/x"), ("ro","true")}. A bare word is
// ("word", "true"); empty fields are skipped. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocib::build {

std::vector<std::pair<std::string, std::string>> ParseCsvOptions(
    std::string_view text);

}  // namespace ocib::build
