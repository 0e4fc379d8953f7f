#include "daemon/ops/metrics/text_format.h"

#include <gtest/gtest.h>

#include <limits>

namespace cdcsync::metrics {
namespace {

TEST(MetricsTextFormat, MatchesTheGoldenExposition) {
  Registry registry;
  auto& rows = BuildCounter().Name("demo_rows_total").Help("Rows applied.").Register(registry);
  rows.Add({{"table", "public.customers"}, {"op", "c"}}).Increment(3);
  rows.Add({{"table", "public.customers"}, {"op", "u"}}).Increment();
  BuildGauge()
      .Name("demo_lag_bytes")
      .Help("Bytes of WAL\nbehind, \\ escaped.")
      .Labels({{"slot", "cdcsync"}})
      .Register(registry)
      .Add({{"note", "say \"hi\"\\n\n"}})
      .Set(1.5);
  auto& latency = BuildHistogram().Name("demo_apply_seconds").Help("Batch apply time.").Register(registry);
  auto& h = latency.Add({{"sink", "pg"}}, Histogram::BucketBoundaries{0.005, 0.5, 1});
  h.Observe(0.001);
  h.Observe(0.25);
  h.Observe(2);
  BuildGauge().Name("demo_empty").Help("No metrics yet.").Register(registry);

  EXPECT_EQ(SerializeText(registry.Collect()),
            "# HELP demo_rows_total Rows applied.\n"
            "# TYPE demo_rows_total counter\n"
            "demo_rows_total{op=\"c\",table=\"public.customers\"} 3\n"
            "demo_rows_total{op=\"u\",table=\"public.customers\"} 1\n"
            "# HELP demo_lag_bytes Bytes of WAL\\nbehind, \\\\ escaped.\n"
            "# TYPE demo_lag_bytes gauge\n"
            "demo_lag_bytes{note=\"say \\\"hi\\\"\\\\n\\n\",slot=\"cdcsync\"} 1.5\n"
            "# HELP demo_apply_seconds Batch apply time.\n"
            "# TYPE demo_apply_seconds histogram\n"
            "demo_apply_seconds_bucket{sink=\"pg\",le=\"0.005\"} 1\n"
            "demo_apply_seconds_bucket{sink=\"pg\",le=\"0.5\"} 2\n"
            "demo_apply_seconds_bucket{sink=\"pg\",le=\"1\"} 2\n"
            "demo_apply_seconds_bucket{sink=\"pg\",le=\"+Inf\"} 3\n"
            "demo_apply_seconds_sum{sink=\"pg\"} 2.251\n"
            "demo_apply_seconds_count{sink=\"pg\"} 3\n");
}

TEST(MetricsTextFormat, WritesUnlabelledSamplesWithoutBraces) {
  Registry registry;
  BuildGauge().Name("up_seconds").Help("x").Register(registry).Add({}).Set(2);
  EXPECT_EQ(SerializeText(registry.Collect()),
            "# HELP up_seconds x\n# TYPE up_seconds gauge\nup_seconds 2\n");
}

TEST(MetricsTextFormat, FormatsSpecialAndLargeValues) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(123456789012.0), "123456789012");
}

}  // namespace
}  // namespace cdcsync::metrics
