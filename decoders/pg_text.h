// Calendar and hex helpers for reading PostgreSQL's text output, shared by the Debezium encoder
// (decoders/debezium/) and COPY's binary encoders (sinks/copy_binary.cpp).
#pragma once

#include <chrono>
#include <cstdint>

namespace cdcsync {

inline constexpr std::int32_t kPgEpochUnixDays = 10'957;  // 1970-01-01 → 2000-01-01, PostgreSQL's epoch

// Integer division rounding toward negative infinity (times before 1970 stay on the right day and second).
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

namespace pg_text_detail {

// std::chrono::year spans -32767..32767 while PostgreSQL's dates reach 5874897 AD (and parsers meet longer
// years in malformed text). The proleptic Gregorian calendar repeats every 400 years, which are 146,097
// days: years out of chrono's range are moved into it by whole cycles and moved back afterwards.
inline constexpr std::int64_t kDaysPer400Years = 146'097;
inline constexpr std::int64_t kChronoYearLimit = 32'000;
inline constexpr std::int64_t kChronoDayLimit = 10'000'000;  // about years -25400 and 29300

}  // namespace pg_text_detail

// Days since 1970-01-01 of a date in the proleptic Gregorian calendar, astronomical year numbering (1 BC is
// year 0). Linear in `d`: a day past the month's end counts on into the next month, as C++ does for a
// year_month_day that is not ok() (PostgreSQL never prints one).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  using namespace std::chrono;
  using pg_text_detail::kChronoYearLimit, pg_text_detail::kDaysPer400Years;
  std::int64_t cycles = 0;
  if (y < -kChronoYearLimit || y > kChronoYearLimit) {
    cycles = floor_div(y, 400);
    y -= cycles * 400;
  }
  const sys_days first{year{static_cast<int>(y)} / month{m} / day{1}};
  return first.time_since_epoch().count() + static_cast<std::int64_t>(d) - 1 + cycles * kDaysPer400Years;
}

struct CivilDate {
  std::int64_t year = 1970;  // astronomical numbering
  unsigned month = 1;
  unsigned day = 1;
};

// The inverse of days_from_civil for any number of days.
constexpr CivilDate civil_from_days(std::int64_t days) {
  using namespace std::chrono;
  using pg_text_detail::kChronoDayLimit, pg_text_detail::kDaysPer400Years;
  std::int64_t cycles = 0;
  if (days < -kChronoDayLimit || days > kChronoDayLimit) {
    cycles = floor_div(days, kDaysPer400Years);
    days -= cycles * kDaysPer400Years;
  }
  const year_month_day ymd{sys_days{std::chrono::days{days}}};
  return {.year = static_cast<int>(ymd.year()) + cycles * 400,
          .month = static_cast<unsigned>(ymd.month()),
          .day = static_cast<unsigned>(ymd.day())};
}

// The value of a hex digit (either case), or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace cdcsync
