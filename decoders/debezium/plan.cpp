// Per-relation plans (see plan.h).
#include "decoders/debezium/plan.h"

#include <utility>

#include "decoders/debezium/defaults.h"
#include "decoders/debezium/java_text.h"
#include "decoders/debezium/schema.h"
#include "decoders/debezium/type_rules.h"
#include "decoders/debezium/values.h"
#include "decoders/debezium_json.h"
#include "decoders/pg_types.h"

namespace cdcsync::debezium {
namespace {

// Below FirstNormalObjectId every type is built in: reading the catalog again cannot teach us it.
constexpr Oid kFirstNormalObjectId = 16384;

// Whether a column's type, a domain's base or an array's element is one the catalog has not read yet.
bool unknown_user_type(const TypeCatalog& catalog, Oid oid) {
  for (int depth = 0; depth < 16; ++depth) {
    const TypeInfo* t = catalog.find(oid);
    if (t == nullptr) return oid >= kFirstNormalObjectId;
    if (t->kind == TypeKind::Domain) {
      oid = t->base_oid;
    } else if (t->kind == TypeKind::Array) {
      oid = t->element_oid;
    } else {
      return false;
    }
  }
  return false;
}

// UnchangedToastedReplicationMessageColumn.setUnchangedToastValue picks the marker by the declared type's
// name (the array types below, hstore), and the column's converter turns it into a value: the string and
// bytes converters give the placeholder, the others cannot convert it and leave null.
ToastPlaceholder toast_placeholder(const TypeInfo* declared, TypeKind kind) {
  if (declared != nullptr && declared->kind == TypeKind::Array && declared->schema == "pg_catalog") {
    switch (declared->element_oid) {
      case pgtype::kText:
      case pgtype::kVarchar:
      case pgtype::kJson:
      case pgtype::kJsonb:
        return ToastPlaceholder::TextList;
      case pgtype::kBytea:
        return ToastPlaceholder::BytesList;
      case pgtype::kInt4:
      case pgtype::kDate:
      case pgtype::kInt8:
        return ToastPlaceholder::NumberList;
      case pgtype::kUuid:
        return ToastPlaceholder::UuidList;
      default:
        return ToastPlaceholder::Null;
    }
  }
  if (kind == TypeKind::Hstore) {
    // A domain over hstore gets the plain marker, which the hstore converter passes on as the text.
    return declared != nullptr && declared->kind == TypeKind::Hstore ? ToastPlaceholder::Hstore
                                                                     : ToastPlaceholder::Text;
  }
  if (kind == TypeKind::Bytea) return ToastPlaceholder::Bytes;
  return is_stringish(kind) ? ToastPlaceholder::Text : ToastPlaceholder::Null;
}

ColumnPlan column_plan(const ColumnDef& def, const TypeCatalog& catalog) {
  const ResolvedType t = catalog.resolve(def.type_oid, def.type_modifier);
  ColumnPlan c{.name = def.name,
               .kind = t.kind(),
               .typmod = t.typmod,
               .element_kind = t.element_kind(),
               .element_typmod = t.element_typmod,
               .oid = t.type ? t.type->oid : def.type_oid,
               .type = t.type,
               .element = t.element};
  c.toast = toast_placeholder(catalog.find(def.type_oid), c.kind);
  return c;
}

// Nullability, defaults and the key from the catalog's facts, by column name (handleRelationMessage: a column
// the catalog does not list is optional; key columns missing from the Relation message are left out).
void apply_facts(RelationPlan& plan, const RelationFacts& facts, const RelationDef& rel,
                 const DebeziumOptions& options, const TypeCatalog& catalog, ValueEncoder& values) {
  for (std::size_t i = 0; i < plan.columns.size(); ++i) {
    ColumnPlan& c = plan.columns[i];
    const ColumnFacts* f = facts.column(c.name);
    if (f == nullptr) continue;
    c.optional = !f->not_null;
    if (f->default_expression) {
      c.default_json =
          default_json(c, catalog.find(rel.columns[i].type_oid), *f->default_expression, values, options);
    }
  }
  for (const std::string& name : facts.key) {
    for (std::size_t i = 0; i < plan.columns.size(); ++i) {
      if (plan.columns[i].name != name || plan.columns[i].key) continue;
      plan.columns[i].key = true;
      plan.key_columns.push_back(i);
      break;
    }
  }
}

}  // namespace

RelationPlan make_plan(const RelationPtr& relation, Xid xid, const DebeziumOptions& options,
                       const TypeCatalog& catalog, CatalogFacts* facts, ValueEncoder& values) {
  RelationPlan plan;
  plan.relation = relation;
  const RelationDef& rel = *relation;
  plan.topic = debezium_topic_name({options.topic_prefix, rel.schema, rel.name});
  if (facts != nullptr) {
    for (const ColumnDef& def : rel.columns) {
      if (unknown_user_type(catalog, def.type_oid)) {
        // A type created after the catalog was read (CREATE TYPE/DOMAIN while streaming).
        facts->reload_types();
        break;
      }
    }
  }
  plan.columns.reserve(rel.columns.size());
  for (const ColumnDef& def : rel.columns) plan.columns.push_back(column_plan(def, catalog));
  if (facts != nullptr) {
    apply_facts(plan, facts->relation_facts(rel, xid), rel, options, catalog, values);
  } else {
    for (std::size_t i = 0; i < rel.columns.size(); ++i) {
      plan.columns[i].key = rel.columns[i].part_of_key;
      plan.columns[i].optional = !rel.columns[i].part_of_key;
      if (rel.columns[i].part_of_key) plan.key_columns.push_back(i);
    }
  }
  for (ColumnPlan& c : plan.columns) {
    if (!c.optional) c.null_json = c.default_json.empty() ? fallback_json(c, options) : c.default_json;
  }
  plan.has_key = !plan.key_columns.empty();
  if (options.include_schema) {
    plan.value_schema = row_envelope_schema(options, plan);
    plan.key_schema = row_key_schema(options, plan);
  }
  return plan;
}

}  // namespace cdcsync::debezium
