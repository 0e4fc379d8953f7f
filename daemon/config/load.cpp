// Config loading: read (capped), parse (toml++), check every key against daemon/config/settings.h and convert
// it to the typed Config, reporting every problem with file, line, column and key.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <toml++/toml.h>
#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "daemon/config/config.h"
#include "daemon/config/issues.h"
#include "daemon/config/secrets.h"
#include "daemon/config/settings.h"
#include "daemon/config/validate.h"
#include "daemon/config/values.h"
#include "decoders/pg_link.h"
#include "sinks/kafka_properties.h"

namespace cdcsync::config {
namespace {

Position position(toml::source_position p) {
  return {static_cast<int>(p.line), static_cast<int>(p.column)};
}

// Where a key was written: the key itself when toml++ knows it, else its value.
Position position_of(const toml::key& k, const toml::node& v) {
  return position(k.source().begin.line ? k.source().begin : v.source().begin);
}

std::string_view type_of(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// Optimal string alignment distance: a transposition counts as one edit.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::clamp<std::size_t>(word.size() / 3, 1, 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

template <class T>
std::optional<T> convert(const toml::node& node, std::string& error) {
  auto expected = [&](std::string_view what) {
    error = fmt::format("expected {}, got {}", what, type_of(node));
    return std::nullopt;
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (const auto* v = node.as_boolean()) return v->get();
    return expected("a boolean (true or false)");
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    if (const auto* v = node.as_integer()) return v->get();
    return expected("an integer");
  } else if constexpr (std::is_same_v<T, milliseconds>) {
    if (const auto* v = node.as_integer()) return milliseconds{v->get()};
    return expected("an integer (milliseconds)");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (const auto* v = node.as_string()) return v->get();
    return expected("a string");
  } else if constexpr (std::is_same_v<T, QualifiedName>) {
    const auto* v = node.as_string();
    if (v == nullptr) return expected("a string (schema.table)");
    auto name = QualifiedName::parse(v->get(), error);
    if (!name) error = fmt::format("\"{}\" {}", v->get(), error);
    return name;
  } else if constexpr (std::is_same_v<T, SecretFile>) {
    const auto* v = node.as_string();
    if (v == nullptr) return expected("a string (path or credential:NAME)");
    return resolve_secret(v->get(), error);
  } else if constexpr (std::is_enum_v<T>) {
    const auto* v = node.as_string();
    if (v == nullptr) return expected(fmt::format("one of {}", enum_choices<T>(", ")));
    for (const auto& [value, name] : EnumNames<T>::values) {
      if (name == v->get()) return value;
    }
    error = fmt::format("\"{}\" is not one of {}", v->get(), enum_choices<T>(", "));
    return std::nullopt;
  }
}

std::int64_t number_of(std::int64_t v) {
  return v;
}
std::int64_t number_of(milliseconds v) {
  return v.count();
}

// Entries of a TOML table in file order (toml++ keeps keys sorted, not in insertion order).
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (auto&& [k, v] : table) entries.emplace_back(&k, &v);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const auto pa = a.first->source().begin;
    const auto pb = b.first->source().begin;
    return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
  });
  return entries;
}

class Loader {
 public:
  Loader(std::string file, const toml::table& root) : issues_(std::move(file)), root_(root) {}

  Config load() {
    Config config;
    config.file = issues_.file();
    check_top_level();
    for_each_bound(kGlobalSettings, [&](const auto& b) {
      const std::string section = section_of(b.setting.key);
      const toml::table* owner = section.empty() ? &root_ : as_table(root_.get(section));
      read(owner, b.setting, std::string(b.setting.key), b.access(config));
    });
    read_kafka_properties(config);
    read_tables(config);
    validate_config(config, issues_);
    issues_.throw_if_any();
    return config;
  }

 private:
  static const toml::table* as_table(const toml::node* n) { return n == nullptr ? nullptr : n->as_table(); }

