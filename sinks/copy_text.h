// COPY's text format, writing side: one field with backslash, tab, newline and carriage return escaped.
// (NULL is written as \N by the caller; the reading side is daemon/snapshot.h's parse_copy_text_row.)
#pragma once

#include <array>
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
}  // namespace detail

// Appends runs of plain bytes at once: one append per value without escapes.
inline void append_copy_text(std::string& out, std::string_view v) {
  const char* p = v.data();
  const char* const end = p + v.size();
  while (p < end) {
    const char* q = p;
    while (q < end && detail::kCopyEscape[static_cast<unsigned char>(*q)] == 0) ++q;
    out.append(p, q);
    if (q == end) break;
    const char escaped[2] = {'\\', detail::kCopyEscape[static_cast<unsigned char>(*q)]};
    out.append(escaped, 2);
    p = q + 1;
  }
}

}  // namespace cdcsync
