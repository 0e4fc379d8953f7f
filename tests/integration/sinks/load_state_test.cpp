// The per-table load state (sinks/load_state.h) against a real order database: the statements that build the
// indexes a copy dropped are kept and forgotten, and a state table created before that column existed is
// still read, written and cleaned, with an error naming the column only when they have to be kept.
#include "sinks/load_state.h"

#include <gtest/gtest.h>

#include "tests/integration/sinks/sink_fixture.h"

namespace cdcsync::test {
namespace {

const TableLoadState kCopying{TablePhase::Copying, Lsn{0x100}, true, std::nullopt, {}};

TEST(LoadState, KeepsTheStatementsThatBuildDroppedIndexesUntilTheyAreBuilt) {
  SinkDatabase db("load_state_deferred");
  const LoadStateStore store{{"ref", "cdc_table_state"}, "p"};
  auto conn = pg_connect(db.target(), "order database");
  store.write(conn.get(), "ref.customer", kCopying);
  const std::vector<std::string> build{
      "ALTER TABLE ref.customer ADD CONSTRAINT customer_pkey PRIMARY KEY (customer_id)",
      R"(CREATE INDEX "a ""quoted"", name\" ON ref.customer USING btree (tier))"};
  store.defer_indexes(conn.get(), "ref.customer", build);
  // A later write of the phase keeps them.
  store.write(conn.get(), "ref.customer", kCopying);
  EXPECT_EQ(store.read(conn.get()).at("ref.customer").deferred_indexes, build);
  // A table no longer mapped is forgotten, unless it still has indexes to build.
  store.write(conn.get(), "ref.loyalty_account", kCopying);
  store.forget_others(conn.get(), {});
  EXPECT_EQ(store.read(conn.get()).size(), 1u);
  store.indexes_built(conn.get(), "ref.customer");
  EXPECT_TRUE(store.read(conn.get()).at("ref.customer").deferred_indexes.empty());
  store.forget_others(conn.get(), {});
  EXPECT_TRUE(store.read(conn.get()).empty());
}

TEST(LoadState, AStateTableWithoutTheColumnIsReadAndNamedWhenIndexesMustBeKept) {
  SinkDatabase db("load_state_old", {"ALTER TABLE ref.cdc_table_state DROP COLUMN deferred_indexes"});
  const LoadStateStore store{{"ref", "cdc_table_state"}, "p"};
  auto conn = pg_connect(db.target(), "order database");
  store.write(conn.get(), "ref.customer", kCopying);
  EXPECT_TRUE(store.read(conn.get()).at("ref.customer").deferred_indexes.empty());
  try {
    store.defer_indexes(conn.get(), "ref.customer", {"CREATE INDEX x ON ref.customer (tier)"});
    FAIL() << "expected PgError";
  } catch (const PgError& e) {
    EXPECT_NE(std::string(e.what()).find("ADD COLUMN deferred_indexes text[]"), std::string::npos) << e.what();
  }
  store.forget_others(conn.get(), {});
  EXPECT_TRUE(store.read(conn.get()).empty());
}

}  // namespace
}  // namespace cdcsync::test
