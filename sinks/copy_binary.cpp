// COPY's binary format, writing side: each supported type's text (as pgoutput sends it) encoded as its
// binary receive function reads it, and one-dimensional arrays of them. The hot path of every COPY.
#include "sinks/copy_binary.h"

#include <arpa/inet.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <system_error>

#include "decoders/pg_text.h"

namespace cdcsync {

namespace {

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Exactly `n` decimal digits at `p`.
bool fixed_digits(std::string_view v, std::size_t p, std::size_t n, int& out) {
  if (p + n > v.size()) return false;
  int x = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_digit(v[p + i])) return false;
    x = x * 10 + (v[p + i] - '0');
  }
  out = x;
  return true;
}

// [-]digits, as the integer types print it (leading zeros are read as the input functions read them).
bool parse_integer(std::string_view v, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
  std::size_t i = 0;
  const bool negative = !v.empty() && v[0] == '-';
  if (negative) i = 1;
  if (i == v.size() || v.size() - i > 20) return false;
  std::uint64_t magnitude = 0;
  for (; i < v.size(); ++i) {
    if (!is_digit(v[i])) return false;
    const auto d = static_cast<std::uint64_t>(v[i] - '0');
    if (magnitude > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    magnitude = magnitude * 10 + d;
  }
  const auto limit = negative ? static_cast<std::uint64_t>(-(lo + 1)) + 1 : static_cast<std::uint64_t>(hi);
  if (magnitude > limit) return false;
  out = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
  return true;
}

constexpr std::int64_t kMicrosPerDay = 86'400'000'000LL;

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// "YYYY-MM-DD" at the start of `v` (years 1 to 9999: other years print otherwise), days since 2000-01-01.
bool parse_iso_date(std::string_view v, std::int64_t& days) {
  int y, m, d;
  if (v.size() < 10 || !fixed_digits(v, 0, 4, y) || v[4] != '-' || !fixed_digits(v, 5, 2, m) || v[7] != '-' ||
      !fixed_digits(v, 8, 2, d))
    return false;
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return false;
  days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d)) - kPgEpochUnixDays;
  return true;
}

// "HH:MM:SS[.f{1,6}]" at `p` (hours of `hour_digits`, or at least two with 0), moving `p` past it:
// hours, minutes, seconds and microseconds.
bool parse_clock(std::string_view v, std::size_t& p, std::size_t hour_digits, std::int64_t& h, int& mi,
                 int& s, std::int64_t& fraction) {
  std::size_t q = p;
  h = 0;
  for (; q < v.size() && is_digit(v[q]) && q - p < 10; ++q) h = h * 10 + (v[q] - '0');
  const std::size_t n = q - p;
  if (hour_digits ? n != hour_digits : n < 2) return false;
  if (q >= v.size() || v[q] != ':' || !fixed_digits(v, q + 1, 2, mi) || q + 3 >= v.size() ||
      v[q + 3] != ':' || !fixed_digits(v, q + 4, 2, s))
    return false;
  if (mi > 59 || s > 59) return false;
  q += 6;
  fraction = 0;
  if (q < v.size() && v[q] == '.') {
    ++q;
    int digits = 0;
    for (; q < v.size() && is_digit(v[q]); ++q, ++digits) {
      if (digits == 6) return false;
      fraction = fraction * 10 + (v[q] - '0');
    }
    if (digits == 0) return false;
    for (; digits < 6; ++digits) fraction *= 10;
  }
  p = q;
  return true;
}

// A UTC offset "±HH[:MM[:SS]]" at `p`, moving `p` past it: seconds east of UTC.
bool parse_offset(std::string_view v, std::size_t& p, std::int64_t& offset) {
  if (p == v.size() || (v[p] != '+' && v[p] != '-')) return false;
  const bool west = v[p] == '-';
  int oh, om = 0, os = 0;
  if (!fixed_digits(v, p + 1, 2, oh)) return false;
  std::size_t q = p + 3;
  if (q < v.size() && v[q] == ':') {
    if (!fixed_digits(v, q + 1, 2, om)) return false;
    q += 3;
    if (q < v.size() && v[q] == ':') {
      if (!fixed_digits(v, q + 1, 2, os)) return false;
      q += 3;
    }
  }
  if (oh > 15 || om > 59 || os > 59) return false;
  offset = (oh * 3600 + om * 60 + os) * (west ? -1 : 1);
  p = q;
  return true;
}

