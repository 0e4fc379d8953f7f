// pgoutput streaming (source.streaming = "on"): a large in-progress transaction arrives in stream blocks,
// which cdcsync spools until its Stream Commit or drops at its Stream Abort. With the walsender's
// logical_decoding_work_mem at its 64 kB minimum, a few thousand rows are streamed.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

#include "tests/e2e/sync/sync_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

TEST(SyncStreaming, CommittedAndAbortedStreamsAndTheOrdinaryTransactionsAfterThemArriveExactly) {
  SyncPipeline p{"streamed"};
  ConfigOptions co;
  co.source_extra = "streaming = \"on\"\nproto_version = 2\n";
  co.source_options = "-c logical_decoding_work_mem=64kB";
  auto daemon = p.daemon("cdcsync", co);
  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, kStreaming, 30s)) << daemon->log_tail();

  Workload::insert_rows(p.customer_admin(), 5000, "streamed");
  // After a committed stream pgoutput sends no Relation message again: these must still decode.
  Workload::insert_rows(p.customer_admin(), 1, "after-stream-1");
  Workload::insert_rows(p.customer_admin(), 1, "after-stream-2");
  exec_sql(
      p.customer_admin(),
      "BEGIN; INSERT INTO public.customers (full_name, email, phone, status, tier, balance) "
      "SELECT 'aborted ' || g, 'aborted-' || g || '@example.test', '+1555' || g, 'active', 'standard', 0 "
      "FROM generate_series(1, 5000) g; ROLLBACK;");
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'gold' WHERE id % 2 = 0");
  std::set<long long> deleted;
  const auto ids = query_rows(p.customer_admin(), "SELECT id FROM public.customers WHERE id % 7 = 0");
  for (const auto& row : ids) deleted.insert(std::stoll(row[0].value()));
  ASSERT_FALSE(deleted.empty());
  exec_sql(p.customer_admin(), "DELETE FROM public.customers WHERE id % 7 = 0");
  Workload::insert_rows(p.customer_admin(), 1, "after-stream-3");

  p.expect_oracle(deleted, 120s, daemon.get());
  // Slot statistics reach the shared view with a delay.
  long long streamed = 0;
  for (int i = 0; i < 100 && streamed == 0; ++i) {
    streamed = std::stoll(query_value(p.customer_admin(),
                                      "SELECT coalesce(sum(stream_txns), 0) FROM pg_stat_replication_slots "
                                      "WHERE slot_name = '" +
                                          p.slot() + "'")
                              .value_or("0"));
    if (streamed == 0) std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(streamed, 0) << "no transaction was streamed: the test proves nothing";
  EXPECT_EQ(daemon->log().find("decoder failed"), std::string::npos) << daemon->log_tail();
  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(10s), 0) << daemon->log_tail();
}

// A backlog of streamed transactions, read by a daemon whose queue holds two chunks of 100 rows: while one
// committed stream is replayed into the full queue, the receiver reads the next ones' blocks into their
// spools (the walsender goes on streaming); the order DB still ends equal to the source.
TEST(SyncStreaming, ABacklogOfStreamedTransactionsReadOnDuringEachReplayArrivesExactly) {
  SyncPipeline p{"streamed_backlog"};
  ConfigOptions co;
  co.source_extra = "streaming = \"on\"\nproto_version = 2\n";
  co.source_options = "-c logical_decoding_work_mem=64kB";
  co.max_txn_chunk_rows = 100;
  co.extra = "[log]\nlevel = \"debug\"\n";
  std::string config = p.config(co);
  config.replace(config.find("[batch]\n"), 8, "[batch]\nqueue_max_transactions = 2\n");
  auto daemon = std::make_unique<DaemonProcess>(p.dir(), "cdcsync", config);
  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, kStreaming, 30s)) << daemon->log_tail();
  daemon->terminate();
  ASSERT_EQ(daemon->wait_exit(10s), 0) << daemon->log_tail();

  for (int i = 0; i < 3; ++i) Workload::insert_rows(p.customer_admin(), 3000, "backlog-" + std::to_string(i));
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'gold' WHERE id % 3 = 0");
  std::set<long long> deleted;
  for (const auto& row : query_rows(p.customer_admin(), "SELECT id FROM public.customers WHERE id % 5 = 0"))
    deleted.insert(std::stoll(row[0].value()));
  exec_sql(p.customer_admin(), "DELETE FROM public.customers WHERE id % 5 = 0");
  Workload::insert_rows(p.customer_admin(), 1, "after-backlog");

  daemon->start();
  p.expect_oracle(deleted, 180s, daemon.get());
  EXPECT_EQ(daemon->log().find("decoder failed"), std::string::npos) << daemon->log_tail();
  // The receiver did read on during the replays (debug line of daemon/core/pg_change_source.cpp).
  EXPECT_TRUE(
      std::regex_search(daemon->log(), std::regex("; [1-9][0-9]* messages of later ones read meanwhile")))
      << daemon->log_tail();
  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(10s), 0) << daemon->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
