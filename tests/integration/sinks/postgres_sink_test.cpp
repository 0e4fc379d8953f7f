// PostgresSink against a real order database: what a user sees in the reference tables and the progress
// row. Every behaviour runs with both apply methods (set-based COPY and in-order pipeline), and with small
// batches sent in one round trip (PostgresSinkOptions::one_trip_max_changes).
#include "sinks/postgres_sink.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "decoders/pg.h"
#include "tests/integration/sinks/sink_fixture.h"

namespace cdcsync::test {
namespace {

constexpr std::uint64_t kBase = 0x1'0000'0000;

// Copy and Pipeline: the two apply methods, every batch through them; OneTrip: Copy, with the batches of up
// to 32 changes of whole transactions in one round trip.
enum class Variant { Copy, Pipeline, OneTrip };

class PostgresSinkTest : public ::testing::TestWithParam<Variant> {
 protected:
  std::string db_name(const std::string& stem) const {
    return "sink_" + stem +
           (GetParam() == Variant::Copy       ? "_copy"
            : GetParam() == Variant::Pipeline ? "_pipe"
                                              : "_trip");
  }
  // Every batch goes through the set-based path (COPY): its own counters move.
  static bool copies() { return GetParam() == Variant::Copy; }
  static ApplyMethod apply_method() {
    return GetParam() == Variant::Pipeline ? ApplyMethod::Pipeline : ApplyMethod::Copy;
  }
  static std::size_t one_trip() { return GetParam() == Variant::OneTrip ? 32 : 0; }
  std::unique_ptr<PostgresSink> make_sink(const SinkDatabase& db, std::vector<TableMapping> tables,
                                          const std::string& pipeline = "test",
                                          PostgresSinkObserver observer = {}) const {
    PostgresSinkOptions o;
    o.observer = std::move(observer);
    o.conninfo = db.target();
    o.pipeline = pipeline;
    o.applied_by = "sink-test";
    o.method = apply_method();
    o.one_trip_max_changes = one_trip();
    return std::make_unique<PostgresSink>(Mapping(std::move(tables)), o);
  }
  static std::string customer(const SinkDatabase& db, int id) {
    const auto rows =
        query_rows(db.admin(),
                   "SELECT coalesce(display_name, '<null>') || '|' || coalesce(status, '<null>') || '|' "
                   "|| coalesce(tier, '<null>') || '|' || _cdc_lsn::text || '|' || _cdc_deleted::text "
                   "FROM ref.customer WHERE customer_id = " +
                       std::to_string(id));
    return rows.empty() ? "<none>" : rows[0][0].value_or("?");
  }
  static Tuple row(int id, std::optional<std::string> name, std::optional<std::string> status = "active",
                   std::optional<std::string> tier = "gold") {
    return tuple(
        {std::to_string(id), std::move(name), std::move(status), std::move(tier), "pii@example.com"});
  }
  static Tuple key(int id) {
    return tuple({std::to_string(id), std::nullopt, std::nullopt, std::nullopt, std::nullopt});
  }

  RelationPtr rel_ = customers_relation();
};

TEST_P(PostgresSinkTest, UpsertsRowsAndWritesTheProgressRowInTheSameTransaction) {
  SinkDatabase db(db_name("upsert"));
  auto sink = make_sink(db, {customer_mapping()});
  EXPECT_EQ(sink->load_progress(), std::nullopt);
  auto t1 = txn(701, kBase + 0x100,
                {insert(rel_, kBase + 0x10, row(1, "Ann")), insert(rel_, kBase + 0x20, row(2, "Bob"))});
  auto t2 = txn(702, kBase + 0x200, {update(rel_, kBase + 0x110, row(1, "Anne", "vip"))});
  t2.info.commit_time_us = 123'456'789;
  EXPECT_EQ(sink->apply(batch_of({t1, t2})), Lsn{kBase + 0x200});
  EXPECT_EQ(customer(db, 1), "Anne|vip|gold|1/1F8|false");
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/F8|false");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "2");
  EXPECT_EQ(
      db.value(
          "SELECT end_lsn::text || ' ' || xid || ' ' || acked_lsn::text || ' ' || applied_by || ' ' || "
          "(commit_time = '2000-01-01 00:00:00+00'::timestamptz + interval '123456789 microseconds')::text "
          "FROM ref.cdc_progress WHERE pipeline = 'test'"),
      "1/200 702 1/200 sink-test true");
  EXPECT_EQ(sink->stats().one_trip_batches, GetParam() == Variant::OneTrip ? 1u : 0u);
  const auto p = sink->load_progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->end_lsn, Lsn{kBase + 0x200});
  EXPECT_EQ(p->xid, Xid{702});
  EXPECT_EQ(p->commit_time_us, 123'456'789);
  // Unmapped source columns never reach the target.
  EXPECT_EQ(db.value("SELECT count(*) FROM information_schema.columns WHERE table_name = 'customer' AND "
                     "column_name = 'email'"),
            "0");
}

TEST_P(PostgresSinkTest, HardDeletesRemoveTheRow) {
  SinkDatabase db(db_name("hard_delete"));
  auto sink = make_sink(db, {customer_mapping(DeletePolicy::Hard)});
  sink->apply(batch_of(
      {txn(1, kBase + 0x100,
           {insert(rel_, kBase + 0x10, row(1, "Ann")), insert(rel_, kBase + 0x20, row(2, "Bob"))})}));
  sink->apply(batch_of({txn(2, kBase + 0x200, {remove(rel_, kBase + 0x110, key(1))})}));
  EXPECT_EQ(customer(db, 1), "<none>");
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/F8|false");
}

TEST_P(PostgresSinkTest, SoftDeletesTombstoneTheRowAndKeepTheLsn) {
  SinkDatabase db(db_name("soft_delete"));
  auto sink = make_sink(db, {customer_mapping(DeletePolicy::Soft)});
  sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))})}));
  sink->apply(batch_of(
      {txn(2, kBase + 0x200, {remove(rel_, kBase + 0x110, key(1)), remove(rel_, kBase + 0x120, key(9))})}));
  EXPECT_EQ(customer(db, 1), "Ann|active|gold|1/1F8|true");
  EXPECT_EQ(customer(db, 9), "<null>|<null>|<null>|1/1F8|true");
  sink->apply(batch_of({txn(3, kBase + 0x300, {insert(rel_, kBase + 0x210, row(1, "Ann again"))})}));
  EXPECT_EQ(customer(db, 1), "Ann again|active|gold|1/2F8|false");
}

