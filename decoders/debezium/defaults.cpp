// Column defaults and NULLs in NOT NULL columns (see defaults.h), after Debezium 2.7's
// PostgresDefaultValueConverter and JdbcValueConverters/PostgresValueConverter fallbacks.
#include "decoders/debezium/defaults.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include "decoders/debezium/bytes.h"
#include "decoders/debezium/json_writer.h"
#include "decoders/debezium/text_parse.h"
#include "decoders/debezium/type_rules.h"
#include "decoders/debezium/values.h"
#include "decoders/debezium_json.h"

namespace cdcsync::debezium {
namespace {

// createDefaultValueMappers: the types with a mapper, each with the literal it assumes for a generated value,
// and whether a NULL::type default is read as no default (parseNullDefault) before anything else.
struct Mapper {
  std::string_view type;
  std::string_view placeholder;
  bool null_aware;
};

constexpr std::array kMappers = {
    Mapper{"bit", "00", false},
    Mapper{"varbit", "0", false},
    Mapper{"bool", "false", true},
    Mapper{"bpchar", "", false},
    Mapper{"varchar", "", false},
    Mapper{"text", "", false},
    Mapper{"numeric", "0.0", true},
    Mapper{"float4", "0.0", true},
    Mapper{"float8", "0.0", true},
    Mapper{"int2", "0", true},
    Mapper{"int4", "0", true},
    Mapper{"int8", "0", true},
    Mapper{"json", "{}", false},
    Mapper{"jsonb", "{}", false},
    Mapper{"xml", "", false},
    Mapper{"uuid", "00000000-0000-0000-0000-000000000000", false},
    Mapper{"date", "1970-01-01", false},
    Mapper{"time", "00:00", false},
    Mapper{"timestamp", "1970-01-01", false},
    Mapper{"timestamptz", "1970-01-01", false},
    Mapper{"interval", "epoch", false},
};

// FUNCTION_DEFAULT_PATTERN, found at the start: ^[(]?[A-Za-z0-9_.]+\((?:.+(?:, ?.+)*)?\) -- an optional '(',
// a name, '(' and a later ')' on the same line.
bool generated_by_function(std::string_view v) {
  std::size_t i = 0;
  if (i < v.size() && v[i] == '(') ++i;
  const std::size_t name = i;
  while (i < v.size() && (std::isalnum(static_cast<unsigned char>(v[i])) || v[i] == '_' || v[i] == '.')) ++i;
  if (i == name || i == v.size() || v[i] != '(') return false;
  for (++i; i < v.size() && v[i] != '\n' && v[i] != '\r'; ++i) {
    if (v[i] == ')') return true;
  }
  return false;
}

bool current_date_time(std::string_view v) {
  std::string lower{v};
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "current_timestamp" || lower == "current_time" || lower == "current_date" ||
         lower == "localtime" || lower == "localtimestamp";
}

// extractDefault(v): a raw value as it is (NULL::type: none), else the first '...' on one line
// (LITERAL_DEFAULT_PATTERN '(.*?)'); none when there is no such pair (the matcher finds nothing).
std::optional<std::string> extract_literal(std::string_view v) {
  if (v.find('\'') == std::string_view::npos) {
    if (v.starts_with("NULL::")) return std::nullopt;
    return std::string{v};
  }
  for (std::size_t open = v.find('\''); open != std::string_view::npos; open = v.find('\'', open + 1)) {
    for (std::size_t i = open + 1; i < v.size() && v[i] != '\n' && v[i] != '\r'; ++i) {
      if (v[i] == '\'') return std::string{v.substr(open + 1, i - open - 1)};
    }
  }
  return std::nullopt;
}

// Java's Short/Integer/Long.parseXxx: an optional sign and decimal digits, within the type's range; the value
// as JSON ("007" is 7).
std::optional<std::string> java_integer(std::string_view s, std::int64_t min, std::int64_t max) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty() || s.front() == '+') return std::nullopt;
  std::int64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return std::to_string(v);
}

bool canonical_uuid(std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    s[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  return true;
}

// bit and varbit: bit(1) is a boolean (convertBit: Integer.valueOf(text, 2) != 0, or the mapper's Boolean for
// a one-character default); longer ones are the BitSet bytes of the characters that are '1'.
std::string bits_default(const ColumnPlan& col, std::string_view type, const std::string& text) {
  const bool boolean_default = type == "bit" && text.size() == 1;
  if (col.typmod == 1) {
    if (boolean_default) return text == "1" ? "true" : "false";
    if (text.empty() || text.size() > 31 || text.find_first_not_of("01") != std::string::npos) return {};
    return text.find('1') != std::string::npos ? "true" : "false";
  }
  std::string bytes;
  if (boolean_default) {
    bytes.assign(1, text == "1" ? '\1' : '\0');
  } else {
    std::string bits = text;
    std::replace_if(
        bits.begin(), bits.end(), [](char c) { return c != '1'; }, '0');
    bits_to_bytes(bits, false, bytes);
  }
  std::string out = "\"";
  append_base64(out, bytes);
  return out + "\"";
}

std::string json_string(std::string_view s) {
  return json_text([&](JsonWriter& w) { write_string(w, s); });
}

}  // namespace

