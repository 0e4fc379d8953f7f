// A copy's progress: the bar on a terminal, log lines otherwise.
#include "daemon/ops/load_progress.h"

#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "daemon/ops/logging.h"

namespace cdcsync {
namespace {

// 1234567 -> "1,234,567"
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// 75 -> "1m15s", 7 -> "7s"
std::string duration(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  if (s >= 3600) return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

// The fraction done: rows over the estimate while some rows are left, 1 once every table is done.
std::optional<double> fraction(const ProgressTotals& t) {
  if (t.tables > 0 && t.tables_done == t.tables) return 1.0;
  if (!t.estimate || *t.estimate == 0) return std::nullopt;
  return std::min(0.999, static_cast<double>(t.rows) / static_cast<double>(*t.estimate));
}

}  // namespace

std::optional<double> ProgressTotals::eta_seconds() const {
  if (tables > 0 && tables_done == tables) return 0.0;
  if (!estimate || rows_per_second() <= 0) return std::nullopt;
  const double left = *estimate > rows ? static_cast<double>(*estimate - rows) : 0.0;
  return left / rows_per_second();
}

ProgressTotals totals_of(const LoadProgressView& v) {
  ProgressTotals t;
  t.seconds = std::chrono::duration<double>(v.elapsed).count();
  t.tables = v.tables.size();
  std::uint64_t estimate = 0;
  bool known = true;
  for (const auto& table : v.tables) {
    t.rows += table.rows;
    if (table.done) {
      ++t.tables_done;
      estimate += table.rows;  // a finished table's rows are its count
    } else if (table.estimate) {
      estimate += std::max(*table.estimate, table.rows);
    } else {
      known = false;
    }
  }
  if (known) t.estimate = estimate;
  return t;
}

std::string render_progress_bar(const LoadProgressView& v, std::size_t width) {
  const ProgressTotals t = totals_of(v);
  const auto f = fraction(t);
  std::string tail = "  " + (f ? std::to_string(static_cast<int>(*f * 100)) + "%" : std::string("?%")) +
                     "  " + grouped(t.rows) + (t.estimate ? "/" + grouped(*t.estimate) : std::string()) +
                     " rows  " + grouped(static_cast<std::uint64_t>(t.rows_per_second())) + " rows/s";
  if (!v.finished) {
    const auto eta = t.eta_seconds();
    tail += "  ETA " + (eta ? duration(*eta) : std::string("?"));
  } else {
    tail += "  in " + duration(t.seconds);
  }
  tail += "  " + std::to_string(t.tables_done) + "/" + std::to_string(t.tables) + " tables";
  constexpr std::size_t kCells = 24;  // the bar keeps its size; a narrow terminal cuts the tail
  const std::size_t filled = f ? static_cast<std::size_t>(*f * static_cast<double>(kCells)) : 0;
  std::string bar = "snapshot [" + std::string(filled, '#') + std::string(kCells - filled, '.') + "]" + tail;
  if (width > 0 && bar.size() > width) bar.resize(width);
  return bar;
}

std::string render_progress_line(const LoadProgressView& v) {
  const ProgressTotals t = totals_of(v);
  std::string out = "snapshot: " + std::to_string(t.rows) + " rows";
  if (t.estimate) {
    const auto f = fraction(t);
    out += " of ~" + std::to_string(*t.estimate) + " (" +
           std::to_string(static_cast<int>(f.value_or(0) * 100)) + "%)";
  }
  out += ", " + std::to_string(static_cast<std::uint64_t>(t.rows_per_second())) + " rows/s";
  if (!v.finished) {
    const auto eta = t.eta_seconds();
    out += ", ETA " + (eta ? duration(*eta) : std::string("unknown"));
  }
  out += "; " + std::to_string(t.tables_done) + " of " + std::to_string(t.tables) + " tables done";
  return out;
}

LoadProgressDisplay::Style LoadProgressDisplay::style_for_stderr(config::LogFormat format) {
  return format == config::LogFormat::Text && isatty(STDERR_FILENO) == 1 ? Style::Bar : Style::Lines;
}

LoadProgressDisplay::LoadProgressDisplay(Style style, std::chrono::milliseconds every)
    : style_(style), every_(every) {
  winsize ws{};
  if (style_ == Style::Bar && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) {
    width_ = std::min<std::size_t>(ws.ws_col - 1, 120);
  }
}

LoadProgressDisplay::~LoadProgressDisplay() {
  if (style_ == Style::Bar) logging::end_status_line(true);
}

void LoadProgressDisplay::show(const LoadProgressView& v) {
  if (style_ == Style::Bar) {
    logging::set_status_line(render_progress_bar(v, width_));
    if (v.finished) logging::end_status_line(true);
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (last_line_ == std::chrono::steady_clock::time_point{}) last_line_ = now;
  if (v.finished || now - last_line_ >= every_) {
    spdlog::info("{}", render_progress_line(v));
    last_line_ = now;
  }
}

}  // namespace cdcsync
