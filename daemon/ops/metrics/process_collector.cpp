#include "daemon/ops/metrics/process_collector.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace cdcsync::metrics {
namespace {

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses): index 0 is
// field 3 (state) in proc(5) numbering.
std::optional<std::vector<std::string>> stat_fields(const std::filesystem::path& proc_self) {
  const auto text = read_file(proc_self / "stat");
  if (!text) return std::nullopt;
  const auto close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text->substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() < 22) return std::nullopt;
  return fields;
}

prometheus::MetricFamily single(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric m;
  (type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value) = value;
  return prometheus::MetricFamily{
      .name = std::move(name), .help = std::move(help), .type = type, .metric = {m}};
}

}  // namespace

ProcessCollector::ProcessCollector() {
  if (const auto text = read_file("/proc/stat")) {
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("btime ")) boot_time_seconds_ = std::stod(line.substr(6));
    }
  }
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (const auto f = stat_fields("/proc/self"); f && ticks > 0) {
    // proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24 -> indices 11, 12, 19, 20, 21.
    try {
      out.push_back(single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                           MetricType::Counter, (std::stod((*f)[11]) + std::stod((*f)[12])) / ticks));
      out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.",
                           MetricType::Gauge, std::stod((*f)[21]) * page_size));
      out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
                           std::stod((*f)[20])));
      if (boot_time_seconds_ > 0) {
        out.push_back(single("process_start_time_seconds",
                             "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                             boot_time_seconds_ + std::stod((*f)[19]) / ticks));
      }
    } catch (const std::exception&) {
      // A malformed stat line: leave these out rather than fail the whole scrape.
    }
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec))
    ++fds;
  if (!ec && fds > 0) {
    // The iterator's own directory descriptor is listed too.
    out.push_back(single("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(fds - 1)));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(single("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace cdcsync::metrics