std::optional<DefaultLiteral> default_literal(std::string_view type_name, bool is_enum,
                                              std::string_view expression) {
  if (is_enum) {
    // extractEnumDefault: '<label>'::<type name>, nothing else.
    const std::string suffix = "::" + std::string{type_name};
    if (!expression.ends_with(suffix)) return std::nullopt;
    const std::string_view quoted = expression.substr(0, expression.size() - suffix.size());
    if (quoted.size() < 2 || quoted.front() != '\'' || quoted.back() != '\'') return std::nullopt;
    return DefaultLiteral{std::string{quoted.substr(1, quoted.size() - 2)}, false};
  }
  const auto* mapper =
      std::find_if(kMappers.begin(), kMappers.end(), [&](const Mapper& m) { return m.type == type_name; });
  if (mapper == kMappers.end()) return std::nullopt;
  if (mapper->null_aware && expression.starts_with("NULL::")) return std::nullopt;
  if (generated_by_function(expression) || current_date_time(expression)) {
    return DefaultLiteral{std::string{mapper->placeholder}, true};
  }
  std::optional<std::string> text = extract_literal(expression);
  if (!text) return std::nullopt;
  return DefaultLiteral{std::move(*text), false};
}

std::string default_json(const ColumnPlan& col, const TypeInfo* declared, std::string_view expression,
                         ValueEncoder& values, const DebeziumOptions& options) {
  if (declared == nullptr) return {};
  const bool is_enum = declared->kind == TypeKind::Enum;
  std::optional<DefaultLiteral> literal = default_literal(declared->name, is_enum, expression);
  if (!literal) return {};
  std::string& text = literal->text;
  const std::string_view type = declared->name;
  if (is_enum || type == "bpchar" || type == "varchar" || type == "text" || type == "json" ||
      type == "jsonb" || type == "xml") {
    return json_string(text);
  }
  if (type == "bit" || type == "varbit") return bits_default(col, type, text);
  if (type == "bool") {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text == "true" ? "true" : "false";
  }
  if (type == "int2" || type == "int4" || type == "int8") {
    const std::int64_t limit = type == "int2"   ? std::numeric_limits<std::int16_t>::max()
                               : type == "int4" ? std::numeric_limits<std::int32_t>::max()
                                                : std::numeric_limits<std::int64_t>::max();
    return java_integer(text, -limit - 1, limit).value_or(std::string{});
  }
  if (type == "uuid") return canonical_uuid(text) ? json_string(text) : std::string{};
  if (type == "numeric") {
    // A VariableScaleDecimal is a Struct, which Debezium does not set as a default (KAFKA-12694).
    if (options.decimal == DecimalHandling::Precise && variable_scale(col.typmod)) return {};
  }
  if (literal->placeholder) {
    // The mappers' placeholders in the text form the value parsers read.
    if (type == "time") text = "00:00:00";
    if (type == "timestamp") text = "1970-01-01 00:00:00";
    if (type == "timestamptz") text = "1970-01-01 00:00:00+00";
    if (type == "interval") text = "00:00:00";
  }
  return values.literal_json(col, text);
}

std::string fallback_json(const ColumnPlan& col, const DebeziumOptions& options) {
  switch (col.kind) {
    case TypeKind::Bool:
      return "false";
    case TypeKind::Bit:
    case TypeKind::Varbit:
      return col.typmod == 1 ? "false" : "\"\"";
    case TypeKind::Int2:
    case TypeKind::Int4:
    case TypeKind::Int8:
    case TypeKind::Date:
    case TypeKind::Time:
    case TypeKind::Timestamp:
    case TypeKind::Interval:
      return "0";
    case TypeKind::Float4:
    case TypeKind::Float8:
      return "0.0";
    case TypeKind::Numeric:
    case TypeKind::Money: {
      const int scale = col.kind == TypeKind::Money  ? options.money_fraction_digits
                        : variable_scale(col.typmod) ? 0
                                                     : typmod_scale(col.typmod);
      if (options.decimal == DecimalHandling::Double) return "0.0";
      if (options.decimal == DecimalHandling::String) {
        return json_string(scale > 0 ? "0." + std::string(static_cast<std::size_t>(scale), '0') : "0");
      }
      if (col.kind == TypeKind::Numeric && variable_scale(col.typmod)) return R"({"scale":0,"value":"AA=="})";
      return "\"AA==\"";
    }
    case TypeKind::TimestampTz:
      return "\"1970-01-01T00:00:00Z\"";
    case TypeKind::TimeTz:
      return "\"00:00:00Z\"";
    case TypeKind::Hstore:
      return json_string("{}");
    case TypeKind::Point: {
      char wkb[kPointWkbSize];
      point_wkb(0, 0, wkb);
      std::string out = R"({"x":0.0,"y":0.0,"wkb":")";
      append_base64(out, std::string_view{wkb, sizeof wkb});
      return out + R"(","srid":null})";
    }
    case TypeKind::Array:
      return "[]";
    default:  // strings, bytes (empty in every binary.handling.mode), and types Debezium has no converter for
      return "\"\"";
  }
}

}  // namespace cdcsync::debezium
