// ValueEncoder: booleans, bits, integers, floats, numeric and money from their text form.
#include <charconv>
#include <system_error>

#include "decoders/debezium/text_parse.h"
#include "decoders/debezium/type_rules.h"
#include "decoders/debezium/values.h"
#include "decoders/debezium_json.h"

namespace cdcsync::debezium {
namespace {

bool is_special_number(std::string_view text) {
  return text == "NaN" || text == "Infinity" || text == "-Infinity";
}

}  // namespace

void ValueEncoder::write_bool(JsonWriter& w, std::string_view text) {
  if (text == "t" || text == "f") return static_cast<void>(w.Bool(text == "t"));
  write_malformed(w, text);
}

// bit(1) is a boolean; longer bit strings and bit varying are io.debezium.data.Bits: the bytes of
// java.util.BitSet.toByteArray (PostgresValueConverter.convertBits sizes them to the highest set bit, so
// trailing zero bytes are dropped and all zeros are no bytes at all).
void ValueEncoder::write_bits(JsonWriter& w, TypeKind, std::int32_t typmod, std::string_view text) {
  if (typmod == 1) {
    if (text == "1" || text == "0") return static_cast<void>(w.Bool(text == "1"));
    return write_malformed(w, text);
  }
  if (!bits_to_bytes(text, false, bytes_)) return write_malformed(w, text);
  write_base64(w, bytes_);
}

void ValueEncoder::write_integer(JsonWriter& w, std::string_view text) {
  if (is_json_integer(text))
    return static_cast<void>(w.RawValue(text.data(), text.size(), rapidjson::kNumberType));
  write_malformed(w, text);
}

// JsonConverter (Jackson) writes a FLOAT32/FLOAT64 with Float.toString/Double.toString ("4.0", "1.0E7") and
// quotes non-finite ones: "NaN", "Infinity", "-Infinity". PostgreSQL prints the shortest text that
// round-trips, so reading it back gives the value Debezium's driver reads.
void ValueEncoder::write_float(JsonWriter& w, TypeKind kind, std::string_view text) {
  if (is_special_number(text)) return write_string(w, text);
  if (!is_json_number(text)) return write_malformed(w, text);
  const char* end = text.data() + text.size();
  if (kind == TypeKind::Float4) {
    float f = 0;
    const auto r = std::from_chars(text.data(), end, f);
    if (r.ec != std::errc{} || r.ptr != end) return write_malformed(w, text);
    return debezium::write_float(w, f);
  }
  double d = 0;
  const auto r = std::from_chars(text.data(), end, d);
  if (r.ec != std::errc{} || r.ptr != end) return write_malformed(w, text);
  write_double(w, d);
}

void ValueEncoder::write_numeric(JsonWriter& w, std::int32_t typmod, std::string_view text) {
  const bool special = is_special_number(text);
  switch (o_.decimal) {
    case DecimalHandling::Precise:
      if (special) {
        // Debezium stops with an error here ("set decimal handling mode to 'string'"); a daemon must not.
        ++special_numeric_values_;
        return static_cast<void>(w.Null());
      }
      if (!write_decimal(w, text, typmod_scale(typmod), variable_scale(typmod))) write_malformed(w, text);
      return;
    case DecimalHandling::Double: {
      if (special) return write_string(w, text);
      double d = 0;
      if (std::from_chars(text.data(), text.data() + text.size(), d).ec != std::errc{})
        return write_malformed(w, text);
      return write_double(w, d);
    }
    case DecimalHandling::String:
      // SpecialValueDecimal names: NAN, POSITIVE_INFINITY, NEGATIVE_INFINITY.
      if (text == "NaN") return static_cast<void>(w.String("NAN"));
      if (text == "Infinity") return static_cast<void>(w.String("POSITIVE_INFINITY"));
      if (text == "-Infinity") return static_cast<void>(w.String("NEGATIVE_INFINITY"));
      return write_string(w, text);
  }
}

// money is a decimal of money.fraction.digits digits.
void ValueEncoder::write_money(JsonWriter& w, std::string_view text) {
  money_to_decimal(text, text_);
  const std::string_view number{text_};
  switch (o_.decimal) {
    case DecimalHandling::Precise:
      if (!write_decimal(w, number, o_.money_fraction_digits, false)) write_malformed(w, text);
      return;
    case DecimalHandling::Double: {
      double d = 0;
      if (std::from_chars(number.data(), number.data() + number.size(), d).ec != std::errc{})
        return write_malformed(w, text);
      return write_double(w, d);
    }
    case DecimalHandling::String:
      return write_string(w, number);
  }
}

// Decimal (fixed scale): base64 of the unscaled value's two's complement bytes. VariableScaleDecimal:
// {"scale": s, "value": base64}, trailing zeros stripped as BigDecimal.stripTrailingZeros does (never below
// scale 0).
bool ValueEncoder::write_decimal(JsonWriter& w, std::string_view text, int scale, bool variable_scale) {
  bool negative = false;
  int text_scale = 0;
  if (!split_decimal(text, negative, digits_, text_scale)) return false;
  if (variable_scale) {
    // Trailing fraction zeros are still in digits_ unless the integer part was zero.
    while (text_scale > 0 && !digits_.empty() && digits_.back() == '0') {
      digits_.pop_back();
      --text_scale;
    }
    if (digits_.empty()) text_scale = 0;
    scale = text_scale;
  } else {
    for (; text_scale < scale; ++text_scale) {
      if (!digits_.empty()) digits_.push_back('0');
    }
    for (; text_scale > scale && !digits_.empty(); --text_scale) digits_.pop_back();
  }
  if (digits_.empty()) negative = false;
  unscaled_to_bytes(digits_, negative, bytes_);
  if (!variable_scale) {
    write_base64(w, bytes_);
    return true;
  }
  w.StartObject();
  w.Key("scale");
  w.Int(scale);
  w.Key("value");
  write_base64(w, bytes_);
  w.EndObject();
  return true;
}

}  // namespace cdcsync::debezium
