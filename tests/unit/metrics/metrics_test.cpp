#include "daemon/ops/metrics/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

namespace cdcsync::metrics {
namespace {

TEST(MetricsFamily, AddReturnsTheSameMetricForTheSameLabels) {
  Registry registry;
  auto& family = BuildCounter().Name("rows_total").Help("Rows.").Register(registry);
  auto& a = family.Add({{"table", "public.customers"}, {"op", "c"}});
  auto& b = family.Add({{"op", "c"}, {"table", "public.customers"}});
  auto& other = family.Add({{"table", "public.customers"}, {"op", "u"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
  a.Increment(2);
  EXPECT_EQ(b.Value(), 2);
  EXPECT_TRUE(family.Has({{"op", "u"}, {"table", "public.customers"}}));
  family.Remove(&other);
  EXPECT_FALSE(family.Has({{"op", "u"}, {"table", "public.customers"}}));
}

TEST(MetricsFamily, ReferencesStayValidAsTheFamilyGrows) {
  Registry registry;
  auto& family = BuildGauge().Name("g").Help("G.").Register(registry);
  auto& first = family.Add({{"i", "0"}});
  first.Set(42);
  for (int i = 1; i < 500; ++i) family.Add({{"i", std::to_string(i)}});
  EXPECT_EQ(first.Value(), 42);
  EXPECT_EQ(&first, &family.Add({{"i", "0"}}));
}

TEST(MetricsFamily, RefusesBadNames) {
  Registry registry;
  EXPECT_THROW(BuildCounter().Name("rows").Help("x").Register(registry), std::invalid_argument);  // no _total
  EXPECT_THROW(BuildGauge().Name("lag_total").Help("x").Register(registry), std::invalid_argument);
  EXPECT_THROW(BuildGauge().Name("1lag").Help("x").Register(registry), std::invalid_argument);
  EXPECT_THROW(BuildGauge().Name("lag-bytes").Help("x").Register(registry), std::invalid_argument);
  auto& g = BuildGauge().Name("lag").Help("x").Labels({{"slot", "s"}}).Register(registry);
  EXPECT_THROW(g.Add({{"bad-label", "x"}}), std::invalid_argument);
  EXPECT_THROW(g.Add({{"__reserved", "x"}}), std::invalid_argument);
  EXPECT_THROW(g.Add({{"slot", "again"}}), std::invalid_argument);
  auto& h = BuildHistogram().Name("secs").Help("x").Register(registry);
  EXPECT_THROW(h.Add({{"le", "1"}}, Histogram::BucketBoundaries{1}), std::invalid_argument);
  EXPECT_THROW(BuildGauge().Name("lag").Help("again").Register(registry), std::invalid_argument);
}

TEST(MetricsFamily, BoundsTheNumberOfLabelSets) {
  Registry registry;
  auto& family = BuildCounter().Name("errors_total").Help("x").MaxSeries(2).Register(registry);
  family.Add({{"k", "a"}});
  family.Add({{"k", "b"}});
  family.Add({{"k", "a"}});  // existing: fine
  EXPECT_THROW(family.Add({{"k", "c"}}), std::length_error);
}

TEST(MetricsCounter, IgnoresNegativeAmounts) {
  Counter c;
  c.Increment();
  c.Increment(-5);
  c.Increment(0.5);
  EXPECT_EQ(c.Value(), 1.5);
}

TEST(MetricsGauge, SetsIncrementsAndDecrements) {
  Gauge g;
  g.Set(10);
  g.Increment(5);
  g.Decrement(20);
  EXPECT_EQ(g.Value(), -5);
  g.SetToCurrentTime();
  EXPECT_GT(g.Value(), 1.6e9);
}

TEST(MetricsCounter, ConcurrentIncrementsFromThreadsSumExactly) {
  Registry registry;
  auto& family = BuildCounter().Name("events_total").Help("x").Register(registry);
  auto& counter = family.Add({{"op", "c"}});
  auto& histogram = BuildHistogram().Name("sizes").Help("x").Register(registry).Add(
      {}, Histogram::BucketBoundaries{10, 100});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        counter.Increment();
        histogram.Observe(i % 200);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.Value(), kThreads * kPerThread);
  const auto m = histogram.Collect();
  EXPECT_EQ(m.count, static_cast<std::uint64_t>(kThreads * kPerThread));
  // 0..10 -> 11 of every 200, 0..100 -> 101 of every 200.
  EXPECT_EQ(m.buckets[0].cumulative_count, static_cast<std::uint64_t>(kThreads * kPerThread / 200 * 11));
  EXPECT_EQ(m.buckets[1].cumulative_count, static_cast<std::uint64_t>(kThreads * kPerThread / 200 * 101));
}

TEST(MetricsHistogram, CountsIntoLeBucketsCumulatively) {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 50.0, 500.0}) h.Observe(v);
  const auto m = h.Collect();
  ASSERT_EQ(m.buckets.size(), 4u);
  EXPECT_EQ(m.buckets[0].upper_bound, 0.1);
  EXPECT_EQ(m.buckets[0].cumulative_count, 2u);  // 0.05, 0.1 (le is inclusive)
  EXPECT_EQ(m.buckets[1].cumulative_count, 4u);  // + 0.5, 1.0
  EXPECT_EQ(m.buckets[2].cumulative_count, 5u);  // + 5
  EXPECT_TRUE(std::isinf(m.buckets[3].upper_bound));
  EXPECT_EQ(m.buckets[3].cumulative_count, 7u);
  EXPECT_EQ(m.count, 7u);
  EXPECT_DOUBLE_EQ(m.sum, 556.65);
}

TEST(MetricsHistogram, RefusesUnsortedOrInfiniteBounds) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_NO_THROW(Histogram({}));
}

TEST(MetricsHistogram, BuildsExponentialAndLinearBuckets) {
  EXPECT_EQ(Histogram::ExponentialBuckets(0.001, 10, 4),
            (Histogram::BucketBoundaries{0.001, 0.01, 0.1, 1.0}));
  EXPECT_EQ(Histogram::LinearBuckets(1, 2, 3), (Histogram::BucketBoundaries{1, 3, 5}));
}

TEST(MetricsBuildInfo, IsAGaugeOfOneLabelledWithTheVersion) {
  Registry registry;
  AddBuildInfo(registry, "0.1.0");
  const auto families = registry.Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "cdcsync_build_info");
  EXPECT_EQ(families[0].type, MetricType::Gauge);
  ASSERT_EQ(families[0].metrics.size(), 1u);
  EXPECT_EQ(families[0].metrics[0].labels, (Labels{{"version", "0.1.0"}}));
  EXPECT_EQ(families[0].metrics[0].value, 1);
}

}  // namespace
}  // namespace cdcsync::metrics
