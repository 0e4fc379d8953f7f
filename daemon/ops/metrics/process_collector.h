// The standard process_* metrics, read from /proc/self at scrape time.
#pragma once

#include <vector>

#include "daemon/ops/metrics/metrics.h"

namespace cdcsync::metrics {

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds. A value that cannot be read is left out of the scrape.
class ProcessCollector final : public Collectable {
 public:
  ProcessCollector();
  std::vector<MetricFamily> Collect() const override;

 private:
  double boot_time_seconds_ = 0;  // btime from /proc/stat; fixed while the machine runs
};

}  // namespace cdcsync::metrics
