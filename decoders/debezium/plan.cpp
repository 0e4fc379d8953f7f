// Per-relation plans (see plan.h).
#include "decoders/debezium/plan.h"

#include <utility>

#include "decoders/debezium/schema.h"
#include "decoders/debezium_json.h"

namespace cdcsync::debezium {

RelationPlan make_plan(const RelationPtr& relation, const DebeziumOptions& options,
                       const TypeCatalog& catalog) {
  RelationPlan plan;
  plan.relation = relation;
  const RelationDef& rel = *relation;
  plan.topic = options.topic_prefix + "." + rel.schema + "." + rel.name;
  plan.columns.reserve(rel.columns.size());
  for (const ColumnDef& def : rel.columns) {
    const ResolvedType t = catalog.resolve(def.type_oid, def.type_modifier);
    plan.columns.push_back({.name = def.name,
                            .kind = t.kind(),
                            .typmod = t.typmod,
                            .element_kind = t.element_kind(),
                            .element_typmod = t.element_typmod,
                            .oid = t.type ? t.type->oid : def.type_oid,
                            .type = t.type,
                            .element = t.element,
                            .key = def.part_of_key});
    plan.has_key = plan.has_key || def.part_of_key;
  }
  if (options.include_schema) {
    plan.value_schema = row_envelope_schema(options, rel, plan.columns);
    plan.key_schema = row_key_schema(options, rel, plan.columns);
    plan.truncate_schema = truncate_envelope_schema(options, rel);
  }
  return plan;
}

}  // namespace cdcsync::debezium