// "YYYY-MM-DD HH:MM:SS[.f{1,6}]" then, with `zone`, the UTC offset "±HH[:MM[:SS]]": microseconds since
// 2000-01-01 00:00:00 (UTC with `zone`). Also "infinity" and "-infinity".
bool parse_iso_timestamp(std::string_view v, bool zone, std::int64_t& micros) {
  if (v == "infinity") {
    micros = std::numeric_limits<std::int64_t>::max();
    return true;
  }
  if (v == "-infinity") {
    micros = std::numeric_limits<std::int64_t>::min();
    return true;
  }
  std::int64_t days, h, fraction;
  int mi, s;
  std::size_t p = 11;
  if (!parse_iso_date(v, days) || v.size() < 19 || v[10] != ' ' ||
      !parse_clock(v, p, 2, h, mi, s, fraction) || h > 23)
    return false;
  std::int64_t offset = 0;  // seconds east of UTC
  if (zone && !parse_offset(v, p, offset)) return false;
  if (p != v.size()) return false;
  micros = days * kMicrosPerDay + ((h * 60 + mi) * 60 + s - offset) * 1'000'000LL + fraction;
  return true;
}

// "HH:MM:SS[.f{1,6}]", 00:00:00 to 24:00:00, then for time with time zone its UTC offset: time_send's
// microseconds, and timetz_send's zone in seconds west of UTC.
bool append_time(std::string& out, std::string_view v, bool zone) {
  std::size_t p = 0;
  std::int64_t h, fraction, offset = 0;
  int mi, s;
  if (!parse_clock(v, p, 2, h, mi, s, fraction)) return false;
  const std::int64_t micros = ((h * 60 + mi) * 60 + s) * 1'000'000LL + fraction;
  if (micros > kMicrosPerDay) return false;
  if (zone && !parse_offset(v, p, offset)) return false;
  if (p != v.size()) return false;
  append_be32(out, zone ? 12 : 8);
  append_be64(out, static_cast<std::uint64_t>(micros));
  if (zone) append_be32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(-offset)));
  return true;
}

// IntervalStyle postgres: "[±N year[s]] [±N mon[s]] [±N day[s]] [±HH:MM:SS[.f{1,6}]]", at least one part,
// each once and in that order (interval_out's form; a number without its unit, as sql_standard writes, is
// refused): interval_send's microseconds, days and months.
bool append_interval(std::string& out, std::string_view v) {
  static constexpr std::string_view kUnits[] = {"year", "mon", "day"};
  std::int64_t parts[3] = {0, 0, 0};
  std::size_t next_unit = 0, p = 0;
  __int128 time = 0;
  bool any = false;
  while (p < v.size()) {
    if (any) {
      if (v[p] != ' ') return false;
      ++p;
    }
    std::size_t end = v.find(' ', p);
    if (end == std::string_view::npos) end = v.size();
    const std::string_view token = v.substr(p, end - p);
    if (token.find(':') != std::string_view::npos) {  // the time, last
      std::size_t q = p;
      const bool negative = v[q] == '-';
      if (v[q] == '-' || v[q] == '+') ++q;
      std::int64_t h, fraction;
      int mi, s;
      if (!parse_clock(v, q, 0, h, mi, s, fraction) || q != v.size()) return false;
      time = ((static_cast<__int128>(h) * 60 + mi) * 60 + s) * 1'000'000 + fraction;
      if (negative) time = -time;
      if (time > std::numeric_limits<std::int64_t>::max() || time < std::numeric_limits<std::int64_t>::min())
        return false;
      p = q;
      any = true;
      break;
    }
    std::int64_t n;
    const std::string_view number = token.size() > 1 && token[0] == '+' ? token.substr(1) : token;
    if (number.empty() || number[0] == '+' ||
        !parse_integer(number, std::numeric_limits<std::int32_t>::min(),
                       std::numeric_limits<std::int32_t>::max(), n) ||
        end == v.size())
      return false;
    p = end + 1;
    end = v.find(' ', p);
    if (end == std::string_view::npos) end = v.size();
    std::string_view unit = v.substr(p, end - p);
    if (unit.size() > 1 && unit.back() == 's') unit.remove_suffix(1);
    std::size_t u = next_unit;
    while (u < 3 && kUnits[u] != unit) ++u;
    if (u == 3) return false;
    parts[u] = n;
    next_unit = u + 1;
    p = end;
    any = true;
  }
  if (!any) return false;
  const std::int64_t months = parts[0] * 12 + parts[1];
  if (months > std::numeric_limits<std::int32_t>::max() || months < std::numeric_limits<std::int32_t>::min())
    return false;
  append_be32(out, 16);
  append_be64(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(time)));
  append_be32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(parts[2])));
  append_be32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(months)));
  return true;
}

