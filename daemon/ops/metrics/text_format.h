// The Prometheus text exposition format, version 0.0.4.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/ops/metrics/metrics.h"

namespace cdcsync::metrics {

inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// HELP and TYPE per family, then one line per sample; histograms as _bucket{le=...} (ending in +Inf), _sum
// and _count. Families without metrics are left out.
std::string SerializeText(const std::vector<MetricFamily>& families);

// Label values escape \, " and newline; HELP text escapes \ and newline.
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
// Go-compatible float text: shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

}  // namespace cdcsync::metrics
