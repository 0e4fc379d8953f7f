#include "daemon/ops/metrics/metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace cdcsync::metrics {
namespace detail {
namespace {

bool name_char(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (allow_colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

}  // namespace

void check_metric_name(std::string_view name, MetricType type) {
  if (!valid_name(name, /*allow_colon=*/true)) {
    throw std::invalid_argument("metric name '" + std::string(name) +
                                "' must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  if (type == MetricType::Counter && !name.ends_with("_total")) {
    throw std::invalid_argument("counter name '" + std::string(name) + "' must end in _total");
  }
  if (type != MetricType::Counter && name.ends_with("_total")) {
    throw std::invalid_argument("only counter names end in _total: '" + std::string(name) + "'");
  }
}

void check_label_name(std::string_view name, MetricType type) {
  if (!valid_name(name, /*allow_colon=*/false) || name.starts_with("__")) {
    throw std::invalid_argument("label name '" + std::string(name) +
                                "' must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __");
  }
  if (type == MetricType::Histogram && name == "le") {
    throw std::invalid_argument("label name 'le' is reserved for histogram buckets");
  }
}

}  // namespace detail

ClientMetric Counter::Collect() const {
  return ClientMetric{.value = Value()};
}

void Gauge::SetToCurrentTime() noexcept {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  Set(std::chrono::duration<double>(now).count());
}

ClientMetric Gauge::Collect() const {
  return ClientMetric{.value = Value()};
}

Histogram::Histogram(BucketBoundaries bounds) : bounds_(std::move(bounds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) throw std::invalid_argument("histogram bucket bounds must be finite");
    if (i > 0 && bounds_[i] <= bounds_[i - 1]) {
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing");
    }
  }
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::Observe(double value) noexcept {
  const auto index = std::isnan(value)
                         ? bounds_.size()
                         : static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                                    bounds_.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

ClientMetric Histogram::Collect() const {
  // count is the sum of the buckets read here, so the +Inf bucket always equals _count in one scrape.
  ClientMetric m;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    m.buckets.push_back(
        {.upper_bound = i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity(),
         .cumulative_count = cumulative});
  }
  m.count = cumulative;
  m.sum = sum_.load(std::memory_order_relaxed);
  return m;
}

Histogram::BucketBoundaries Histogram::ExponentialBuckets(double start, double factor, std::size_t count) {
  if (start <= 0 || factor <= 1 || count == 0) {
    throw std::invalid_argument("exponential buckets need start > 0, factor > 1, count >= 1");
  }
  BucketBoundaries b;
  for (double v = start; b.size() < count; v *= factor) b.push_back(v);
  return b;
}

Histogram::BucketBoundaries Histogram::LinearBuckets(double start, double width, std::size_t count) {
  if (width <= 0 || count == 0) throw std::invalid_argument("linear buckets need width > 0, count >= 1");
  BucketBoundaries b;
  for (std::size_t i = 0; i < count; ++i) b.push_back(start + width * static_cast<double>(i));
  return b;
}

std::vector<MetricFamily> Registry::Collect() const {
  std::lock_guard lock(mutex_);
  std::vector<MetricFamily> out;
  out.reserve(families_.size());
  for (const auto& f : families_) out.push_back(f->Collect());
  return out;
}

void Registry::add_family(std::unique_ptr<detail::FamilyBase> family) {
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    if (f->name() == family->name())
      throw std::invalid_argument("metric " + family->name() + " registered twice");
  }
  families_.push_back(std::move(family));
}

void AddBuildInfo(Registry& registry, std::string_view version) {
  BuildGauge()
      .Name("cdcsync_build_info")
      .Help("Always 1; the labels name the running cdcsync build.")
      .Register(registry)
      .Add({{"version", std::string(version)}})
      .Set(1);
}

}  // namespace cdcsync::metrics
