// PostgreSQL's date/time text output -> epoch numbers, and back to the ISO-8601 text Debezium (Java) prints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cdcsync::debezium {

inline constexpr std::int64_t kMicrosPerSecond = 1'000'000;
inline constexpr std::int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
// interval.handling.mode=numeric: a month is 365.25 / 12 days (Debezium's MicroDuration.DAYS_PER_MONTH_AVG),
// which is a whole number of seconds: 2,629,800.
inline constexpr std::int64_t kMicrosPerMonth = 2'629'800 * kMicrosPerSecond;

// Java's long arithmetic, which Debezium's conversions use: two's complement, wrapping on overflow. Only text
// PostgreSQL never prints, and the far end of its timestamp range, come near it.
constexpr std::int64_t wrapping_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}
constexpr std::int64_t wrapping_sub(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
constexpr std::int64_t wrapping_mul(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b));
}

// date text ("2018-06-20", "0044-03-15 BC"; DateStyle ISO) -> days since 1970-01-01.
bool parse_date(std::string_view s, std::int64_t& unix_days);
// "HH:MM:SS[.ffffff]" at `i` -> microseconds past midnight (24:00:00 allowed); advances `i`.
bool parse_time_part(std::string_view s, std::size_t& i, std::int64_t& micros);
// "+HH", "+HH:MM" or "+HH:MM:SS" at `i` -> seconds east of UTC; advances `i`.
bool parse_offset(std::string_view s, std::size_t& i, std::int64_t& seconds);
// timestamp and timestamptz text -> microseconds since the Unix epoch (UTC for timestamptz).
bool parse_timestamp(std::string_view s, bool with_zone, std::int64_t& unix_micros);
// interval in the default IntervalStyle (postgres), "1 year 2 mons -3 days +04:05:06.5" -> microseconds,
// a month counting kMicrosPerMonth.
bool parse_interval(std::string_view s, std::int64_t& micros);

// Java's ISO_LOCAL_TIME of `micros` past midnight: the fraction without trailing zeros (none when zero), or
// of `fixed_width` digits when positive.
void append_time_of_day(std::string& out, std::int64_t micros, int fixed_width);
// Java's ISO_OFFSET_DATE_TIME in UTC ("2018-06-20T10:00:00.5Z"): years beyond 9999 get '+', negative
// years '-'.
void append_iso_utc(std::string& out, std::int64_t unix_micros, int fixed_width);

}  // namespace cdcsync::debezium
