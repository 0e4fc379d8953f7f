// target-ddl: idempotent DDL from a mapping and source types, without a server.
#include "sinks/target_ddl.h"

#include <gtest/gtest.h>

namespace cdcsync {
namespace {

TableMapping customers(DeletePolicy deletes = DeletePolicy::Soft) {
  TableMapping t;
  t.source = {"public", "customers"};
  t.target = {"ref", "customer"};
  t.key = {"id"};
  t.columns = {{"id", "customer_id", Transform::copy()},
               {"full_name", "display_name", Transform::mask(2)},
               {"status", "status", Transform::copy()}};
  t.deletes = deletes;
  return t;
}

const ColumnTypes kTypes = {
    {"id", "bigint"}, {"full_name", "character varying(80)"}, {"status", "text"}, {"email", "text"}};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(SinkTargetDdl, CreatesTheTableWithKeyGuardAndTombstone) {
  const auto ddl = table_ddl(customers(), kTypes);
  EXPECT_TRUE(contains(ddl, "CREATE SCHEMA IF NOT EXISTS \"ref\";"));
  EXPECT_TRUE(contains(ddl, "CREATE TABLE IF NOT EXISTS \"ref\".\"customer\" ("));
  EXPECT_TRUE(contains(ddl, "\"customer_id\" bigint NOT NULL,"));
  EXPECT_TRUE(contains(ddl, "\"display_name\" text,"));  // transformed: text
  EXPECT_TRUE(contains(ddl, "\"_cdc_lsn\" pg_lsn NOT NULL,"));
  EXPECT_TRUE(contains(ddl, "\"_cdc_deleted\" boolean NOT NULL DEFAULT false,"));
  EXPECT_TRUE(contains(ddl, "PRIMARY KEY (\"customer_id\")"));
  EXPECT_FALSE(contains(ddl, "email"));
}

TEST(SinkTargetDdl, CompletesPartlyPreparedTables) {
  const auto ddl = table_ddl(customers(), kTypes);
  EXPECT_TRUE(contains(ddl, "ALTER TABLE \"ref\".\"customer\" ADD COLUMN IF NOT EXISTS \"status\" text;"));
  EXPECT_TRUE(contains(ddl, "ADD COLUMN IF NOT EXISTS \"_cdc_lsn\" pg_lsn NOT NULL DEFAULT '0/0';"));
  EXPECT_TRUE(contains(ddl, "CREATE UNIQUE INDEX IF NOT EXISTS"));
}

TEST(SinkTargetDdl, HardDeletesNeedNoTombstone) {
  EXPECT_FALSE(contains(table_ddl(customers(DeletePolicy::Hard), kTypes), "_cdc_deleted"));
}

TEST(SinkTargetDdl, QuotesHostileIdentifiers) {
  auto t = customers();
  t.target = {"Odd \"Schema\"", "select"};
  t.columns[2].target = "Status; DROP TABLE x";
  const auto ddl = table_ddl(t, kTypes);
  EXPECT_TRUE(contains(ddl, "\"Odd \"\"Schema\"\"\".\"select\""));
  EXPECT_TRUE(contains(ddl, "\"Status; DROP TABLE x\" text"));
}

TEST(SinkTargetDdl, RefusesUnknownSourceColumnTypes) {
  EXPECT_THROW(table_ddl(customers(), {{"id", "bigint"}}), std::invalid_argument);
  Mapping m({customers()});
  EXPECT_THROW(target_ddl(m, {}), std::invalid_argument);
}

TEST(SinkTargetDdl, IncludesTheProgressTableInItsConfiguredSchema) {
  Mapping m({customers()});
  const auto ddl = target_ddl(m, {{QualifiedName{"public", "customers"}, kTypes}}, {"cdc", "progress"});
  EXPECT_TRUE(contains(ddl, "CREATE TABLE IF NOT EXISTS \"cdc\".\"progress\" ("));
  EXPECT_TRUE(contains(ddl, "acked_lsn    pg_lsn      NOT NULL"));
}

}  // namespace
}  // namespace cdcsync
