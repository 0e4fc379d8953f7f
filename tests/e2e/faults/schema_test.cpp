// Source schema changes while the daemon streams: columns added (published or not), an unmapped column
// dropped, a mapped column dropped, a mapped column's type changed (one the target can take, one it
// cannot). Additive and unmapped changes go on; a change that would make the target wrong stops the daemon
// with a message naming the table and the column (never NULLs written in silence).
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "tests/e2e/faults/faults_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

// The publication's column list for customers, as deploy/sql has it, minus `without` plus `with`.
std::string set_publication(const std::string& customer_columns) {
  return "ALTER PUBLICATION cdcsync_customers SET TABLE public.customers (" + customer_columns +
         "), public.loyalty_accounts (customer_id, points, level, updated_at)";
}

// loyalty_accounts mapped too (its target ref.loyalty_account has points integer).
constexpr const char* kLoyaltyMapping =
    "\n[[tables]]\n"
    "source  = \"public.loyalty_accounts\"\n"
    "target  = \"ref.loyalty_account\"\n"
    "key     = [\"customer_id\"]\n"
    "columns = { customer_id = \"customer_id\", points = \"points\", level = \"level\" }\n"
    "deletes = \"soft\"\n";

// PostgreSQL refuses to change the type of a column in a publication's column list: out of the list,
// changed, back in (one transaction).
std::string alter_points_type(const std::string& type) {
  const std::string customers = "public.customers (id, full_name, status, tier, balance, updated_at)";
  return "ALTER PUBLICATION cdcsync_customers SET TABLE " + customers +
         ", public.loyalty_accounts (customer_id, level, updated_at); "
         "ALTER TABLE public.loyalty_accounts ALTER COLUMN points TYPE " +
         type + "; ALTER PUBLICATION cdcsync_customers SET TABLE " + customers +
         ", public.loyalty_accounts (customer_id, points, level, updated_at)";
}

std::unique_ptr<DaemonProcess> streaming_daemon(SyncPipeline& p, const ConfigOptions& co = {}) {
  Workload::insert_rows(p.customer_admin(), 100, "seed");
  auto d = p.daemon("cdcsync", co);
  d->start();
  EXPECT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  return d;
}

TEST(FaultsSchema, ColumnsAddedMidStreamPublishedOrNotLeaveTheStreamGoingAndNeverReachTheTarget) {
  SyncPipeline p{"schema_add"};
  auto d = streaming_daemon(p);
  Workload load{p.workload_options(8s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  exec_sql(
      p.customer_admin(),
      "ALTER TABLE public.customers ADD COLUMN nickname text DEFAULT 'nick', ADD COLUMN loyalty_code text; " +
          set_publication("id, full_name, status, tier, balance, updated_at, loyalty_code"));
  exec_sql(p.customer_admin(),
           "UPDATE public.customers SET loyalty_code = 'LC-' || id, tier = 'after-add' "
           "WHERE id % 3 = 0");
  ASSERT_TRUE(load.wait_finished(60s));
  p.expect_oracle(load.deleted_ids(), 60s, d.get());
  EXPECT_EQ(d->log_count("column loyalty_code"), 1u) << "the new published column is named once:\n"
                                                     << d->log_tail();
  EXPECT_EQ(d->log_count("column nickname"), 0u) << "an unpublished column never reaches the daemon";
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer t WHERE t::text LIKE '%LC-%'"),
            "0");
  ASSERT_TRUE(d->running()) << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

TEST(FaultsSchema, UnmappedColumnsDroppedMidStreamLeaveTheStreamGoing) {
  SyncPipeline p{"schema_drop_unmapped"};
  auto d = streaming_daemon(p);
  Workload load{p.workload_options(8s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  // notes is not published; balance is published but not mapped: out of the column list, then dropped.
  exec_sql(p.customer_admin(), "ALTER TABLE public.customers DROP COLUMN notes");
  exec_sql(p.customer_admin(), set_publication("id, full_name, status, tier, updated_at") +
                                   "; ALTER TABLE public.customers DROP COLUMN balance");
  ASSERT_TRUE(load.wait_finished(60s));
  p.expect_oracle(load.deleted_ids(), 60s, d.get());
  ASSERT_TRUE(d->running()) << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

TEST(FaultsSchema, AMappedColumnDroppedMidStreamStopsTheDaemonNamingTableAndColumnWithoutWritingNulls) {
  SyncPipeline p{"schema_drop_mapped"};
  auto d = streaming_daemon(p);
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'before-drop'");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  const Lsn before = p.source_wal_lsn();
  exec_sql(p.customer_admin(), set_publication("id, full_name, status, balance, updated_at") +
                                   "; ALTER TABLE public.customers DROP COLUMN tier");
  exec_sql(p.customer_admin(),
           "UPDATE public.customers SET full_name = full_name || ' (renamed)' WHERE id % 2 = 0");
  const auto code = d->wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "still running without a mapped column:\n" << d->log_tail();
  EXPECT_EQ(*code, 4) << d->log_tail();
  EXPECT_GE(d->log_count("mapped source column tier of public.customers is missing"), 1u) << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(),
                        "SELECT count(*) FROM ref.customer WHERE tier IS DISTINCT FROM 'before-drop'"),
            "0")
      << "a row lost its tier";
  EXPECT_EQ(
      query_value(p.order_admin(), "SELECT count(*) FROM ref.customer WHERE display_name LIKE '%(renamed)'"),
      "0")
      << "a change past the drop was applied";
  EXPECT_LT(p.slot_confirmed().value_or(Lsn{}), p.source_wal_lsn());
  EXPECT_GE(p.progress()->highest(), before);
}

TEST(FaultsSchema, AMappedColumnsTypeChangeTheTargetCanTakeGoesOnAndOneItCannotStopsNamingTableAndSqlstate) {
  SyncPipeline p{"schema_type"};
  ConfigOptions co;
  co.extra = kLoyaltyMapping;
  Workload::insert_rows(p.customer_admin(), 100, "seed");
  exec_sql(p.customer_admin(),
           "INSERT INTO public.loyalty_accounts (customer_id, points) SELECT id, id FROM public.customers");
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();

  // integer -> bigint: the target's integer column still takes every value.
  exec_sql(p.customer_admin(), alter_points_type("bigint"));
  exec_sql(p.customer_admin(), "UPDATE public.loyalty_accounts SET points = points + 1000");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.loyalty_account WHERE points < 1000"),
            "0");
  ASSERT_TRUE(d->running()) << d->log_tail();

  // bigint -> numeric(12,2) with fractions: the target's integer column refuses "1001.50".
  exec_sql(p.customer_admin(), alter_points_type("numeric(12, 2)"));
  const Lsn before = p.source_wal_lsn();
  exec_sql(p.customer_admin(),
           "UPDATE public.loyalty_accounts SET points = points + 0.5 WHERE customer_id % 2 = 0");
  const auto code = d->wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "still running after an incompatible type change:\n" << d->log_tail();
  EXPECT_EQ(*code, 4) << d->log_tail();
  std::smatch m;
  const std::string log = d->log();
  ASSERT_TRUE(std::regex_search(log, m,
                                std::regex("refused source transaction ([0-9A-F]+/[0-9A-F]+) on "
                                           "ref\\.loyalty_account \\(SQLSTATE 22P02\\)")))
      << d->log_tail();
  EXPECT_GT(*Lsn::parse(m[1].str()), before);
  EXPECT_EQ(log.find(".50\""), std::string::npos) << "a row value reached the log";
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.loyalty_account WHERE points < 1000"),
            "0");
}

}  // namespace
}  // namespace cdcsync::test