TEST_P(PostgresSinkTest, IgnoredDeletesKeepTheRow) {
  SinkDatabase db(db_name("ignore_delete"));
  auto sink = make_sink(db, {customer_mapping(DeletePolicy::Ignore)});
  sink->apply(batch_of({txn(
      1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann")), remove(rel_, kBase + 0x20, key(1))})}));
  EXPECT_EQ(customer(db, 1), "Ann|active|gold|1/F8|false");
}

TEST_P(PostgresSinkTest, AnOlderChangeNeverOverwritesANewerRow) {
  SinkDatabase db(db_name("guard"));
  exec_sql(db.admin(), "INSERT INTO ref.customer VALUES (1, 'Newer', 'active', 'gold', '2/0', false)");
  auto sink = make_sink(db, {customer_mapping(DeletePolicy::Hard)});
  sink->apply(batch_of({txn(1, kBase + 0x100, {update(rel_, kBase + 0x10, row(1, "Older"))})}));
  sink->apply(batch_of({txn(2, kBase + 0x200, {remove(rel_, kBase + 0x110, key(1))})}));
  EXPECT_EQ(customer(db, 1), "Newer|active|gold|2/0|false");
}

TEST_P(PostgresSinkTest, ReplayingABatchUnderAnotherPipelineChangesNothing) {
  SinkDatabase db(db_name("replay"));
  const auto b =
      batch_of({txn(1, kBase + 0x100,
                    {insert(rel_, kBase + 0x10, row(1, "Ann")), update(rel_, kBase + 0x20, row(1, "Anne"))}),
                txn(2, kBase + 0x200, {insert(rel_, kBase + 0x110, row(2, "Bob"))}),
                txn(3, kBase + 0x300, {update(rel_, kBase + 0x210, row(1, "Annie"))})});
  make_sink(db, {customer_mapping()}, "first")->apply(b);
  const auto before = db.value("SELECT string_agg(t::text, ';' ORDER BY customer_id) FROM ref.customer t");
  // A different progress row: nothing is skipped, only the LSN guard protects the rows.
  make_sink(db, {customer_mapping()}, "second")->apply(batch_of({b.transactions[0], b.transactions[1]}));
  EXPECT_EQ(db.value("SELECT string_agg(t::text, ';' ORDER BY customer_id) FROM ref.customer t"), before);
  EXPECT_EQ(customer(db, 1), "Annie|active|gold|1/2F8|false");
}

TEST_P(PostgresSinkTest, SkipsWholeTransactionsAtOrBelowTheDurableProgress) {
  SinkDatabase db(db_name("skip"));
  auto sink = make_sink(db, {customer_mapping()});
  sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))}),
                        txn(2, kBase + 0x200, {insert(rel_, kBase + 0x110, row(2, "Bob"))})}));
  // A resent transaction 2 (with a different value, to make re-application visible) and a new one.
  auto resent = txn(2, kBase + 0x200, {insert(rel_, kBase + 0x110, row(2, "Changed"))});
  EXPECT_EQ(
      sink->apply(batch_of({resent, txn(3, kBase + 0x300, {insert(rel_, kBase + 0x210, row(3, "Cy"))})})),
      Lsn{kBase + 0x300});
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/1F8|false");
  EXPECT_EQ(customer(db, 3), "Cy|active|gold|1/2F8|false");
  EXPECT_EQ(sink->stats().transactions_skipped, 1u);
  // A fresh sink reads the progress at connect and skips too.
  sink.reset();
  auto again = make_sink(db, {customer_mapping()});
  EXPECT_EQ(again->apply(batch_of({resent})), Lsn{kBase + 0x300});
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/1F8|false");
  // Resent in chunks: the first chunk knows only its commit LSN, which is below the progress.
  auto first = txn(3, kBase + 0x300, {insert(rel_, kBase + 0x210, row(3, "Changed"))});
  first.last_chunk = false;
  first.info.end_lsn = Lsn{};
  auto last = txn(3, kBase + 0x300, {insert(rel_, kBase + 0x220, row(4, "Dee"))});
  last.first_chunk = false;
  EXPECT_EQ(again->apply(batch_of({first})), std::nullopt);
  EXPECT_EQ(
      again->apply(batch_of({last, txn(4, kBase + 0x400, {insert(rel_, kBase + 0x310, row(5, "Eve"))})})),
      Lsn{kBase + 0x400});
  EXPECT_EQ(customer(db, 3), "Cy|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 4), "<none>");
  EXPECT_EQ(customer(db, 5), "Eve|active|gold|1/3F8|false");
}

TEST_P(PostgresSinkTest, AChunkedTransactionStaysInvisibleUntilItsLastChunk) {
  SinkDatabase db(db_name("chunks"));
  auto sink = make_sink(db, {customer_mapping()});
  auto first = txn(5, kBase + 0x300, {insert(rel_, kBase + 0x10, row(1, "Ann"))});
  first.last_chunk = false;
  first.info.end_lsn = Lsn{};
  auto middle = txn(5, kBase + 0x300, {insert(rel_, kBase + 0x20, row(2, "Bob"))});
  middle.first_chunk = middle.last_chunk = false;
  middle.info.end_lsn = Lsn{};
  auto last = txn(5, kBase + 0x300, {update(rel_, kBase + 0x30, row(1, "Anne"))});
  last.first_chunk = false;
  EXPECT_EQ(sink->apply(batch_of({first})), std::nullopt);
  EXPECT_EQ(sink->apply(batch_of({middle})), std::nullopt);
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "0");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.cdc_progress"), "0");
  EXPECT_EQ(sink->apply(batch_of({last, txn(6, kBase + 0x400, {insert(rel_, kBase + 0x310, row(3, "Cy"))})})),
            Lsn{kBase + 0x400});
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "3");
  EXPECT_EQ(customer(db, 1), "Anne|active|gold|1/2F8|false");
}

