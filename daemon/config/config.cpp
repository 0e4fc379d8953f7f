// The config's plain data: the names of its values, SQL spelling of its table names, and its errors.
#include "daemon/config/config.h"

#include <fmt/format.h>

#include <algorithm>

#include "daemon/config/values.h"

namespace cdcsync::config {

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

}  // namespace cdcsync::config
