// ValueEncoder: dispatch on a value's form and type, and the encodings of bytes, points, hstore and arrays.
#include "decoders/debezium/values.h"

#include <cstring>

#include "decoders/debezium/java_text.h"
#include "decoders/debezium/text_parse.h"
#include "decoders/debezium/type_rules.h"
#include "decoders/debezium_json.h"
#include "decoders/pg_text.h"
#include "decoders/pg_types.h"

namespace cdcsync::debezium {
namespace {

// Array levels open and close in `w`; each element goes to `element(text, is_null)`.
template <class Element>
class ArrayElements final : public ArrayTextParser::Handler {
 public:
  ArrayElements(JsonWriter& w, Element& element) : w_(w), element_(element) {}
  void open() override { w_.StartArray(); }
  void close() override { w_.EndArray(); }
  void element(std::string_view text, bool is_null) override { element_(text, is_null); }

 private:
  JsonWriter& w_;
  Element& element_;
};

// A big-endian integer of `n` bytes.
std::uint64_t read_be(const unsigned char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

// float4/float8 send format -> double; false for any other size.
bool read_float(std::string_view b, double& d) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  if (b.size() == 4) {
    const auto bits = static_cast<std::uint32_t>(read_be(p, 4));
    float f = 0;
    std::memcpy(&f, &bits, 4);
    d = f;
    return true;
  }
  if (b.size() == 8) {
    const std::uint64_t bits = read_be(p, 8);
    std::memcpy(&d, &bits, 8);
    return true;
  }
  return false;
}

// uuid send format (16 bytes) -> its canonical text.
void write_uuid(JsonWriter& w, const unsigned char* p) {
  static constexpr char kHex[] = "0123456789abcdef";
  char out[36];
  std::size_t o = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = kHex[p[i] >> 4];
    out[o++] = kHex[p[i] & 15];
  }
  w.String(out, 36);
}

void write_raw(JsonWriter& w, const std::string& json, rapidjson::Type type) {
  w.RawValue(json.data(), json.size(), type);
}

}  // namespace

ValueEncoder::ValueEncoder(const DebeziumOptions& options) : o_(options) {
  const std::string& ph = o_.unavailable_value_placeholder;
  toast_uuid_ = java_name_uuid(ph);
  toast_numbers_ = json_text([&](JsonWriter& w) {
    w.StartArray();
    for (char c : ph) w.Int(static_cast<signed char>(c));  // Java's bytes are signed
    w.EndArray();
  });
  toast_hstore_object_ = json_text([&](JsonWriter& w) {
    w.StartObject();
    write_key(w, ph);
    write_string(w, ph);
    w.EndObject();
  });
}

void ValueEncoder::write(JsonWriter& w, const ColumnPlan& col, const Tuple& tuple, std::size_t index) {
  const DatumKind kind = index < tuple.size() ? tuple.kind(index) : DatumKind::Null;
  switch (kind) {
    case DatumKind::Null:
      if (!col.optional) return write_raw(w, col.null_json, rapidjson::kNullType);
      return static_cast<void>(w.Null());
    case DatumKind::UnchangedToast:
      return write_placeholder(w, col);
    case DatumKind::Text:
      return write_text(w, col.kind, col.typmod, col, tuple.value(index));
    case DatumKind::Binary:
      return write_binary_form(w, col, tuple.value(index));
  }
}

void ValueEncoder::write_text(JsonWriter& w, TypeKind kind, std::int32_t typmod, const ColumnPlan& col,
                              std::string_view text) {
  switch (kind) {
    case TypeKind::Bool:
      return write_bool(w, text);
    case TypeKind::Bit:
    case TypeKind::Varbit:
      return write_bits(w, kind, typmod, text);
    case TypeKind::Int2:
    case TypeKind::Int4:
    case TypeKind::Int8:
      return write_integer(w, text);
    case TypeKind::Float4:
    case TypeKind::Float8:
      return write_float(w, kind, text);
    case TypeKind::Numeric:
      return write_numeric(w, typmod, text);
    case TypeKind::Money:
      return write_money(w, text);
    case TypeKind::Date:
      return write_date(w, text);
    case TypeKind::Time:
      return write_time(w, typmod, text);
    case TypeKind::TimeTz:
      return write_timetz(w, text);
    case TypeKind::Timestamp:
      return write_timestamp(w, typmod, text);
    case TypeKind::TimestampTz:
      return write_timestamptz(w, typmod, text);
    case TypeKind::Interval:
      return write_interval(w, text);
    case TypeKind::Bytea:
      if (!decode_bytea(text, bytes_)) return write_malformed(w, text);
      return write_binary(w, bytes_);
    case TypeKind::Point:
      return write_point(w, text);
    case TypeKind::Hstore:
      return write_hstore(w, text);
    case TypeKind::Unknown:
      ++unknown_type_values_;
      return write_string(w, text);
    case TypeKind::Array:
      return write_array(w, col, text);
    default:  // Text, Json, Xml, Uuid, Enum, Ltree, Range
      return write_string(w, text);
  }
}

