// Dead-lettering end to end: with dead_letter.enabled a transaction the order DB refuses is parked in the
// Redis stream and the daemon goes on; `cdcsync dlq list|replay|drop` see and settle it; a full stream
// stops the daemon with exit code 4.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/e2e/recovery/recovery_fixture.h"
#include "tests/harness/daemon_process.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

// The pipeline's config with a [dead_letter] table, for the daemon and the dlq commands alike.
std::string enable_dead_letters(const RecoveryPipeline& p, int max_transactions) {
  std::ifstream in(p.config_path());
  std::stringstream c;
  c << in.rdbuf() << "\n[dead_letter]\nenabled = true\nmax_transactions = " << max_transactions << "\n";
  std::ofstream(p.config_path()) << c.str();
  redis_command({"DEL", "cdcsync:{" + p.pipeline() + "}:dlq"});
  return c.str();
}

std::string count_customers(const RecoveryPipeline& p) {
  return query_value(p.order_admin(), "SELECT count(*)::text FROM ref.customer").value_or("?");
}

std::string dlq_length(const RecoveryPipeline& p) {
  return redis_command({"XLEN", "cdcsync:{" + p.pipeline() + "}:dlq"});
}

TEST(DeadLetters, ARefusedTransactionIsParkedTheOthersArriveAndReplayAppliesItOnceTheTargetIsFixed) {
  RecoveryPipeline p{"dlq_replay", {.with_loyalty = false}};
  DaemonProcess d{p.dir(), "dlq", enable_dead_letters(p, 10)};
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email, tier) SELECT g, 'Name ' || g, 'c' || g || "
           "'@x', 'gold' FROM generate_series(1, 20) g");
  d.start();
  ASSERT_TRUE(eventually([&] { return count_customers(p) == "20"; }, 60s, 100ms)) << d.log_tail();
  exec_sql(p.order_admin(), "ALTER TABLE ref.customer ADD CONSTRAINT tier_not_vip CHECK (tier <> 'vip')");

  const std::string marker = "Secret Person 4711";
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email, tier) VALUES (21, 'Before', "
           "'b@x', 'gold')");
  exec_sql(p.customer_admin(),
           "BEGIN; INSERT INTO public.customers (id, full_name, email, tier) VALUES (22, '" + marker +
               "', 'secret4711@example.test', 'vip'); UPDATE public.customers SET "
               "tier = 'vip' WHERE id = 5; COMMIT");
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email, tier) VALUES (23, 'After', "
           "'a@x', 'gold'); UPDATE public.customers SET full_name = 'Renamed' WHERE id = 6");

  // The daemon goes on past the refused transaction: the rows after it arrive.
  ASSERT_TRUE(eventually(
      [&] {
        return query_value(p.order_admin(), "SELECT display_name FROM ref.customer WHERE customer_id = 6") ==
               "Renamed";
      },
      60s, 100ms))
      << d.log_tail();
  EXPECT_TRUE(d.running()) << d.log_tail();
  EXPECT_EQ(count_customers(p), "22");  // 1..21 and 23
  EXPECT_EQ(query_value(p.order_admin(), "SELECT tier FROM ref.customer WHERE customer_id = 5"), "gold");
  EXPECT_EQ(dlq_length(p), "1");
  EXPECT_GE(d.log_count("dead-lettered source transaction"), 1u) << d.log_tail();
  EXPECT_EQ(d.log().find(marker), std::string::npos) << "a row value reached the log";
  EXPECT_EQ(d.log().find("secret4711"), std::string::npos) << "a row value reached the log";

  const auto list = p.cdcsync({"dlq", "list", "--config", "CONFIG"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("1 dead-lettered transaction in cdcsync:{" + p.pipeline() + "}:dlq"),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("table ref.customer"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("sqlstate 23514"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("changes 2"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("tier_not_vip"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find(marker), std::string::npos) << "list shows values without --show-rows";

  const auto json = p.cdcsync({"dlq", "list", "--config", "CONFIG", "--json", "--show-rows"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.out.find("\"sqlstate\":\"23514\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find(marker), std::string::npos) << "--show-rows shows the rows";
  EXPECT_EQ(json.out.find("secret4711"), std::string::npos) << "an unmapped column reached the stream";

  // Destructive verbs need --yes; while the constraint is there the entry is refused again and stays.
  const auto no_yes = p.cdcsync({"dlq", "replay", "--config", "CONFIG", "--all"});
  EXPECT_EQ(no_yes.exit_code, 2);
  EXPECT_NE(no_yes.err.find("--yes"), std::string::npos) << no_yes.err;
  const auto again = p.cdcsync({"dlq", "replay", "--config", "CONFIG", "--all", "--yes"});
  EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
  EXPECT_NE(again.out.find("still refused"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("23514"), std::string::npos) << again.out;
  EXPECT_EQ(dlq_length(p), "1");

  // The operator fixes the target and replays, with the daemon still running.
  exec_sql(p.order_admin(), "ALTER TABLE ref.customer DROP CONSTRAINT tier_not_vip");
  const auto replay = p.cdcsync({"dlq", "replay", "--config", "CONFIG", "--all", "--yes"});
  ASSERT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("1 replayed, 0 still refused"), std::string::npos) << replay.out;
  EXPECT_EQ(dlq_length(p), "0");
  EXPECT_EQ(target_customers(p), source_customers(p));

  // And the stream goes on.
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'vip' WHERE id = 7");
  ASSERT_TRUE(eventually([&] { return target_customers(p) == source_customers(p); }, 60s, 100ms))
      << d.log_tail();
  EXPECT_TRUE(d.running());
}

TEST(DeadLetters, DropRemovesAnEntryWithoutApplyingIt) {
  RecoveryPipeline p{"dlq_drop", {.with_loyalty = false}};
  DaemonProcess d{p.dir(), "dlq", enable_dead_letters(p, 10)};
  d.start();
  ASSERT_TRUE(eventually([&] { return d.log_count("streaming slot") > 0; }, 60s, 100ms)) << d.log_tail();
  exec_sql(p.order_admin(), "ALTER TABLE ref.customer ADD CONSTRAINT tier_not_vip CHECK (tier <> 'vip')");
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email, tier) VALUES (1, 'V', 'v@x', "
           "'vip')");
  ASSERT_TRUE(eventually([&] { return dlq_length(p) == "1"; }, 60s, 100ms)) << d.log_tail();

  const auto no_yes = p.cdcsync({"dlq", "drop", "--config", "CONFIG", "--all"});
  EXPECT_EQ(no_yes.exit_code, 2);
  EXPECT_NE(no_yes.err.find("--yes"), std::string::npos) << no_yes.err;
  const auto unknown = p.cdcsync({"dlq", "drop", "--config", "CONFIG", "--id", "12-0", "--yes"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out;
  const auto drop = p.cdcsync({"dlq", "drop", "--config", "CONFIG", "--all", "--yes"});
  ASSERT_EQ(drop.exit_code, 0) << drop.err;
  EXPECT_NE(drop.out.find("1 dropped"), std::string::npos) << drop.out;
  EXPECT_EQ(dlq_length(p), "0");
  EXPECT_EQ(count_customers(p), "0");
}

TEST(DeadLetters, AFullDeadLetterStreamStopsTheDaemonWithExitFourNamingTheLimit) {
  RecoveryPipeline p{"dlq_full", {.with_loyalty = false}};
  DaemonProcess d{p.dir(), "dlq", enable_dead_letters(p, 1)};
  d.start();
  ASSERT_TRUE(eventually([&] { return d.log_count("streaming slot") > 0; }, 60s, 100ms)) << d.log_tail();
  exec_sql(p.order_admin(), "ALTER TABLE ref.customer ADD CONSTRAINT tier_not_vip CHECK (tier <> 'vip')");
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email, tier) VALUES (1, 'V1', 'v1@x', "
           "'vip')");
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email, tier) VALUES (2, 'V2', 'v2@x', "
           "'vip')");
  const auto code = d.wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "still running with a full dead-letter stream:\n" << d.log_tail();
  EXPECT_EQ(*code, 4) << d.log_tail();
  EXPECT_GE(d.log_count("dead_letter.max_transactions = 1"), 1u) << d.log_tail();
  EXPECT_EQ(dlq_length(p), "1");
  const auto list = p.cdcsync({"dlq", "list", "--config", "CONFIG"});
  EXPECT_NE(list.out.find("1 dead-lettered transaction"), std::string::npos) << list.out;
}

}  // namespace
}  // namespace cdcsync::test
