// How a copy's progress is shown (the initial snapshot, resync, verify --repair): on a terminal a progress
// bar redrawn in place on stderr (rows, rows/s, ETA from the tables' estimates); otherwise a log line every
// few seconds. Fed by the bulk loader's LoadProgressView (daemon/core/bulk_load.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "daemon/config/config.h"
#include "daemon/core/bulk_load.h"

namespace cdcsync {

// Totals of a view: rows so far, the estimate (nullopt while a table's is unknown), tables done.
struct ProgressTotals {
  std::uint64_t rows = 0;
  std::optional<std::uint64_t> estimate;
  std::size_t tables = 0;
  std::size_t tables_done = 0;
  double seconds = 0;
  double rows_per_second() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
  // Seconds left at the average rate so far; nullopt without an estimate or a rate.
  std::optional<double> eta_seconds() const;
};
ProgressTotals totals_of(const LoadProgressView& v);

// "snapshot [#########...........]  45%  2,250,000/5,000,000 rows  412,345 rows/s  ETA 7s  0/1 tables",
// `width` columns at most.
std::string render_progress_bar(const LoadProgressView& v, std::size_t width);
// "snapshot: 2250000 of ~5000000 rows (45%), 412345 rows/s, ETA 7 s; 0 of 1 tables done"
std::string render_progress_line(const LoadProgressView& v);

class LoadProgressDisplay {
 public:
  enum class Style { Bar, Lines };
  // A bar when stderr is a terminal and the logs are text; log lines otherwise.
  static Style style_for_stderr(config::LogFormat format);

  // Lines: one every `every`, and one at the end. Bar: while it is shown, the daemon's log lines are
  // written above it (the bar is cleared before each and drawn again after it).
  explicit LoadProgressDisplay(Style style, std::chrono::milliseconds every = std::chrono::seconds(5));
  ~LoadProgressDisplay();  // gives the log its own output back
  LoadProgressDisplay(const LoadProgressDisplay&) = delete;
  LoadProgressDisplay& operator=(const LoadProgressDisplay&) = delete;

  void show(const LoadProgressView& v);

 private:
  Style style_;
  std::chrono::milliseconds every_;
  std::chrono::steady_clock::time_point last_line_{};
  std::size_t width_ = 100;  // the terminal's columns
};

}  // namespace cdcsync
