#include "daemon/ops/metrics/process_collector.h"

#include <gtest/gtest.h>

#include <ctime>
#include <map>

namespace cdcsync::metrics {
namespace {

TEST(MetricsProcessCollector, ReportsThisProcessFromProc) {
  ProcessCollector collector;
  std::map<std::string, prometheus::MetricFamily> by_name;
  for (auto& f : collector.Collect()) by_name[f.name] = f;
  for (const auto* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                           "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes"}) {
    ASSERT_TRUE(by_name.contains(name)) << name;
    ASSERT_EQ(by_name[name].metric.size(), 1u) << name;
  }
  EXPECT_EQ(by_name["process_cpu_seconds_total"].type, prometheus::MetricType::Counter);
  EXPECT_GE(by_name["process_cpu_seconds_total"].metric[0].counter.value, 0);
  EXPECT_GT(by_name["process_resident_memory_bytes"].metric[0].gauge.value, 1 << 20);
  EXPECT_GE(by_name["process_open_fds"].metric[0].gauge.value, 3);  // stdin, stdout, stderr
  const double start = by_name["process_start_time_seconds"].metric[0].gauge.value;
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);  // this test binary started recently
}

}  // namespace
}  // namespace cdcsync::metrics
