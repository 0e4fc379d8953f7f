// cdcsync resync under a live daemon and a concurrent workload: afterwards the target equals the source
// projection exactly (nothing lost, nothing resurrected), in a soft-delete and a hard-delete table.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "decoders/lsn.h"
#include "tests/e2e/recovery/recovery_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

// Updates, inserts, deletes and re-inserts of deleted keys, a few per transaction, until `stop`.
void workload(const std::string& conninfo, const std::atomic<bool>& stop, std::uint64_t seed,
              std::atomic<int>& txns) {
  auto conn = pg_connect(conninfo, "workload");
  std::mt19937_64 rng{seed};
  auto id = [&] { return std::to_string(1 + rng() % 2400); };
  while (!stop.load()) {
    std::string sql = "BEGIN;";
    for (int i = 0; i < 4; ++i) {
      const std::string k = id();
      switch (rng() % 6) {
        case 0:
          sql += "UPDATE public.customers SET full_name = 'N' || " + std::to_string(rng() % 100000) +
                 ", tier = 't" + std::to_string(rng() % 5) + "' WHERE id = " + k + ";";
          break;
        case 1:
          sql += "DELETE FROM public.customers WHERE id = " + k + ";";
          break;
        case 2:  // insert or re-insert a deleted key
          sql += "INSERT INTO public.customers (id, full_name, email) VALUES (" + k + ", 'R" + k + "', 'r" +
                 k + "@x') ON CONFLICT DO NOTHING;";
          break;
        case 3:
          sql += "UPDATE public.loyalty_accounts SET points = points + 1 WHERE customer_id = " + k + ";";
          break;
        case 4:
          sql +=
              "INSERT INTO public.loyalty_accounts (customer_id, points) SELECT id, 1 FROM public.customers "
              "WHERE "
              "id = " +
              k + " ON CONFLICT DO NOTHING;";
          break;
        default:
          sql += "DELETE FROM public.loyalty_accounts WHERE customer_id = " + k + ";";
      }
    }
    sql += "COMMIT;";
    pg_exec(conn.get(), sql.c_str(), "workload");
    ++txns;
    std::this_thread::sleep_for(2ms);
  }
}

bool caught_up(const RecoveryPipeline& p, Lsn lsn) {
  const auto v = query_value(p.order_admin(),
                             "SELECT greatest(end_lsn, acked_lsn)::text FROM ref.cdc_progress WHERE "
                             "pipeline = '" +
                                 p.pipeline() + "'");
  const auto at = v ? Lsn::parse(*v) : std::nullopt;
  return at && *at >= lsn;
}

TEST(Resync, UnderConcurrentLoadLosesAndResurrectsNoRowInSoftAndHardDeleteTables) {
  RecoveryPipeline p{"resync_load"};
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (id, full_name, email, tier) SELECT g, 'Name ' || g, 'c' || g || '@x', "
      "'gold' FROM generate_series(1, 2000) g; INSERT INTO public.loyalty_accounts (customer_id, points) "
      "SELECT g, g FROM generate_series(1, 2000, 2) g");
  p.start_daemon();
  ASSERT_TRUE(eventually(
      [&] { return query_value(p.order_admin(), "SELECT count(*)::text FROM ref.customer") == "2000"; }, 60s,
      100ms))
      << p.daemon_log();

  // Damage the daemon cannot see: rows lost, changed and added behind its back.
  exec_sql(p.order_admin(),
           "DELETE FROM ref.customer WHERE customer_id <= 40; "
           "UPDATE ref.customer SET display_name = 'damaged' WHERE customer_id BETWEEN 41 AND 80; "
           "INSERT INTO ref.customer (customer_id, display_name, _cdc_lsn) SELECT g, 'extra', '0/1' FROM "
           "generate_series(90001, 90020) g; "
           "DELETE FROM ref.loyalty_account WHERE customer_id <= 41; "
           "INSERT INTO ref.loyalty_account (customer_id, points, _cdc_lsn) SELECT g, 0, '0/1' FROM "
           "generate_series(90001, 90020) g");

  std::atomic<bool> stop{false};
  std::atomic<int> txns{0};
  std::thread load1([&] { workload(p.customer_admin(), stop, 1, txns); });
  std::thread load2([&] { workload(p.customer_admin(), stop, 2, txns); });
  for (int round = 0; round < 2; ++round) {
    for (const auto* table : {"ref.customer", "public.loyalty_accounts"}) {
      const auto r = p.cdcsync({"resync", "--config", "CONFIG", "--table", table});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.out.find("resync "), std::string::npos);
    }
  }
  stop = true;
  load1.join();
  load2.join();
  std::cout << "[ load     ] " << txns.load() << " workload transactions during the resyncs\n";
  EXPECT_GT(txns.load(), 50);

  const auto end = Lsn::parse(*query_value(p.customer_admin(), "SELECT pg_current_wal_lsn()::text"));
  ASSERT_TRUE(eventually([&] { return caught_up(p, *end); }, 60s, 100ms)) << p.daemon_log();
  EXPECT_EQ(source_customers(p), target_customers(p));
  EXPECT_EQ(source_loyalty(p), target_loyalty(p));
  const auto v = p.cdcsync({"verify", "--config", "CONFIG"});
  EXPECT_EQ(v.exit_code, 0) << v.out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// On a terminal (a pseudo-terminal from script(1)) the copy draws a progress bar in place, on stderr: rows,