// "a.b.c.d[/n]" or an IPv6 address "[/n]" (a cidr's text always has its mask length): inet_send's family,
// mask length, cidr flag and address. A cidr with bits set right of its mask is refused (cidr_in refuses it).
bool append_inet(std::string& out, std::string_view v, bool cidr) {
  const auto slash = v.find('/');
  if (cidr && slash == std::string_view::npos) return false;
  const std::string_view address = v.substr(0, slash);
  char buf[INET6_ADDRSTRLEN];
  if (address.empty() || address.size() >= sizeof buf) return false;
  address.copy(buf, address.size());
  buf[address.size()] = '\0';
  const bool v6 = address.find(':') != std::string_view::npos;
  unsigned char bytes[16];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, bytes) != 1) return false;
  const int nb = v6 ? 16 : 4, max_bits = nb * 8;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view b = v.substr(slash + 1);
    if (b.empty() || b.size() > 3 || (b.size() > 1 && b[0] == '0') || !fixed_digits(b, 0, b.size(), bits) ||
        bits > max_bits)
      return false;
  }
  if (cidr) {
    for (int i = 0; i < nb; ++i) {
      const int keep = std::clamp(bits - 8 * i, 0, 8);
      if (bytes[i] & (0xFF >> keep)) return false;
    }
  }
  append_be32(out, static_cast<std::uint32_t>(4 + nb));
  const char head[4] = {static_cast<char>(v6 ? 3 : 2), static_cast<char>(bits),
                        static_cast<char>(cidr ? 1 : 0), static_cast<char>(nb)};
  out.append(head, 4);
  out.append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(nb));
  return true;
}

// `n` hex bytes separated by colons ("08:00:2b:01:02:03"), as macaddr_out and macaddr8_out write them.
bool append_macaddr(std::string& out, std::string_view v, std::size_t n) {
  if (v.size() != 3 * n - 1) return false;
  char bytes[8];
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = hex_value(v[3 * i]), lo = hex_value(v[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i + 1 < n && v[3 * i + 2] != ':')) return false;
    bytes[i] = static_cast<char>(hi << 4 | lo);
  }
  append_be32(out, static_cast<std::uint32_t>(n));
  out.append(bytes, n);
  return true;
}