TEST_P(PostgresSinkTest, AKeyInsertedAsNewThatTheTargetAlreadyHasIsUpsertedInsideAChunkedTransaction) {
  SinkDatabase db(db_name("as_new"));
  // Already there (a resync, say) at an older version: the source's insert of key 7 must win.
  exec_sql(db.admin(),
           "INSERT INTO ref.customer VALUES (7, 'Old', 'active', 'gold', '0/1', false), "
           "(3, 'Cy', 'active', 'gold', '0/1', false)");
  auto sink = make_sink(db, {customer_mapping()});
  auto first = txn(5, kBase + 0x300,
                   {insert(rel_, kBase + 0x10, row(1, "Ann")), insert(rel_, kBase + 0x20, row(2, "Bob")),
                    update(rel_, kBase + 0x28, row(3, "Cyd"))});
  first.last_chunk = false;
  first.info.end_lsn = Lsn{};
  auto middle = txn(5, kBase + 0x300,
                    {update(rel_, kBase + 0x30, row(1, "Anne")), insert(rel_, kBase + 0x40, row(7, "Seven")),
                     update(rel_, kBase + 0x48, row(3, "Cyrus"))});
  middle.first_chunk = middle.last_chunk = false;
  middle.info.end_lsn = Lsn{};
  auto last = txn(5, kBase + 0x300, {update(rel_, kBase + 0x50, row(2, "Bobby"))});
  last.first_chunk = false;
  EXPECT_EQ(sink->apply(batch_of({first})), std::nullopt);
  // Key 7 conflicts: this chunk is rolled back to its savepoint (which also brings back the first chunk's
  // staged rows) and applied again with upserts; the first chunk's rows must not be applied twice.
  EXPECT_EQ(sink->apply(batch_of({middle})), std::nullopt);
  EXPECT_EQ(sink->apply(batch_of({last})), Lsn{kBase + 0x300});
  EXPECT_EQ(customer(db, 1), "Anne|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 2), "Bobby|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 7), "Seven|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 3), "Cyrus|active|gold|1/2F8|false");
  sink->apply(batch_of({txn(6, kBase + 0x400, {insert(rel_, kBase + 0x310, row(8, "Eight"))})}));
  EXPECT_EQ(customer(db, 8), "Eight|active|gold|1/3F8|false");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "5");
  if (copies()) {
    EXPECT_EQ(sink->stats().plain_insert_conflicts, 1u);
    EXPECT_EQ(sink->stats().replays_in_order, 0u);
    // Ann and Bob went in as new; after the conflict the table upserts for a while (key 8 too).
    EXPECT_EQ(sink->stats().rows_inserted_as_new, 2u);
  }
}

TEST_P(PostgresSinkTest, AChunkOfOnlyNewKeysIsCopiedIntoTheTargetAndAnExistingKeyFallsBackToUpserts) {
  SinkDatabase db(db_name("direct"));
  exec_sql(db.admin(), "INSERT INTO ref.customer VALUES (9, 'Old', 'active', 'gold', '0/1', false)");
  std::vector<std::string> fallbacks;
  PostgresSinkObserver observer;
  observer.apply_fallback = [&](const std::string& table, std::string_view reason) {
    fallbacks.push_back(table + " " + std::string(reason));
  };
  auto sink = make_sink(db, {customer_mapping()}, "test", observer);
  auto first = txn(5, kBase + 0x300,
                   {insert(rel_, kBase + 0x10, row(1, "Ann")), insert(rel_, kBase + 0x20, row(2, "Bob"))});
  first.last_chunk = false;
  first.info.end_lsn = Lsn{};
  // Key 9 is in the target already: the COPY fails on it, the chunk goes back to its savepoint and is
  // applied again with upserts; the first chunk's rows stay once.
  auto middle = txn(5, kBase + 0x300,
                    {insert(rel_, kBase + 0x30, row(3, "Cy")), insert(rel_, kBase + 0x40, row(9, "Nine"))});
  middle.first_chunk = middle.last_chunk = false;
  middle.info.end_lsn = Lsn{};
  auto last = txn(5, kBase + 0x300,
                  {update(rel_, kBase + 0x50, row(1, "Anne")), insert(rel_, kBase + 0x60, row(4, "Dee"))});
  last.first_chunk = false;
  EXPECT_EQ(sink->apply(batch_of({first})), std::nullopt);
  EXPECT_EQ(sink->apply(batch_of({middle})), std::nullopt);
  EXPECT_EQ(sink->apply(batch_of({last})), Lsn{kBase + 0x300});
  EXPECT_EQ(customer(db, 1), "Anne|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 3), "Cy|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 9), "Nine|active|gold|1/2F8|false");
  EXPECT_EQ(customer(db, 4), "Dee|active|gold|1/2F8|false");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "5");
  // After the conflict the table upserts for a while: key 8 too.
  EXPECT_EQ(sink->apply(batch_of({txn(6, kBase + 0x400, {insert(rel_, kBase + 0x310, row(8, "Eight"))})})),
            Lsn{kBase + 0x400});
  EXPECT_EQ(customer(db, 8), "Eight|active|gold|1/3F8|false");
  if (copies()) {
    EXPECT_EQ(sink->stats().direct_copies, 1u);  // the first chunk; the middle one failed over to upserts
    EXPECT_EQ(sink->stats().plain_insert_conflicts, 1u);
    EXPECT_EQ(sink->stats().rows_inserted_as_new, 2u);
    EXPECT_EQ(fallbacks, std::vector<std::string>{"ref.customer existing_key"});
  }
}

TEST_P(PostgresSinkTest, NewKeysGoThroughTheStageIntoATableWithRowLevelSecurity) {
  SinkDatabase db(db_name("rls"));
  // COPY FROM is refused for a table with row-level security: new keys are inserted from the stage.
  exec_sql(db.admin(),
           "ALTER TABLE ref.customer ENABLE ROW LEVEL SECURITY; "
           "CREATE POLICY all_rows ON ref.customer USING (true) WITH CHECK (true)");
  auto sink = make_sink(db, {customer_mapping()});
  EXPECT_EQ(sink->apply(batch_of({txn(
                1, kBase + 0x100,
                {insert(rel_, kBase + 0x10, row(1, "Ann")), insert(rel_, kBase + 0x20, row(2, "Bob"))})})),
            Lsn{kBase + 0x100});
  EXPECT_EQ(customer(db, 1), "Ann|active|gold|1/F8|false");
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/F8|false");
  EXPECT_EQ(sink->stats().replays_in_order, 0u);
  EXPECT_EQ(sink->stats().direct_copies, 0u);
  if (copies()) {
    EXPECT_EQ(sink->stats().rows_inserted_as_new, 2u);
  }
}

