// End to end where the daemon must stop and say why: a lost or re-created slot, a target that went back in
// time, a change the target refuses; and where it must forward nothing: a column added to the publication.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "tests/e2e/sync/sync_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Starts the daemon, syncs `rows` seed rows and some changes, and stops it gracefully.
std::unique_ptr<DaemonProcess> synced_then_stopped(SyncPipeline& p, const ConfigOptions& co = {}) {
  Workload::insert_rows(p.customer_admin(), 100, "seed");
  auto d = p.daemon("cdcsync", co);
  d->start();
  EXPECT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'gold' WHERE id % 10 = 0");
  EXPECT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
  return d;
}

std::string drop_slot_sql(const SyncPipeline& p) {
  return "SELECT pg_drop_replication_slot('" + p.slot() + "')";
}

TEST(SyncStops, ASlotDroppedWhileStoppedStopsTheDaemonWithExitThreeNamingTheSlot) {
  SyncPipeline p{"slot_dropped"};
  auto d = synced_then_stopped(p);
  exec_sql(p.customer_admin(), drop_slot_sql(p));
  d->start();
  const auto code = d->wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << "still running without its slot:\n" << d->log_tail();
  EXPECT_EQ(*code, 3) << d->log_tail();
  EXPECT_GE(d->log_count("slot \"" + p.slot() + "\" does not exist"), 1u) << d->log_tail();
  EXPECT_FALSE(p.slot_confirmed().has_value()) << "the daemon re-created the slot by itself";
}

TEST(SyncStops, ASlotRecreatedUnderTheSameNameIsAGapAndExitsThree) {
  SyncPipeline p{"slot_gap"};
  auto d = synced_then_stopped(p);
  exec_sql(p.customer_admin(), drop_slot_sql(p));
  // Changes nobody will ever stream, then someone else creates a slot with the same name.
  exec_sql(p.customer_admin(), "UPDATE public.customers SET status = 'suspended' WHERE id % 7 = 0");
  Workload::insert_rows(p.customer_admin(), 50, "lost");
  exec_sql(p.customer_admin(), "SELECT pg_create_logical_replication_slot('" + p.slot() + "', 'pgoutput')");
  d->start();
  const auto code = d->wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << "still running on a re-created slot:\n" << d->log_tail();
  EXPECT_EQ(*code, 3) << d->log_tail();
  EXPECT_GE(d->log_count("gap"), 1u) << d->log_tail();
  EXPECT_GE(d->log_count(p.slot()), 1u) << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), "100")
      << "the daemon wrote after detecting the gap";
}

TEST(SyncStops, ATargetRestoredBackInTimeExitsThreeNamingCdcsyncReplay) {
  SyncPipeline p{"target_back"};
  auto d = synced_then_stopped(p);
  ASSERT_TRUE(p.redis_checkpoint().has_value());
  exec_sql(p.order_admin(),
           "UPDATE ref.cdc_progress SET end_lsn = '0/1', acked_lsn = '0/1' WHERE pipeline = '" +
               p.pipeline() + "'");
  d->start();
  const auto code = d->wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << "still running on a target behind its checkpoint:\n" << d->log_tail();
  EXPECT_EQ(*code, 3) << d->log_tail();
  EXPECT_GE(d->log_count("cdcsync replay"), 1u) << d->log_tail();
}

