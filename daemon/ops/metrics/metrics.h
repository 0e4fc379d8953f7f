// Metric types shaped like prometheus-cpp's: a Registry of Family<Counter|Gauge|Histogram>, each family
// holding one metric per label set. Add() is where labels are looked up (under a lock, allocating); callers
// keep the returned reference, which stays valid until the family is destroyed or the metric removed.
// Updating a metric (Increment, Set, Observe) is lock-free and allocation-free: plain atomics.
//
//   auto& applied = BuildCounter().Name("cdcsync_rows_applied_total").Help("Rows
//   applied.").Register(registry); Counter& customers_c = applied.Add({{"table", "public.customers"}, {"op",
//   "c"}}); customers_c.Increment();
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cdcsync::metrics {

using Labels = std::map<std::string, std::string>;

enum class MetricType { Counter, Gauge, Histogram };

// What a scrape sees of one metric: `value` for counters and gauges, the rest for histograms.
struct ClientMetric {
  struct Bucket {
    double upper_bound = 0;  // +Inf for the last bucket
    std::uint64_t cumulative_count = 0;
  };
  Labels labels;
  double value = 0;
  std::vector<Bucket> buckets;
  double sum = 0;
  std::uint64_t count = 0;
};

struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::Gauge;
  std::vector<ClientMetric> metrics;
};

// Anything that produces metric families at scrape time (a Registry, the process collector, ...).
class Collectable {
 public:
  virtual ~Collectable() = default;
  virtual std::vector<MetricFamily> Collect() const = 0;
};

class Counter {
 public:
  static constexpr MetricType kType = MetricType::Counter;
  // Counters only go up: a negative or NaN amount is ignored.
  void Increment(double amount = 1.0) noexcept {
    if (amount > 0) value_.fetch_add(amount, std::memory_order_relaxed);
  }
  double Value() const noexcept { return value_.load(std::memory_order_relaxed); }
  ClientMetric Collect() const;

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  static constexpr MetricType kType = MetricType::Gauge;
  explicit Gauge(double initial = 0) : value_(initial) {}
  void Set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  void Increment(double amount = 1.0) noexcept { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Decrement(double amount = 1.0) noexcept { value_.fetch_sub(amount, std::memory_order_relaxed); }
  void SetToCurrentTime() noexcept;  // seconds since the Unix epoch
  double Value() const noexcept { return value_.load(std::memory_order_relaxed); }
  ClientMetric Collect() const;

 private:
  std::atomic<double> value_;
};

class Histogram {
 public:
  static constexpr MetricType kType = MetricType::Histogram;
  using BucketBoundaries = std::vector<double>;

  // Upper bounds, strictly increasing and finite; +Inf is implicit. Throws std::invalid_argument otherwise.
  explicit Histogram(BucketBoundaries bounds);
  // Counts `value` in the first bucket whose upper bound is >= value (le semantics); NaN goes to +Inf.
  void Observe(double value) noexcept;
  ClientMetric Collect() const;

  // Common bucket layouts.
  static BucketBoundaries ExponentialBuckets(double start, double factor, std::size_t count);
  static BucketBoundaries LinearBuckets(double start, double width, std::size_t count);

 private:
  BucketBoundaries bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

namespace detail {
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  virtual MetricFamily Collect() const = 0;
  virtual const std::string& name() const = 0;
};
// Throw std::invalid_argument naming the bad name.
void check_metric_name(std::string_view name, MetricType type);
void check_label_name(std::string_view name, MetricType type);
}  // namespace detail

template <typename T>
class Family final : public detail::FamilyBase {
 public:
  Family(std::string name, std::string help, Labels constant_labels, std::size_t max_series)
      : name_(std::move(name)),
        help_(std::move(help)),
        constant_labels_(std::move(constant_labels)),
        max_series_(max_series) {
    detail::check_metric_name(name_, T::kType);
    for (const auto& [k, v] : constant_labels_) detail::check_label_name(k, T::kType);
  }

