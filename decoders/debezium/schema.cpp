// Kafka Connect schemas of Debezium's events (see schema.h).
#include "decoders/debezium/schema.h"

#include <span>
#include <utility>

#include "decoders/debezium/json_writer.h"
#include "decoders/debezium/text_parse.h"
#include "decoders/debezium/type_rules.h"
#include "decoders/debezium_json.h"

namespace cdcsync::debezium {
namespace {

constexpr std::string_view kSnapshotAllowed =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

using Param = std::pair<std::string_view, std::string_view>;
using Params = std::span<const Param>;

// What follows a schema's "type" (and its "fields" or "items"), in JsonConverter's order.
struct Tail {
  bool optional = false;
  const char* name = nullptr;
  int version = 0;
  std::string_view field;
  Params params = {};
  const char* doc = nullptr;
  const char* default_value = nullptr;  // a string default
  std::string_view default_json;        // a default as JSON text
};

void write_head(JsonWriter& w, const char* type) {
  w.StartObject();
  w.Key("type");
  w.String(type);
}

void write_tail(JsonWriter& w, const Tail& t) {
  w.Key("optional");
  w.Bool(t.optional);
  if (t.name != nullptr) {
    w.Key("name");
    w.String(t.name);
  }
  if (t.version > 0) {
    w.Key("version");
    w.Int(t.version);
  }
  if (t.doc != nullptr) {
    w.Key("doc");
    w.String(t.doc);
  }
  if (!t.params.empty()) {
    w.Key("parameters");
    w.StartObject();
    for (const auto& [k, v] : t.params) {
      write_key(w, k);
      write_string(w, v);
    }
    w.EndObject();
  }
  if (t.default_value != nullptr) {
    w.Key("default");
    w.String(t.default_value);
  }
  if (!t.default_json.empty()) {
    w.Key("default");
    w.RawValue(t.default_json.data(), t.default_json.size(), rapidjson::kStringType);
  }
  if (!t.field.empty()) {
    w.Key("field");
    write_string(w, t.field);
  }
  w.EndObject();
}

void write_simple(JsonWriter& w, const char* type, const Tail& t) {
  write_head(w, type);
  write_tail(w, t);
}

void write_simple_field(JsonWriter& w, const char* type, bool optional, std::string_view field) {
  write_simple(w, type, {.optional = optional, .field = field});
}

// A struct schema: `fields(w)` writes its fields.
template <class Fields>
void write_struct(JsonWriter& w, const Tail& t, Fields&& fields) {
  write_head(w, "struct");
  w.Key("fields");
  w.StartArray();
  fields();
  w.EndArray();
  write_tail(w, t);
}

void write_decimal_schema(JsonWriter& w, const DebeziumOptions& o, TypeKind kind, std::int32_t typmod,
                          const Tail& t) {
  if (o.decimal == DecimalHandling::Double) return write_simple(w, "double", t);
  if (o.decimal == DecimalHandling::String) return write_simple(w, "string", t);
  Tail decimal = t;
  decimal.name = "org.apache.kafka.connect.data.Decimal";
  decimal.version = 1;
  if (kind == TypeKind::Money) {
    const std::string scale = std::to_string(o.money_fraction_digits);
    const Param params[] = {{"scale", scale}};
    decimal.params = params;
    return write_simple(w, "bytes", decimal);
  }
  if (variable_scale(typmod)) {
    Tail vsd = t;
    vsd.name = "io.debezium.data.VariableScaleDecimal";
    vsd.version = 1;
    vsd.doc = "Variable scaled decimal";
    return write_struct(w, vsd, [&] {
      write_simple_field(w, "int32", false, "scale");
      write_simple_field(w, "bytes", false, "value");
    });
  }
  const std::string scale = std::to_string(typmod_scale(typmod));
  const std::string precision = std::to_string(typmod_precision(typmod));
  const Param params[] = {{"scale", scale}, {"connect.decimal.precision", precision}};
  decimal.params = params;
  write_simple(w, "bytes", decimal);
}

// Dates, times, timestamps and intervals per time.precision.mode; false for any other kind.
bool write_temporal_schema(JsonWriter& w, const DebeziumOptions& o, TypeKind kind, std::int32_t typmod,
                           Tail t) {
  t.version = 1;
  const bool connect = o.time == TimePrecision::Connect;
  switch (kind) {
    case TypeKind::Date:
      t.name = connect ? "org.apache.kafka.connect.data.Date" : "io.debezium.time.Date";
      write_simple(w, "int32", t);
      return true;
    case TypeKind::Time:
      if (connect || (o.time == TimePrecision::Adaptive && millis_precision(typmod))) {
        t.name = connect ? "org.apache.kafka.connect.data.Time" : "io.debezium.time.Time";
        write_simple(w, "int32", t);
        return true;
      }
      t.name = "io.debezium.time.MicroTime";
      write_simple(w, "int64", t);
      return true;
    case TypeKind::Timestamp:
      if (connect) {
        t.name = "org.apache.kafka.connect.data.Timestamp";
      } else {
        t.name = millis_precision(typmod) ? "io.debezium.time.Timestamp" : "io.debezium.time.MicroTimestamp";
      }
      write_simple(w, "int64", t);
      return true;
    case TypeKind::TimestampTz:
      t.name = "io.debezium.time.ZonedTimestamp";
      write_simple(w, "string", t);
      return true;
    case TypeKind::TimeTz:
      t.name = "io.debezium.time.ZonedTime";
      write_simple(w, "string", t);
      return true;
    case TypeKind::Interval:
      t.name = "io.debezium.time.MicroDuration";
      write_simple(w, "int64", t);
      return true;
    default:
      return false;
  }
}

// Logical types that are strings of their text (Uuid, Json, Xml, Ltree, Enum); false for any other kind.
bool write_named_string_schema(JsonWriter& w, TypeKind kind, const TypeInfo* type, Tail t) {
  t.version = 1;
  std::string allowed;
  switch (kind) {
    case TypeKind::Uuid:
      t.name = "io.debezium.data.Uuid";
      break;
    case TypeKind::Json:
    case TypeKind::Hstore:
      t.name = "io.debezium.data.Json";
      break;
    case TypeKind::Xml:
      t.name = "io.debezium.data.Xml";
      break;
    case TypeKind::Ltree:
      t.name = "io.debezium.data.Ltree";
      break;
    case TypeKind::Enum: {
      if (type != nullptr) {
        for (const std::string& label : type->labels) {
          if (!allowed.empty()) allowed.push_back(',');
          allowed += label;
        }
      }
      const Param params[] = {{"allowed", allowed}};
      t.name = "io.debezium.data.Enum";
      t.params = params;
      write_simple(w, "string", t);
      return true;
    }
    default:
      return false;
  }
  write_simple(w, "string", t);
  return true;
}

// The schema of one value of the given type, as Debezium's PostgresValueConverter declares it.
void write_type_schema(JsonWriter& w, const DebeziumOptions& o, TypeKind kind, std::int32_t typmod,
                       const TypeInfo* type, bool optional, std::string_view field,
                       std::string_view default_json = {}) {
  const Tail t{.optional = optional, .field = field, .default_json = default_json};
  switch (kind) {
    case TypeKind::Bool:
      return write_simple(w, "boolean", t);
    case TypeKind::Bit:
    case TypeKind::Varbit: {
      if (typmod == 1) return write_simple(w, "boolean", t);
      const std::string length = std::to_string(typmod > 0 ? typmod : 2147483647);
      const Param params[] = {{"length", length}};
      return write_simple(w, "bytes",
                          {.optional = optional,
                           .name = "io.debezium.data.Bits",
                           .version = 1,
                           .field = field,
                           .params = params,
                           .default_json = default_json});
    }
    case TypeKind::Int2:
      return write_simple(w, "int16", t);
    case TypeKind::Int4:
      return write_simple(w, "int32", t);
    case TypeKind::Int8:
      return write_simple(w, "int64", t);
    case TypeKind::Float4:
      return write_simple(w, "float", t);
    case TypeKind::Float8:
      return write_simple(w, "double", t);
    case TypeKind::Numeric:
    case TypeKind::Money:
      return write_decimal_schema(w, o, kind, typmod, t);
    case TypeKind::Bytea:
      return write_simple(w, o.binary == BinaryHandling::Bytes ? "bytes" : "string", t);
    case TypeKind::Point:
      return write_struct(w,
                          {.optional = optional,
                           .name = "io.debezium.data.geometry.Point",
                           .version = 1,
                           .field = field,
                           .doc = "Geometry (POINT)",
                           .default_json = default_json},
                          [&] {
                            write_simple_field(w, "double", false, "x");
                            write_simple_field(w, "double", false, "y");
                            write_simple_field(w, "bytes", true, "wkb");
                            write_simple_field(w, "int32", true, "srid");
                          });
    default:
      if (write_temporal_schema(w, o, kind, typmod, t)) return;
      if (write_named_string_schema(w, kind, type, t)) return;
      // Text, Range, Unknown (Domain and Array never reach here)
      return write_simple(w, "string", t);
  }
}

void write_column_schema(JsonWriter& w, const DebeziumOptions& o, const ColumnPlan& c) {
  if (c.kind != TypeKind::Array) {
    return write_type_schema(w, o, c.kind, c.typmod, c.type, c.optional, c.name, c.default_json);
  }
  write_head(w, "array");
  w.Key("items");
  // PostgresValueConverter.schemaBuilder: the built-in arrays have optional elements; an array of an enum
  // has the Enum schema as it is, not optional.
  write_type_schema(w, o, c.element_kind, c.element_typmod, c.element, c.element_kind != TypeKind::Enum, {});
  write_tail(w, {.optional = c.optional, .field = c.name, .default_json = c.default_json});
}

// The Value struct (every column) or the Key struct (the key columns in key order).
void write_row_schema(JsonWriter& w, const DebeziumOptions& o, const RelationPlan& plan, bool key_only,
                      const Tail& t) {
  write_struct(w, t, [&] {
    if (key_only) {
      for (std::size_t i : plan.key_columns) write_column_schema(w, o, plan.columns[i]);
      return;
    }
    for (const ColumnPlan& c : plan.columns) write_column_schema(w, o, c);
  });
}

void write_source_schema(JsonWriter& w) {
  static constexpr Param kSnapshotParams[] = {{"allowed", kSnapshotAllowed}};
  write_struct(w, {.name = "io.debezium.connector.postgresql.Source", .field = "source"}, [&] {
    write_simple_field(w, "string", false, "version");
    write_simple_field(w, "string", false, "connector");
    write_simple_field(w, "string", false, "name");
    write_simple_field(w, "int64", false, "ts_ms");
    write_simple_field(w, "int64", true, "ts_us");
    write_simple_field(w, "int64", true, "ts_ns");
    write_simple(w, "string",
                 {.optional = true,
                  .name = "io.debezium.data.Enum",
                  .version = 1,
                  .field = "snapshot",
                  .params = kSnapshotParams,
                  .default_value = "false"});
    write_simple_field(w, "string", false, "db");
    write_simple_field(w, "string", true, "sequence");
    write_simple_field(w, "string", false, "schema");
    write_simple_field(w, "string", false, "table");
    write_simple_field(w, "int64", true, "txId");
    write_simple_field(w, "int64", true, "lsn");
    write_simple_field(w, "int64", true, "xmin");
  });
}

// source, op, ts_* and (with provide.transaction.metadata) transaction: the fields every envelope ends with.
void write_envelope_end_fields(JsonWriter& w, bool transaction_metadata) {
  write_source_schema(w);
  write_simple_field(w, "string", false, "op");
  write_simple_field(w, "int64", true, "ts_ms");
  write_simple_field(w, "int64", true, "ts_us");
  write_simple_field(w, "int64", true, "ts_ns");
  if (!transaction_metadata) return;
  write_struct(w, {.optional = true, .name = "event.block", .version = 1, .field = "transaction"}, [&] {
    write_simple_field(w, "string", false, "id");
    write_simple_field(w, "int64", false, "total_order");
    write_simple_field(w, "int64", false, "data_collection_order");
  });
}

}  // namespace

std::string row_envelope_schema(const DebeziumOptions& options, const RelationPlan& plan) {
  const std::string value_name = plan.topic + ".Value";
  const std::string envelope_name = plan.topic + ".Envelope";
  return json_text([&](JsonWriter& w) {
    write_struct(w, {.name = envelope_name.c_str()}, [&] {
      write_row_schema(w, options, plan, false,
                       {.optional = true, .name = value_name.c_str(), .field = "before"});
      write_row_schema(w, options, plan, false,
                       {.optional = true, .name = value_name.c_str(), .field = "after"});
      write_envelope_end_fields(w, options.transaction_metadata);
    });
  });
}

std::string row_key_schema(const DebeziumOptions& options, const RelationPlan& plan) {
  const std::string key_name = plan.topic + ".Key";
  return json_text(
      [&](JsonWriter& w) { write_row_schema(w, options, plan, true, {.name = key_name.c_str()}); });
}

const std::string& message_key_schema() {
  static const std::string schema = json_text([](JsonWriter& w) {
    write_struct(w, {.name = "io.debezium.connector.postgresql.MessageKey", .version = 1},
                 [&] { write_simple_field(w, "string", true, "prefix"); });
  });
  return schema;
}

std::string message_value_schema(const DebeziumOptions& options) {
  const char* content_type = options.binary == BinaryHandling::Bytes ? "bytes" : "string";
  return json_text([&](JsonWriter& w) {
    write_struct(w, {.name = "io.debezium.connector.postgresql.MessageValue", .version = 1}, [&] {
      write_simple_field(w, "string", false, "op");
      write_simple_field(w, "int64", true, "ts_ms");
      write_source_schema(w);
      write_struct(w, {.name = "io.debezium.connector.postgresql.Message", .version = 1, .field = "message"},
                   [&] {
                     write_simple_field(w, "string", true, "prefix");
                     write_simple_field(w, content_type, true, "content");
                   });
    });
  });
}

// SchemaFactory.transactionKeySchema and transactionValueSchema (ts_ms last, the collections optional).
const std::string& transaction_key_schema() {
  static const std::string schema = json_text([](JsonWriter& w) {
    write_struct(w, {.name = "io.debezium.connector.common.TransactionMetadataKey", .version = 1},
                 [&] { write_simple_field(w, "string", false, "id"); });
  });
  return schema;
}

const std::string& transaction_value_schema() {
  static const std::string schema = json_text([](JsonWriter& w) {
    write_struct(w, {.name = "io.debezium.connector.common.TransactionMetadataValue", .version = 1}, [&] {
      write_simple_field(w, "string", false, "status");
      write_simple_field(w, "string", false, "id");
      write_simple_field(w, "int64", true, "event_count");
      write_head(w, "array");
      w.Key("items");
      write_struct(w, {.optional = true, .name = "event.collection", .version = 1}, [&] {
        write_simple_field(w, "string", false, "data_collection");
        write_simple_field(w, "int64", false, "event_count");
      });
      write_tail(w, {.optional = true, .field = "data_collections"});
      write_simple_field(w, "int64", false, "ts_ms");
    });
  });
  return schema;
}

}  // namespace cdcsync::debezium
