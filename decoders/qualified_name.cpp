// QualifiedName: the one parser and the two spellings of a schema.table name.
#include "decoders/qualified_name.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "decoders/pg.h"

namespace cdcsync {
namespace {

bool plain_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || c == '_' || (!first && ((c >= '0' && c <= '9') || c == '$'));
}

// A quoted identifier starting at text[i] (on the opening quote).
std::optional<std::string> parse_quoted_part(std::string_view text, std::size_t& i, std::string& error) {
  std::string part;
  ++i;
  while (i < text.size()) {
    if (text[i] == '"') {
      if (i + 1 < text.size() && text[i + 1] == '"') {
        part += '"';
        i += 2;
        continue;
      }
      ++i;
      if (part.empty()) {
        error = "has an empty quoted identifier";
        return std::nullopt;
      }
      return part;
    }
    part += text[i++];
  }
  error = "has an unterminated quoted identifier";
  return std::nullopt;
}

// One part of a qualified name starting at text[i]: a quoted identifier, or unquoted [a-z_][a-z0-9_$]*.
std::optional<std::string> parse_part(std::string_view text, std::size_t& i, std::string& error) {
  if (i < text.size() && text[i] == '"') return parse_quoted_part(text, i, error);
  std::string part;
  while (i < text.size() && text[i] != '.') {
    const char c = text[i];
    if (!plain_char(c, part.empty())) {
      error = (c >= 'A' && c <= 'Z')
                  ? "has an uppercase letter in an unquoted name; write the name in lowercase or quote it "
                    "(\"Name\")"
                  : std::string("has '") + c + "' in an unquoted name; quote the name (\"...\")";
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

std::optional<QualifiedName> QualifiedName::parse(std::string_view text, std::string& error) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (true) {
    auto part = parse_part(text, i, error);
    if (!part) return std::nullopt;
    if (part->size() > kMaxIdentifierBytes) {
      error = "has a name longer than " + std::to_string(kMaxIdentifierBytes) + " bytes";
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

QualifiedName QualifiedName::parse(std::string_view text) {
  std::string error;
  auto name = parse(text, error);
  if (!name) throw std::invalid_argument("\"" + std::string(text) + "\" " + error);
  return *name;
}

std::string sql_name(std::string_view name) {
  const bool plain = !name.empty() && plain_char(name[0], true) &&
                     std::all_of(name.begin(), name.end(), [](char c) { return plain_char(c, false); });
  if (plain) return std::string(name);
  return quote_ident(name);
}

std::string QualifiedName::str() const {
  return sql_name(schema) + "." + sql_name(name);
}

std::string QualifiedName::quoted() const {
  return quote_ident(schema) + "." + quote_ident(name);
}

}  // namespace cdcsync