TEST_P(PostgresSinkTest, RowLevelSecurityEnabledWhileConnectedSendsNewKeysThroughTheStage) {
  SinkDatabase db(db_name("rls_later"));
  auto sink = make_sink(db, {customer_mapping()});
  EXPECT_EQ(sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))})})),
            Lsn{kBase + 0x100});
  exec_sql(db.admin(),
           "ALTER TABLE ref.customer ENABLE ROW LEVEL SECURITY; "
           "CREATE POLICY all_rows ON ref.customer USING (true) WITH CHECK (true)");
  EXPECT_EQ(sink->apply(batch_of({txn(2, kBase + 0x200, {insert(rel_, kBase + 0x110, row(2, "Bob"))})})),
            Lsn{kBase + 0x200});
  EXPECT_EQ(sink->apply(batch_of({txn(3, kBase + 0x300, {insert(rel_, kBase + 0x210, row(3, "Cy"))})})),
            Lsn{kBase + 0x300});
  EXPECT_EQ(customer(db, 1), "Ann|active|gold|1/F8|false");
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/1F8|false");
  EXPECT_EQ(customer(db, 3), "Cy|active|gold|1/2F8|false");
  EXPECT_EQ(sink->stats().replays_in_order, 0u);
  if (copies()) {
    EXPECT_EQ(sink->stats().direct_copies, 1u);  // the first batch only
    EXPECT_EQ(sink->stats().rows_inserted_as_new, 3u);
  }
}

TEST_P(PostgresSinkTest, KillingTheConnectionMidTransactionLeavesNothingVisible) {
  SinkDatabase db(db_name("kill"));
  auto sink = make_sink(db, {customer_mapping()});
  auto first = txn(5, kBase + 0x300, {insert(rel_, kBase + 0x10, row(1, "Ann"))});
  first.last_chunk = false;
  first.info.end_lsn = Lsn{};
  auto last = txn(5, kBase + 0x300, {insert(rel_, kBase + 0x20, row(2, "Bob"))});
  last.first_chunk = false;
  EXPECT_EQ(sink->apply(batch_of({first})), std::nullopt);
  exec_sql(db.admin(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                           db_name("kill") + "' AND application_name = 'cdcsync'");
  EXPECT_THROW(sink->apply(batch_of({last})), TransientError);
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "0");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.cdc_progress"), "0");
  // The pipeline resends the whole source transaction; the sink reconnects.
  EXPECT_EQ(sink->apply(batch_of({first})), std::nullopt);
  EXPECT_EQ(sink->apply(batch_of({last})), Lsn{kBase + 0x300});
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "2");
  EXPECT_GE(sink->stats().reconnects, 2u);
}

TEST_P(PostgresSinkTest, ASessionLostWhileIdleIsReplacedWithoutAnError) {
  SinkDatabase db(db_name("idle_kill"));
  auto sink = make_sink(db, {customer_mapping()});
  sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))})}));
  exec_sql(db.admin(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                           db_name("idle_kill") + "' AND application_name = 'cdcsync'");
  EXPECT_EQ(sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Changed"))}),
                                  txn(2, kBase + 0x200, {insert(rel_, kBase + 0x110, row(2, "Bob"))})})),
            Lsn{kBase + 0x200});
  EXPECT_EQ(customer(db, 1), "Ann|active|gold|1/F8|false");
  EXPECT_EQ(customer(db, 2), "Bob|active|gold|1/1F8|false");
  EXPECT_EQ(sink->stats().reconnects, 2u);
}

TEST_P(PostgresSinkTest, AnUnchangedToastColumnIsPreserved) {
  SinkDatabase db(db_name("toast"));
  auto sink = make_sink(db, {customer_mapping()});
  sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Big value"))})}));
  sink->apply(batch_of(
      {txn(2, kBase + 0x200, {update(rel_, kBase + 0x110, row(1, "<toast>", "blocked"))}),
       txn(3, kBase + 0x300, {update(rel_, kBase + 0x210, row(1, "<toast>", "blocked", "silver"))})}));
  EXPECT_EQ(customer(db, 1), "Big value|blocked|silver|1/2F8|false");
  // No row yet: the value cannot be known; it is left NULL and counted.
  sink->apply(batch_of({txn(4, kBase + 0x400, {update(rel_, kBase + 0x310, row(2, "<toast>"))})}));
  EXPECT_EQ(customer(db, 2), "<null>|active|gold|1/3F8|false");
  if (copies()) {
    EXPECT_EQ(sink->stats().inserted_without_toast, 1u);
  }
}

TEST_P(PostgresSinkTest, LargeValuesAreCompressedWithLz4UnlessSomebodyChoseTheMethod) {
  SinkDatabase db(db_name("toast_method"));
  // One large compressible value per sink, each sink with its own pipeline (and progress row).
  const std::string big(20000, 'x');
  auto write = [&](const std::string& pipeline, ToastCompression method, int id) {
    PostgresSinkOptions o;
    o.conninfo = db.target();
    o.pipeline = pipeline;
    o.method = apply_method();
    o.one_trip_max_changes = one_trip();
    o.toast_compression = method;
    PostgresSink sink(Mapping({customer_mapping()}), o);
    sink.apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(id, big))})}));
    const auto stored =
        db.value("SELECT pg_column_compression(display_name) FROM ref.customer WHERE customer_id = " +
                 std::to_string(id));
    EXPECT_EQ(stored.value_or("<null>"), sink.toast_compression()) << pipeline;
    return stored.value_or("<null>");
  };
  // Nobody configured default_toast_compression: auto takes lz4; "server" keeps the built-in pglz.
  EXPECT_EQ(write("auto", ToastCompression::Auto, 1), "lz4");
  EXPECT_EQ(write("server", ToastCompression::Server, 2), "pglz");
  // The database says pglz: auto keeps it, an explicit lz4 overrides it.
  const std::string dbname = db.value("SELECT current_database()").value_or("");
  exec_sql(db.admin(), "ALTER DATABASE " + dbname + " SET default_toast_compression = pglz");
  EXPECT_EQ(write("auto_db", ToastCompression::Auto, 3), "pglz");
  EXPECT_EQ(write("lz4", ToastCompression::Lz4, 4), "lz4");
  exec_sql(db.admin(), "ALTER DATABASE " + dbname + " SET default_toast_compression = lz4");
  EXPECT_EQ(write("pglz", ToastCompression::Pglz, 5), "pglz");
  // Every value reads back whole, whichever method stored it.
  EXPECT_EQ(
      db.value(
          "SELECT string_agg(DISTINCT (display_name = repeat('x', 20000))::text, ',') FROM ref.customer"),
      "true");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "5");
}

