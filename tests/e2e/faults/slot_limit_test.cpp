// The slot invalidated by max_slot_wal_keep_size while the daemon was stopped: the next start must stop
// with exit code 3, naming the slot and what to do. (The metric cdcsync_slot_wal_status{status="lost"} is
// covered by tests/unit/probe: the daemon exits before a scrape could see it, unless systemd keeps it up.)
#include <gtest/gtest.h>

#include <iostream>
#include <regex>

#include "tests/e2e/faults/faults_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

TEST(FaultsSlot, ASlotInvalidatedByMaxSlotWalKeepSizeExitsThreeNamingTheSlotAndWhatToDo) {
  SyncPipeline p{"slot_invalidated"};
  Workload::insert_rows(p.customer_admin(), 100, "seed");
  const std::string config = p.config();
  DaemonProcess d{p.dir(), "cdcsync", config};
  d.start();
  ASSERT_TRUE(wait_for_log(d, kStreaming, 30s)) << d.log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d.log_tail();
  d.terminate();
  ASSERT_EQ(d.wait_exit(10s), 0) << d.log_tail();

  // While the daemon is stopped, the source writes more WAL than the slot may keep, and checkpoints.
  ClusterSetting keep{Server::Customer, "max_slot_wal_keep_size", "1MB"};
  const auto wal_status = [&] {
    return query_value(p.customer_admin(),
                       "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" + p.slot() + "'");
  };
  for (int i = 0; i < 40 && wal_status() != "lost"; ++i) {
    exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'wal-" + std::to_string(i) + "'");
    exec_sql(p.customer_admin(), "SELECT pg_switch_wal()");
    exec_sql(p.customer_admin(), "CHECKPOINT");
  }
  ASSERT_EQ(wal_status(), "lost") << "the slot was never invalidated";

  d.start();
  const auto code = d.wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << d.log_tail();
  EXPECT_EQ(*code, 3) << d.log_tail();
  EXPECT_GE(d.log_count("replication slot \"" + p.slot() + "\" was invalidated (wal_status = lost"), 1u)
      << d.log_tail();
  EXPECT_GE(d.log_count("Re-create the slot and resync every table"), 1u) << d.log_tail();
}

}  // namespace
}  // namespace cdcsync::test
