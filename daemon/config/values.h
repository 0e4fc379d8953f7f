// Internal to daemon/config: each enum value's name in the file, TOML spellings of strings and keys, and the
// dotted-key helpers the loader, the validation and the rendering share.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "daemon/config/config.h"

namespace cdcsync::config {


template <class E>
struct EnumNames;
template <>
struct EnumNames<StreamingMode> {  // Parallel is not offered
  static constexpr std::pair<StreamingMode, std::string_view> values[] = {{StreamingMode::Off, "off"},
                                                                          {StreamingMode::On, "on"}};
};
template <>
struct EnumNames<SnapshotMode> {
  static constexpr std::pair<SnapshotMode, std::string_view> values[] = {{SnapshotMode::Initial, "initial"},
                                                                         {SnapshotMode::Never, "never"}};
};
template <>
struct EnumNames<DeletePolicy> {
  static constexpr std::pair<DeletePolicy, std::string_view> values[] = {
      {DeletePolicy::Hard, "hard"}, {DeletePolicy::Soft, "soft"}, {DeletePolicy::Ignore, "ignore"}};
};
template <>
struct EnumNames<TruncatePolicy> {
  static constexpr std::pair<TruncatePolicy, std::string_view> values[] = {
      {TruncatePolicy::Apply, "apply"}, {TruncatePolicy::Ignore, "ignore"}, {TruncatePolicy::Fail, "fail"}};
};
template <>
struct EnumNames<ToastCompression> {
  static constexpr std::pair<ToastCompression, std::string_view> values[] = {
      {ToastCompression::Auto, "auto"},
      {ToastCompression::Server, "server"},
      {ToastCompression::Lz4, "lz4"},
      {ToastCompression::Pglz, "pglz"}};
};
template <>
struct EnumNames<CopyFormat> {
  static constexpr std::pair<CopyFormat, std::string_view> values[] = {{CopyFormat::Binary, "binary"},
                                                                       {CopyFormat::Text, "text"}};
};
template <>
struct EnumNames<LogLevel> {
  static constexpr std::pair<LogLevel, std::string_view> values[] = {{LogLevel::Trace, "trace"},
                                                                     {LogLevel::Debug, "debug"},
                                                                     {LogLevel::Info, "info"},
                                                                     {LogLevel::Warn, "warn"},
                                                                     {LogLevel::Error, "error"}};
};
template <>
struct EnumNames<LogFormat> {
  static constexpr std::pair<LogFormat, std::string_view> values[] = {{LogFormat::Text, "text"},
                                                                      {LogFormat::Json, "json"}};
};

template <class E>
std::string_view enum_name(E v) {
  for (const auto& [value, name] : EnumNames<E>::values) {
    if (value == v) return name;
  }
  return "?";
}

// "\"hard\", \"soft\", \"ignore\"" (with separator ", ").
template <class E>
std::string enum_choices(std::string_view separator) {
  std::string out;
  for (const auto& [value, name] : EnumNames<E>::values) {
    if (!out.empty()) out += separator;
    out += fmt::format("\"{}\"", name);
  }
  return out;
}


// A TOML basic string holding `s`, escaped by toml++.
std::string toml_string(std::string_view s);
// A key as TOML writes it: bare when it may be, else a quoted string.
std::string toml_key(std::string_view k);

// "source" of "source.slot"; empty for a top-level key.
std::string section_of(std::string_view key);
// "slot" of "source.slot".
std::string last_segment(std::string_view key);

// An optional string or secret file that was not given ("unset" in the reference, a comment in `config
// show`).
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

}  // namespace cdcsync::config
