// The Prometheus text format as ocireg writes it: escaping, histograms,
// families without samples; promtool checks the real output in
// tests/ops/metrics_test.sh.
#include "metrics/metrics.h"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using namespace ocib::metrics;

TEST_CASE("counters and gauges render with escaped label values") {
  Registry r;
  auto& c = r.AddCounter("x_total", "Things.\nSecond line \\ too.", {"kind"});
  c.With({"a\"b\\c\nd"}).Inc(3);
  r.AddGauge("g", "A gauge.").With().Set(2.5);
  std::string out = r.Render();
  CHECK(out.find("# HELP x_total Things.\\nSecond line \\\\ too.\n") !=
        std::string::npos);
  CHECK(out.find("# TYPE x_total counter\n") != std::string::npos);
  CHECK(out.find("x_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n") != std::string::npos);
  CHECK(out.find("g 2.5\n") != std::string::npos);
}

TEST_CASE("histograms are cumulative, with +Inf, sum and count") {
  Registry r;
  auto& h = r.AddHistogram("d_seconds", "Durations.", {"op"}, {0.1, 1});
  h.With({"get"}).Observe(0.05);
  h.With({"get"}).Observe(0.5);
  h.With({"get"}).Observe(5);
  std::string out = r.Render();
  CHECK(out.find("d_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("d_seconds_bucket{op=\"get\",le=\"1\"} 2\n") !=
        std::string::npos);
  CHECK(out.find("d_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n") !=
        std::string::npos);
  CHECK(out.find("d_seconds_sum{op=\"get\"} 5.55\n") != std::string::npos);
  CHECK(out.find("d_seconds_count{op=\"get\"} 3\n") != std::string::npos);
}

TEST_CASE("concurrent increments are all counted") {
  Registry r;
  auto& c = r.AddCounter("n_total", "N.", {"t"});
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int j = 0; j < 10000; ++j) c.With({"same"}).Inc();
    });
  for (auto& t : ts) t.join();
  CHECK(r.Render().find("n_total{t=\"same\"} 40000\n") != std::string::npos);
}

TEST_CASE("collectors write their families at render time") {
  Registry r;
  int calls = 0;
  r.AddCollector([&](Exposition& e) {
    ++calls;
    e.Family("c_now", "gauge", "Read at scrape.");
    e.Sample("c_now", calls);
  });
  r.AddCollector(ProcessCollector());
  CHECK(r.Render().find("c_now 1\n") != std::string::npos);
  std::string out = r.Render();
  CHECK(out.find("c_now 2\n") != std::string::npos);
  CHECK(out.find("process_resident_memory_bytes ") != std::string::npos);
  CHECK(out.find("process_open_fds ") != std::string::npos);
}