// [-]digits[.digits], NaN, Infinity, -Infinity: numeric's binary form (base-10000 digits without leading or
// trailing zero digits, as numeric_send writes them; numeric_recv then rounds to the column's typmod as
// numeric_in does).
bool append_numeric(std::string& out, std::string_view v) {
  constexpr std::uint16_t kPos = 0x0000, kNeg = 0x4000, kNan = 0xC000, kPinf = 0xD000, kNinf = 0xF000;
  const auto special = [&](std::uint16_t sign) {
    append_be32(out, 8);
    append_be16(out, 0);
    append_be16(out, 0);
    append_be16(out, sign);
    append_be16(out, 0);
    return true;
  };
  if (v == "NaN") return special(kNan);
  if (v == "Infinity") return special(kPinf);
  if (v == "-Infinity") return special(kNinf);

  std::size_t p = 0;
  const bool negative = !v.empty() && v[0] == '-';
  if (negative) p = 1;
  const std::size_t int_begin = p;
  while (p < v.size() && is_digit(v[p])) ++p;
  const std::size_t int_digits = p - int_begin;
  std::size_t frac_begin = p, frac_digits = 0;
  if (p < v.size() && v[p] == '.') {
    frac_begin = ++p;
    while (p < v.size() && is_digit(v[p])) ++p;
    frac_digits = p - frac_begin;
    if (frac_digits == 0) return false;
  }
  // numeric's limits are far above these; longer text stays with the input function.
  if (p != v.size() || int_digits == 0 || int_digits > 1000 || frac_digits > 1000) return false;

  // Decimal digit i of the number padded to whole base-10000 digits: `lead` zeros, the integer digits, the
  // fraction's digits, zeros.
  const std::size_t lead = (4 - int_digits % 4) % 4;
  const std::size_t total = (lead + int_digits + frac_digits + 3) / 4 * 4;
  const auto decimal = [&](std::size_t i) -> int {
    if (i < lead) return 0;
    i -= lead;
    if (i < int_digits) return v[int_begin + i] - '0';
    i -= int_digits;
    return i < frac_digits ? v[frac_begin + i] - '0' : 0;
  };
  const auto group = [&](std::size_t g) {
    return decimal(4 * g) * 1000 + decimal(4 * g + 1) * 100 + decimal(4 * g + 2) * 10 + decimal(4 * g + 3);
  };
  std::size_t first = 0, last = total / 4;
  int weight = static_cast<int>((lead + int_digits) / 4) - 1;
  while (first < last && group(first) == 0) {
    ++first;
    --weight;
  }
  while (last > first && group(last - 1) == 0) --last;
  const std::size_t ndigits = last - first;
  if (ndigits == 0) weight = 0;

  append_be32(out, static_cast<std::uint32_t>(8 + 2 * ndigits));
  append_be16(out, static_cast<std::uint16_t>(ndigits));
  append_be16(out, static_cast<std::uint16_t>(static_cast<std::int16_t>(weight)));
  append_be16(out, ndigits == 0 || !negative ? kPos : kNeg);
  append_be16(out, static_cast<std::uint16_t>(frac_digits));
  for (std::size_t g = first; g < last; ++g) append_be16(out, static_cast<std::uint16_t>(group(g)));
  return true;
}

template <typename F>
bool append_float(std::string& out, std::string_view v) {
  F x;
  if (v == "NaN") {
    x = std::numeric_limits<F>::quiet_NaN();
  } else if (v == "Infinity") {
    x = std::numeric_limits<F>::infinity();
  } else if (v == "-Infinity") {
    x = -std::numeric_limits<F>::infinity();
  } else {
    // Digits, a point, an exponent: from_chars would also read "inf", "nan" and other spellings.
    for (char c : v) {
      if (!is_digit(c) && c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+') return false;
    }
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc{} || end != v.data() + v.size()) return false;
  }
  if constexpr (sizeof(F) == 4) {
    append_be32(out, 4);
    append_be32(out, std::bit_cast<std::uint32_t>(x));
  } else {
    append_be32(out, 8);
    append_be64(out, std::bit_cast<std::uint64_t>(x));
  }
  return true;
}

