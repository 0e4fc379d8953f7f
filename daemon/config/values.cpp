// Typed values and TOML: schema.table names as the file writes them, strings and keys as TOML writes them,
// and dotted-key helpers.
#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <sstream>
#include <vector>

#include "daemon/config/values.h"

namespace cdcsync::config {
namespace {

// One part of a qualified name starting at text[i]: a quoted identifier, or unquoted [a-z_][a-z0-9_$]*.
std::optional<std::string> parse_name_part(std::string_view text, std::size_t& i, std::string& error) {
  std::string part;
  if (i < text.size() && text[i] == '"') {
    ++i;
    bool closed = false;
    while (i < text.size()) {
      if (text[i] == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          part += '"';
          i += 2;
          continue;
        }
        ++i;
        closed = true;
        break;
      }
      part += text[i++];
    }
    if (!closed) {
      error = "has an unterminated quoted identifier";
      return std::nullopt;
    }
    if (part.empty()) {
      error = "has an empty quoted identifier";
      return std::nullopt;
    }
    return part;
  }
  while (i < text.size() && text[i] != '.') {
    const char c = text[i];
    const bool ok =
        (c >= 'a' && c <= 'z') || c == '_' || (!part.empty() && ((c >= '0' && c <= '9') || c == '$'));
    if (!ok) {
      error = (c >= 'A' && c <= 'Z')
                  ? "has an uppercase letter in an unquoted name; write the name in lowercase or quote it "
                    "(\"Name\")"
                  : fmt::format("has '{}' in an unquoted name; quote the name (\"...\")", c);
      return std::nullopt;
    }
    part += c;
    ++i;
  }
  if (part.empty()) {
    error = "has an empty part; expected schema.table";
    return std::nullopt;
  }
  return part;
}

}  // namespace

std::optional<QualifiedName> parse_qualified_name(std::string_view text, std::string& error) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (true) {
    auto part = parse_name_part(text, i, error);
    if (!part) return std::nullopt;
    if (part->size() > kMaxIdentifierBytes) {
      error = fmt::format("has a name longer than {} bytes", kMaxIdentifierBytes);
      return std::nullopt;
    }
    if (part->find('\0') != std::string::npos) {
      error = "has a NUL byte";
      return std::nullopt;
    }
    parts.push_back(std::move(*part));
    if (i == text.size()) break;
    if (text[i] != '.') {
      error = "has text after a quoted identifier; expected schema.table";
      return std::nullopt;
    }
    ++i;
    if (i == text.size()) {
      error = "has an empty part; expected schema.table";
      return std::nullopt;
    }
  }
  if (parts.size() != 2) {
    error = "must be schema.table (exactly one dot outside quotes)";
    return std::nullopt;
  }
  return QualifiedName{parts[0], parts[1]};
}

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
