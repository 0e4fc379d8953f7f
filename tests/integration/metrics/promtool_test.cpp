// Prometheus' own linter accepts what /metrics serves (Debian: the prometheus package's /usr/bin/promtool).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "daemon/ops/metrics/process_collector.h"

namespace cdcsync::metrics {
namespace {

struct PromtoolResult {
  int exit_code = -1;
  std::string output;
};

PromtoolResult promtool_check(const std::string& exposition) {
  const auto path = std::filesystem::temp_directory_path() / ("cdcsync-metrics-" + std::to_string(getpid()));
  std::ofstream(path, std::ios::binary) << exposition;
  const std::string command = "promtool check metrics < '" + path.string() + "' 2>&1";
  PromtoolResult result;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, pipe) != nullptr) result.output += buf;
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::filesystem::remove(path);
  return result;
}

TEST(MetricsPromtool, AcceptsTheExpositionOfEveryMetricKind) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool is not installed";
  using namespace prometheus;
  auto registry = std::make_shared<Registry>();
  BuildGauge()
      .Name("cdcsync_build_info")
      .Help("Always 1.")
      .Register(*registry)
      .Add({{"version", "0.1.0"}})
      .Set(1);
  auto& rows = BuildCounter().Name("cdcsync_demo_rows_total").Help("Rows applied.").Register(*registry);
  rows.Add({{"table", "public.customers"}, {"op", "c"}}).Increment(3);
  rows.Add({{"table", "public.\"odd\\name\""}, {"op", "u"}}).Increment();
  BuildGauge()
      .Name("cdcsync_demo_lag_bytes")
      .Help("Bytes behind.")
      .Labels({{"slot", "cdcsync"}})
      .Register(*registry)
      .Add({})
      .Set(4096);
  auto& h = BuildHistogram()
                .Name("cdcsync_demo_apply_seconds")
                .Help("Apply time.")
                .Register(*registry)
                .Add({{"sink", "pg"}}, Histogram::BucketBoundaries{0.001, 0.004, 0.016, 0.064, 0.256, 1.024});
  for (double v : {0.0005, 0.01, 0.3, 5.0}) h.Observe(v);

  std::vector<MetricFamily> families = registry->Collect();
  const auto process = ProcessCollector().Collect();
  families.insert(families.end(), process.begin(), process.end());
  const auto text = TextSerializer().Serialize(families);
  const auto result = promtool_check(text);
  EXPECT_EQ(result.exit_code, 0) << result.output << "\n--- exposition ---\n" << text;
  EXPECT_EQ(result.output, "") << text;  // no lint warnings either
}

}  // namespace
}  // namespace cdcsync::metrics
