// Durations as the config, POST /admin/gc and `ocireg gc --min-age` take
// them, including what a hostile caller could send.
#include "gc/garbage_collector.h"

#include <doctest/doctest.h>

using namespace ocib;

TEST_CASE("durations: units, sums, and bad or huge input refused") {
  CHECK(*gc::ParseDurationSeconds("0s") == 0);
  CHECK(*gc::ParseDurationSeconds("90s") == 90);
  CHECK(*gc::ParseDurationSeconds("15m") == 900);
  CHECK(*gc::ParseDurationSeconds("1h30m") == 5400);
  CHECK(*gc::ParseDurationSeconds("7d") == 7 * 86400);
  for (const char* bad : {"", "1", "h", "1x", "-1s", "1h ", "1.5h", "s1"})
    CHECK_FALSE(gc::ParseDurationSeconds(bad).ok());
  // min_age is multiplied by 10^6: sums past 100 years must not overflow.
  CHECK_FALSE(gc::ParseDurationSeconds("36501d").ok());
  std::string many;
  for (int i = 0; i < 5000; ++i) many += "3000000000d";
  CHECK_FALSE(gc::ParseDurationSeconds(many).ok());
  CHECK_FALSE(gc::ParseDurationSeconds("99999999999999999999s").ok());
}
