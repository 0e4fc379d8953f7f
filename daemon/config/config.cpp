// Config loading: read (capped), parse (toml++), check every key against daemon/config/settings.h, convert,
// cross-check, and report every problem with file, line and key.
#include "daemon/config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "daemon/config/settings.h"
#include "sinks/kafka_properties.h"

namespace cdcsync::config {
namespace {

constexpr std::size_t kMaxSecretBytes = 4096;
constexpr std::size_t kMaxIdentifierBytes = 63;  // PostgreSQL's NAMEDATALEN - 1

// ---------------------------------------------------------------------------------------------------------
// Enum names

template <class E>
struct EnumNames;
template <>
struct EnumNames<StreamingMode> {
  static constexpr std::pair<StreamingMode, std::string_view> values[] = {{StreamingMode::off, "off"},
                                                                          {StreamingMode::on, "on"}};
};
template <>
struct EnumNames<SnapshotMode> {
  static constexpr std::pair<SnapshotMode, std::string_view> values[] = {{SnapshotMode::initial, "initial"},
                                                                         {SnapshotMode::never, "never"}};
};
template <>
struct EnumNames<DeletePolicy> {
  static constexpr std::pair<DeletePolicy, std::string_view> values[] = {
      {DeletePolicy::hard, "hard"}, {DeletePolicy::soft, "soft"}, {DeletePolicy::ignore, "ignore"}};
};
template <>
struct EnumNames<TruncatePolicy> {
  static constexpr std::pair<TruncatePolicy, std::string_view> values[] = {
      {TruncatePolicy::apply, "apply"}, {TruncatePolicy::ignore, "ignore"}, {TruncatePolicy::fail, "fail"}};
};
template <>
struct EnumNames<ToastCompression> {
  static constexpr std::pair<ToastCompression, std::string_view> values[] = {
      {ToastCompression::automatic, "auto"},
      {ToastCompression::server, "server"},
      {ToastCompression::lz4, "lz4"},
      {ToastCompression::pglz, "pglz"}};
};
template <>
struct EnumNames<CopyFormat> {
  static constexpr std::pair<CopyFormat, std::string_view> values[] = {{CopyFormat::binary, "binary"},
                                                                       {CopyFormat::text, "text"}};
};
template <>
struct EnumNames<LogLevel> {
  static constexpr std::pair<LogLevel, std::string_view> values[] = {{LogLevel::trace, "trace"},
                                                                     {LogLevel::debug, "debug"},
                                                                     {LogLevel::info, "info"},
                                                                     {LogLevel::warn, "warn"},
                                                                     {LogLevel::error, "error"}};
};
template <>
struct EnumNames<LogFormat> {
  static constexpr std::pair<LogFormat, std::string_view> values[] = {{LogFormat::text, "text"},
                                                                      {LogFormat::json, "json"}};
};

template <class E>
std::string_view enum_name(E v) {
  for (const auto& [value, name] : EnumNames<E>::values) {
    if (value == v) return name;
  }
  return "?";
}

template <class E>
std::string enum_choices(std::string_view separator) {
  std::string out;
  for (const auto& [value, name] : EnumNames<E>::values) {
    if (!out.empty()) out += separator;
    out += fmt::format("\"{}\"", name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string toml_key(std::string_view k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
  return bare ? std::string(k) : toml_quote(k);
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

std::string last_segment(std::string_view key) {
  const auto dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

std::string section_of(std::string_view key) {
  const auto dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? std::string_view{} : key.substr(0, dot));
}

bool is_loopback_address(std::string_view host) {
  const std::string h(host);
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::optional<int> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int port = std::stoi(std::string(s));
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens without blocking on a FIFO, refuses anything but a regular file, and reads at most `cap` bytes.
// Returns the content or sets `error` (which names the path, never the content).
std::optional<std::string> read_regular_file(const std::filesystem::path& path, std::size_t cap,
                                             std::string& error, mode_t forbidden_mode_bits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    error = fmt::format("cannot open {}: {}", path.string(), errno_text(errno));
    return std::nullopt;
  }
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    error = fmt::format("cannot stat {}: {}", path.string(), errno_text(errno));
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    error = fmt::format("{} is not a regular file", path.string());
    return std::nullopt;
  }
  if ((st.st_mode & forbidden_mode_bits) != 0) {
    error = fmt::format("{} has mode {:04o}, wider than 0640 (run: chmod 0600 {})", path.string(),
                        st.st_mode & 07777, path.string());
    return std::nullopt;
  }
  if (static_cast<std::uint64_t>(st.st_size) > cap) {
    error = fmt::format("{} is {} bytes, more than the {} byte limit", path.string(), st.st_size, cap);
    return std::nullopt;
  }
  std::string content;
  std::array<char, 8192> buf{};
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = fmt::format("cannot read {}: {}", path.string(), errno_text(errno));
      return std::nullopt;
    }
    if (n == 0) break;
    content.append(buf.data(), static_cast<std::size_t>(n));
    if (content.size() > cap) {  // grew after fstat
      error = fmt::format("{} is more than the {} byte limit", path.string(), cap);
      return std::nullopt;
    }
  }
  return content;
}

constexpr mode_t kSecretForbiddenBits = S_IWGRP | S_IXGRP | S_IRWXO;  // wider than 0640

// Checks a secret file without reading it: regular, mode ≤ 0640, owned by us or root, readable.
std::string check_secret_path(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fmt::format("cannot use {}: {}", path.string(), errno_text(errno));
  if (!S_ISREG(st.st_mode)) return fmt::format("{} is not a regular file", path.string());
  if ((st.st_mode & kSecretForbiddenBits) != 0) {
    return fmt::format("{} has mode {:04o}, wider than 0640 (run: chmod 0600 {})", path.string(),
                       st.st_mode & 07777, path.string());
  }
  const uid_t me = ::geteuid();
  if (me != 0 && st.st_uid != me && st.st_uid != 0) {
    return fmt::format("{} is owned by uid {}, not by the service user (uid {}) or root", path.string(),
                       st.st_uid, me);
  }
  if (::access(path.c_str(), R_OK) != 0)
    return fmt::format("cannot read {}: {}", path.string(), errno_text(errno));
  return {};
}

std::optional<SecretFile> resolve_secret(const std::string& spec, std::string& error) {
  constexpr std::string_view kCredential = "credential:";
  SecretFile secret{spec, {}};
  if (spec.empty()) {
    error = "is empty; remove the key to leave it unset";
    return std::nullopt;
  }
  if (spec.starts_with(kCredential)) {
    const std::string name = spec.substr(kCredential.size());
    const bool name_ok = !name.empty() && name != "." && name != ".." &&
                         std::all_of(name.begin(), name.end(), [](unsigned char c) {
                           return std::isalnum(c) || c == '_' || c == '-' || c == '.';
                         });
    if (!name_ok) {
      error = fmt::format("credential name \"{}\" must be [A-Za-z0-9_.-]+", name);
      return std::nullopt;
    }
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr || *dir == '\0') {
      error = fmt::format("{} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential={}:...), which is not set",
                          spec, name);
      return std::nullopt;
    }
    secret.path = std::filesystem::path(dir) / name;
  } else {
    secret.path = spec;
    if (!secret.path.is_absolute()) {
      error = fmt::format("\"{}\" must be an absolute path or credential:NAME", spec);
      return std::nullopt;
    }
  }
  error = check_secret_path(secret.path);
  if (!error.empty()) return std::nullopt;
  return secret;
}

// "public.customers", "\"Mixed Case\".\"Tbl\"": each part unquoted [a-z_][a-z0-9_$]* or a quoted identifier.
std::optional<QualifiedName> parse_qualified_name(std::string_view text, std::string& error) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (true) {
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
    } else {
      while (i < text.size() && text[i] != '.') {
        const char c = text[i];
        const bool ok =
            (c >= 'a' && c <= 'z') || c == '_' || (!part.empty() && ((c >= '0' && c <= '9') || c == '$'));
        if (!ok) {
          error =
              (c >= 'A' && c <= 'Z')
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
    }
    if (part.size() > kMaxIdentifierBytes) {
      error = fmt::format("has a name longer than {} bytes", kMaxIdentifierBytes);
      return std::nullopt;
    }
    if (part.find('\0') != std::string::npos) {
      error = "has a NUL byte";
      return std::nullopt;
    }
    parts.push_back(std::move(part));
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

// ---------------------------------------------------------------------------------------------------------
// Typed values: conversion from TOML, and text for docs and `config show`

template <class T>
inline constexpr bool kIsEnum = std::is_enum_v<T>;

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
    auto name = parse_qualified_name(v->get(), error);
    if (!name) error = fmt::format("\"{}\" {}", v->get(), error);
    return name;
  } else if constexpr (std::is_same_v<T, SecretFile>) {
    const auto* v = node.as_string();
    if (v == nullptr) return expected("a string (path or credential:NAME)");
    return resolve_secret(v->get(), error);
  } else if constexpr (kIsEnum<T>) {
    const auto* v = node.as_string();
    if (v == nullptr) return expected(fmt::format("one of {}", enum_choices<T>(", ")));
    for (const auto& [value, name] : EnumNames<T>::values) {
      if (name == v->get()) return value;
    }
    error = fmt::format("\"{}\" is not one of {}", v->get(), enum_choices<T>(", "));
    return std::nullopt;
  }
}

template <class T>
std::string value_text(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, milliseconds>) {
    return std::to_string(v.count());
  } else if constexpr (std::is_same_v<T, std::string>) {
    return toml_quote(v);
  } else if constexpr (std::is_same_v<T, QualifiedName>) {
    return toml_quote(v.str());
  } else if constexpr (std::is_same_v<T, SecretFile>) {
    return toml_quote(v.spec);
  } else if constexpr (kIsEnum<T>) {
    return toml_quote(enum_name(v));
  }
}

template <class T>
bool is_unset(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v.empty();
  } else if constexpr (std::is_same_v<T, SecretFile>) {
    return !v.configured();
  } else {
    return false;
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
  } else if constexpr (kIsEnum<T>) {
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

// ---------------------------------------------------------------------------------------------------------
// The loader

class Loader {
 public:
  Loader(std::string file, const toml::table& root) : file_(std::move(file)), root_(root) {}

  Config load() {
    Config config;
    config.file = file_;
    check_top_level();
    for_each_bound(kGlobalSettings, [&](const auto& b) {
      const std::string section = section_of(b.setting.key);
      const toml::table* owner = section.empty() ? &root_ : as_table(root_.get(section));
      read(owner, b.setting, std::string(b.setting.key), b.access(config));
    });
    read_kafka_properties(config);
    read_tables(config);
    check_cross_field(config);
    if (!issues_.empty()) {
      std::stable_sort(issues_.begin(), issues_.end(), [](const ConfigIssue& a, const ConfigIssue& b) {
        return std::pair(a.line, a.column) < std::pair(b.line, b.column);
      });
      throw ConfigError(std::move(issues_));
    }
    return config;
  }

 private:
  static const toml::table* as_table(const toml::node* n) { return n == nullptr ? nullptr : n->as_table(); }

  void add(toml::source_position pos, std::string key, std::string message) {
    issues_.push_back(ConfigIssue{file_, static_cast<int>(pos.line), static_cast<int>(pos.column),
                                  std::move(key), std::move(message)});
  }

  static toml::source_position start_of_file() { return {1, 1}; }

  // Where a (display) key was written; else its closest written parent; else the start of the file.
  toml::source_position where(std::string_view key) const {
    std::string k(key);
    while (true) {
      if (auto it = where_.find(k); it != where_.end()) return it->second;
      if (k.empty()) return start_of_file();
      k = section_of(k);
    }
  }

  void remember(const std::string& key, const toml::node& node) {
    const auto pos = node.source().begin;
    where_[key] = pos.line == 0 ? start_of_file() : pos;
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
      add(k.source().begin.line ? k.source().begin : v.source().begin, display_prefix + name, message);
    }
  }

  std::optional<std::string> section_declaring(const std::string& leaf) const {
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
        add(where(display_key), display_key,
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
    if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, milliseconds>) {
      if (s.bounds.min && *value < *s.bounds.min) {
        add(node->source().begin, display_key,
            fmt::format("{} is below the minimum {}{}", value_text(*value), value_text(*s.bounds.min),
                        s.unit.empty() ? "" : fmt::format(" {}", s.unit)));
        return;
      }
      if (s.bounds.max && *value > *s.bounds.max) {
        add(node->source().begin, display_key,
            fmt::format("{} is above the maximum {}{}", value_text(*value), value_text(*s.bounds.max),
                        s.unit.empty() ? "" : fmt::format(" {}", s.unit)));
        return;
      }
    }
    if (s.need == Need::required && is_unset(*value)) {
      add(node->source().begin, display_key, "must not be empty");
      return;
    }
    if (s.check != nullptr) {
      if (std::string problem = s.check(*value); !problem.empty()) {
        add(node->source().begin, display_key, problem);
        return;
      }
    }
    out = std::move(*value);
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
      const auto pos = k.source().begin.line ? k.source().begin : v.source().begin;
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
        add(pos, display, fmt::format("expected a string, integer or boolean, got {}", type_of(v)));
        continue;
      }
      if (std::string problem = check_kafka_property(name, value); !problem.empty()) {
        add(pos, display, problem);
        continue;
      }
      out.emplace_back(name, std::move(value));
    }
  }

  void read_tables(Config& config) {
    const toml::node* node = root_.get("tables");
    if (node == nullptr) {
      add(start_of_file(), "tables", "no [[tables]] entries; at least one table mapping is required");
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
      mapping.line = static_cast<int>(where(prefix).line);
      for_each_bound(kTableSettings, [&](const auto& b) {
        read(&t, b.setting, prefix + "." + last_segment(b.setting.key), b.access(mapping));
      });
      read_key(t, prefix, mapping);
      read_columns(t, prefix, mapping);
      read_transforms(t, prefix, mapping);
      check_table(prefix, mapping);
      config.tables.push_back(std::move(mapping));
    }
  }

  void read_key(const toml::table& t, const std::string& prefix, TableMapping& mapping) {
    const std::string key = prefix + ".key";
    const toml::node* node = t.get("key");
    if (node == nullptr) {
      add(where(prefix), key, "required key is missing");
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

  // Entries of a TOML table in file order (toml++ keeps keys sorted, not in insertion order).
  static std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table) {
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (auto&& [k, v] : table) entries.emplace_back(&k, &v);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      const auto pa = a.first->source().begin;
      const auto pb = b.first->source().begin;
      return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
    });
    return entries;
  }

  void read_columns(const toml::table& t, const std::string& prefix, TableMapping& mapping) {
    const std::string key = prefix + ".columns";
    const toml::node* node = t.get("columns");
    if (node == nullptr) {
      add(where(prefix), key, "required key is missing");
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
      const auto pos = k->source().begin.line ? k->source().begin : v->source().begin;
      where_[column_key] = pos;
      const auto* target = v->as_string();
      if (target == nullptr) {
        add(pos, column_key, fmt::format("expected a string (the target column), got {}", type_of(*v)));
        continue;
      }
      if (std::string problem = check_column_name(source); !problem.empty()) {
        add(pos, column_key, fmt::format("source column {}", problem));
        continue;
      }
      if (std::string problem = check_column_name(target->get()); !problem.empty()) {
        add(pos, column_key, fmt::format("target column {}", problem));
        continue;
      }
      if (auto [it, inserted] = source_of_target.emplace(target->get(), source); !inserted) {
        add(pos, column_key,
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
    const std::vector<std::string> kinds = {"hmac_sha256", "mask", "constant"};

    for (const auto& [k, v] : in_file_order(*table)) {
      const std::string column(k->str());
      const std::string column_key = fmt::format("{}.{}", key, toml_key(column));
      const auto pos = k->source().begin.line ? k->source().begin : v->source().begin;
      where_[column_key] = pos;
      auto mapped = std::find_if(mapping.columns.begin(), mapping.columns.end(),
                                 [&](const ColumnMapping& c) { return c.source == column; });
      if (mapped == mapping.columns.end()) {
        std::string message = fmt::format(
            "column \"{}\" is not mapped in columns; transforms apply to mapped "
            "columns",
            column);
        if (auto suggestion = closest(column, mapped_sources)) {
          message += fmt::format("; did you mean \"{}\"?", *suggestion);
        }
        add(pos, column_key, message);
        continue;
      }
      const toml::table* spec = v->as_table();
      if (spec == nullptr || spec->size() != 1) {
        add(pos, column_key,
            spec == nullptr
                ? fmt::format("expected a table with one of hmac_sha256, mask, constant; got {}", type_of(*v))
                : fmt::format("expected exactly one transform (hmac_sha256, mask or constant), found {}",
                              spec->size()));
        continue;
      }
      auto [kind_key, kind_node] = *spec->begin();  // a proxy pair of references
      const std::string kind(kind_key.str());
      const std::string kind_display = column_key + "." + kind;
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
        check_keys(*spec, column_key + ".", kinds);
        continue;
      }
      std::optional<Transform> transform;
      if (kind == "constant") {
        Constant constant;
        for_each_bound(kConstantSettings,
                       [&](const auto& b) { read(spec, b.setting, kind_display, b.access(constant)); });
        transform = constant;
      } else {
        const toml::table* params = kind_node.as_table();
        if (params == nullptr) {
          add(kind_node.source().begin, kind_display,
              fmt::format("expected a table of parameters, got {}", type_of(kind_node)));
          continue;
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
          transform = hmac;
        } else {
          Mask mask;
          read_params(kMaskSettings, mask);
          transform = mask;
        }
      }
      mapped->transform = std::move(transform);
    }
  }

  void check_table(const std::string& prefix, const TableMapping& mapping) {
    for (std::size_t i = 0; i < mapping.key.size(); ++i) {
      const std::string& k = mapping.key[i];
      auto column = std::find_if(mapping.columns.begin(), mapping.columns.end(),
                                 [&](const ColumnMapping& c) { return c.source == k; });
      const std::string key = prefix + ".key";
      if (column == mapping.columns.end()) {
        add(where(key), key, fmt::format("key column \"{}\" is not mapped in columns", k));
      } else if (column->transform && !std::holds_alternative<HmacSha256>(*column->transform)) {
        add(where(fmt::format("{}.transforms.{}", prefix, toml_key(k))), key,
            fmt::format(
                "key column \"{}\" has a {} transform, which would merge distinct keys; only hmac_sha256 "
                "keeps keys distinct",
                k, name_of(*column->transform)));
      }
    }
    for (const auto& c : mapping.columns) {
      if (c.target == mapping.lsn_column) {
        add(where(prefix + ".lsn_column"), prefix + ".columns",
            fmt::format("target column \"{}\" is also the lsn_column", c.target));
      }
      if (mapping.deletes == DeletePolicy::soft && c.target == mapping.tombstone_column) {
        add(where(prefix + ".tombstone_column"), prefix + ".columns",
            fmt::format("target column \"{}\" is also the tombstone_column", c.target));
      }
    }
    if (mapping.deletes == DeletePolicy::soft && mapping.tombstone_column == mapping.lsn_column) {
      add(where(prefix + ".tombstone_column"), prefix + ".tombstone_column",
          "must differ from lsn_column when deletes = \"soft\"");
    }
  }

  void check_conninfo(const std::string& section, const std::string& conninfo, bool allow_insecure_tls) {
    const std::string key = section + ".conninfo";
    if (conninfo.empty()) return;  // reported as missing
    char* raw_error = nullptr;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
        PQconninfoParse(conninfo.c_str(), &raw_error), &PQconninfoFree);
    std::unique_ptr<char, decltype(&PQfreemem)> error(raw_error, &PQfreemem);
    std::string lowered = conninfo;
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    const bool may_hold_password =
        lowered.find("password") != std::string::npos ||
        (lowered.find("://") != std::string::npos && lowered.find('@') != std::string::npos);
    if (!options) {
      std::string reason = error ? std::string(error.get()) : std::string("out of memory");
      while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
      // libpq quotes pieces of the string in its messages; they must not carry a password.
      if (may_hold_password)
        reason = "it does not parse (libpq's message is withheld: it may quote a password)";
      add(where(key), key, fmt::format("invalid connection string: {}", reason));
      return;
    }
    std::map<std::string, std::string> given;
    for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
      if (o->val != nullptr) given[o->keyword] = o->val;
    }
    if (auto it = given.find("password"); it != given.end()) {
      add(where(key), key,
          fmt::format(
              "contains a password; remove it and use {}.password_file, ~/.pgpass or a systemd credential",
              section));
      return;
    }
    const std::string hosts =
        given.count("hostaddr") && !given["hostaddr"].empty() ? given["hostaddr"] : given["host"];
    std::vector<std::string> remote;
    for (const auto& h : split(hosts, ',')) {
      if (h.empty() || h.front() == '/' || h.front() == '@' || is_loopback_address(h)) continue;
      remote.push_back(h);
    }
    const std::string sslmode = given.count("sslmode") ? given["sslmode"] : "prefer";
    const bool unverified =
        sslmode == "disable" || sslmode == "allow" || sslmode == "prefer" || sslmode == "require";
    if (!remote.empty() && unverified && !allow_insecure_tls) {
      add(where(key), key,
          fmt::format("sslmode={}{} does not verify the non-loopback host {}; use sslmode=verify-full with "
                      "sslrootcert, or set {}.allow_insecure_tls = true",
                      sslmode, given.count("sslmode") ? "" : " (libpq's default)", remote.front(), section));
    }
  }

  void check_redis(CheckpointConfig& checkpoint) {
    const std::string key = "checkpoint.redis";
    const std::string& url = checkpoint.redis;
    if (url.empty()) return;
    RedisEndpoint endpoint;
    auto fail = [&](std::string message) { add(where(key), key, std::move(message)); };
    if (url.starts_with("rediss://")) {
      return fail(
          "TLS (rediss://) is not supported by the hiredis this build uses; use a unix socket or loopback");
    }
    if (url.starts_with("unix://")) {
      std::string rest = url.substr(7);
      if (const auto q = rest.find('?'); q != std::string::npos) {
        const std::string query = rest.substr(q + 1);
        rest.resize(q);
        if (!query.starts_with("db=") || query.size() == 3 ||
            !std::all_of(query.begin() + 3, query.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
            query.size() > 7) {
          return fail("unix:// URL query must be ?db=N");
        }
        endpoint.db = std::stoi(query.substr(3));
      }
      if (rest.empty() || rest.front() != '/')
        return fail("unix:// URL needs an absolute socket path (unix:///run/redis.sock)");
      endpoint.unix_socket = rest;
      endpoint.port = 0;
      checkpoint.endpoint = endpoint;
      return;
    }
    if (!url.starts_with("redis://")) {
      return fail("expected redis://[user@]host[:port][/db] or unix:///path[?db=N]");
    }
    std::string rest = url.substr(8);
    std::string authority = rest.substr(0, rest.find('/'));
    const std::string path = rest.size() > authority.size() ? rest.substr(authority.size() + 1) : "";
    if (const auto at = authority.rfind('@'); at != std::string::npos) {
      const std::string userinfo = authority.substr(0, at);
      if (userinfo.find(':') != std::string::npos) {
        return fail("the URL contains a password; remove it and use checkpoint.password_file");
      }
      endpoint.user = userinfo;
      authority = authority.substr(at + 1);
    }
    std::string host = authority;
    std::string port;
    if (authority.starts_with("[")) {
      const auto close = authority.find(']');
      if (close == std::string::npos) return fail("unterminated [IPv6] host");
      host = authority.substr(1, close - 1);
      if (close + 1 < authority.size()) {
        if (authority[close + 1] != ':') return fail("expected :port after [IPv6] host");
        port = authority.substr(close + 2);
      }
    } else if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (host.empty()) return fail("the URL has no host");
    endpoint.host = host;
    if (!port.empty()) {
      auto p = parse_port(port);
      if (!p) return fail(fmt::format("port \"{}\" is not in 1..65535", port));
      endpoint.port = *p;
    }
    if (!path.empty()) {
      if (path.size() > 5 ||
          !std::all_of(path.begin(), path.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return fail(fmt::format("database \"{}\" is not a number", path));
      }
      endpoint.db = std::stoi(path);
    }
    checkpoint.endpoint = endpoint;
  }

  void check_metrics(MetricsConfig& metrics) {
    const std::string key = "metrics.listen";
    const std::string& listen = metrics.listen;
    std::string host;
    std::string port;
    if (listen.starts_with("[")) {
      const auto close = listen.find("]:");
      if (close == std::string::npos) {
        add(where(key), key, fmt::format("\"{}\" is not [v6]:port", listen));
        return;
      }
      host = listen.substr(1, close - 1);
      port = listen.substr(close + 2);
    } else {
      const auto colon = listen.rfind(':');
      if (colon == std::string::npos) {
        add(where(key), key, fmt::format("\"{}\" is not host:port", listen));
        return;
      }
      host = listen.substr(0, colon);
      port = listen.substr(colon + 1);
    }
    auto p = parse_port(port);
    if (!p) {
      add(where(key), key, fmt::format("port \"{}\" is not in 1..65535", port));
      return;
    }
    if (!is_loopback_address(host) && !metrics.allow_remote) {
      add(where(key), key,
          fmt::format(
              "\"{}\" is not a loopback address; /metrics stays local unless metrics.allow_remote = true",
              host.empty() ? "(all interfaces)" : host));
      return;
    }
    metrics.host = host;
    metrics.port = *p;
  }

  void check_cross_field(Config& c) {
    check_conninfo("source", c.source.conninfo, c.source.allow_insecure_tls);
    if (c.target.enabled) {
      check_conninfo("target", c.target.conninfo, c.target.allow_insecure_tls);
      if (c.target.conninfo.empty()) {
        add(where("target.conninfo"), "target.conninfo",
            "required key is missing (a Kafka-only pipeline sets target.enabled = false)");
      }
    } else if (!c.kafka.enabled) {
      add(where("target.enabled"), "target.enabled",
          "a pipeline without the order DB publishes to Kafka only: set kafka.enabled = true");
    }
    if (c.kafka.enabled && c.kafka.brokers.empty()) {
      add(where("kafka.brokers"), "kafka.brokers", "required key is missing (kafka.enabled = true)");
    }
    if (c.dead_letter.enabled && (c.archive.enabled || c.kafka.enabled)) {
      add(where("dead_letter.enabled"), "dead_letter.enabled",
          "cannot be combined with archive.enabled or kafka.enabled in this version: the archive and Kafka "
          "would "
          "publish a transaction the order DB refused; turn one of them off");
    } else if (c.dead_letter.enabled && !c.target.enabled) {
      add(where("dead_letter.enabled"), "dead_letter.enabled",
          "dead-lettering parks what the order DB refuses; a Kafka-only pipeline (target.enabled = false) "
          "has none");
    }
    check_redis(c.checkpoint);
    check_metrics(c.metrics);
    if (c.source.streaming == StreamingMode::on && c.source.proto_version < 2) {
      add(where("source.streaming"), "source.streaming",
          fmt::format("streaming = \"on\" needs source.proto_version >= 2 (it is {})",
                      c.source.proto_version));
    }
    // Keys reserved for features this version does not have: refused rather than silently ignored.
    if (c.snapshot.parallel > 1) {
      add(where("snapshot.parallel"), "snapshot.parallel",
          "the initial snapshot copies one table at a time in this version; set it to 1");
    }
    if (c.source.temporary_slot && !c.source.create_slot) {
      add(where("source.temporary_slot"), "source.temporary_slot",
          "a temporary slot is created for each session; set source.create_slot = true");
    }
    if (c.source.reconnect_min > c.source.reconnect_max) {
      add(where("source.reconnect_min_ms"), "source.reconnect_min_ms",
          fmt::format("{} is above source.reconnect_max_ms ({})", c.source.reconnect_min.count(),
                      c.source.reconnect_max.count()));
    }
    if (c.source.status_interval >= c.source.receive_timeout) {
      add(where("source.status_interval_ms"), "source.status_interval_ms",
          fmt::format("{} must be below source.receive_timeout_ms ({})", c.source.status_interval.count(),
                      c.source.receive_timeout.count()));
    }
    if (c.source.heartbeat_interval.count() != 0 &&
        c.source.heartbeat_interval < std::chrono::milliseconds{1000}) {
      add(where("source.heartbeat_interval_ms"), "source.heartbeat_interval_ms",
          fmt::format("{} is below 1000 (use 0 to turn heartbeats off)",
                      c.source.heartbeat_interval.count()));
    }
    if (c.checkpoint.renew * 2 > c.checkpoint.lease_ttl) {
      add(where("checkpoint.renew_ms"), "checkpoint.renew_ms",
          fmt::format(
              "{} is more than half of checkpoint.lease_ttl_ms ({}); one late renewal would lose the lease",
              c.checkpoint.renew.count(), c.checkpoint.lease_ttl.count()));
    }
    std::map<QualifiedName, std::size_t> target_owner;
    for (std::size_t i = 0; i < c.tables.size(); ++i) {
      const auto& t = c.tables[i];
      const std::string key = fmt::format("tables[{}].target", i);
      if (t.target.name.empty()) continue;  // reported as missing
      if (auto [it, inserted] = target_owner.emplace(t.target, i); !inserted) {
        add(where(key), key,
            fmt::format("duplicate target table {} (already the target of tables[{}])", t.target.str(),
                        it->second));
      }
      if (t.target == c.target.progress_table) {
        add(where(key), key, fmt::format("{} is the target.progress_table", t.target.str()));
      }
    }
  }

  std::string file_;
  const toml::table& root_;
  std::vector<ConfigIssue> issues_;
  std::map<std::string, toml::source_position> where_;
};

// ---------------------------------------------------------------------------------------------------------
// Reference rendering

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
  for (const auto& k : kTableStructuredKeys) {
    table_rows.push_back(DocRow{std::string(k.key), std::string(k.type),
                                k.need == Need::required ? "required" : "unset", "", std::string(k.help)});
  }
  sections.emplace_back("[[tables]]", std::move(table_rows));
  for (const auto& k : kGlobalStructuredKeys) {
    const std::string title = fmt::format("[{}]", section_of(k.key));
    for (auto& [section_title, section_rows] : sections) {
      if (section_title != title) continue;
      section_rows.push_back(DocRow{std::string(k.key), std::string(k.type),
                                    k.need == Need::required ? "required" : "unset", "",
                                    std::string(k.help)});
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
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(conninfo.c_str(), &raw_error), &PQconninfoFree);
  std::unique_ptr<char, decltype(&PQfreemem)> error(raw_error, &PQfreemem);
  if (!options) return "(withheld: does not parse)";
  bool has_password = false;
  std::string rebuilt;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::string_view(o->keyword) == "password") {
      has_password = true;
      continue;
    }
    std::string value;
    for (const char* p = o->val; *p != '\0'; ++p) {
      if (*p == '\'' || *p == '\\') value += '\\';
      value += *p;
    }
    if (!rebuilt.empty()) rebuilt += ' ';
    rebuilt += fmt::format("{}='{}'", o->keyword, value);
  }
  return has_password ? rebuilt : conninfo;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Public functions