TEST(SyncStops, AColumnAddedToThePublicationMidStreamNeverReachesTheOrderDbAndIsLoggedOnceByName) {
  SyncPipeline p{"new_column"};
  Workload::insert_rows(p.customer_admin(), 50, "seed");
  auto d = p.daemon("cdcsync");
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  Workload load{p.workload_options(8s, 60)};
  load.start();
  std::this_thread::sleep_for(1s);
  exec_sql(p.customer_admin(),
           "ALTER TABLE public.customers ADD COLUMN ssn text; "
           "ALTER PUBLICATION cdcsync_customers SET TABLE "
           "public.customers (id, full_name, status, tier, balance, updated_at, ssn), "
           "public.loyalty_accounts (customer_id, points, level, updated_at)");
  const std::string marker = "SSN-078-05-1120";
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (full_name, email, ssn) SELECT 'with ssn ' || g, "
           "'ssn' || g || '@example.test', '" +
               marker + "-' || g FROM generate_series(1, 20) g");
  exec_sql(p.customer_admin(), "UPDATE public.customers SET ssn = '" + marker +
                                   "-u' || id, tier = 'ssn-updated' "
                                   "WHERE id % 5 = 0");
  ASSERT_TRUE(load.wait_finished(60s));
  p.expect_oracle(load.deleted_ids(), 60s, d.get());

  // No ref table holds the value, in any column.
  for (const auto& row : query_rows(p.order_admin(),
                                    "SELECT table_name FROM information_schema.tables "
                                    "WHERE table_schema = 'ref' ORDER BY 1")) {
    const std::string table = "ref." + quote_ident(*row[0]);
    EXPECT_EQ(
        query_value(p.order_admin(), "SELECT count(*) FROM " + table + " t WHERE t::text LIKE '%SSN-%'"), "0")
        << "a value of the unmapped column reached " << table;
  }
  EXPECT_EQ(query_value(p.order_admin(),
                        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'ref' "
                        "AND column_name = 'ssn'"),
            "0");
  EXPECT_EQ(d->log_count("SSN-"), 0u) << "a value reached the log";
  EXPECT_EQ(d->log_count("column ssn"), 1u) << "the unmapped column is to be named once:\n" << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

TEST(SyncStops, AChangeTheTargetRefusesExitsFourNamingTableLsnAndSqlstateWithoutRowValues) {
  SyncPipeline p{"refused"};
  Workload::insert_rows(p.customer_admin(), 50, "seed");
  auto d = p.daemon("cdcsync");
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  exec_sql(p.order_admin(), "ALTER TABLE ref.customer ADD CONSTRAINT tier_not_vip CHECK (tier <> 'vip')");

  const Lsn before = p.source_wal_lsn();
  const std::string marker = "Secret Person 4711";
  exec_sql(p.customer_admin(), "INSERT INTO public.customers (full_name, email, tier) VALUES ('" + marker +
                                   "', 'secret4711@example.test', 'vip')");
  const Lsn after = p.source_wal_lsn();
  const auto code = d->wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "still running after a refused change:\n" << d->log_tail();
  EXPECT_EQ(*code, 4) << d->log_tail();

  const std::string log = d->log();
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(log, m,
                        std::regex("refused source transaction ([0-9A-F]+/[0-9A-F]+) on ref\\.customer "
                                   "\\(SQLSTATE 23514\\)")))
      << d->log_tail();
  const auto failed_lsn = Lsn::parse(m[1].str());
  ASSERT_TRUE(failed_lsn.has_value());
  EXPECT_GT(*failed_lsn, before);
  EXPECT_LE(*failed_lsn, after);
  EXPECT_EQ(log.find(marker), std::string::npos) << "a row value reached the log";
  EXPECT_EQ(log.find("secret4711"), std::string::npos) << "a row value reached the log";
  const auto confirmed = p.slot_confirmed();
  ASSERT_TRUE(confirmed.has_value());
  EXPECT_LT(*confirmed, *failed_lsn) << "the slot was confirmed past the refused transaction";
  EXPECT_LT(p.progress()->highest(), *failed_lsn);
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), "50");
}

// PostgreSQL 15 leaves generated columns out of every change; a snapshot would copy them. A mapped one stops
// the daemon before any slot or row, naming the file, the table's entry and the column; `check` says it too.
TEST(SyncStops, AMappedGeneratedSourceColumnStopsTheDaemonWithExitOneBeforeAnySlotOrRow) {
  SyncPipeline p{"generated_col"};
  exec_sql(
      p.customer_admin(),
      "ALTER TABLE public.customers ADD COLUMN name_len int GENERATED ALWAYS AS (length(full_name)) STORED");
  exec_sql(p.order_admin(), "ALTER TABLE ref.customer ADD COLUMN name_len int");
  Workload::insert_rows(p.customer_admin(), 20, "seed");
  std::string config = p.config();
  const std::string columns = "tier = \"tier\" }";
  ASSERT_NE(config.find(columns), std::string::npos);
  config.replace(config.find(columns), columns.size(), "tier = \"tier\", name_len = \"name_len\" }");
  DaemonProcess d{p.dir(), "cdcsync", config};
  d.start();
  const auto code = d.wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << "still running with a generated column mapped:\n" << d.log_tail();
  EXPECT_EQ(*code, 1) << d.log_tail();
  EXPECT_GE(d.log_count("cdcsync.toml: tables[0].columns (public.customers): mapped column name_len is "
                        "generated (GENERATED ALWAYS AS (length(full_name)) STORED)"),
            1u)
      << d.log_tail();
  EXPECT_FALSE(p.slot_confirmed().has_value()) << "a slot was created";
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), "0");
}

