#include "metrics/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace ocib::metrics {
namespace {

// Label values: backslash, double quote and line feed are escaped.
void AppendEscaped(std::string* out, const std::string& v) {
  for (char c : v) {
    if (c == '\\')
      *out += "\\\\";
    else if (c == '"')
      *out += "\\\"";
    else if (c == '\n')
      *out += "\\n";
    else
      *out += c;
  }
}

// HELP text: backslash and line feed are escaped.
std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

}  // namespace

void Gauge::Add(double d) { v_.fetch_add(d, std::memory_order_relaxed); }

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_->size() && v > (*bounds_)[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  s.count = total;  // consistent with the buckets
  return s;
}

void Exposition::Family(const std::string& name, const char* type,
                        const std::string& help) {
  out_ += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  out_ += "# TYPE " + name + " " + type + "\n";
}

void Exposition::Sample(const std::string& name,
                        const std::vector<std::string>& keys,
                        const Labels& values, double v) {
  out_ += name;
  if (!keys.empty()) {
    out_ += '{';
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i) out_ += ',';
      out_ += keys[i] + "=\"";
      AppendEscaped(&out_, i < values.size() ? values[i] : "");
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ' + FormatValue(v) + '\n';
}

template <class M>
M& Family<M>::With(const Labels& values) {
  std::lock_guard<std::mutex> l(mu_);
  auto& m = metrics_[values];
  if (!m) {
    if constexpr (std::is_same_v<M, Histogram>)
      m = std::make_unique<M>(&bounds_);
    else
      m = std::make_unique<M>();
  }
  return *m;
}

template <class M>
void Family<M>::Render(Exposition& e) const {
  const char* type = std::is_same_v<M, Counter> ? "counter"
                     : std::is_same_v<M, Gauge> ? "gauge"
                                                : "histogram";
  e.Family(name_, type, help_);
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [values, m] : metrics_) {
    if constexpr (std::is_same_v<M, Histogram>) {
      auto s = m->snapshot();
      std::vector<std::string> keys = labels_;
      keys.push_back("le");
      for (size_t i = 0; i <= bounds_.size(); ++i) {
        Labels v = values;
        v.push_back(i < bounds_.size() ? FormatValue(bounds_[i]) : "+Inf");
        e.Sample(name_ + "_bucket", keys, v,
                 static_cast<double>(s.cumulative[i]));
      }
      e.Sample(name_ + "_sum", labels_, values, s.sum);
      e.Sample(name_ + "_count", labels_, values, static_cast<double>(s.count));
    } else {
      e.Sample(name_, labels_, values, static_cast<double>(m->value()));
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct Registry::Entry {
  std::unique_ptr<Family<Counter>> counter;
  std::unique_ptr<Family<Gauge>> gauge;
  std::unique_ptr<Family<Histogram>> histogram;
  Collector collector;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Family<Counter>& Registry::AddCounter(const std::string& name,
                                      const std::string& help,
                                      std::vector<std::string> labels) {
  auto e = std::make_unique<Entry>();
  e->counter.reset(new Family<Counter>(name, help, std::move(labels)));
  entries_.push_back(std::move(e));
  return *entries_.back()->counter;
}

Family<Gauge>& Registry::AddGauge(const std::string& name,
                                  const std::string& help,
                                  std::vector<std::string> labels) {
  auto e = std::make_unique<Entry>();
  e->gauge.reset(new Family<Gauge>(name, help, std::move(labels)));
  entries_.push_back(std::move(e));
  return *entries_.back()->gauge;
}

Family<Histogram>& Registry::AddHistogram(const std::string& name,
                                          const std::string& help,
                                          std::vector<std::string> labels,
                                          std::vector<double> bounds) {
  auto e = std::make_unique<Entry>();
  e->histogram.reset(
      new Family<Histogram>(name, help, std::move(labels), std::move(bounds)));
  entries_.push_back(std::move(e));
  return *entries_.back()->histogram;
}

void Registry::AddCollector(Collector c) {
  auto e = std::make_unique<Entry>();
  e->collector = std::move(c);
  entries_.push_back(std::move(e));
}

std::string Registry::Render() const {
  Exposition e;
  for (const auto& entry : entries_) {
    if (entry->counter) entry->counter->Render(e);
    if (entry->gauge) entry->gauge->Render(e);
    if (entry->histogram) entry->histogram->Render(e);
    if (entry->collector) entry->collector(e);
  }
  return e.text();
}

const std::vector<double>& DefaultSecondsBuckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,  0.1,    0.25,  0.5,  1,
                                        2.5,   5,      10,    30,   60};
  return b;
}

Collector ProcessCollector() {
  return [](Exposition& e) {
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    // /proc/self/stat: fields after the parenthesised command name.
    std::ifstream f("/proc/self/stat");
    std::string all((std::istreambuf_iterator<char>(f)),
                    std::istreambuf_iterator<char>());
    size_t close = all.rfind(')');
    std::vector<std::string> fields;
    if (close != std::string::npos) {
      std::istringstream in(all.substr(close + 2));
      for (std::string w; in >> w;) fields.push_back(w);
    }
    // fields[0] is field 3 (state): utime 14, stime 15, starttime 22,
    // vsize 23, rss 24.
    auto field = [&](size_t n) {
      return n - 3 < fields.size() ? std::atof(fields[n - 3].c_str()) : 0.0;
    };
    double boot = 0;
    std::ifstream st("/proc/stat");
    for (std::string line; std::getline(st, line);)
      if (line.rfind("btime ", 0) == 0) boot = std::atof(line.c_str() + 6);
    int fds = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (dirent* ent = readdir(d))
        if (ent->d_name[0] != '.') ++fds;
      closedir(d);
      --fds;  // the directory's own descriptor
    }
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    e.Family("process_cpu_seconds_total", "counter",
             "User and system CPU time spent in seconds.");
    e.Sample("process_cpu_seconds_total", (field(14) + field(15)) / ticks);
    e.Family("process_resident_memory_bytes", "gauge",
             "Resident memory size in bytes.");
    e.Sample("process_resident_memory_bytes", field(24) * page);
    e.Family("process_virtual_memory_bytes", "gauge",
             "Virtual memory size in bytes.");
    e.Sample("process_virtual_memory_bytes", field(23));
    e.Family("process_open_fds", "gauge", "Number of open file descriptors.");
    e.Sample("process_open_fds", fds);
    e.Family("process_max_fds", "gauge",
             "Maximum number of open file descriptors.");
    e.Sample("process_max_fds", static_cast<double>(rl.rlim_cur));
    e.Family("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.");
    e.Sample("process_start_time_seconds", boot + field(22) / ticks);
  };
}

}  // namespace ocib::metrics
