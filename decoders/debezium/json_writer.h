// The Debezium encoder's one way of writing JSON: RapidJSON's Writer, with string_view helpers.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <string>
#include <string_view>

namespace cdcsync::debezium {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

inline void write_key(JsonWriter& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// A double as Kafka's JsonConverter (Jackson) writes it: JSON has no literal for non-finite values, so they
// are the strings "NaN", "Infinity" and "-Infinity" (RapidJSON would write nothing and fail).
inline void write_double(JsonWriter& w, double d) {
  if (std::isnan(d)) return static_cast<void>(w.String("NaN"));
  if (std::isinf(d)) return static_cast<void>(w.String(d > 0 ? "Infinity" : "-Infinity"));
  w.Double(d);
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
