// Typed values and TOML: strings and keys as TOML writes them, and dotted-key helpers.
#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <sstream>
#include <vector>

#include "daemon/config/values.h"

namespace cdcsync::config {

std::string toml_string(std::string_view s) {
  std::ostringstream out;
  out << toml::toml_formatter{toml::value<std::string>{std::string(s)},
                              toml::format_flags::allow_unicode_strings};
  return out.str();
}

std::string toml_key(std::string_view k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
  return bare ? std::string(k) : toml_string(k);
}

std::string last_segment(std::string_view key) {
  const auto dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

std::string section_of(std::string_view key) {
  const auto dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? std::string_view{} : key.substr(0, dot));
}

}  // namespace cdcsync::config
