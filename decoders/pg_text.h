// Small pieces for reading PostgreSQL's text output, shared by the Debezium encoder
// (decoders/debezium_json.cpp) and COPY's binary encoders (sinks/copy_binary.cpp).
#pragma once

#include <cstdint>

namespace cdcsync {

inline constexpr std::int32_t kPgEpochUnixDays = 10'957;  // 1970-01-01 → 2000-01-01, PostgreSQL's epoch

// Howard Hinnant's days_from_civil: days since 1970-01-01, proleptic Gregorian, astronomical year numbering.
inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// The value of a hex digit (either case), or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace cdcsync