  // The metric for `labels`, created with `args` (a Histogram's bucket boundaries) the first time. Returns
  // the existing metric for a label set seen before. Throws std::invalid_argument for a bad or constant label
  // name, std::length_error beyond max_series label sets (label values must come from a bounded set).
  template <typename... Args>
  T& Add(const Labels& labels, Args&&... args) {
    std::lock_guard lock(mutex_);
    if (auto it = metrics_.find(labels); it != metrics_.end()) return *it->second;
    for (const auto& [k, v] : labels) {
      detail::check_label_name(k, T::kType);
      if (constant_labels_.contains(k)) {
        throw std::invalid_argument("metric " + name_ + ": label " + k + " is already a constant label");
      }
    }
    if (metrics_.size() >= max_series_) {
      throw std::length_error("metric " + name_ + ": more than " + std::to_string(max_series_) +
                              " label sets");
    }
    auto& slot = metrics_[labels];
    slot = std::make_unique<T>(std::forward<Args>(args)...);
    return *slot;
  }

  // Forgets a metric; references to it dangle afterwards.
  void Remove(const T* metric) {
    std::lock_guard lock(mutex_);
    std::erase_if(metrics_, [&](const auto& kv) { return kv.second.get() == metric; });
  }

  bool Has(const Labels& labels) const {
    std::lock_guard lock(mutex_);
    return metrics_.contains(labels);
  }

  const std::string& name() const override { return name_; }

  MetricFamily Collect() const override {
    MetricFamily family{.name = name_, .help = help_, .type = T::kType};
    std::lock_guard lock(mutex_);
    family.metrics.reserve(metrics_.size());
    for (const auto& [labels, metric] : metrics_) {
      auto m = metric->Collect();
      m.labels = labels;
      m.labels.insert(constant_labels_.begin(), constant_labels_.end());
      family.metrics.push_back(std::move(m));
    }
    return family;
  }

 private:
  const std::string name_;
  const std::string help_;
  const Labels constant_labels_;
  const std::size_t max_series_;
  mutable std::mutex mutex_;
  std::map<Labels, std::unique_ptr<T>> metrics_;
};

class Registry final : public Collectable {
 public:
  // Families live as long as the registry; names are unique (std::invalid_argument otherwise).
  template <typename T>
  Family<T>& Add(std::string name, std::string help, Labels constant_labels = {},
                 std::size_t max_series = 1000) {
    auto family =
        std::make_unique<Family<T>>(std::move(name), std::move(help), std::move(constant_labels), max_series);
    auto& ref = *family;
    add_family(std::move(family));
    return ref;
  }

  // Families in registration order, each with its metrics in label order.
  std::vector<MetricFamily> Collect() const override;

 private:
  void add_family(std::unique_ptr<detail::FamilyBase> family);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<detail::FamilyBase>> families_;
};

// prometheus-cpp's builder: BuildGauge().Name("x").Help("...").Labels({{"k", "v"}}).Register(registry).
template <typename T>
class Builder {
 public:
  Builder& Name(std::string name) {
    name_ = std::move(name);
    return *this;
  }
  Builder& Help(std::string help) {
    help_ = std::move(help);
    return *this;
  }
  Builder& Labels(metrics::Labels constant_labels) {
    labels_ = std::move(constant_labels);
    return *this;
  }
  Builder& MaxSeries(std::size_t max_series) {
    max_series_ = max_series;
    return *this;
  }
  Family<T>& Register(Registry& registry) {
    return registry.Add<T>(std::move(name_), std::move(help_), std::move(labels_), max_series_);
  }

 private:
  std::string name_;
  std::string help_;
  metrics::Labels labels_;
  std::size_t max_series_ = 1000;
};

inline Builder<Counter> BuildCounter() {
  return {};
}
inline Builder<Gauge> BuildGauge() {
  return {};
}
inline Builder<Histogram> BuildHistogram() {
  return {};
}

// cdcsync_build_info{version="..."} 1, the usual way to expose the running version.
void AddBuildInfo(Registry& registry, std::string_view version);

}  // namespace cdcsync::metrics
