#include "build/csv_options.h"

namespace ocib::build {

std::vector<std::pair<std::string, std::string>> ParseCsvOptions(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view f = text.substr(start, comma == std::string_view::npos
                                                ? std::string_view::npos
                                                : comma - start);
    if (!f.empty()) {
      size_t eq = f.find('=');
      if (eq == std::string_view::npos)
        out.emplace_back(std::string(f), "true");
      else
        out.emplace_back(std::string(f.substr(0, eq)),
                         std::string(f.substr(eq + 1)));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace ocib::build
