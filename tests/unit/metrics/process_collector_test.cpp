#include "daemon/ops/metrics/process_collector.h"

#include <gtest/gtest.h>

#include <ctime>
#include <map>

namespace cdcsync::metrics {
namespace {

TEST(MetricsProcessCollector, ReportsThisProcessFromProc) {
  ProcessCollector collector;
  std::map<std::string, MetricFamily> by_name;
  for (auto& f : collector.Collect()) by_name[f.name] = f;
  for (const auto* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                           "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes"}) {
    ASSERT_TRUE(by_name.contains(name)) << name;
    ASSERT_EQ(by_name[name].metrics.size(), 1u) << name;
  }
  EXPECT_EQ(by_name["process_cpu_seconds_total"].type, MetricType::Counter);
  EXPECT_GE(by_name["process_cpu_seconds_total"].metrics[0].value, 0);
  EXPECT_GT(by_name["process_resident_memory_bytes"].metrics[0].value, 1 << 20);
  EXPECT_GE(by_name["process_open_fds"].metrics[0].value, 3);  // stdin, stdout, stderr
  const double start = by_name["process_start_time_seconds"].metrics[0].value;
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);  // this test binary started recently
}

}  // namespace
}  // namespace cdcsync::metrics
