// Metrics in the Prometheus text exposition format (version 0.0.4):
// counters, gauges and histograms, each a family with fixed label names,
// plus collectors that report values read at scrape time (process and
// store figures).
//
// Invariants: a family's name and label names are fixed when it is added;
// Render() writes every family in the order added, its help and type
// lines first, label values escaped as the format requires. Label values
// come from the caller: keep them to small fixed sets (an endpoint class,
// a status code), never a repository or user name.
//
// Thread safety: Add* and AddCollector before the first Render(); after
// that With(), Inc(), Set(), Observe() and Render() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ocib::metrics {

using Labels = std::vector<std::string>;  // values, in the family's order

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double v);
  // Cumulative counts per bound (then +Inf), the sum and the count.
  struct Snapshot {
    std::vector<uint64_t> cumulative;
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bound, then +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Where collectors write what they read at scrape time.
class Exposition {
 public:
  // Starts a family: type is "counter", "gauge" or "histogram".
  void Family(const std::string& name, const char* type,
              const std::string& help);
  // A sample of the current family (suffix: "_bucket", "_sum", ... or "").
  void Sample(const std::string& name, const std::vector<std::string>& keys,
              const Labels& values, double v);
  void Sample(const std::string& name, double v) { Sample(name, {}, {}, v); }
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

using Collector = std::function<void(Exposition&)>;

template <class M>
class Family;

class Registry {
 public:
  Registry();
  ~Registry();
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> labels = {});
  Family<Histogram>& AddHistogram(const std::string& name,
                                  const std::string& help,
                                  std::vector<std::string> labels,
                                  std::vector<double> bounds);
  void AddCollector(Collector c);
  std::string Render() const;

 private:
  struct Entry;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// A family: one metric per distinct label values, made on first use and
// kept for the process's life (references stay valid).
template <class M>
class Family {
 public:
  M& With(const Labels& values = {});

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        bounds_(std::move(bounds)) {}
  void Render(Exposition& e) const;

  const std::string name_, help_;
  const std::vector<std::string> labels_;
  const std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<Labels, std::unique_ptr<M>> metrics_;  // guarded by mu_
};

// The standard process_* families (CPU seconds, resident and virtual
// memory, open and maximum file descriptors, start time), read from /proc
// at each scrape.
Collector ProcessCollector();

// Latency buckets in seconds, 1 ms to 60 s.
const std::vector<double>& DefaultSecondsBuckets();

}  // namespace ocib::metrics
