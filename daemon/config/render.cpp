// Config rendering: `config show` (the effective config as TOML, secrets by path only) and the key reference
// (`config help`, and the Markdown table in docs/configuration.md), all from daemon/config/settings.h.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/config/settings.h"
#include "daemon/config/values.h"
#include "decoders/pg.h"

namespace cdcsync::config {
namespace {

template <class T>
std::string value_text(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, milliseconds>) {
    return std::to_string(v.count());
  } else if constexpr (std::is_same_v<T, std::string>) {
    return toml_string(v);
  } else if constexpr (std::is_same_v<T, QualifiedName>) {
    return toml_string(v.str());
  } else if constexpr (std::is_same_v<T, SecretFile>) {
    return toml_string(v.spec);
  } else if constexpr (std::is_enum_v<T>) {
    return toml_string(enum_name(v));
  }
}

template <class T>
std::string type_text(std::string_view unit) {
  std::string base;
  if constexpr (std::is_same_v<T, bool>) {
    base = "boolean";
  } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, milliseconds>) {
    base = "integer";
  } else if constexpr (std::is_same_v<T, std::string>) {
    base = "string";
  } else if constexpr (std::is_same_v<T, QualifiedName>) {
    base = "string (schema.table)";
  } else if constexpr (std::is_same_v<T, SecretFile>) {
    base = "string (path or credential:NAME)";
  } else if constexpr (std::is_enum_v<T>) {
    base = enum_choices<T>(" | ");
  }
  if (!unit.empty()) base += fmt::format(", {}", unit);
  return base;
}

template <class T>
std::string bounds_text(const Bounds<T>& b) {
  if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, milliseconds>) {
    if (b.min && b.max) return fmt::format("{} .. {}", value_text(*b.min), value_text(*b.max));
    if (b.min) return fmt::format(">= {}", value_text(*b.min));
    if (b.max) return fmt::format("<= {}", value_text(*b.max));
  }
  return {};
}

template <class T>
std::string default_text(const Setting<T>& s) {
  if (s.need == Need::required) return "required";
  if (is_unset(s.default_value)) return "unset";
  return value_text(s.default_value);
}

struct DocRow {
  std::string key, type, default_value, bounds, help;
};

template <class Tuple>
void collect_rows(const Tuple& settings, std::vector<DocRow>& rows) {
  for_each_bound(settings, [&](const auto& b) {
    const auto& s = b.setting;
    using T = std::decay_t<decltype(s.default_value)>;
    rows.push_back(DocRow{std::string(s.key), type_text<T>(s.unit), default_text(s), bounds_text(s.bounds),
                          std::string(s.help)});
  });
}

DocRow structured_row(const StructuredKey& k) {
  return DocRow{std::string(k.key), std::string(k.type), k.need == Need::required ? "required" : "unset", "",
                std::string(k.help)};
}

// (section title, rows) in the order of daemon/config/settings.h.
std::vector<std::pair<std::string, std::vector<DocRow>>> reference_sections() {
  std::vector<std::pair<std::string, std::vector<DocRow>>> sections;
  std::vector<DocRow> rows;
  collect_rows(kGlobalSettings, rows);
  for (auto& row : rows) {
    const std::string section = section_of(row.key);
    const std::string title = section.empty() ? "top level" : fmt::format("[{}]", section);
    if (sections.empty() || sections.back().first != title)
      sections.emplace_back(title, std::vector<DocRow>{});
    sections.back().second.push_back(std::move(row));
  }
  std::vector<DocRow> table_rows;
  collect_rows(kTableSettings, table_rows);
  for (const auto& k : kTableStructuredKeys) table_rows.push_back(structured_row(k));
  sections.emplace_back("[[tables]]", std::move(table_rows));
  for (const auto& k : kGlobalStructuredKeys) {
    const std::string title = fmt::format("[{}]", section_of(k.key));
    for (auto& [section_title, section_rows] : sections) {
      if (section_title == title) section_rows.push_back(structured_row(k));
    }
  }
  std::vector<DocRow> transform_rows;
  collect_rows(kHmacSettings, transform_rows);
  collect_rows(kMaskSettings, transform_rows);
  collect_rows(kConstantSettings, transform_rows);
  sections.emplace_back("[[tables]] transforms", std::move(transform_rows));
  return sections;
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

template <class Tuple, class Owner>
void render_settings(const Tuple& settings, Owner& owner, std::string& out, std::string& current_section,
                     bool with_sections) {
  for_each_bound(settings, [&](const auto& b) {
    const std::string section = section_of(b.setting.key);
    if (with_sections && section != current_section && !section.empty()) {
      out += fmt::format("\n[{}]\n", section);
      current_section = section;
    }
    const auto& value = b.access(owner);
    const std::string leaf = last_segment(b.setting.key);
    if (is_unset(value)) {
      out += fmt::format("# {} is unset\n", leaf);
    } else {
      out += fmt::format("{} = {}\n", leaf, value_text(value));
    }
  });
}

// A conninfo as written, or rebuilt without the password when it holds one.
std::string redacted_conninfo(const std::string& conninfo) {
  std::string error;
  bool had_password = false;
  const auto rebuilt = conninfo_without_password(conninfo, error, &had_password);
  if (!rebuilt) return "(withheld: does not parse)";
  return had_password ? *rebuilt : conninfo;
}

std::string transform_text(const Transform& transform) {
  return std::visit(
      [](const auto& t) -> std::string {
        using T = std::decay_t<decltype(t)>;
        if constexpr (std::is_same_v<T, HmacSha256>) {
          return fmt::format("hmac_sha256 = {{ key_file = {} }}", toml_string(t.key_file.spec));
        } else if constexpr (std::is_same_v<T, Mask>) {
          return fmt::format("mask = {{ keep_last = {}, char = {} }}", t.keep_last, toml_string(t.mask_char));
        } else {
          return fmt::format("constant = {}", toml_string(t.value));
        }
      },
      transform);
}

// One [[tables]] entry: its settings, then key, columns and transforms as inline values (in file order).
void render_table(TableMapping& table, std::string& out) {
  out += "\n[[tables]]\n";
  std::string none;
  render_settings(kTableSettings, table, out, none, false);
  out += "key = [";
  for (std::size_t i = 0; i < table.key.size(); ++i) out += (i ? ", " : "") + toml_string(table.key[i]);
  out += "]\ncolumns = { ";
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    out += fmt::format("{}{} = {}", i ? ", " : "", toml_key(table.columns[i].source),
                       toml_string(table.columns[i].target));
  }
  out += " }\n";
  std::vector<std::string> transforms;
  for (const auto& c : table.columns) {
    if (c.transform)
      transforms.push_back(fmt::format("{} = {{ {} }}", toml_key(c.source), transform_text(*c.transform)));
  }
  if (!transforms.empty()) out += fmt::format("transforms = {{ {} }}\n", fmt::join(transforms, ", "));
}

}  // namespace