std::string check_pipeline_name(const std::string& v) {
  const bool ok = !v.empty() && v.size() <= kMaxIdentifierBytes && v.front() != '-' &&
                  std::all_of(v.begin(), v.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
                  });
  return ok ? "" : fmt::format("\"{}\" must be 1..63 of [a-z0-9_-], not starting with '-'", v);
}

std::string check_slot_name(const std::string& v) {
  const bool ok =
      !v.empty() && v.size() <= kMaxIdentifierBytes && std::all_of(v.begin(), v.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
  return ok ? "" : fmt::format("\"{}\" must match [a-z0-9_]{{1,63}} (PostgreSQL's rule for slot names)", v);
}

std::string check_publication_name(const std::string& v) {
  if (v.empty()) return "is empty";
  if (v.size() > kMaxIdentifierBytes)
    return fmt::format("is {} bytes, more than {}", v.size(), kMaxIdentifierBytes);
  for (unsigned char c : v) {
    if (c == '"' || c == '\'' || c == ',' || c < 0x20 || c == 0x7f) {
      return "must not contain quotes, commas or control characters";
    }
  }
  return {};
}

std::string check_column_name(const std::string& v) {
  if (v.empty()) return "name is empty";
  if (v.size() > kMaxIdentifierBytes) {
    return fmt::format("name \"{}\" is {} bytes, more than {}", v, v.size(), kMaxIdentifierBytes);
  }
  if (v.find('\0') != std::string::npos) return "name contains a NUL byte";
  return {};
}

std::string check_not_empty(const std::string& v) {
  return v.empty() ? "is empty" : "";
}

std::string check_mask_char(const std::string& v) {
  // One UTF-8 character: a lead byte and its continuation bytes.
  const bool one = !v.empty() &&
                   std::count_if(v.begin(), v.end(), [](unsigned char c) { return (c & 0xC0) != 0x80; }) == 1;
  return one ? "" : fmt::format("\"{}\" must be exactly one character", v);
}

std::string_view name_of(StreamingMode v) {
  return enum_name(v);
}
std::string_view name_of(SnapshotMode v) {
  return enum_name(v);
}
std::string_view name_of(DeletePolicy v) {
  return enum_name(v);
}
std::string_view name_of(TruncatePolicy v) {
  return enum_name(v);
}
std::string_view name_of(ToastCompression v) {
  return enum_name(v);
}
std::string_view name_of(CopyFormat v) {
  return enum_name(v);
}
std::string_view name_of(LogLevel v) {
  return enum_name(v);
}
std::string_view name_of(LogFormat v) {
  return enum_name(v);
}

std::string_view name_of(const Transform& t) {
  static constexpr std::string_view names[] = {"hmac_sha256", "mask", "constant"};
  return names[t.index()];
}

std::string QualifiedName::str() const {
  auto quote = [](const std::string& part) {
    const bool plain = !part.empty() && ((part[0] >= 'a' && part[0] <= 'z') || part[0] == '_') &&
                       std::all_of(part.begin(), part.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
                       });
    if (plain) return part;
    std::string out = "\"";
    for (char c : part) {
      if (c == '"') out += '"';
      out += c;
    }
    return out + "\"";
  };
  return quote(schema) + "." + quote(name);
}

