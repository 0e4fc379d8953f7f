// The standard process_* metrics, read from /proc/self at scrape time (prometheus-cpp has no process
// collector of its own).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace cdcsync::metrics {

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds. A value that cannot be read is left out of the scrape.
class ProcessCollector final : public prometheus::Collectable {
 public:
  ProcessCollector();
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  double boot_time_seconds_ = 0;  // btime from /proc/stat; fixed while the machine runs
};

}  // namespace cdcsync::metrics
