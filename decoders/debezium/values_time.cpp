// ValueEncoder: dates, times, timestamps and intervals from their text form, per time.precision.mode.
#include "decoders/debezium/pg_time.h"
#include "decoders/debezium/type_rules.h"
#include "decoders/debezium/values.h"
#include "decoders/debezium_json.h"
#include "decoders/pg_text.h"

namespace cdcsync::debezium {
namespace {

// "Data type mappings > TIMESTAMP type": +/-infinity timestamps become these values (the JDBC driver's
// PGStatement.DATE_POSITIVE_INFINITY / DATE_NEGATIVE_INFINITY).
constexpr std::int64_t kTimestampPositiveInfinity = 9'223'372'036'825'200'000;
constexpr std::int64_t kTimestampNegativeInfinity = -9'223'372'036'832'400'000;
// Dates: the connector parses "infinity" / "-infinity" to LocalDate -5877611-06-21 / -5877611-06-22.
constexpr std::int32_t kDatePositiveInfinity = -2'147'472'692;
constexpr std::int32_t kDateNegativeInfinity = -2'147'472'691;

}  // namespace

// io.debezium.time.Date: days since the epoch.
void ValueEncoder::write_date(JsonWriter& w, std::string_view text) {
  if (text == "infinity") return static_cast<void>(w.Int(kDatePositiveInfinity));
  if (text == "-infinity") return static_cast<void>(w.Int(kDateNegativeInfinity));
  std::int64_t days = 0;
  if (!parse_date(text, days)) return write_malformed(w, text);
  w.Int64(days);
}

void ValueEncoder::write_time(JsonWriter& w, std::int32_t typmod, std::string_view text) {
  std::size_t i = 0;
  std::int64_t micros = 0;
  if (!parse_time_part(text, i, micros) || i != text.size()) return write_malformed(w, text);
  const bool millis =
      o_.time == TimePrecision::Connect || (o_.time == TimePrecision::Adaptive && millis_precision(typmod));
  w.Int64(millis ? micros / 1000 : micros);
}

// io.debezium.time.ZonedTime: ISO_OFFSET_TIME after moving the offset to UTC.
void ValueEncoder::write_timetz(JsonWriter& w, std::string_view text) {
  std::size_t i = 0;
  std::int64_t micros = 0, offset = 0;
  if (!parse_time_part(text, i, micros) || !parse_offset(text, i, offset) || i != text.size())
    return write_malformed(w, text);
  micros = (wrapping_sub(micros, offset * kMicrosPerSecond) % kMicrosPerDay + kMicrosPerDay) % kMicrosPerDay;
  text_.clear();
  append_time_of_day(text_, micros, 0);
  text_.push_back('Z');
  write_string(w, text_);
}

void ValueEncoder::write_epoch_micros(JsonWriter& w, std::int32_t typmod, std::int64_t micros) {
  const bool millis = o_.time == TimePrecision::Connect || millis_precision(typmod);
  w.Int64(millis ? floor_div(micros, 1000) : micros);
}

void ValueEncoder::write_timestamp(JsonWriter& w, std::int32_t typmod, std::string_view text) {
  std::int64_t micros = 0;
  if (text == "infinity") {
    micros = kTimestampPositiveInfinity;
  } else if (text == "-infinity") {
    micros = kTimestampNegativeInfinity;
  } else if (!parse_timestamp(text, false, micros)) {
    return write_malformed(w, text);
  }
  write_epoch_micros(w, typmod, micros);
}

// io.debezium.time.ZonedTimestamp in UTC; "infinity"/"-infinity" pass through as the connector does.
void ValueEncoder::write_timestamptz(JsonWriter& w, std::int32_t typmod, std::string_view text) {
  if (text == "infinity" || text == "-infinity") return write_string(w, text);
  std::int64_t micros = 0;
  if (!parse_timestamp(text, true, micros)) return write_malformed(w, text);
  // The fraction has the column's precision digits (6 when unspecified); precision 0 prints none.
  const int width = typmod < 0 ? 6 : typmod;
  text_.clear();
  append_iso_utc(text_, micros, width);
  write_string(w, text_);
}

// io.debezium.time.MicroDuration.
void ValueEncoder::write_interval(JsonWriter& w, std::string_view text) {
  std::int64_t micros = 0;
  if (!parse_interval(text, micros)) return write_malformed(w, text);
  w.Int64(micros);
}

}  // namespace cdcsync::debezium
