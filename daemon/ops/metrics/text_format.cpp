#include "daemon/ops/metrics/text_format.h"

#include <fmt/format.h>

#include <cmath>

namespace cdcsync::metrics {
namespace {

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Histogram:
      return "histogram";
  }
  return "untyped";
}

void append_labels(std::string& out, const Labels& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += EscapeLabelValue(value);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix, const Labels& labels,
                   const std::string& value, const std::string* le = nullptr) {
  out += name;
  out += suffix;
  append_labels(out, labels, le);
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

std::string SerializeText(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const auto& family : families) {
    if (family.metrics.empty()) continue;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, EscapeHelp(family.help), family.name,
                       type_name(family.type));
    for (const auto& m : family.metrics) {
      if (family.type != MetricType::Histogram) {
        append_sample(out, family.name, "", m.labels, FormatValue(m.value));
        continue;
      }
      for (const auto& bucket : m.buckets) {
        const auto le = FormatValue(bucket.upper_bound);
        append_sample(out, family.name, "_bucket", m.labels, std::to_string(bucket.cumulative_count), &le);
      }
      append_sample(out, family.name, "_sum", m.labels, FormatValue(m.sum));
      append_sample(out, family.name, "_count", m.labels, std::to_string(m.count));
    }
  }
  return out;
}

}  // namespace cdcsync::metrics