TEST_P(PostgresSinkTest, RowsAreCopiedInBinaryUntilAValueIsNotInItsEncodersForm) {
  SinkDatabase db(db_name("binary"),
                  {"CREATE TABLE ref.account (id bigint PRIMARY KEY, amount numeric(12,2), opened date, "
                   "seen timestamptz, tags jsonb, _cdc_lsn pg_lsn NOT NULL DEFAULT '0/0', "
                   "_cdc_deleted boolean NOT NULL DEFAULT false)"});
  TableMapping m;
  m.source = {"public", "accounts"};
  m.target = {"ref", "account"};
  m.key = {"id"};
  for (const char* c : {"id", "amount", "opened", "seen", "tags"})
    m.columns.push_back({c, c, Transform::copy()});
  m.deletes = DeletePolicy::Soft;
  const auto rel = relation("public", "accounts", {"id", "amount", "opened", "seen", "tags"});
  const auto account = [](int id, std::optional<std::string> amount, std::optional<std::string> tags) {
    return tuple(
        {std::to_string(id), std::move(amount), "2024-02-29", "2026-11-25 16:21:47.5+01", std::move(tags)});
  };
  const auto read = [&](int id) {
    return db
        .value(
            "SELECT concat_ws('|', amount, opened, seen AT TIME ZONE 'UTC', tags, _cdc_lsn, _cdc_deleted) "
            "FROM ref.account WHERE id = " +
            std::to_string(id))
        .value_or("<none>");
  };
  auto sink = make_sink(db, {m});
  // New keys: copied into the target. Then an update with an unchanged TOAST value, a delete and a new key
  // in one batch: through the stage.
  EXPECT_EQ(sink->apply(batch_of({txn(1, kBase + 0x100,
                                      {insert(rel, kBase + 0x10, account(1, "12.5", "{\"a\": [1]}")),
                                       insert(rel, kBase + 0x20, account(2, "-0.005", std::nullopt))})})),
            Lsn{kBase + 0x100});
  EXPECT_EQ(
      sink->apply(batch_of({txn(
          2, kBase + 0x200,
          {update(rel, kBase + 0x110, account(1, "99999.99", "<toast>")),
           remove(rel, kBase + 0x120, tuple({"2", std::nullopt, std::nullopt, std::nullopt, std::nullopt})),
           insert(rel, kBase + 0x130, account(3, "NaN", "[]"))})})),
      Lsn{kBase + 0x200});
  EXPECT_EQ(read(1), "99999.99|2024-02-29|2026-11-25 15:21:47.5|{\"a\": [1]}|1/1F8|f");
  EXPECT_EQ(read(2), "-0.01|2024-02-29|2026-11-25 15:21:47.5|1/1F8|t");
  EXPECT_EQ(read(3), "NaN|2024-02-29|2026-11-25 15:21:47.5|[]|1/1F8|f");
  if (copies()) {
    EXPECT_EQ(sink->stats().binary_copies, 2u);
    EXPECT_EQ(sink->binary_tables(), std::vector<std::string>{"\"ref\".\"account\""});
  } else if (GetParam() == Variant::Pipeline) {
    EXPECT_TRUE(sink->binary_tables().empty());  // the in-order method copies nothing
  }
  // numeric's input function reads an exponent, its encoder does not: the batch is applied again with
  // the table in text, which it stays in.
  EXPECT_EQ(
      sink->apply(batch_of({txn(3, kBase + 0x300, {insert(rel, kBase + 0x210, account(4, "1.5e3", "1"))})})),
      Lsn{kBase + 0x300});
  EXPECT_EQ(
      sink->apply(batch_of({txn(4, kBase + 0x400, {insert(rel, kBase + 0x310, account(5, "7", "2"))})})),
      Lsn{kBase + 0x400});
  EXPECT_EQ(read(4), "1500.00|2024-02-29|2026-11-25 15:21:47.5|1|1/2F8|f");
  EXPECT_EQ(read(5), "7.00|2024-02-29|2026-11-25 15:21:47.5|2|1/3F8|f");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.account"), "5");
  EXPECT_EQ(sink->stats().replays_in_order, 0u);
  if (copies()) {
    EXPECT_EQ(sink->stats().binary_refusals, 1u);
    EXPECT_EQ(sink->stats().binary_copies, 2u);
    EXPECT_TRUE(sink->binary_tables().empty());
  }

  // target.copy_format = "text": never binary.
  PostgresSinkOptions o;
  o.conninfo = db.target();
  o.pipeline = "text";
  o.method = apply_method();
  o.one_trip_max_changes = one_trip();
  o.copy_format = CopyFormat::Text;
  PostgresSink text_sink(Mapping({m}), o);
  EXPECT_EQ(
      text_sink.apply(batch_of({txn(5, kBase + 0x500, {insert(rel, kBase + 0x410, account(6, "1", "3"))})})),
      Lsn{kBase + 0x500});
  EXPECT_EQ(read(6), "1.00|2024-02-29|2026-11-25 15:21:47.5|3|1/4F8|f");
  EXPECT_EQ(text_sink.stats().binary_copies, 0u);
  EXPECT_TRUE(text_sink.binary_tables().empty());
}