std::string render_effective_config(const Config& config) {
  Config copy = config;  // access functions take non-const owners
  std::string out = "# cdcsync effective configuration (defaults filled in; secrets by path only)\n";
  copy.source.conninfo = redacted_conninfo(copy.source.conninfo);
  copy.target.conninfo = redacted_conninfo(copy.target.conninfo);
  std::string section;
  render_settings(kGlobalSettings, copy, out, section, true);
  if (!copy.kafka.properties.empty()) {
    out += "\n[kafka.properties]\n";
    for (const auto& [name, value] : copy.kafka.properties)
      out += fmt::format("{} = {}\n", toml_string(name), toml_string(value));
  }
  for (auto& table : copy.tables) render_table(table, out);
  return out;
}

std::vector<std::pair<std::string, std::string>> effective_values(const Config& config) {
  Config copy = config;
  std::vector<std::pair<std::string, std::string>> out;
  for_each_bound(kGlobalSettings, [&](const auto& b) {
    const auto& value = b.access(copy);
    out.emplace_back(std::string(b.setting.key),
                     is_unset(value) ? std::string("(unset)") : value_text(value));
  });
  std::string properties;
  for (const auto& [name, value] : copy.kafka.properties) properties += name + "=" + value + "\n";
  out.emplace_back("kafka.properties", properties);
  for (auto& table : copy.tables) {
    std::string text;
    render_table(table, text);
    out.emplace_back("tables." + table.target.str(), text);
  }
  return out;
}

std::string render_config_help() {
  std::string out =
      "Configuration keys (TOML). Durations are integers in milliseconds (keys ending in _ms).\n"
      "Passwords never go in the file: use password_file, ~/.pgpass/PGPASSFILE or credential:NAME.\n";
  for (const auto& [title, rows] : reference_sections()) {
    out += fmt::format("\n{}\n", title);
    for (const auto& row : rows) {
      out += fmt::format("  {} : {}; {}{}\n      {}\n", row.key, row.type,
                         row.default_value == "required" || row.default_value == "unset"
                             ? row.default_value
                             : "default " + row.default_value,
                         row.bounds.empty() ? "" : "; " + row.bounds, row.help);
    }
  }
  return out;
}

std::string render_config_reference_markdown() {
  std::string out;
  for (const auto& [title, rows] : reference_sections()) {
    out += fmt::format("\n### {}\n\n| Key | Type | Default | Bounds | Description |\n|---|---|---|---|---|\n",
                       title);
    for (const auto& row : rows) {
      out += fmt::format("| `{}` | {} | {} | {} | {} |\n", row.key, markdown_cell(row.type),
                         row.default_value == "required" || row.default_value == "unset"
                             ? row.default_value
                             : fmt::format("`{}`", row.default_value),
                         row.bounds, markdown_cell(row.help));
    }
  }
  return out;
}

}  // namespace cdcsync::config
