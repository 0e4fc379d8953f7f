// COPY's text format, writing side: one field with backslash, tab, newline and carriage return escaped.
// (NULL is written as \N by the caller; the reading side is daemon/snapshot.h's parse_copy_text_row.)
#pragma once

#include <string>
#include <string_view>

namespace cdcsync {

inline void append_copy_text(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out.push_back(c);
    }
  }
}

}  // namespace cdcsync