void ValueEncoder::write_malformed(JsonWriter& w, std::string_view text) {
  ++malformed_values_;
  write_string(w, text);
}

void ValueEncoder::write_base64(JsonWriter& w, std::string_view bytes, Base64Alphabet alphabet) {
  quoted_.clear();
  quoted_.push_back('"');
  append_base64(quoted_, bytes, alphabet);
  quoted_.push_back('"');
  write_quoted_plain(w, quoted_);
}

void ValueEncoder::write_binary(JsonWriter& w, std::string_view bytes) {
  switch (o_.binary) {
    case BinaryHandling::Bytes:
    case BinaryHandling::Base64:
      return write_base64(w, bytes);
    case BinaryHandling::Base64UrlSafe:
      return write_base64(w, bytes, Base64Alphabet::UrlSafe);
    case BinaryHandling::Hex:
      quoted_.clear();
      quoted_.push_back('"');
      append_hex(quoted_, bytes);
      quoted_.push_back('"');
      return write_quoted_plain(w, quoted_);
  }
}

// io.debezium.data.geometry.Point: x, y and the WKB of POINT(x y), no SRID.
void ValueEncoder::write_point(JsonWriter& w, std::string_view text) {
  double x = 0, y = 0;
  if (!parse_point(text, x, y)) return write_malformed(w, text);
  char wkb[kPointWkbSize];
  point_wkb(x, y, wkb);
  w.StartObject();
  w.Key("x");
  write_double(w, x);
  w.Key("y");
  write_double(w, y);
  w.Key("wkb");
  write_base64(w, std::string_view{wkb, sizeof wkb});
  w.Key("srid");
  w.Null();
  w.EndObject();
}

// hstore.handling.mode=json: {"key":"val"} as a string. Debezium reads the hstore into pgjdbc's
// HStoreConverter.fromString, a java.util.HashMap, and writes its entries in the map's iteration order
// (PostgresValueConverter.convertMapToJsonStringRepresentation).
void ValueEncoder::write_hstore(JsonWriter& w, std::string_view text) {
  rapidjson::StringBuffer buf;
  if (!hstore_json(text, buf)) return write_malformed(w, text);
  w.String(buf.GetString(), static_cast<rapidjson::SizeType>(buf.GetSize()));
}

bool ValueEncoder::hstore_json(std::string_view text, rapidjson::StringBuffer& out) {
  struct Pair {
    std::string key;
    std::string value;
    bool is_null;
  };
  std::vector<Pair> pairs;
  const bool ok =
      parse_hstore(text, text_, text2_, [&](std::string_view key, std::string_view value, bool null) {
        pairs.push_back({std::string{key}, std::string{value}, null});
      });
  if (!ok) return false;
  std::vector<std::string_view> keys;
  keys.reserve(pairs.size());
  for (const Pair& p : pairs) keys.emplace_back(p.key);
  JsonWriter hw{out};
  hw.StartObject();
  for (std::size_t i : java_hash_map_order(keys)) {
    write_key(hw, pairs[i].key);
    if (pairs[i].is_null) {
      hw.Null();
    } else {
      write_string(hw, pairs[i].value);
    }
  }
  hw.EndObject();
  return true;
}

// A JSON array of the elements' encodings; nested dimensions are sent as text and counted as malformed. The
// array goes to a side writer first: it must stay balanced even when the text turns out malformed.
void ValueEncoder::write_array(JsonWriter& w, const ColumnPlan& col, std::string_view text) {
  rapidjson::StringBuffer buf;
  JsonWriter aw{buf};
  auto element = [&](std::string_view item, bool is_null) {
    if (is_null) {
      aw.Null();
    } else if (col.element_kind == TypeKind::Array) {
      write_malformed(aw, item);
    } else {
      write_text(aw, col.element_kind, col.element_typmod, col, item);
    }
  };
  ArrayElements handler{aw, element};
  if (!ArrayTextParser::parse(text, handler, array_) || !aw.IsComplete()) return write_malformed(w, text);
  w.RawValue(buf.GetString(), buf.GetSize(), rapidjson::kArrayType);
}

