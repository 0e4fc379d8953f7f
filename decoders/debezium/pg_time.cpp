// PostgreSQL's date/time text -> epoch numbers, and Java's ISO-8601 text back (see pg_time.h).
#include "decoders/debezium/pg_time.h"

#include <charconv>
#include <system_error>

#include "decoders/debezium/text_parse.h"
#include "decoders/pg_text.h"

namespace cdcsync::debezium {
namespace {

// "YYYY-MM-DD" (the year may be longer); advances i. The era suffix is the caller's.
bool parse_date_part(std::string_view s, std::size_t& i, std::int64_t& year, std::int64_t& month,
                     std::int64_t& day) {
  if (!read_int(s, i, year, 4, true)) return false;
  if (i >= s.size() || s[i] != '-') return false;
  ++i;
  if (!read_int(s, i, month, 2) || i >= s.size() || s[i] != '-') return false;
  ++i;
  if (!read_int(s, i, day, 2)) return false;
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

// " BC" at position i (the rest of the string) turns year Y BC into astronomical year 1 - Y.
bool apply_era(std::string_view s, std::size_t& i, std::int64_t& year) {
  if (i == s.size()) return true;
  if (s.substr(i) == " BC") {
    year = 1 - year;
    i = s.size();
    return true;
  }
  return false;
}

void append_padded(std::string& out, std::int64_t v, int width) {
  char buf[24];
  const char* end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  for (int pad = width - static_cast<int>(end - buf); pad > 0; --pad) out.push_back('0');
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_fraction(std::string& out, std::int64_t micros_of_second, int fixed_width) {
  if (fixed_width > 0) {
    out.push_back('.');
    std::int64_t v = micros_of_second;
    for (int digits = 6; digits > fixed_width; --digits) v /= 10;
    append_padded(out, v, fixed_width);
    return;
  }
  if (micros_of_second == 0) return;
  int digits = 6;
  std::int64_t v = micros_of_second;
  while (v % 10 == 0) {
    v /= 10;
    --digits;
  }
  out.push_back('.');
  append_padded(out, v, digits);
}

// One "<number> <unit>" field of an interval at `i` (units: year(s), mon(s), day(s)); advances `i`.
bool read_interval_field(std::string_view s, std::size_t& i, std::size_t digits_end, std::int64_t& micros) {
  std::int64_t v = 0;
  if (std::from_chars(s.data() + (s[i] == '+' ? i + 1 : i), s.data() + digits_end, v).ec != std::errc{})
    return false;
  i = digits_end;
  if (i >= s.size() || s[i] != ' ') return false;
  ++i;
  std::size_t u = i;
  while (u < s.size() && s[u] != ' ') ++u;
  const std::string_view unit = s.substr(i, u - i);
  if (unit == "year" || unit == "years") {
    micros = wrapping_mul(wrapping_mul(v, 12), kMicrosPerMonth);
  } else if (unit == "mon" || unit == "mons") {
    micros = wrapping_mul(v, kMicrosPerMonth);
  } else if (unit == "day" || unit == "days") {
    micros = wrapping_mul(v, kMicrosPerDay);
  } else {
    return false;
  }
  i = u;
  return true;
}

}  // namespace

bool parse_date(std::string_view s, std::int64_t& unix_days) {
  std::size_t i = 0;
  std::int64_t y = 0, m = 0, d = 0;
  if (!parse_date_part(s, i, y, m, d) || !apply_era(s, i, y)) return false;
  unix_days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  return true;
}

bool parse_time_part(std::string_view s, std::size_t& i, std::int64_t& micros) {
  std::int64_t h = 0, m = 0, sec = 0;
  if (!read_int(s, i, h, 2, true) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!read_int(s, i, m, 2) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!read_int(s, i, sec, 2)) return false;
  std::int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    for (; i < s.size() && is_digit(s[i]); ++i) {
      if (digits < 6) {
        frac = frac * 10 + (s[i] - '0');
        ++digits;
      }
    }
    if (digits == 0) return false;
    for (; digits < 6; ++digits) frac *= 10;
  }
  micros = wrapping_add(wrapping_mul((h * 60 + m) * 60 + sec, kMicrosPerSecond), frac);
  return true;
}

bool parse_offset(std::string_view s, std::size_t& i, std::int64_t& seconds) {
  if (i >= s.size() || (s[i] != '+' && s[i] != '-')) return false;
  const std::int64_t sign = s[i] == '-' ? -1 : 1;
  ++i;
  std::int64_t h = 0, m = 0, sec = 0;
  if (!read_int(s, i, h, 2)) return false;
  if (i < s.size() && s[i] == ':') {
    ++i;
    if (!read_int(s, i, m, 2)) return false;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!read_int(s, i, sec, 2)) return false;
    }
  }
  seconds = sign * (h * 3600 + m * 60 + sec);
  return true;
}

bool parse_timestamp(std::string_view s, bool with_zone, std::int64_t& unix_micros) {
  std::size_t i = 0;
  std::int64_t y = 0, mo = 0, d = 0, t = 0, offset = 0;
  if (!parse_date_part(s, i, y, mo, d) || i >= s.size() || s[i] != ' ') return false;
  ++i;
  if (!parse_time_part(s, i, t)) return false;
  if (with_zone && !parse_offset(s, i, offset)) return false;
  if (!apply_era(s, i, y)) return false;
  const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  unix_micros = wrapping_sub(wrapping_add(wrapping_mul(days, kMicrosPerDay), t), offset * kMicrosPerSecond);
  return true;
}

bool parse_interval(std::string_view s, std::int64_t& micros) {
  std::int64_t total = 0;
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    while (i < n && s[i] == ' ') ++i;
    if (i == n) break;
    std::size_t j = i;
    if (s[j] == '+' || s[j] == '-') ++j;
    std::size_t k = j;
    while (k < n && is_digit(s[k])) ++k;
    if (k == j) return false;
    if (k < n && s[k] == ':') {  // the time part, always last
      const std::int64_t sign = s[i] == '-' ? -1 : 1;
      std::size_t t = j;
      std::int64_t tm = 0;
      if (!parse_time_part(s, t, tm) || t != n) return false;
      total = wrapping_add(total, wrapping_mul(sign, tm));
      break;
    }
    std::int64_t field = 0;
    if (!read_interval_field(s, i, k, field)) return false;
    total = wrapping_add(total, field);
  }
  micros = total;
  return true;
}

void append_time_of_day(std::string& out, std::int64_t micros, int fixed_width) {
  const std::int64_t secs = micros / kMicrosPerSecond;
  append_padded(out, secs / 3600, 2);
  out.push_back(':');
  append_padded(out, secs / 60 % 60, 2);
  out.push_back(':');
  append_padded(out, secs % 60, 2);
  append_fraction(out, micros % kMicrosPerSecond, fixed_width);
}

void append_iso_utc(std::string& out, std::int64_t unix_micros, int fixed_width) {
  const std::int64_t days = floor_div(unix_micros, kMicrosPerDay);
  const std::int64_t tod = unix_micros - days * kMicrosPerDay;
  const CivilDate date = civil_from_days(days);
  if (date.year > 9999) out.push_back('+');
  if (date.year < 0) out.push_back('-');
  append_padded(out, date.year < 0 ? -date.year : date.year, 4);
  out.push_back('-');
  append_padded(out, date.month, 2);
  out.push_back('-');
  append_padded(out, date.day, 2);
  out.push_back('T');
  append_time_of_day(out, tod, fixed_width);
  out.push_back('Z');
}

}  // namespace cdcsync::debezium
