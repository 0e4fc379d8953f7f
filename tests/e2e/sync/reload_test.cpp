// End to end: SIGHUP reloads the config of a running daemon (systemd's ExecReload). Live keys apply, keys
// that need a restart are logged and kept, an invalid file is logged by file:line:column and the running
// config stays, and no SIGHUP ever stops the daemon.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/e2e/sync/sync_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

// The counter's value for one result in a scrape of /metrics (-1 when absent).
double reloads(int metrics_port, const std::string& result) {
  const std::string scrape = http_get(metrics_port, "/metrics");
  const std::regex line{"cdcsync_config_reloads_total\\{[^}]*result=\"" + result + "\"[^}]*\\} ([0-9.e+]+)"};
  std::smatch m;
  return std::regex_search(scrape, m, line) ? std::stod(m[1]) : -1;
}

bool reloads_reach(int metrics_port, const std::string& result, double n) {
  return eventually([&] { return reloads(metrics_port, result) >= n; }, 20s, 50ms);
}

constexpr const char* kLoyaltyTable =
    "\n[[tables]]\nsource  = \"public.loyalty_accounts\"\ntarget  = \"ref.loyalty_account\"\n"
    "key     = [\"customer_id\"]\ncolumns = { customer_id = \"customer_id\", points = \"points\", "
    "level = \"level\" }\n";

std::string with_log_level(std::string config, const std::string& level) {
  return config + "\n[log]\nlevel = \"" + level + "\"\n";
}

TEST(SyncReload, SighupAppliesLiveKeysKeepsRestartOnlyKeysRefusesAnInvalidFileAndNeverStops) {
  SyncPipeline p{"reload_keys"};
  Workload::insert_rows(p.customer_admin(), 50, "seed");
  ConfigOptions co;
  co.metrics_port = free_port();
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  EXPECT_EQ(reloads(co.metrics_port, "applied"), 0) << "the counter exists from the start";

  // A live key (batch bounds, log level) and a restart-only key (the slot) at once.
  ConfigOptions changed = co;
  changed.batch_max_rows = 777;
  std::string text = with_log_level(p.config(changed), "debug");
  text = std::regex_replace(text, std::regex("slot = \"" + p.slot() + "\""), "slot = \"another_slot\"");
  d->rewrite_config(text);
  d->hangup();
  ASSERT_TRUE(reloads_reach(co.metrics_port, "applied", 1)) << d->log_tail();
  EXPECT_GE(d->log_count("reload: source.slot changed, which needs a restart"), 1u) << d->log_tail();
  EXPECT_GE(d->log_count("batch.max_rows"), 1u) << d->log_tail();
  ASSERT_TRUE(wait_for_log(*d, "streaming slot " + p.slot(), 30s, 2)) << "the new session keeps the slot:\n"
                                                                      << d->log_tail();
  EXPECT_EQ(d->log_count("another_slot"), 0u) << "the new slot is never used:\n" << d->log_tail();
  EXPECT_EQ(d->log_count(" debug reload: log level debug"), 1u) << "log.level = debug applied:\n"
                                                                << d->log_tail();

  // An invalid file: each issue logged with file:line:column, the running config kept.
  d->rewrite_config(p.config(changed) + "\n[batch]\nmax_rows = \"many\"\n");
  d->hangup();
  ASSERT_TRUE(reloads_reach(co.metrics_port, "invalid", 1)) << d->log_tail();
  EXPECT_GE(d->log_count("reload: " + d->config_path() + ":"), 1u) << d->log_tail();
  EXPECT_GE(d->log_count("the running config is kept"), 1u) << d->log_tail();

  // Nothing changed since the last applied file: unchanged. Then a burst of SIGHUPs.
  d->rewrite_config(text);
  d->hangup();
  ASSERT_TRUE(reloads_reach(co.metrics_port, "restart_required", 1)) << d->log_tail();
  // A burst: signals sent faster than they are taken coalesce, and each one taken is one reload.
  for (int i = 0; i < 5; ++i) d->hangup();
  ASSERT_TRUE(reloads_reach(co.metrics_port, "restart_required", 2)) << d->log_tail();
  EXPECT_TRUE(d->running()) << d->log_tail();

  // Still streaming: a change arrives, and SIGTERM stops it with 0.
  Workload::insert_rows(p.customer_admin(), 10, "after");
  p.expect_oracle({}, 60s, d.get());
  d->terminate();
  EXPECT_EQ(d->wait_exit(20s), 0) << d->log_tail();
  EXPECT_EQ(d->log_count("signal SIGHUP: stopping"), 0u);
}