// A partitioned source table. Published under its partitions' names (the default), none of its changes would
// match the mapping: the daemon stops before any slot, naming the fix. Published via its root, the snapshot
// and every change (a row moving between partitions too) reach the order DB.
TEST(SyncStops, APartitionedSourceTableStopsTheDaemonUntilPublishedViaItsRootThenSyncs) {
  SyncPipeline p{"partitioned"};
  exec_sql(p.customer_admin(),
           "CREATE TABLE public.regions (id bigint, region text, name text, PRIMARY KEY (id, region)) "
           "PARTITION BY LIST (region); "
           "CREATE TABLE public.regions_eu PARTITION OF public.regions FOR VALUES IN ('eu'); "
           "CREATE TABLE public.regions_us PARTITION OF public.regions FOR VALUES IN ('us'); "
           "GRANT SELECT ON public.regions, public.regions_eu, public.regions_us TO cdcsync_source; "
           "CREATE PUBLICATION parts FOR TABLE public.regions; "
           "INSERT INTO public.regions SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'n' || g "
           "FROM generate_series(1, 100) g");
  exec_sql(
      p.order_admin(),
      "CREATE TABLE ref.region (id bigint, region text, name text, _cdc_lsn pg_lsn NOT NULL DEFAULT '0/0', "
      "PRIMARY KEY (id, region)); GRANT SELECT, INSERT, UPDATE, DELETE ON ref.region TO cdcsync_target");
  std::string config = p.config();
  config.replace(config.find("publication = \"cdcsync_customers\""),
                 std::string("publication = \"cdcsync_customers\"").size(), "publication = \"parts\"");
  config.erase(config.find("[[tables]]"));
  config +=
      "[[tables]]\nsource = \"public.regions\"\ntarget = \"ref.region\"\nkey = [\"id\", \"region\"]\n"
      "columns = { id = \"id\", region = \"region\", name = \"name\" }\ndeletes = \"hard\"\n";
  DaemonProcess d{p.dir(), "cdcsync", config};
  d.start();
  const auto code = d.wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << "still running on a publication that routes around the mapping:\n"
                                << d.log_tail();
  EXPECT_EQ(*code, 1) << d.log_tail();
  EXPECT_GE(d.log_count("tables[0] (public.regions): is partitioned, and publication parts sends its "
                        "partitions' changes under their own names (public.regions_eu, public.regions_us"),
            1u)
      << d.log_tail();
  EXPECT_GE(d.log_count("ALTER PUBLICATION \"parts\" SET (publish_via_partition_root = true);"), 1u)
      << d.log_tail();
  EXPECT_FALSE(p.slot_confirmed().has_value()) << "a slot was created";

  exec_sql(p.customer_admin(), "ALTER PUBLICATION parts SET (publish_via_partition_root = true)");
  d.start();
  ASSERT_TRUE(wait_for_log(d, kStreaming, 30s)) << d.log_tail();
  exec_sql(p.customer_admin(),
           "INSERT INTO public.regions VALUES (101, 'eu', 'new'); "
           "UPDATE public.regions SET name = 'changed' WHERE id <= 10; "
           "UPDATE public.regions SET region = 'eu' WHERE id = 11; "  // moves between partitions
           "DELETE FROM public.regions WHERE id = 12");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d.log_tail();
  const std::string rows =
      "SELECT string_agg(id || ':' || region || ':' || name, ',' ORDER BY id, region) FROM ";
  EXPECT_EQ(query_value(p.order_admin(), rows + "ref.region"),
            query_value(p.customer_admin(), rows + "public.regions"));
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.region"), "100");
  d.terminate();
  EXPECT_EQ(d.wait_exit(10s), 0) << d.log_tail();
}