// Enums, domains and arrays have encoders too: such a table is copied in binary, into the target and through
// the stage, until an array with two dimensions (refused: one dimension only) sends it back to text.
TEST_P(PostgresSinkTest, EnumDomainAndArrayColumnsAreCopiedInBinary) {
  SinkDatabase db(
      db_name("binary_kinds"),
      {"CREATE TYPE ref.mood AS ENUM ('sad', 'ok', 'a b')",
       "CREATE DOMAIN ref.email AS text CHECK (VALUE LIKE '%@%')",
       "CREATE TABLE ref.profile (id bigint PRIMARY KEY, mood ref.mood, email ref.email, tags text[], "
       "moods ref.mood[], scores int[], _cdc_lsn pg_lsn NOT NULL DEFAULT '0/0')"});
  TableMapping m;
  m.source = {"public", "profiles"};
  m.target = {"ref", "profile"};
  m.key = {"id"};
  for (const char* c : {"id", "mood", "email", "tags", "moods", "scores"})
    m.columns.push_back({c, c, Transform::copy()});
  const auto rel = relation("public", "profiles", {"id", "mood", "email", "tags", "moods", "scores"});
  const auto profile = [](int id, const char* mood, const char* scores) {
    return tuple(
        {std::to_string(id), mood, "a@example.com", R"({x,"y z",NULL,"NULL"})", R"({sad,"a b"})", scores});
  };
  const auto read = [&](int id) {
    return db
        .value(
            "SELECT concat_ws('|', mood, email, tags, tags[3] IS NULL, moods, scores, _cdc_lsn) "
            "FROM ref.profile WHERE id = " +
            std::to_string(id))
        .value_or("<none>");
  };
  auto sink = make_sink(db, {m});
  EXPECT_EQ(
      sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel, kBase + 0x10, profile(1, "ok", "{}"))})})),
      Lsn{kBase + 0x100});
  EXPECT_EQ(sink->apply(batch_of({txn(2, kBase + 0x200,
                                      {update(rel, kBase + 0x110, profile(1, "a b", "{1,NULL,-3}")),
                                       insert(rel, kBase + 0x120, profile(2, "sad", "{7}"))})})),
            Lsn{kBase + 0x200});
  EXPECT_EQ(read(1), R"(a b|a@example.com|{x,"y z",NULL,"NULL"}|t|{sad,"a b"}|{1,NULL,-3}|1/1F8)");
  EXPECT_EQ(read(2), R"(sad|a@example.com|{x,"y z",NULL,"NULL"}|t|{sad,"a b"}|{7}|1/1F8)");
  if (!copies()) return;
  EXPECT_EQ(sink->stats().binary_copies, 2u);
  EXPECT_EQ(sink->binary_tables(), std::vector<std::string>{"\"ref\".\"profile\""});
  EXPECT_EQ(sink->apply(batch_of(
                {txn(3, kBase + 0x300, {insert(rel, kBase + 0x210, profile(3, "ok", "{{1,2},{3,4}}"))})})),
            Lsn{kBase + 0x300});
  EXPECT_EQ(read(3), R"(ok|a@example.com|{x,"y z",NULL,"NULL"}|t|{sad,"a b"}|{{1,2},{3,4}}|1/2F8)");
  EXPECT_EQ(sink->stats().binary_refusals, 1u);
  EXPECT_TRUE(sink->binary_tables().empty());
}

TEST_P(PostgresSinkTest, RowsInsertedWithoutTheirToastValueAreReportedOnceTheirTransactionCommits) {
  SinkDatabase db(db_name("toast_report"));
  std::vector<std::pair<std::string, std::uint64_t>> reported;
  PostgresSinkObserver observer;
  observer.inserted_without_toast = [&](const std::string& table, std::uint64_t rows) {
    reported.emplace_back(table, rows);
  };
  auto sink = make_sink(db, {customer_mapping()}, "test", observer);
  // Rolled back (the pipeline aborts the open source transaction): nothing reported.
  auto lost = txn(1, kBase + 0x100, {update(rel_, kBase + 0x10, row(1, "<toast>"))});
  lost.last_chunk = false;
  lost.info.end_lsn = Lsn{};
  EXPECT_EQ(sink->apply(batch_of({lost})), std::nullopt);
  sink->abort();
  EXPECT_TRUE(reported.empty());
  // Two rows in the first chunk, one in the last: reported together at the commit.
  auto first =
      txn(2, kBase + 0x200,
          {update(rel_, kBase + 0x110, row(1, "<toast>")), update(rel_, kBase + 0x120, row(2, "<toast>"))});
  first.last_chunk = false;
  first.info.end_lsn = Lsn{};
  auto last = txn(2, kBase + 0x200, {update(rel_, kBase + 0x130, row(3, "<toast>"))});
  last.first_chunk = false;
  EXPECT_EQ(sink->apply(batch_of({first})), std::nullopt);
  EXPECT_TRUE(reported.empty());
  EXPECT_EQ(sink->apply(batch_of({last})), Lsn{kBase + 0x200});
  EXPECT_EQ(customer(db, 3), "<null>|active|gold|1/1F8|false");
  if (copies()) {
    EXPECT_EQ(reported, (std::vector<std::pair<std::string, std::uint64_t>>{{"ref.customer", 3}}));
  }
}

TEST_P(PostgresSinkTest, AKeyChangeMovesTheRow) {
  SinkDatabase db(db_name("key_change"));
  auto sink = make_sink(db, {customer_mapping(DeletePolicy::Hard)});
  sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))})}));
  sink->apply(batch_of({txn(2, kBase + 0x200, {update(rel_, kBase + 0x110, row(10, "Ann"), key(1))})}));
  EXPECT_EQ(customer(db, 1), "<none>");
  EXPECT_EQ(customer(db, 10), "Ann|active|gold|1/1F8|false");
}

TEST_P(PostgresSinkTest, TruncateApplyDeletesTheRows) {
  SinkDatabase db(db_name("truncate_apply"));
  auto sink = make_sink(db, {customer_mapping(DeletePolicy::Hard, TruncatePolicy::Apply)});
  sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))}),
                        txn(2, kBase + 0x200,
                            {truncate({rel_}, kBase + 0x110), insert(rel_, kBase + 0x120, row(2, "Bob"))})}));
  EXPECT_EQ(db.value("SELECT string_agg(customer_id::text, ',') FROM ref.customer"), "2");
  EXPECT_EQ(sink->stats().truncates_applied, 1u);
}

