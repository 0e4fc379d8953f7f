// The Debezium encoder's one way of writing JSON: RapidJSON's Writer, with string_view helpers.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <string>
#include <string_view>

#include "decoders/debezium/java_text.h"

namespace cdcsync::debezium {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

inline void write_key(JsonWriter& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// A double (FLOAT64) or float (FLOAT32) as Kafka's JsonConverter (Jackson) writes it: Java's Double.toString
// and Float.toString ("4.0", "1.0E7"); JSON has no literal for non-finite values, so they are the strings
// "NaN", "Infinity" and "-Infinity" (RapidJSON would write nothing and fail).
template <class Float>
inline void write_java_number(JsonWriter& w, Float d) {
  if (std::isnan(d)) return static_cast<void>(w.String("NaN"));
  if (std::isinf(d)) return static_cast<void>(w.String(d > 0 ? "Infinity" : "-Infinity"));
  char buf[kJavaNumberChars];
  const std::string_view text = sizeof(Float) == sizeof(float) ? java_float(buf, static_cast<float>(d))
                                                               : java_double(buf, static_cast<double>(d));
  w.RawValue(text.data(), text.size(), rapidjson::kNumberType);
}
inline void write_double(JsonWriter& w, double d) {
  write_java_number(w, d);
}
inline void write_float(JsonWriter& w, float f) {
  write_java_number(w, f);
}

// `quoted` is a JSON string token whose characters need no escaping (base64, hex): `"` + text + `"`. Written
// as it is, which spares RapidJSON's per-character escaping scan on large binary values.
inline void write_quoted_plain(JsonWriter& w, const std::string& quoted) {
  w.RawValue(quoted.data(), quoted.size(), rapidjson::kStringType);
}

// Starts a key or value document in `buf`; with a schema it is {"schema": <schema>, "payload": <document>}.
inline void begin_document(JsonWriter& w, rapidjson::StringBuffer& buf, const std::string* schema) {
  buf.Clear();
  w.Reset(buf);
  if (schema != nullptr) {
    w.StartObject();
    w.Key("schema");
    w.RawValue(schema->data(), schema->size(), rapidjson::kObjectType);
    w.Key("payload");
  }
}

// Ends what begin_document started; the document's text, valid until `buf` is written again.
inline std::string_view end_document(JsonWriter& w, const rapidjson::StringBuffer& buf, bool with_schema) {
  if (with_schema) w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// A whole JSON document (schemas) built once: the text of `write(w)`.
template <class Write>
std::string json_text(Write&& write) {
  rapidjson::StringBuffer buf;
  JsonWriter w{buf};
  write(w);
  return std::string{buf.GetString(), buf.GetSize()};
}

}  // namespace cdcsync::debezium
