// ValueEncoder: one column value (text form, binary form or unchanged TOAST) -> its Debezium encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "decoders/change.h"
#include "decoders/debezium/bytes.h"
#include "decoders/debezium/json_writer.h"
#include "decoders/debezium/plan.h"
#include "decoders/type_catalog.h"

namespace cdcsync::debezium {

// Writes values as the connector's handling modes say. One per encoder (and thread): it owns the scratch
// buffers that keep encoding free of allocations once they have grown, and counts values it could not
// encode faithfully (see DebeziumEncoder).
class ValueEncoder {
 public:
  explicit ValueEncoder(const DebeziumOptions& options);

  // Column `index` of `tuple` (null when the tuple is shorter). A NULL in a NOT NULL column is the column's
  // null_json; an unchanged TOAST value is its placeholder.
  void write(JsonWriter& w, const ColumnPlan& col, const Tuple& tuple, std::size_t index);
  // Bytes per binary.handling.mode.
  void write_binary(JsonWriter& w, std::string_view bytes);
  // The JSON of a value of `col` given in its type's text form; empty when the text does not parse. Counts
  // nothing (schema defaults).
  std::string literal_json(const ColumnPlan& col, std::string_view text);

  std::uint64_t unknown_type_values() const { return unknown_type_values_; }
  std::uint64_t malformed_values() const { return malformed_values_; }
  std::uint64_t special_numeric_values() const { return special_numeric_values_; }
  std::uint64_t unavailable_values() const { return unavailable_values_; }

 private:
  // Text form, by type family (values.cpp, values_numeric.cpp, values_time.cpp).
  void write_text(JsonWriter& w, TypeKind kind, std::int32_t typmod, const ColumnPlan& col,
                  std::string_view text);
  void write_bool(JsonWriter& w, std::string_view text);
  void write_bits(JsonWriter& w, TypeKind kind, std::int32_t typmod, std::string_view text);
  void write_integer(JsonWriter& w, std::string_view text);
  void write_float(JsonWriter& w, TypeKind kind, std::string_view text);
  void write_numeric(JsonWriter& w, std::int32_t typmod, std::string_view text);
  void write_money(JsonWriter& w, std::string_view text);
  void write_date(JsonWriter& w, std::string_view text);
  void write_time(JsonWriter& w, std::int32_t typmod, std::string_view text);
  void write_timetz(JsonWriter& w, std::string_view text);
  void write_timestamp(JsonWriter& w, std::int32_t typmod, std::string_view text);
  void write_timestamptz(JsonWriter& w, std::int32_t typmod, std::string_view text);
  void write_interval(JsonWriter& w, std::string_view text);
  void write_point(JsonWriter& w, std::string_view text);
  void write_hstore(JsonWriter& w, std::string_view text);
  // The JSON object text of hstore `text` in java.util.HashMap's order; false when malformed.
  bool hstore_json(std::string_view text, rapidjson::StringBuffer& out);
  void write_array(JsonWriter& w, const ColumnPlan& col, std::string_view text);
  // Binary form (the types' send functions) and the unchanged TOAST placeholder.
  void write_binary_form(JsonWriter& w, const ColumnPlan& col, std::string_view bytes);
  void write_placeholder(JsonWriter& w, const ColumnPlan& col);

  // Decimal bytes (fixed scale) or VariableScaleDecimal; false when `text` is not a finite decimal.
  bool write_decimal(JsonWriter& w, std::string_view text, int scale, bool variable_scale);
  // Timestamps without zone: epoch micros, or millis per time.precision.mode.
  void write_epoch_micros(JsonWriter& w, std::int32_t typmod, std::int64_t micros);
  void write_base64(JsonWriter& w, std::string_view bytes,
                    Base64Alphabet alphabet = Base64Alphabet::Standard);
  // The text as it is, counted: it could not be parsed in its type's text form.
  void write_malformed(JsonWriter& w, std::string_view text);

  const DebeziumOptions& o_;
  std::string quoted_;               // a base64 / hex JSON string token
  std::string digits_;               // decimal digits
  std::string bytes_;                // decoded bytea, decimal and bit bytes
  std::string text_;                 // zoned times, money digits, hstore keys
  std::string text2_;                // hstore values
  std::string array_;                // unescaped array elements
  std::string toast_uuid_;           // UUID.nameUUIDFromBytes(placeholder)
  std::string toast_numbers_;        // [b0,b1,...]: the placeholder's bytes as Java's signed bytes
  std::string toast_hstore_object_;  // {"<placeholder>":"<placeholder>"}
  std::uint64_t unknown_type_values_ = 0;
  std::uint64_t malformed_values_ = 0;
  std::uint64_t special_numeric_values_ = 0;
  std::uint64_t unavailable_values_ = 0;
};

}  // namespace cdcsync::debezium