bool append_uuid(std::string& out, std::string_view v) {
  if (v.size() != 36) return false;
  char bytes[16];
  std::size_t n = 0;
  for (std::size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (v[i] != '-') return false;
      ++i;
      continue;
    }
    const int hi = hex_value(v[i]), lo = hex_value(v[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes[n++] = static_cast<char>(hi << 4 | lo);
    i += 2;
  }
  append_be32(out, 16);
  out.append(bytes, 16);
  return true;
}

bool append_bytea(std::string& out, std::string_view v) {
  if (v.size() < 2 || v[0] != '\\' || v[1] != 'x' || v.size() % 2 != 0) return false;
  const std::size_t n = (v.size() - 2) / 2;
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) return false;
  const std::size_t mark = out.size();
  append_be32(out, static_cast<std::uint32_t>(n));
  out.resize(mark + 4 + n);
  char* dst = out.data() + mark + 4;
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = hex_value(v[2 + 2 * i]), lo = hex_value(v[3 + 2 * i]);
    if (hi < 0 || lo < 0) {
      out.resize(mark);
      return false;
    }
    dst[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// "X/Y", one to eight hex digits each.
bool append_pg_lsn(std::string& out, std::string_view v) {
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  const auto part = [](std::string_view h, std::uint32_t& x) {
    if (h.empty() || h.size() > 8) return false;
    x = 0;
    for (char c : h) {
      const int d = hex_value(c);
      if (d < 0) return false;
      x = x << 4 | static_cast<std::uint32_t>(d);
    }
    return true;
  };
  std::uint32_t hi, lo;
  if (!part(v.substr(0, slash), hi) || !part(v.substr(slash + 1), lo)) return false;
  append_copy_binary_lsn(out, static_cast<std::uint64_t>(hi) << 32 | lo);
  return true;
}

bool append_bytes(std::string& out, std::string_view prefix, std::string_view v) {
  const std::size_t n = prefix.size() + v.size();
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) return false;
  append_be32(out, static_cast<std::uint32_t>(n));
  out.append(prefix);
  out.append(v);
  return true;
}

}  // namespace

bool append_copy_binary(std::string& out, BinaryType t, std::string_view v) {
  std::int64_t i;
  switch (t) {
    case BinaryType::Unsupported:
      return false;
    case BinaryType::Bool:
      if (v != "t" && v != "f") return false;
      append_copy_binary_bool(out, v == "t");
      return true;
    case BinaryType::Int2:
      if (!parse_integer(v, std::numeric_limits<std::int16_t>::min(),
                         std::numeric_limits<std::int16_t>::max(), i))
        return false;
      append_be32(out, 2);
      append_be16(out, static_cast<std::uint16_t>(i));
      return true;
    case BinaryType::Int4:
      if (!parse_integer(v, std::numeric_limits<std::int32_t>::min(),
                         std::numeric_limits<std::int32_t>::max(), i))
        return false;
      append_copy_binary_int4(out, static_cast<std::int32_t>(i));
      return true;
    case BinaryType::Int8:
      if (!parse_integer(v, std::numeric_limits<std::int64_t>::min(),
                         std::numeric_limits<std::int64_t>::max(), i))
        return false;
      append_be32(out, 8);
      append_be64(out, static_cast<std::uint64_t>(i));
      return true;
    case BinaryType::Float4:
      return append_float<float>(out, v);
    case BinaryType::Float8:
      return append_float<double>(out, v);
    case BinaryType::Numeric:
      return append_numeric(out, v);
    case BinaryType::Text:
      return append_bytes(out, {}, v);
    case BinaryType::Jsonb:
      return append_bytes(out, std::string_view("\1", 1), v);
    case BinaryType::Bytea:
      return append_bytea(out, v);
    case BinaryType::Uuid:
      return append_uuid(out, v);
    case BinaryType::Date:
      if (v == "infinity" || v == "-infinity") {
        append_copy_binary_int4(out, v[0] == '-' ? std::numeric_limits<std::int32_t>::min()
                                                 : std::numeric_limits<std::int32_t>::max());
        return true;
      }
      if (v.size() != 10 || !parse_iso_date(v, i)) return false;
      append_copy_binary_int4(out, static_cast<std::int32_t>(i));
      return true;
    case BinaryType::Timestamp:
    case BinaryType::Timestamptz:
      if (!parse_iso_timestamp(v, t == BinaryType::Timestamptz, i)) return false;
      append_be32(out, 8);
      append_be64(out, static_cast<std::uint64_t>(i));
      return true;
    case BinaryType::PgLsn:
      return append_pg_lsn(out, v);
    case BinaryType::Time:
    case BinaryType::Timetz:
      return append_time(out, v, t == BinaryType::Timetz);
    case BinaryType::Interval:
      return append_interval(out, v);
    case BinaryType::Inet:
    case BinaryType::Cidr:
      return append_inet(out, v, t == BinaryType::Cidr);
    case BinaryType::Macaddr:
      return append_macaddr(out, v, 6);
    case BinaryType::Macaddr8:
      return append_macaddr(out, v, 8);
    case BinaryType::Oid:
      if (v.size() > 10 || (v.size() > 1 && v[0] == '0') ||
          !parse_integer(v, 0, std::numeric_limits<std::uint32_t>::max(), i) || v[0] == '-')
        return false;
      append_be32(out, 4);
      append_be32(out, static_cast<std::uint32_t>(i));
      return true;
  }
  return false;
}

