#include "decoders/relation_cache.h"

#include <memory>
#include <string>
#include <utility>

#include "decoders/byte_reader.h"

namespace cdcsync {

RelationPtr RelationCache::put(RelationDef def) {
  auto relation = std::make_shared<const RelationDef>(std::move(def));
  put(relation);
  return relation;
}

void RelationCache::put(RelationPtr relation) {
  const std::uint32_t id = relation->id.value;
  relations_.insert_or_assign(id, std::move(relation));
}

RelationPtr RelationCache::find(RelationId id) const {
  const auto it = relations_.find(id.value);
  return it == relations_.end() ? nullptr : it->second;
}

const RelationPtr& RelationCache::require(RelationId id, std::string_view message_type,
                                          std::size_t offset) const {
  const auto it = relations_.find(id.value);
  if (it == relations_.end()) {
    throw DecodeError(message_type, offset,
                      "relation " + std::to_string(id.value) + " unknown: no Relation message before " +
                          std::string(message_type));
  }
  return it->second;
}

void RelationCache::put_type(TypeDef type) {
  const Oid oid = type.oid;
  types_.insert_or_assign(oid, std::move(type));
}

const TypeDef* RelationCache::find_type(Oid oid) const {
  const auto it = types_.find(oid);
  return it == types_.end() ? nullptr : &it->second;
}

}  // namespace cdcsync