TEST(SyncReload, ATableAddedByReloadIsStreamedAndARemovedTableIsNoLongerAppliedItsRowsLeftAlone) {
  SyncPipeline p{"reload_tables"};
  Workload::insert_rows(p.customer_admin(), 20, "seed");
  ConfigOptions co;
  co.metrics_port = free_port();
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();

  ConfigOptions with_loyalty = co;
  with_loyalty.extra = kLoyaltyTable;
  d->rewrite_config(p.config(with_loyalty));
  d->hangup();
  ASSERT_TRUE(reloads_reach(co.metrics_port, "applied", 1)) << d->log_tail();
  EXPECT_GE(d->log_count("reload: table ref.loyalty_account added to the mapping"), 1u) << d->log_tail();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s, 2)) << d->log_tail();
  exec_sql(p.customer_admin(),
           "INSERT INTO public.loyalty_accounts (customer_id, points, level) SELECT id, 7, 'silver' FROM "
           "public.customers");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.loyalty_account WHERE points = 7"), "20");

  // ref.customer removed: its changes stop, its rows stay as they were.
  std::string only_loyalty = p.config(with_loyalty);
  const auto first = only_loyalty.find("[[tables]]");
  const auto second = only_loyalty.find("[[tables]]", first + 1);
  only_loyalty.erase(first, second - first);
  d->rewrite_config(only_loyalty);
  d->hangup();
  ASSERT_TRUE(reloads_reach(co.metrics_port, "applied", 2)) << d->log_tail();
  EXPECT_GE(d->log_count("reload: table ref.customer removed from the mapping"), 1u) << d->log_tail();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s, 3)) << d->log_tail();
  exec_sql(p.customer_admin(),
           "UPDATE public.customers SET tier = 'removed-test'; DELETE FROM public.customers "
           "WHERE id % 2 = 0; UPDATE public.loyalty_accounts SET points = 8");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  // Half of the customers deleted, their loyalty rows with them (ON DELETE CASCADE): 10 left, all updated.
  EXPECT_EQ(query_value(p.order_admin(),
                        "SELECT count(*) FILTER (WHERE points = 8) || '/' || count(*) FROM "
                        "ref.loyalty_account"),
            "10/10");
  EXPECT_EQ(query_value(p.order_admin(),
                        "SELECT count(*) FROM ref.customer WHERE NOT _cdc_deleted AND tier IS DISTINCT FROM "
                        "'removed-test'"),
            "20")
      << "a removed table's rows are left as they were";

  // `cdcsync status` says so, once the online copy of ref.loyalty_account (started again by the second
  // reload's new session) is done.
  ASSERT_TRUE(eventually(
      [&] {
        return query_value(p.order_admin(),
                           "SELECT phase FROM ref.cdc_table_state WHERE target_table = "
                           "'ref.loyalty_account'") == "streaming";
      },
      30s, 50ms))
      << d->log_tail();
  const CliRun status = run_cli("status --config " + d->config_path());
  EXPECT_EQ(status.code, 0) << status.out;
  EXPECT_TRUE(std::regex_search(status.out, std::regex("state +streaming"))) << status.out;
  EXPECT_TRUE(std::regex_search(status.out, std::regex("ref\\.customer +removed .*no longer mapped")))
      << status.out;
  EXPECT_TRUE(std::regex_search(status.out,
                                std::regex("ref\\.loyalty_account +streaming .*rows: target 10, source 10")))
      << status.out;
  d->terminate();
  EXPECT_EQ(d->wait_exit(20s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
