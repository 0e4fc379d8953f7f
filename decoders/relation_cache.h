// RelationCache: the relations and types the server has described so far, by id. Each Relation message
// replaces its entry whole (a schema change on the source arrives that way, mid-stream); entries are
// shared_ptr<const RelationDef>, so changes decoded earlier keep the schema they were decoded with.
#pragma once

#include <cstddef>
#include <string_view>
#include <unordered_map>

#include "decoders/change.h"

namespace cdcsync {

class RelationCache {
 public:
  // Replaces the entry of def.id and returns the stored definition.
  RelationPtr put(RelationDef def);
  void put(RelationPtr relation);
  // Null when no Relation message has described `id`.
  RelationPtr find(RelationId id) const;
  // The entry of `id`; throws DecodeError{message_type, offset} when unknown:
  // "relation 16385 unknown: no Relation message before Insert".
  const RelationPtr& require(RelationId id, std::string_view message_type, std::size_t offset) const;

  void put_type(TypeDef type);
  const TypeDef* find_type(Oid oid) const;

  std::size_t size() const { return relations_.size(); }
  std::size_t type_count() const { return types_.size(); }
  void clear() {
    relations_.clear();
    types_.clear();
  }

 private:
  std::unordered_map<std::uint32_t, RelationPtr> relations_;
  std::unordered_map<Oid, TypeDef> types_;
};

}  // namespace cdcsync