  void add(toml::source_position pos, std::string key, std::string message) {
    issues_.add(position(pos), std::move(key), std::move(message));
  }

  void remember(const std::string& key, const toml::node& node) {
    const auto pos = node.source().begin;
    issues_.remember(key, pos.line == 0 ? Position{} : position(pos));
  }

  // Unknown keys: one issue each, with the closest known key (or the section it belongs in).
  void check_keys(const toml::table& table, const std::string& display_prefix,
                  const std::vector<std::string>& known) {
    for (auto&& [k, v] : table) {
      const std::string name(k.str());
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      std::string message = fmt::format("unknown key \"{}\"", name);
      if (auto suggestion = closest(name, known)) {
        message += fmt::format("; did you mean \"{}\"?", *suggestion);
      } else if (auto home = section_declaring(name)) {
        message += fmt::format("; it belongs in [{}]", *home);
      } else if (!known.empty()) {
        message += fmt::format("; known keys here: {}", fmt::join(known, ", "));
      }
      issues_.add(position_of(k, v), display_prefix + name, message);
    }
  }

  static std::optional<std::string> section_declaring(const std::string& leaf) {
    std::optional<std::string> home;
    for_each_bound(kGlobalSettings, [&](const auto& b) {
      if (!home && last_segment(b.setting.key) == leaf && !section_of(b.setting.key).empty()) {
        home = section_of(b.setting.key);
      }
    });
    return home;
  }

  void check_top_level() {
    std::vector<std::string> known;
    std::set<std::string> sections;
    for_each_bound(kGlobalSettings, [&](const auto& b) {
      const std::string section = section_of(b.setting.key);
      const std::string name = section.empty() ? std::string(b.setting.key) : section;
      if (std::find(known.begin(), known.end(), name) == known.end()) known.push_back(name);
      if (!section.empty()) sections.insert(section);
    });
    known.push_back("tables");
    check_keys(root_, "", known);
    for (const auto& section : sections) {
      const toml::node* node = root_.get(section);
      if (node == nullptr) continue;
      remember(section, *node);
      const toml::table* table = node->as_table();
      if (table == nullptr) {
        add(node->source().begin, section,
            fmt::format("expected a table ([{}]), got {}", section, type_of(*node)));
        continue;
      }
      std::vector<std::string> leaves;
      for_each_bound(kGlobalSettings, [&](const auto& b) {
        if (section_of(b.setting.key) == section) leaves.push_back(last_segment(b.setting.key));
      });
      for (const auto& k : kGlobalStructuredKeys) {
        if (section_of(k.key) == section) leaves.push_back(last_segment(k.key));
      }
      check_keys(*table, section + ".", leaves);
    }
  }

  // Reads one setting from `owner` (null when its section is absent) into `out`, or reports why not.
  template <class T>
  void read(const toml::table* owner, const Setting<T>& s, const std::string& display_key, T& out) {
    out = s.default_value;
    const toml::node* node = owner == nullptr ? nullptr : owner->get(last_segment(s.key));
    if (node == nullptr) {
      if (s.need == Need::required) {
        const std::string section = section_of(display_key);
        issues_.add_at(display_key,
                       owner == nullptr && !section.empty()
                           ? fmt::format("required key is missing (section [{}] is missing)", section)
                           : std::string("required key is missing"));
      }
      return;
    }
    remember(display_key, *node);
    std::string error;
    std::optional<T> value = convert<T>(*node, error);
    if (!value) {
      add(node->source().begin, display_key, error);
      return;
    }
    if (std::string problem = check_value(s, *value); !problem.empty()) {
      add(node->source().begin, display_key, problem);
      return;
    }
    out = std::move(*value);
  }

