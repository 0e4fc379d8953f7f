// QualifiedName: a table's schema.name, parsed as a config file writes it and spelled as PostgreSQL prints it.
#pragma once

#include <compare>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cdcsync {

inline constexpr std::size_t kMaxIdentifierBytes = 63;  // PostgreSQL's NAMEDATALEN - 1

struct QualifiedName {
  std::string schema;  // unquoted, exact catalog spelling
  std::string name;

  // "schema.table", either part an unquoted name ([a-z_][a-z0-9_$]*) or a quoted identifier ("My ""T"""):
  // exactly one dot outside quotes, at most kMaxIdentifierBytes a part, no NUL. nullopt with `error` saying
  // what is wrong ("has an uppercase letter in an unquoted name; ...").
  static std::optional<QualifiedName> parse(std::string_view text, std::string& error);
  // The same, throwing std::invalid_argument with that message.
  static QualifiedName parse(std::string_view text);

  // As PostgreSQL prints a regclass: quoted only where needed (public."Tbl"). For logs, errors, labels.
  std::string str() const;
  // Both parts always quoted ("public"."Tbl"): for SQL text.
  std::string quoted() const;

  auto operator<=>(const QualifiedName&) const = default;
};

// One name as PostgreSQL prints it: as is when lowercase-plain ([a-z_][a-z0-9_$]*), else double-quoted.
std::string sql_name(std::string_view name);

}  // namespace cdcsync
