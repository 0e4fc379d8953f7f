// Text the way Debezium's JVM makes it (see java_text.h).
#include "decoders/debezium/java_text.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <stdexcept>

namespace cdcsync::debezium {
namespace {

// Shortest scientific text ("1.2345e+06", "-5e-324") -> Java's layout in `out`: plain for exponents -3..6,
// else "d.dddE<exp>"; at least one digit after the point. Returns the length.
std::size_t java_layout(char* out, std::string_view sci) {
  char* o = out;
  if (!sci.empty() && sci.front() == '-') {
    *o++ = '-';
    sci.remove_prefix(1);
  }
  const std::size_t e = sci.find('e');
  char digits[24];
  std::size_t n = 0;
  for (char c : sci.substr(0, e)) {
    if (c != '.' && n < sizeof digits) digits[n++] = c;
  }
  int exp = 0;
  std::string_view exp_text = sci.substr(e + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  auto put = [&](const char* p, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) *o++ = p[i];
  };
  if (exp >= -3 && exp <= 6) {
    if (exp < 0) {
      put("0.", 2);
      for (int i = 0; i < -exp - 1; ++i) *o++ = '0';
      put(digits, n);
    } else {
      const auto int_digits = static_cast<std::size_t>(exp) + 1;
      put(digits, std::min(n, int_digits));
      for (std::size_t i = n; i < int_digits; ++i) *o++ = '0';
      *o++ = '.';
      if (n > int_digits) {
        put(digits + int_digits, n - int_digits);
      } else {
        *o++ = '0';
      }
    }
    return static_cast<std::size_t>(o - out);
  }
  *o++ = digits[0];
  *o++ = '.';
  if (n > 1) {
    put(digits + 1, n - 1);
  } else {
    *o++ = '0';
  }
  *o++ = 'E';
  o = std::to_chars(o, out + kJavaNumberChars, exp).ptr;
  return static_cast<std::size_t>(o - out);
}

template <class Float>
std::string_view format_java(char (&buf)[kJavaNumberChars], Float v) {
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char sci[kJavaNumberChars];
  const auto r = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  return {buf, java_layout(buf, std::string_view(sci, static_cast<std::size_t>(r.ptr - sci)))};
}

// Calls `unit(u16)` for each UTF-16 code unit of UTF-8 text; a byte that starts no valid sequence is one
// U+FFFD.
template <class Unit>
void for_each_utf16(std::string_view s, Unit&& unit) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1Fu;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0Fu;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07u;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = cp << 6 | (c & 0x3Fu);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) {
      unit(char16_t{0xFFFD});
      ++i;
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      unit(static_cast<char16_t>(0xD800 + (cp >> 10)));
      unit(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      unit(static_cast<char16_t>(cp));
    }
    i += len;
  }
}

bool blank(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) > 0x20) return false;
  }
  return true;
}

constexpr std::size_t kMaxTopicLength = 249;  // TopicNamingStrategy.MAX_NAME_LENGTH

}  // namespace

std::string_view java_double(char (&buf)[kJavaNumberChars], double d) {
  return format_java(buf, d);
}

std::string_view java_float(char (&buf)[kJavaNumberChars], float f) {
  return format_java(buf, f);
}

std::string debezium_topic_name(std::initializer_list<std::string_view> parts) {
  std::string name;
  for (std::string_view part : parts) {
    if (blank(part)) continue;
    if (!name.empty()) name.push_back('.');
    for_each_utf16(part, [&](char16_t u) {
      const bool ok = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                      u == '.' || u == '_' || u == '-';
      name.push_back(ok ? static_cast<char>(u) : '_');
    });
  }
  if (name.size() > kMaxTopicLength) name.resize(kMaxTopicLength);
  if (name == ".") name = "_";
  if (name == "..") name = "__";
  return name;
}

std::int32_t java_string_hash(std::string_view utf8) {
  std::uint32_t h = 0;
  for_each_utf16(utf8, [&](char16_t u) { h = 31 * h + u; });
  return static_cast<std::int32_t>(h);
}

std::vector<std::size_t> java_hash_map_order(const std::vector<std::string_view>& keys) {
  std::vector<std::uint32_t> spread(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto h = static_cast<std::uint32_t>(java_string_hash(keys[i]));
    spread[i] = h ^ (h >> 16);  // HashMap.hash
  }
  std::size_t capacity = 16;
  std::vector<std::vector<std::size_t>> bins(capacity);
  auto resize = [&] {
    capacity *= 2;
    std::vector<std::vector<std::size_t>> grown(capacity);
    for (const auto& bin : bins) {
      for (std::size_t k : bin) grown[spread[k] & (capacity - 1)].push_back(k);
    }
    bins = std::move(grown);
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto& bin = bins[spread[i] & (capacity - 1)];
    bin.push_back(i);
    // putVal: the 9th node of a bin calls treeifyBin, which resizes a table under 64 instead.
    if (bin.size() >= 9 && capacity < 64) resize();
    if (i + 1 > capacity * 3 / 4) resize();  // ++size > threshold
  }
  std::vector<std::size_t> order;
  order.reserve(keys.size());
  for (const auto& bin : bins) order.insert(order.end(), bin.begin(), bin.end());
  return order;
}

std::string java_name_uuid(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_md5(), nullptr) != 1 || len != 16) {
    throw std::runtime_error("MD5 is not available");
  }
  md[6] = static_cast<unsigned char>((md[6] & 0x0F) | 0x30);
  md[8] = static_cast<unsigned char>((md[8] & 0x3F) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

}  // namespace cdcsync::debezium
