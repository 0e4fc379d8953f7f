// Parsers of PostgreSQL's text output for the non-temporal types (see text_parse.h).
#include "decoders/debezium/text_parse.h"

#include <charconv>
#include <system_error>

#include "decoders/pg_text.h"

namespace cdcsync::debezium {

bool is_json_number(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i == n || !is_digit(s[i])) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < n && is_digit(s[i])) ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i == n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i == n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  return i == n;
}

bool is_json_integer(std::string_view s) {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!is_digit(s[i])) return false;
  }
  return s.size() < 2 || !(s[0] == '0' || (s[0] == '-' && s[1] == '0' && s.size() > 2));
}

bool split_decimal(std::string_view s, bool& negative, std::string& digits, int& scale) {
  digits.clear();
  std::size_t i = 0;
  negative = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
  bool any = false;
  scale = 0;
  bool fraction = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (is_digit(c)) {
      any = true;
      if (!(digits.empty() && c == '0')) digits.push_back(c);
      if (fraction) ++scale;
    } else if (c == '.' && !fraction) {
      fraction = true;
    } else {
      return false;
    }
  }
  return any;
}

void money_to_decimal(std::string_view s, std::string& out) {
  out.clear();
  for (char c : s) {
    if (is_digit(c) || c == '.') {
      out.push_back(c);
    } else if ((c == '-' || c == '(') && out.empty()) {
      out.insert(out.begin(), '-');
    }
  }
}

bool decode_bytea(std::string_view s, std::string& out) {
  out.clear();
  if (s.size() >= 2 && s[0] == '\\' && s[1] == 'x') {
    if (s.size() % 2 != 0) return false;
    out.reserve(s.size() / 2);
    for (std::size_t i = 2; i < s.size(); i += 2) {
      const int hi = hex_value(s[i]);
      const int lo = hex_value(s[i + 1]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi << 4 | lo));
    }
    return true;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
    } else if (i + 1 < s.size() && s[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (s.size() - i >= 4) {
      int v = 0;
      for (std::size_t k = 1; k <= 3; ++k) {
        const char c = s[i + k];
        if (c < '0' || c > '7') return false;
        v = v * 8 + (c - '0');
      }
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      return false;
    }
  }
  return true;
}

bool parse_point(std::string_view s, double& x, double& y) {
  if (s.size() < 5 || s.front() != '(' || s.back() != ')') return false;
  const std::size_t comma = s.find(',');
  if (comma == std::string_view::npos) return false;
  return std::from_chars(s.data() + 1, s.data() + comma, x).ec == std::errc{} &&
         std::from_chars(s.data() + comma + 1, s.data() + s.size() - 1, y).ec == std::errc{};
}

namespace detail {

bool read_hstore_quoted(std::string_view s, std::size_t& i, std::string& out) {
  out.clear();
  if (i >= s.size() || s[i] != '"') return false;
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.push_back(s[++i]);
    } else if (s[i] == '"') {
      ++i;
      return true;
    } else {
      out.push_back(s[i]);
    }
  }
  return false;
}

}  // namespace detail
}  // namespace cdcsync::debezium
