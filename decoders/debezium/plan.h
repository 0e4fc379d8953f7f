// Per-relation plans: each column's resolved type, the topic and the schemas, made once per Relation message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "decoders/change.h"
#include "decoders/type_catalog.h"

namespace cdcsync {
struct DebeziumOptions;
}  // namespace cdcsync

namespace cdcsync::debezium {

struct ColumnPlan {
  std::string name;
  TypeKind kind = TypeKind::Unknown;
  std::int32_t typmod = -1;
  TypeKind element_kind = TypeKind::Unknown;
  std::int32_t element_typmod = -1;
  Oid oid = 0;  // resolved (domain base) type OID
  const TypeInfo* type = nullptr;
  const TypeInfo* element = nullptr;
  bool key = false;
};

struct RelationPlan {
  RelationPtr relation;
  std::vector<ColumnPlan> columns;
  std::string topic;
  bool has_key = false;
  // Only with include_schema, as JsonConverter writes them: the change events' Envelope, the Key, and the
  // Envelope of truncate events (no before/after).
  std::string value_schema;
  std::string key_schema;
  std::string truncate_schema;
};

RelationPlan make_plan(const RelationPtr& relation, const DebeziumOptions& options,
                       const TypeCatalog& catalog);

}  // namespace cdcsync::debezium