// rows/s, the time left, tables done. Without one it writes log lines instead, and no terminal codes.
TEST(Resync, DrawsAProgressBarOnATerminalAndWritesLogLinesOtherwise) {
  RecoveryPipeline p{"resync_bar", {.with_loyalty = false}};
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (full_name, email) SELECT 'Name ' || g, 'c' || g || '@x' FROM "
           "generate_series(1, 100000) g; ANALYZE public.customers");
  const char* binary = std::getenv("CDCSYNC_BINARY");
  ASSERT_NE(binary, nullptr);
  const std::string typescript = p.dir() + "/typescript";
  const std::string command = "script -qfec \"" + std::string(binary) + " resync --config " +
                              p.config_path() + " --table ref.customer\" " + typescript + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_all(typescript);
  const std::string tty = read_all(typescript);
  EXPECT_NE(tty.find("\r\033[Ksnapshot ["), std::string::npos) << tty;
  EXPECT_NE(tty.find("]  100%  100,000/100,000 rows  "), std::string::npos) << tty;
  EXPECT_NE(tty.find(" rows/s  in "), std::string::npos) << "the last bar says how long it took: " << tty;
  EXPECT_NE(tty.find("  1/1 tables"), std::string::npos) << tty;
  EXPECT_NE(tty.find("resync ref.customer <- public.customers at "), std::string::npos) << tty;
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), "100000");

  const auto r = p.cdcsync({"resync", "--config", "CONFIG", "--table", "ref.customer"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("snapshot: 100000 rows of ~100000 (100%)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("\033["), std::string::npos) << "terminal codes in a log file: " << r.err;
}

// An order DB whose reference table was made from the source's DDL: its key an identity GENERATED ALWAYS.
// The snapshot, single-row and set-based applies, soft deletes and a resync all write the source's key (as
// a subscription's apply worker does), and the table ends equal to the source.
TEST(Resync, AnIdentityAlwaysKeyOnTheOrderDbTakesTheSourcesKeysThroughSnapshotStreamAndResync) {
  RecoveryPipeline p{"identity_key", {.with_loyalty = false}};
  exec_sql(p.order_admin(),
           "ALTER TABLE ref.customer ALTER COLUMN customer_id ADD GENERATED ALWAYS AS IDENTITY");
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (id, full_name, email, tier) SELECT g, 'Name ' || g, 'c' || g || '@x', "
      "'gold' FROM generate_series(1001, 1300) g");
  p.start_daemon();
  ASSERT_TRUE(eventually(
      [&] { return query_value(p.order_admin(), "SELECT count(*)::text FROM ref.customer") == "300"; }, 60s,
      100ms))
      << p.daemon_log();

  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email) VALUES (5001, 'One', 'o@x')");
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'silver' WHERE id = 1001");
  exec_sql(p.customer_admin(), "DELETE FROM public.customers WHERE id = 1002");
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (id, full_name, email) SELECT g, 'Bulk ' || g, 'b' || g || '@x' FROM "
      "generate_series(6001, 6200) g");
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'bronze' WHERE id BETWEEN 1100 AND 1200");
  auto end = Lsn::parse(*query_value(p.customer_admin(), "SELECT pg_current_wal_lsn()::text"));
  ASSERT_TRUE(eventually([&] { return caught_up(p, *end); }, 60s, 100ms)) << p.daemon_log();
  EXPECT_EQ(source_customers(p), target_customers(p));
  EXPECT_EQ(p.daemon_log().find("428C9"), std::string::npos) << p.daemon_log();

  exec_sql(p.order_admin(), "DELETE FROM ref.customer WHERE customer_id <= 1050");
  const auto r = p.cdcsync({"resync", "--config", "CONFIG", "--table", "ref.customer"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  end = Lsn::parse(*query_value(p.customer_admin(), "SELECT pg_current_wal_lsn()::text"));
  ASSERT_TRUE(eventually([&] { return caught_up(p, *end); }, 60s, 100ms)) << p.daemon_log();
  EXPECT_EQ(source_customers(p), target_customers(p));
  const auto v = p.cdcsync({"verify", "--config", "CONFIG"});
  EXPECT_EQ(v.exit_code, 0) << v.out;
}

}  // namespace
}  // namespace cdcsync::test
