// Parsers of PostgreSQL's text output for numbers, numeric, money, bytea, point and hstore.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cdcsync::debezium {

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly `width` digits at `i`, or at least `width` when `width_is_min` (at most 12); advances `i`.
inline bool read_int(std::string_view s, std::size_t& i, std::int64_t& out, std::size_t width,
                     bool width_is_min = false) {
  const std::size_t start = i;
  std::int64_t v = 0;
  while (i < s.size() && is_digit(s[i]) && (width_is_min || i - start < width)) {
    v = v * 10 + (s[i] - '0');
    ++i;
    if (i - start > 12) return false;
  }
  if (i - start < width) return false;
  out = v;
  return true;
}

// JSON's number grammar; PostgreSQL's integer and float output always matches it except NaN/Infinity.
bool is_json_number(std::string_view s);
// An optional '-' and digits without a leading zero: what int2/int4/int8/oid print.
bool is_json_integer(std::string_view s);

// numeric text -> sign, unscaled digits (no leading zeros; empty means zero) and scale. False for
// NaN/Infinity and anything malformed.
bool split_decimal(std::string_view s, bool& negative, std::string& digits, int& scale);

// money text ("$1,234.56", "-$1,234.56", lc_monetary C / en_*) -> "-1234.56": the sign, digits and decimal
// point, everything else dropped.
void money_to_decimal(std::string_view s, std::string& out);

// bytea text output, hex ("\x0102") or escape format -> the raw bytes in `out`.
bool decode_bytea(std::string_view s, std::string& out);

// point text "(x,y)".
bool parse_point(std::string_view s, double& x, double& y);

// hstore text output ("a"=>"1", "b"=>NULL) in PostgreSQL's order: calls `pair(key, value, is_null)` for
// each pair. False when malformed (pairs before the fault have been reported). `key` and `value` hold the
// unescaped text between calls.
template <class Pair>
bool parse_hstore(std::string_view s, std::string& key, std::string& value, Pair&& pair);

namespace detail {
// A double-quoted hstore string at `i` -> unescaped `out`; advances `i` past the closing quote.
bool read_hstore_quoted(std::string_view s, std::size_t& i, std::string& out);
}  // namespace detail

template <class Pair>
bool parse_hstore(std::string_view s, std::string& key, std::string& value, Pair&& pair) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    if (i == s.size()) break;
    if (!detail::read_hstore_quoted(s, i, key)) return false;
    if (s.substr(i, 2) != "=>") return false;
    i += 2;
    if (s.substr(i, 4) == "NULL") {
      i += 4;
      pair(std::string_view{key}, std::string_view{}, true);
    } else {
      if (!detail::read_hstore_quoted(s, i, value)) return false;
      pair(std::string_view{key}, std::string_view{value}, false);
    }
  }
  return true;
}

}  // namespace cdcsync::debezium
