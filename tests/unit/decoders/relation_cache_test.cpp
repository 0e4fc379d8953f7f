#include "decoders/relation_cache.h"

#include <gtest/gtest.h>

#include "decoders/byte_reader.h"

namespace cdcsync {
namespace {

RelationDef relation(std::uint32_t id, std::size_t columns) {
  RelationDef def;
  def.id = RelationId{id};
  def.schema = "public";
  def.name = "t";
  def.columns.resize(columns);
  return def;
}

TEST(RelationCache, ReplacesAnEntryWhileChangesKeepTheSchemaTheyWereDecodedWith) {
  RelationCache cache;
  RelationPtr old = cache.put(relation(1, 2));
  cache.put(relation(1, 3));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find(RelationId{1})->columns.size(), 3u);
  EXPECT_EQ(old->columns.size(), 2u);
}

TEST(RelationCache, NamesTheUnknownRelationAndTheMessageThatNeededIt) {
  RelationCache cache;
  EXPECT_EQ(cache.find(RelationId{16385}), nullptr);
  try {
    cache.require(RelationId{16385}, "Update", 1);
    FAIL();
  } catch (const DecodeError& e) {
    EXPECT_STREQ(e.what(),
                 "Update message at offset 1: relation 16385 unknown: no Relation message before Update");
  }
}

TEST(RelationCache, KeepsTypesByOid) {
  RelationCache cache;
  cache.put_type(TypeDef{.oid = 16390, .schema = "fixture", .name = "mood"});
  cache.put_type(TypeDef{.oid = 16390, .schema = "fixture", .name = "mood2"});
  ASSERT_NE(cache.find_type(16390), nullptr);
  EXPECT_EQ(cache.find_type(16390)->name, "mood2");
  EXPECT_EQ(cache.find_type(1), nullptr);
}

}  // namespace
}  // namespace cdcsync