TEST_P(PostgresSinkTest, TruncateIgnoreKeepsTheRowsAndTruncateFailStops) {
  SinkDatabase db(db_name("truncate_other"));
  auto ignoring = make_sink(db, {customer_mapping(DeletePolicy::Hard, TruncatePolicy::Ignore)});
  ignoring->apply(batch_of(
      {txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann")), truncate({rel_}, kBase + 0x20)})}));
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "1");
  ignoring.reset();
  auto failing = make_sink(db, {customer_mapping(DeletePolicy::Hard, TruncatePolicy::Fail)});
  try {
    failing->apply(batch_of({txn(
        2, kBase + 0x200, {insert(rel_, kBase + 0x110, row(2, "Bob")), truncate({rel_}, kBase + 0x120)})}));
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_EQ(e.table(), "public.customers");
    EXPECT_EQ(e.lsn(), Lsn{kBase + 0x1F8});  // the commit LSN names the source transaction
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "1");
  EXPECT_EQ(db.value("SELECT end_lsn::text FROM ref.cdc_progress"), "1/100");
}

const char* kAccountSql =
    "CREATE TABLE ref.account (id bigint PRIMARY KEY, email text CONSTRAINT account_email_key UNIQUE, "
    "_cdc_lsn pg_lsn NOT NULL)";

TableMapping account_mapping() {
  TableMapping t;
  t.source = {"public", "accounts"};
  t.target = {"ref", "account"};
  t.key = {"id"};
  t.columns = {{"id", "id", Transform::copy()}, {"email", "email", Transform::copy()}};
  t.deletes = DeletePolicy::Hard;
  return t;
}

TEST_P(PostgresSinkTest, ASecondaryUniqueKeySwapAcrossTransactionsAppliesInOneBatch) {
  SinkDatabase db(db_name("swap"), {kAccountSql});
  auto acc = relation("public", "accounts", {"id", "email"}, 20000);
  auto sink = make_sink(db, {account_mapping()});
  sink->apply(batch_of({txn(1, kBase + 0x100,
                            {insert(acc, kBase + 0x10, tuple({"1", "x@example.com"})),
                             insert(acc, kBase + 0x20, tuple({"2", "y@example.com"}))})}));
  // A: x -> tmp; B: y -> x; A: tmp -> y. Folded per key, B's x would collide with A's x still in place.
  EXPECT_EQ(sink->apply(batch_of(
                {txn(2, kBase + 0x200, {update(acc, kBase + 0x110, tuple({"1", "tmp@example.com"}))}),
                 txn(3, kBase + 0x300, {update(acc, kBase + 0x210, tuple({"2", "x@example.com"}))}),
                 txn(4, kBase + 0x400, {update(acc, kBase + 0x310, tuple({"1", "y@example.com"}))})})),
            Lsn{kBase + 0x400});
  EXPECT_EQ(db.value("SELECT string_agg(id || '=' || email, ',' ORDER BY id) FROM ref.account"),
            "1=y@example.com,2=x@example.com");
}

TEST_P(PostgresSinkTest, AConstraintViolationStopsWithTableLsnSqlstateAndNoValue) {
  SinkDatabase db(db_name("violation"),
                  {kAccountSql, "INSERT INTO ref.account VALUES (99, 'taken@secret.example', '0/1')"});
  auto acc = relation("public", "accounts", {"id", "email"}, 20000);
  auto sink = make_sink(db, {account_mapping()});
  sink->apply(batch_of({txn(1, kBase + 0x100, {insert(acc, kBase + 0x10, tuple({"1", "a@example.com"}))})}));
  try {
    sink->apply(
        batch_of({txn(2, kBase + 0x200, {insert(acc, kBase + 0x110, tuple({"2", "b@example.com"}))}),
                  txn(3, kBase + 0x300, {insert(acc, kBase + 0x210, tuple({"3", "taken@secret.example"}))}),
                  txn(4, kBase + 0x400, {insert(acc, kBase + 0x310, tuple({"4", "c@example.com"}))})}));
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_EQ(e.table(), "ref.account");
    EXPECT_EQ(e.lsn(), Lsn{kBase + 0x2F8});  // the commit LSN names the source transaction
    EXPECT_EQ(e.sqlstate(), "23505");
    const std::string what = e.what();
    EXPECT_NE(what.find("account_email_key"), std::string::npos) << what;
    EXPECT_EQ(what.find("taken@secret"), std::string::npos) << what;
  }
  EXPECT_EQ(db.value("SELECT string_agg(id::text, ',' ORDER BY id) FROM ref.account"), "1,99");
  EXPECT_EQ(db.value("SELECT end_lsn::text FROM ref.cdc_progress"), "1/100");
  if (GetParam() == Variant::OneTrip) {
    // The failed trip was rolled back whole and applied again the usual way, which named the change.
    EXPECT_EQ(sink->stats().one_trip_batches, 1u);
    EXPECT_EQ(sink->stats().one_trip_fallbacks, 1u);
  }
  // The session goes on (after a failed trip, with its statements prepared again).
  EXPECT_EQ(sink->apply(batch_of(
                {txn(5, kBase + 0x500, {insert(acc, kBase + 0x410, tuple({"5", "e@example.com"}))})})),
            Lsn{kBase + 0x500});
  EXPECT_EQ(db.value("SELECT string_agg(id::text, ',' ORDER BY id) FROM ref.account"), "1,5,99");
  if (GetParam() == Variant::OneTrip) {
    EXPECT_EQ(sink->stats().one_trip_batches, 2u);
  }
}

TEST_P(PostgresSinkTest, AMissingPrivilegeStopsWithPermissionDenied) {
  SinkDatabase db(db_name("privilege"));
  exec_sql(db.admin(), "REVOKE INSERT, UPDATE ON ref.customer FROM cdcsync_target");
  auto sink = make_sink(db, {customer_mapping()});
  try {
    sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))})}));
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_EQ(e.sqlstate(), "42501");
    EXPECT_EQ(e.table(), "ref.customer");
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.cdc_progress"), "0");
}

TEST_P(PostgresSinkTest, ASecondWriterFindsTheLockHeld) {
  SinkDatabase db(db_name("lock"));
  auto first = make_sink(db, {customer_mapping()});
  first->connect();
  auto second = make_sink(db, {customer_mapping()});
  EXPECT_THROW(second->connect(), WriterLockHeld);
  EXPECT_THROW(second->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))})})),
               WriterLockHeld);
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "0");
  // Another pipeline has its own lock.
  EXPECT_NO_THROW(make_sink(db, {customer_mapping()}, "other")->connect());
  first.reset();
  EXPECT_TRUE(eventually(
      [&] {
        second->connect();
        return true;
      },
      std::chrono::seconds(10)));
}

// A session of this process that has just ended may hold the writer lock for a moment while its backend
// exits (a reconnect, a replaced sink): connecting waits for it to let go rather than standing by.
TEST_P(PostgresSinkTest, AWriterLockLetGoOfWithinASecondIsWaitedFor) {
  SinkDatabase db(db_name("lockgrace"));
  PgConn holder{PQconnectdb(db.admin().c_str())};
  ASSERT_EQ(PQstatus(holder.get()), CONNECTION_OK) << PQerrorMessage(holder.get());
  pg_exec(holder.get(), "SELECT pg_advisory_lock(hashtextextended('cdcsync:test', 0))", "holding the lock",
          PGRES_TUPLES_OK);
  std::thread ending([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    holder.reset();  // the session ends; its backend lets the lock go as it exits
  });
  auto sink = make_sink(db, {customer_mapping()});
  EXPECT_NO_THROW(sink->connect());
  ending.join();
  EXPECT_EQ(sink->apply(batch_of({txn(1, kBase + 0x100, {insert(rel_, kBase + 0x10, row(1, "Ann"))})})),
            Lsn{kBase + 0x100});
}