namespace {

void store_be32(std::string& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
}

bool is_array_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// One dimension, lower bound 1, as array_out writes it: "{}" or "{e1,e2,…}", each element bare (no space,
// quote, backslash or brace; NULL in any case is a null, as array_in reads it) or double-quoted with
// backslash escapes. array_send's form: dimensions, a null flag, the element type, each element's field.
bool append_array(std::string& out, const BinaryEncoder& e, std::string_view v) {
  if (v.size() < 2 || v.front() != '{' || v.back() != '}') return false;
  const std::size_t mark = out.size();
  const auto refuse = [&] {
    out.resize(mark);
    return false;
  };
  append_be32(out, 0);  // the field's length, below
  append_be32(out, v.size() == 2 ? 0 : 1);
  const std::size_t flags = out.size();
  append_be32(out, 0);
  append_be32(out, e.array_of);
  std::uint32_t count = 0;
  bool nulls = false;
  if (v.size() > 2) {
    const std::size_t dims = out.size();
    append_be32(out, 0);
    append_be32(out, 1);
    std::string element;
    std::size_t p = 1;
    const std::size_t end = v.size() - 1;  // the closing brace
    while (true) {
      if (p < end && v[p] == '"') {
        element.clear();
        for (++p; p < end && v[p] != '"'; ++p) {
          if (v[p] == '\\' && ++p == end) return refuse();
          element.push_back(v[p]);
        }
        if (p == end) return refuse();
        ++p;
        if (!append_copy_binary(out, e.type, element)) return refuse();
      } else {
        const std::size_t q = p;
        while (p < end && v[p] != ',') {
          const char c = v[p++];
          if (c == '"' || c == '\\' || c == '{' || c == '}' || is_array_space(c)) return refuse();
        }
        const std::string_view bare = v.substr(q, p - q);
        if (bare.empty()) return refuse();
        if (bare.size() == 4 && (bare[0] | 0x20) == 'n' && (bare[1] | 0x20) == 'u' &&
            (bare[2] | 0x20) == 'l' && (bare[3] | 0x20) == 'l') {
          append_copy_binary_null(out);
          nulls = true;
        } else if (!append_copy_binary(out, e.type, bare)) {
          return refuse();
        }
      }
      ++count;
      if (p == end) break;
      if (v[p] != ',') return refuse();
      ++p;
    }
    store_be32(out, dims, count);
  }
  if (nulls) store_be32(out, flags, 1);
  const std::size_t length = out.size() - mark - 4;
  if (length > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) return refuse();
  store_be32(out, mark, static_cast<std::uint32_t>(length));
  return true;
}

}  // namespace

bool append_copy_binary(std::string& out, const BinaryEncoder& e, std::string_view v) {
  if (e.array_of == 0) return append_copy_binary(out, e.type, v);
  if (!e.supported()) return false;
  return append_array(out, e, v);
}

}  // namespace cdcsync
