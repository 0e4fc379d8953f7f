// Per-relation plans: each column's resolved type, nullability, default and place in the key, the topic and
// the schemas, made once per Relation message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "decoders/change.h"
#include "decoders/relation_facts.h"
#include "decoders/type_catalog.h"

namespace cdcsync {
struct DebeziumOptions;
}  // namespace cdcsync

namespace cdcsync::debezium {

class ValueEncoder;

// What an unchanged TOAST value of a column becomes (UnchangedToastedReplicationMessageColumn and the
// converters that see its marker).
enum class ToastPlaceholder : std::uint8_t {
  Null,        // a converter without a string form: the value does not convert (null)
  Text,        // the placeholder string
  Bytes,       // the placeholder's bytes
  Hstore,      // {"<placeholder>":"<placeholder>"} as a JSON string
  TextList,    // text[], varchar[], json[], jsonb[]: [placeholder]
  BytesList,   // bytea[]: [placeholder bytes]
  NumberList,  // int4[], date[], int8[]: the placeholder's bytes as numbers
  UuidList,    // uuid[]: [UUID.nameUUIDFromBytes(placeholder)]
};

struct ColumnPlan {
  std::string name;
  TypeKind kind = TypeKind::Unknown;
  std::int32_t typmod = -1;
  TypeKind element_kind = TypeKind::Unknown;
  std::int32_t element_typmod = -1;
  Oid oid = 0;  // resolved (domain base) type OID
  const TypeInfo* type = nullptr;
  const TypeInfo* element = nullptr;
  bool key = false;          // part of the message key
  bool optional = true;      // the field schema's "optional": the column is not NOT NULL
  std::string default_json;  // the field schema's "default" as JSON text; empty: none
  // What a NULL in this NOT NULL column is written as (JdbcValueConverters.convertValue: the schema default,
  // else the converter's fallback), as JSON text; empty for an optional column.
  std::string null_json;
  ToastPlaceholder toast = ToastPlaceholder::Null;
};

struct RelationPlan {
  RelationPtr relation;
  std::vector<ColumnPlan> columns;
  std::vector<std::size_t> key_columns;  // indexes into `columns`, in key order
  std::string topic;
  bool has_key = false;
  // Only with include_schema, as JsonConverter writes them: the Envelope (of truncate events too) and the
  // Key.
  std::string value_schema;
  std::string key_schema;
};

// With `facts`: nullability, defaults and the key (primary key, else first unique index) from the source's
// catalog, and a type the catalog does not know makes it reload the types once. Without: the key is the
// replica identity columns of the Relation message, which alone are required, and no column has a default.
// Throws CatalogError from `facts`.
// `xid`: the transaction of the change that needs the plan (see CatalogFacts::relation_facts).
RelationPlan make_plan(const RelationPtr& relation, Xid xid, const DebeziumOptions& options,
                       const TypeCatalog& catalog, CatalogFacts* facts, ValueEncoder& values);

}  // namespace cdcsync::debezium