std::string ConfigIssue::str() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

namespace {
std::string join_issues(const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (const auto& issue : issues) {
    if (!out.empty()) out += '\n';
    out += issue.str();
  }
  return out;
}
}  // namespace

ConfigError::ConfigError(std::vector<ConfigIssue> issues)
    : std::runtime_error(join_issues(issues)), issues_(std::move(issues)) {}

std::string read_secret(const SecretFile& secret) {
  std::string error;
  auto content = read_regular_file(secret.path, kMaxSecretBytes, error, kSecretForbiddenBits);
  if (!content) throw std::runtime_error(fmt::format("secret {}: {}", secret.spec, error));
  if (content->ends_with("\r\n")) {
    content->resize(content->size() - 2);
  } else if (content->ends_with("\n")) {
    content->pop_back();
  }
  if (content->empty())
    throw std::runtime_error(fmt::format("secret {}: {} is empty", secret.spec, secret.path.string()));
  return std::move(*content);
}

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
  return config;
}

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
      out += fmt::format("{} = {}\n", toml_quote(name), toml_quote(value));
  }
  for (auto& table : copy.tables) {
    out += "\n[[tables]]\n";
    std::string none;
    render_settings(kTableSettings, table, out, none, false);
    out += "key = [";
    for (std::size_t i = 0; i < table.key.size(); ++i) out += (i ? ", " : "") + toml_quote(table.key[i]);
    out += "]\ncolumns = { ";
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      out += fmt::format("{}{} = {}", i ? ", " : "", toml_key(table.columns[i].source),
                         toml_quote(table.columns[i].target));
    }
    out += " }\n";
    std::vector<std::string> transforms;
    for (const auto& c : table.columns) {
      if (!c.transform) continue;
      std::string body = std::visit(
          [](const auto& t) -> std::string {
            using T = std::decay_t<decltype(t)>;
            if constexpr (std::is_same_v<T, HmacSha256>) {
              return fmt::format("hmac_sha256 = {{ key_file = {} }}", toml_quote(t.key_file.spec));
            } else if constexpr (std::is_same_v<T, Mask>) {
              return fmt::format("mask = {{ keep_last = {}, char = {} }}", t.keep_last,
                                 toml_quote(t.mask_char));
            } else {
              return fmt::format("constant = {}", toml_quote(t.value));
            }
          },
          *c.transform);
      transforms.push_back(fmt::format("{} = {{ {} }}", toml_key(c.source), body));
    }
    if (!transforms.empty()) out += fmt::format("transforms = {{ {} }}\n", fmt::join(transforms, ", "));
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