// A mapped source table renamed under a running daemon is the same table (its OID): its changes go on being
// applied, with one warning naming the new name. Stopped and started on the old name, the daemon refuses to
// start rather than drop the table's changes as unmapped; on the new name it goes on where it stopped.
TEST(SyncStops, AMappedSourceTableRenamedIsFollowedByItsOidAndAStartOnTheOldNameIsRefused) {
  SyncPipeline p{"renamed"};
  Workload::insert_rows(p.customer_admin(), 100, "seed");
  ConfigOptions co;
  co.extra = "\n[archive]\nenabled = true\n";  // a secondary sink follows the rename too
  const std::string archive = "cdcsync:{" + p.pipeline() + "}:archive";  // the archive's stream
  redis_command({"DEL", archive});
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  const auto archived_before = std::stoll(redis_command({"XLEN", archive}));
  exec_sql(p.customer_admin(), "ALTER TABLE public.customers RENAME TO clients");
  exec_sql(p.customer_admin(), "UPDATE public.clients SET tier = 'after-rename' WHERE id <= 10");
  exec_sql(p.customer_admin(), "INSERT INTO public.clients (full_name, email) VALUES ('New', 'new@x')");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  EXPECT_TRUE(eventually(
      [&] {
        return std::stoll(redis_command({"XLEN", archive})) == archived_before + 11;
      },
      10s, 50ms))
      << "archived " << redis_command({"XLEN", archive}) << ", before the rename " << archived_before;
  const std::string source =
      "SELECT string_agg(id || ':' || coalesce(tier, ''), ',' ORDER BY id) FROM public.clients";
  const std::string target =
      "SELECT string_agg(customer_id || ':' || coalesce(tier, ''), ',' ORDER BY customer_id) FROM "
      "ref.customer";
  EXPECT_EQ(query_value(p.order_admin(), target), query_value(p.customer_admin(), source));
  EXPECT_EQ(d->log_count("source table public.customers arrives as public.clients (the same table, renamed)"),
            1u)
      << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();

  exec_sql(p.customer_admin(), "UPDATE public.clients SET tier = 'while-stopped' WHERE id > 90");
  d->start();
  const auto code = d->wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << "started on a source table that no longer exists:\n" << d->log_tail();
  EXPECT_EQ(*code, 1) << d->log_tail();
  EXPECT_GE(d->log_count("tables[0].source: public.customers does not exist on the source"), 1u)
      << d->log_tail();

  std::string config = p.config(co);
  const std::string old_source = "source  = \"public.customers\"";
  ASSERT_NE(config.find(old_source), std::string::npos);
  config.replace(config.find(old_source), old_source.size(), "source  = \"public.clients\"");
  d->rewrite_config(config);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s, 2)) << d->log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), target), query_value(p.customer_admin(), source));
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

TEST(SyncStops, ATruncateUnderTheDefaultPolicyStopsTheDaemonWithExitFour) {
  SyncPipeline p{"truncate_fail"};
  Workload::insert_rows(p.customer_admin(), 50, "seed");
  auto d = p.daemon("cdcsync");
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  exec_sql(p.customer_admin(), "TRUNCATE public.customers CASCADE");
  const auto code = d->wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "still running after a TRUNCATE with truncate = fail:\n" << d->log_tail();
  EXPECT_EQ(*code, 4) << d->log_tail();
  EXPECT_GE(d->log_count("TRUNCATE of source table public.customers"), 1u) << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), "50");
}

TEST(SyncStops, ATruncateWithTruncateApplyEmptiesTheTargetAndTheStreamGoesOn) {
  SyncPipeline p{"truncate_apply"};
  Workload::insert_rows(p.customer_admin(), 100, "seed");
  ConfigOptions co;
  co.truncate = "apply";
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  Workload load{p.workload_options(8s, 60)};
  load.start();
  std::this_thread::sleep_for(2s);
  load.stop();
  exec_sql(p.customer_admin(), "TRUNCATE public.customers CASCADE");
  Workload after{p.workload_options(5s, 60)};
  after.start();
  ASSERT_TRUE(after.wait_finished(60s));
  // Deletes from before the TRUNCATE left tombstones that the TRUNCATE removed: only later ones count.
  p.expect_oracle(after.deleted_ids(), 60s, d.get());
  ASSERT_TRUE(d->running()) << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