void ValueEncoder::write_binary_form(JsonWriter& w, const ColumnPlan& col, std::string_view b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  switch (col.kind) {
    case TypeKind::Bool:
      if (b.size() == 1) return static_cast<void>(w.Bool(p[0] != 0));
      break;
    case TypeKind::Int2:
      if (b.size() == 2) return static_cast<void>(w.Int(static_cast<std::int16_t>(read_be(p, 2))));
      break;
    case TypeKind::Int4:
      if (b.size() == 4) return static_cast<void>(w.Int(static_cast<std::int32_t>(read_be(p, 4))));
      break;
    case TypeKind::Int8:
      if (b.size() == 8) return static_cast<void>(w.Int64(static_cast<std::int64_t>(read_be(p, 8))));
      if (b.size() == 4) return static_cast<void>(w.Int64(static_cast<std::uint32_t>(read_be(p, 4))));  // oid
      break;
    case TypeKind::Float4:
    case TypeKind::Float8: {
      double d = 0;
      if (!read_float(b, d)) break;
      if (b.size() == 4) return debezium::write_float(w, static_cast<float>(d));
      return write_double(w, d);
    }
    case TypeKind::Uuid:
      if (b.size() == 16) return write_uuid(w, p);
      break;
    case TypeKind::Bytea:
      return write_binary(w, b);
    case TypeKind::Date:
      if (b.size() == 4) {
        return static_cast<void>(
            w.Int64(static_cast<std::int64_t>(static_cast<std::int32_t>(read_be(p, 4))) + kPgEpochUnixDays));
      }
      break;
    case TypeKind::Timestamp:
      if (b.size() == 8) {
        return write_epoch_micros(w, col.typmod,
                                  pg_micros_to_unix_micros(static_cast<std::int64_t>(read_be(p, 8))));
      }
      break;
    case TypeKind::Json:
      // jsonb's binary format is a version byte (1) and the text.
      if (col.oid == pgtype::kJsonb && !b.empty() && p[0] == 1) b.remove_prefix(1);
      return write_string(w, b);
    case TypeKind::Text:
    case TypeKind::Xml:
    case TypeKind::Enum:
      return write_string(w, b);
    default:
      break;
  }
  // No binary decoder for this type: its raw bytes, base64, counted.
  ++unknown_type_values_;
  write_base64(w, b);
}

// UnchangedToastedPlaceholder's values, by the column's placeholder kind (see ToastPlaceholder).
void ValueEncoder::write_placeholder(JsonWriter& w, const ColumnPlan& col) {
  ++unavailable_values_;
  const std::string& ph = o_.unavailable_value_placeholder;
  switch (col.toast) {
    case ToastPlaceholder::Null:
      return static_cast<void>(w.Null());
    case ToastPlaceholder::Text:
      return write_string(w, ph);
    case ToastPlaceholder::Bytes:
      return write_binary(w, ph);
    case ToastPlaceholder::Hstore:
      return write_string(w, toast_hstore_object_);
    case ToastPlaceholder::TextList:
      w.StartArray();
      write_string(w, ph);
      return static_cast<void>(w.EndArray());
    case ToastPlaceholder::BytesList:
      w.StartArray();
      write_binary(w, ph);
      return static_cast<void>(w.EndArray());
    case ToastPlaceholder::NumberList:
      return write_raw(w, toast_numbers_, rapidjson::kArrayType);
    case ToastPlaceholder::UuidList:
      w.StartArray();
      write_string(w, toast_uuid_);
      return static_cast<void>(w.EndArray());
  }
}

std::string ValueEncoder::literal_json(const ColumnPlan& col, std::string_view text) {
  const std::uint64_t malformed = malformed_values_;
  const std::uint64_t special = special_numeric_values_;
  const std::uint64_t unknown = unknown_type_values_;
  std::string out = json_text([&](JsonWriter& w) { write_text(w, col.kind, col.typmod, col, text); });
  const bool parsed = malformed_values_ == malformed && special_numeric_values_ == special;
  malformed_values_ = malformed;
  special_numeric_values_ = special;
  unknown_type_values_ = unknown;
  if (!parsed) out.clear();
  return out;
}

}  // namespace cdcsync::debezium
