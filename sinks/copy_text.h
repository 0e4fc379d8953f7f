// COPY's text format, writing side: one field with backslash, tab, newline and carriage return escaped.
// (NULL is written as \N by the caller; the reading side is daemon/core/snapshot.h's parse_copy_text_row.)
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace cdcsync {

namespace detail {
// The escape letter of each byte that needs one (0: copied as is).
inline constexpr std::array<char, 256> kCopyEscape = [] {
  std::array<char, 256> t{};
  t[static_cast<unsigned char>('\\')] = '\\';
  t[static_cast<unsigned char>('\n')] = 'n';
  t[static_cast<unsigned char>('\r')] = 'r';
  t[static_cast<unsigned char>('\t')] = 't';
  return t;
}();

// The first byte in [p, end) that needs escaping, or end. Eight bytes at a time: a word with a backslash or
// a byte below 0x0e (\t, \n and \r are among those) is looked at byte by byte.
inline const char* find_copy_escape(const char* p, const char* const end) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const auto special = [](char c) { return kCopyEscape[static_cast<unsigned char>(c)] != 0; };
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    const std::uint64_t backslash = w ^ (kOnes * '\\');
    const std::uint64_t hit = ((w - kOnes * 0x0e) & ~w & kHigh) | ((backslash - kOnes) & ~backslash & kHigh);
    if (hit != 0) {
      for (const char* word_end = p + 8; p < word_end; ++p) {
        if (special(*p)) return p;
      }
    } else {
      p += 8;
    }
  }
  while (p < end && !special(*p)) ++p;
  return p;
}
}  // namespace detail

// Appends runs of plain bytes at once: one append per value without escapes.
inline void append_copy_text(std::string& out, std::string_view v) {
  const char* p = v.data();
  const char* const end = p + v.size();
  while (p < end) {
    const char* q = detail::find_copy_escape(p, end);
    out.append(p, q);
    if (q == end) break;
    const char escaped[2] = {'\\', detail::kCopyEscape[static_cast<unsigned char>(*q)]};
    out.append(escaped, 2);
    p = q + 1;
  }
}

}  // namespace cdcsync