TEST_P(PostgresSinkTest, RecordAckCreatesTheRowAndNeverMovesBackwards) {
  SinkDatabase db(db_name("ack"));
  auto sink = make_sink(db, {customer_mapping()});
  sink->record_ack(Lsn{kBase + 0x500});
  sink->record_ack(Lsn{kBase + 0x400});
  EXPECT_EQ(db.value("SELECT end_lsn::text || ' ' || acked_lsn::text FROM ref.cdc_progress"), "0/0 1/500");
  sink->apply(batch_of({txn(1, kBase + 0x300, {insert(rel_, kBase + 0x10, row(1, "Ann"))})}));
  EXPECT_EQ(db.value("SELECT end_lsn::text || ' ' || acked_lsn::text FROM ref.cdc_progress"), "1/300 1/500");
  auto fresh = make_sink(db, {customer_mapping()}, "test");
  sink.reset();
  const auto p = fresh->load_progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->acked_lsn, Lsn{kBase + 0x500});
}

TEST_P(PostgresSinkTest, HostileIdentifiersAndValuesRoundTrip) {
  TableMapping t;
  t.source = {"public", "Weird Table"};
  t.target = {"Odd \"Schema\"", "select"};
  t.key = {"Key Col"};
  t.columns = {{"Key Col", "Key \"Col\"", Transform::copy()},
               {"v", "Value; DROP TABLE x;--", Transform::copy()}};
  t.lsn_column = "LSN guard";
  t.deletes = DeletePolicy::Hard;
  SinkDatabase db(
      db_name("hostile"),
      {"CREATE SCHEMA \"Odd \"\"Schema\"\"\"",
       "CREATE TABLE \"Odd \"\"Schema\"\"\".\"select\" (\"Key \"\"Col\"\"\" text PRIMARY KEY, "
       "\"Value; DROP TABLE x;--\" text, \"LSN guard\" pg_lsn NOT NULL)",
       "GRANT USAGE ON SCHEMA \"Odd \"\"Schema\"\"\" TO cdcsync_target",
       "GRANT SELECT, INSERT, UPDATE, DELETE ON \"Odd \"\"Schema\"\"\".\"select\" TO cdcsync_target"});
  auto rel = relation("public", "Weird Table", {"Key Col", "v"}, 30000);
  const std::vector<std::string> values = {
      "it's",         "a;b", "O'Brien\"; DROP TABLE ref.customer; --", "tab\there\nnewline\\back\r",
      "Grüße 🚀 日本", "\\N"};
  std::vector<Change> changes;
  for (std::size_t i = 0; i < values.size(); ++i) {
    changes.push_back(insert(rel, kBase + 0x10 + i, tuple({values[i], values[i]})));
  }
  auto sink = make_sink(db, {t});
  sink->apply(batch_of({txn(1, kBase + 0x100, changes)}));
  for (const auto& v : values) {
    SCOPED_TRACE(v);
    const auto rows =
        query_rows(db.admin(), "SELECT \"Value; DROP TABLE x;--\" FROM \"Odd \"\"Schema\"\"\".\"select\"");
    bool found = false;
    for (const auto& r : rows) found = found || r[0] == v;
    EXPECT_TRUE(found);
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM \"Odd \"\"Schema\"\"\".\"select\" WHERE \"Key \"\"Col\"\"\" = "
                     "\"Value; DROP TABLE x;--\""),
            std::to_string(values.size()));
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "0");
  sink->apply(
      batch_of({txn(2, kBase + 0x200, {remove(rel, kBase + 0x110, tuple({values[2], std::nullopt}))})}));
  EXPECT_EQ(db.value("SELECT count(*) FROM \"Odd \"\"Schema\"\"\".\"select\""),
            std::to_string(values.size() - 1));
}

TEST_P(PostgresSinkTest, AMappedColumnDroppedAtTheSourceStopsWithItsName) {
  SinkDatabase db(db_name("dropped_column"));
  auto sink = make_sink(db, {customer_mapping()});
  auto shrunk = relation("public", "customers", {"id", "full_name", "status", "email"});
  try {
    sink->apply(batch_of(
        {txn(1, kBase + 0x100, {insert(shrunk, kBase + 0x10, tuple({"1", "Ann", "active", "e"}))})}));
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_NE(std::string(e.what()).find("tier"), std::string::npos);
    EXPECT_EQ(e.table(), "public.customers");
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "0");
}

TEST_P(PostgresSinkTest, ANewUnmappedSourceColumnIsCountedAndNeverForwarded) {
  SinkDatabase db(db_name("drift"));
  PostgresSinkOptions o;
  o.conninfo = db.target();
  o.pipeline = "test";
  o.method = apply_method();
  o.one_trip_max_changes = one_trip();
  std::vector<std::string> reported;  // what cdcsync_schema_drift_columns_total counts
  o.on_drift = [&](const std::string& table, const std::string& column) {
    reported.push_back(table + "." + column);
  };
  auto sink = std::make_unique<PostgresSink>(Mapping({customer_mapping()}), o);
  auto grown = relation("public", "customers", {"id", "full_name", "status", "tier", "email", "ssn"});
  for (int i = 1; i <= 2; ++i) {
    sink->apply(batch_of({txn(i, kBase + 0x100 * i,
                              {insert(grown, kBase + 0x100 * i - 0xF0,
                                      tuple({std::to_string(i), "Ann", "a", "g", "e", "123-45-6789"}))})}));
  }
  EXPECT_EQ(sink->drift_counts().at("public.customers"), 2u);
  EXPECT_EQ(reported, (std::vector<std::string>{"public.customers.email", "public.customers.ssn"}));
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer t WHERE t::text LIKE '%123-45%'"), "0");
}

INSTANTIATE_TEST_SUITE_P(EachWay, PostgresSinkTest,
                         ::testing::Values(Variant::Copy, Variant::Pipeline, Variant::OneTrip),
                         [](const auto& info) {
                           return info.param == Variant::Copy       ? "Copy"
                                  : info.param == Variant::Pipeline ? "Pipeline"
                                                                    : "OneTrip";
                         });

}  // namespace
}  // namespace cdcsync::test