  // Bounds, emptiness of a required value, and the setting's own check; empty when the value is fine.
  template <class T>
  static std::string check_value(const Setting<T>& s, const T& value) {
    if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, milliseconds>) {
      const std::string unit = s.unit.empty() ? "" : fmt::format(" {}", s.unit);
      if (s.bounds.min && value < *s.bounds.min) {
        return fmt::format("{} is below the minimum {}{}", number_of(value), number_of(*s.bounds.min), unit);
      }
      if (s.bounds.max && value > *s.bounds.max) {
        return fmt::format("{} is above the maximum {}{}", number_of(value), number_of(*s.bounds.max), unit);
      }
    }
    if (s.need == Need::required && is_unset(value)) return "must not be empty";
    if (s.check != nullptr) return s.check(value);
    return {};
  }

  // [kafka] properties = { "security.protocol" = "SASL_SSL", sasl.mechanism = "SCRAM-SHA-512" }: unquoted
  // dotted keys make nested tables in TOML, so nested tables are flattened back into dotted names.
  void read_kafka_properties(Config& config) {
    const toml::table* kafka = as_table(root_.get("kafka"));
    const toml::node* node = kafka == nullptr ? nullptr : kafka->get("properties");
    if (node == nullptr) return;
    const std::string key = "kafka.properties";
    remember(key, *node);
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      add(node->source().begin, key,
          fmt::format("expected an inline table {{ \"security.protocol\" = \"SASL_SSL\" }}, got {}",
                      type_of(*node)));
      return;
    }
    read_kafka_property_table(*table, "", config.kafka.properties);
  }

  void read_kafka_property_table(const toml::table& table, const std::string& prefix,
                                 std::vector<std::pair<std::string, std::string>>& out) {
    for (auto&& [k, v] : table) {
      const std::string name = prefix + std::string(k.str());
      const std::string display = "kafka.properties." + name;
      const Position pos = position_of(k, v);
      std::string value;
      if (const auto* sub = v.as_table()) {
        read_kafka_property_table(*sub, name + ".", out);
        continue;
      } else if (const auto* text = v.as_string()) {
        value = text->get();
      } else if (const auto* number = v.as_integer()) {
        value = std::to_string(number->get());
      } else if (const auto* flag = v.as_boolean()) {
        value = flag->get() ? "true" : "false";
      } else {
        issues_.add(pos, display, fmt::format("expected a string, integer or boolean, got {}", type_of(v)));
        continue;
      }
      if (std::string problem = check_kafka_property(name, value); !problem.empty()) {
        issues_.add(pos, display, problem);
        continue;
      }
      out.emplace_back(name, std::move(value));
    }
  }

  void read_tables(Config& config) {
    const toml::node* node = root_.get("tables");
    if (node == nullptr) {
      issues_.add({}, "tables", "no [[tables]] entries; at least one table mapping is required");
      return;
    }
    remember("tables", *node);
    const toml::array* array = node->as_array();
    if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
      add(node->source().begin, "tables", fmt::format("expected [[tables]] entries, got {}", type_of(*node)));
      return;
    }
    if (array->empty()) {
      add(node->source().begin, "tables", "no [[tables]] entries; at least one table mapping is required");
      return;
    }
    std::vector<std::string> known;
    for_each_bound(kTableSettings, [&](const auto& b) { known.push_back(last_segment(b.setting.key)); });
    for (const auto& k : kTableStructuredKeys) known.push_back(last_segment(k.key));

    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::table& t = *(*array)[i].as_table();
      const std::string prefix = fmt::format("tables[{}]", i);
      remember(prefix, t);
      check_keys(t, prefix + ".", known);
      TableMapping mapping;
      mapping.line = issues_.where(prefix).line;
      for_each_bound(kTableSettings, [&](const auto& b) {
        read(&t, b.setting, prefix + "." + last_segment(b.setting.key), b.access(mapping));
      });
      read_key(t, prefix, mapping);
      read_columns(t, prefix, mapping);
      read_transforms(t, prefix, mapping);
      validate_table(prefix, mapping, issues_);
      config.tables.push_back(std::move(mapping));
    }
  }

  void read_key(const toml::table& t, const std::string& prefix, TableMapping& mapping) {
    const std::string key = prefix + ".key";
    const toml::node* node = t.get("key");
    if (node == nullptr) {
      issues_.add(issues_.where(prefix), key, "required key is missing");
      return;
    }
    remember(key, *node);
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      add(node->source().begin, key, fmt::format("expected an array of strings, got {}", type_of(*node)));
      return;
    }
    if (array->empty()) {
      add(node->source().begin, key, "is empty; name at least one key column");
      return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      const auto* name = element.as_string();
      const std::string element_key = fmt::format("{}[{}]", key, i);
      if (name == nullptr) {
        add(element.source().begin, element_key, fmt::format("expected a string, got {}", type_of(element)));
        continue;
      }
      if (std::string problem = check_column_name(name->get()); !problem.empty()) {
        add(element.source().begin, element_key, problem);
        continue;
      }
      if (std::find(mapping.key.begin(), mapping.key.end(), name->get()) != mapping.key.end()) {
        add(element.source().begin, element_key, fmt::format("\"{}\" is listed twice", name->get()));
        continue;
      }
      mapping.key.push_back(name->get());
    }
  }

  void read_columns(const toml::table& t, const std::string& prefix, TableMapping& mapping) {
    const std::string key = prefix + ".columns";
    const toml::node* node = t.get("columns");
    if (node == nullptr) {
      issues_.add(issues_.where(prefix), key, "required key is missing");
      return;
    }
    remember(key, *node);
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      add(node->source().begin, key,
          fmt::format("expected an inline table {{ source_column = \"target_column\" }}, got {}",
                      type_of(*node)));
      return;
    }
    if (table->empty()) {
      add(node->source().begin, key, "is empty; map at least the key columns");
      return;
    }
    std::map<std::string, std::string> source_of_target;
    for (const auto& [k, v] : in_file_order(*table)) {
      const std::string source(k->str());
      const std::string column_key = fmt::format("{}.{}", key, toml_key(source));
      const Position pos = position_of(*k, *v);
      issues_.remember(column_key, pos);
      const auto* target = v->as_string();
      if (target == nullptr) {
        issues_.add(pos, column_key,
                    fmt::format("expected a string (the target column), got {}", type_of(*v)));
        continue;
      }
      if (std::string problem = check_column_name(source); !problem.empty()) {
        issues_.add(pos, column_key, fmt::format("source column {}", problem));
        continue;
      }
      if (std::string problem = check_column_name(target->get()); !problem.empty()) {
        issues_.add(pos, column_key, fmt::format("target column {}", problem));
        continue;
      }
      if (auto [it, inserted] = source_of_target.emplace(target->get(), source); !inserted) {
        issues_.add(pos, column_key,
                    fmt::format("duplicate target column \"{}\" (already mapped from \"{}\")", target->get(),
                                it->second));
        // still recorded below, so transforms of this column are checked too (the file is refused anyway)
      }
      mapping.columns.push_back(ColumnMapping{source, target->get(), std::nullopt});
    }
  }

  void read_transforms(const toml::table& t, const std::string& prefix, TableMapping& mapping) {
    const std::string key = prefix + ".transforms";
    const toml::node* node = t.get("transforms");
    if (node == nullptr) return;
    remember(key, *node);
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      add(node->source().begin, key,
          fmt::format("expected an inline table {{ column = {{ mask = {{ keep_last = 4 }} }} }}, got {}",
                      type_of(*node)));
      return;
    }
    std::vector<std::string> mapped_sources;
    for (const auto& c : mapping.columns) mapped_sources.push_back(c.source);
    for (const auto& [k, v] : in_file_order(*table)) {
      const std::string column(k->str());
      const std::string column_key = fmt::format("{}.{}", key, toml_key(column));
      const Position pos = position_of(*k, *v);
      issues_.remember(column_key, pos);
      auto mapped = std::find_if(mapping.columns.begin(), mapping.columns.end(),
                                 [&](const ColumnMapping& c) { return c.source == column; });
      if (mapped == mapping.columns.end()) {
        std::string message =
            fmt::format("column \"{}\" is not mapped in columns; transforms apply to mapped columns", column);
        if (auto suggestion = closest(column, mapped_sources)) {
          message += fmt::format("; did you mean \"{}\"?", *suggestion);
        }
        issues_.add(pos, column_key, message);
        continue;
      }
      if (auto transform = read_transform(*v, pos, column_key)) mapped->transform = std::move(*transform);
    }
  }

  // One column's `{ mask = { keep_last = 2 } }`, `{ hmac_sha256 = { key_file = ... } }` or
  // `{ constant = "EU" }`; nullopt when it is not one of them (reported).
  std::optional<Transform> read_transform(const toml::node& v, Position pos, const std::string& column_key) {
    static const std::vector<std::string> kinds = {"hmac_sha256", "mask", "constant"};
    const toml::table* spec = v.as_table();
    if (spec == nullptr || spec->size() != 1) {
      issues_.add(
          pos, column_key,
          spec == nullptr
              ? fmt::format("expected a table with one of hmac_sha256, mask, constant; got {}", type_of(v))
              : fmt::format("expected exactly one transform (hmac_sha256, mask or constant), found {}",
                            spec->size()));
      return std::nullopt;
    }
    auto [kind_key, kind_node] = *spec->begin();  // a proxy pair of references
    const std::string kind(kind_key.str());
    const std::string kind_display = column_key + "." + kind;
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
      check_keys(*spec, column_key + ".", kinds);
      return std::nullopt;
    }
    if (kind == "constant") {
      Constant constant;
      for_each_bound(kConstantSettings,
                     [&](const auto& b) { read(spec, b.setting, kind_display, b.access(constant)); });
      return constant;
    }
    const toml::table* params = kind_node.as_table();
    if (params == nullptr) {
      add(kind_node.source().begin, kind_display,
          fmt::format("expected a table of parameters, got {}", type_of(kind_node)));
      return std::nullopt;
    }
    remember(kind_display, kind_node);
    auto read_params = [&](const auto& settings, auto& out) {
      std::vector<std::string> known;
      for_each_bound(settings, [&](const auto& b) { known.push_back(last_segment(b.setting.key)); });
      check_keys(*params, kind_display + ".", known);
      for_each_bound(settings, [&](const auto& b) {
        read(params, b.setting, kind_display + "." + last_segment(b.setting.key), b.access(out));
      });
    };
    if (kind == "hmac_sha256") {
      HmacSha256 hmac;
      read_params(kHmacSettings, hmac);
      return hmac;
    }
    Mask mask;
    read_params(kMaskSettings, mask);
    return mask;
  }

  Issues issues_;
  const toml::table& root_;
};

}  // namespace

Config load_config_from_string(std::string_view text, std::string_view file_name_for_messages) {
  const std::string file(file_name_for_messages);
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    const auto pos = e.source().begin;
    throw ConfigError({ConfigIssue{file, static_cast<int>(pos.line), static_cast<int>(pos.column), "",
                                   fmt::format("TOML syntax error: {}", e.description())}});
  }
  return Loader(file, root).load();
}

Config load_config(const std::filesystem::path& path) {
  std::string error;
  auto text = read_regular_file(path, kMaxConfigBytes, error, 0);
  if (!text) throw ConfigError({ConfigIssue{path.string(), 0, 0, "", error}});
  Config config = load_config_from_string(*text, path.string());
  config.file = path;
  // The one process-wide setting: every PostgreSQL connection opened from now on without a deadline of its
  // own gets this one (decoders/pg_link.h), whichever command or tool opens it.
  pg_link::set_default_reply_timeout(config.network.reply_timeout);
  return config;
}

}  // namespace cdcsync::config
