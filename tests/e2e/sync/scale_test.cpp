// End to end under load: a mixed workload with a very large transaction, and the daemon killed at random
// moments. Built twice: the short form for CI, and with CDCSYNC_E2E_LONG=1 the long form (ctest label long).
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "tests/e2e/sync/sync_fixture.h"

#ifndef CDCSYNC_E2E_LONG
#define CDCSYNC_E2E_LONG 0
#endif

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr bool kLong = CDCSYNC_E2E_LONG != 0;
constexpr long long kBigTransactionRows = kLong ? 1'000'000 : 100'000;
constexpr std::size_t kPeakRssLimitKiB = 200 * 1024;
constexpr int kKills = kLong ? 50 : 10;

void expect_never_ahead(const ConfirmedNeverAheadSampler& sampler) {
  const auto v = sampler.violations();
  EXPECT_TRUE(v.empty()) << v.size() << " of " << sampler.samples()
                         << " samples had the slot confirmed ahead of the target, first: " << v.front();
  EXPECT_GT(sampler.samples(), 0u) << "the sampler never saw both the slot and the progress row";
}

TEST(SyncUnderLoad, MixedWorkloadAndAVeryLargeTransactionLeaveTheProjectionWithBoundedMemory) {
  SyncPipeline p{kLong ? "long_mixed" : "mixed"};
  Workload::insert_rows(p.customer_admin(), 300, "seed");  // copied by the initial snapshot
  auto daemon = p.daemon("cdcsync");
  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, kStreaming, 30s)) << daemon->log_tail();
  ConfirmedNeverAheadSampler sampler{p};

  auto wo = p.workload_options(kLong ? 60s : 12s, 150);
  wo.bulk_rows = 2000;
  Workload load{wo};
  load.start();
  std::this_thread::sleep_for(2s);  // the big transaction lands in the middle of the workload
  const auto t0 = std::chrono::steady_clock::now();
  Workload::insert_rows(p.customer_admin(), kBigTransactionRows, "big");
  const auto big_lsn = p.source_wal_lsn();
  std::cout << "[ e2e      ] " << kBigTransactionRows << "-row transaction committed in "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count()
            << " ms" << std::endl;
  ASSERT_TRUE(p.wait_caught_up(big_lsn, kLong ? 600s : 120s)) << daemon->log_tail();
  std::cout << "[ e2e      ] applied "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count()
            << " ms after the start of the insert" << std::endl;
  ASSERT_TRUE(load.wait_finished(kLong ? 300s : 60s));
  std::cout << "[ e2e      ] " << load.summary() << std::endl;

  p.expect_oracle(load.deleted_ids(), 120s, daemon.get());
  const auto peak = daemon->peak_rss_kib();
  ASSERT_TRUE(peak.has_value()) << "the daemon is not running: " << daemon->log_tail();
  std::cout << "[ e2e      ] daemon VmHWM " << *peak / 1024 << " MiB" << std::endl;
  EXPECT_LT(*peak, kPeakRssLimitKiB) << "peak RSS " << *peak << " KiB";
  sampler.stop();
  expect_never_ahead(sampler);

  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(10s), 0) << daemon->log_tail();
}

TEST(SyncUnderLoad, SigkillAtRandomMomentsLosesNothing) {
  SyncPipeline p{kLong ? "long_kill" : "kill"};
  std::mt19937_64 rng{test_seed("kill moments")};
  Workload::insert_rows(p.customer_admin(), 20000, "seed");  // an initial snapshot long enough to be hit
  ConfigOptions co;
  co.lease_ttl_ms = 1000;  // a killed daemon's lease lapses quickly
  co.renew_ms = 300;
  co.max_txn_chunk_rows = 1000;  // snapshot and big transactions in many chunks: kills land between them
  auto daemon = p.daemon("cdcsync", co);
  ConfirmedNeverAheadSampler sampler{p};

  // The first kill lands inside the initial snapshot, which must then start over.
  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, "state: snapshot", 30s, 1)) << daemon->log_tail();
  std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(0, 500)(rng)));
  daemon->kill();
  ASSERT_EQ(daemon->wait_exit(10s), 128 + SIGKILL);
  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, "snapshot complete", 60s)) << daemon->log_tail();

  // Deletes start after the snapshot, so each one must leave a tombstone.
  auto wo = p.workload_options(kLong ? 900s : 60s, 80);
  wo.bulk_rows = 3000;  // kills land inside large transactions too
  Workload load{wo};
  load.start();
  std::uniform_int_distribution<int> later(200, 5000);
  for (int i = 1; i < kKills; ++i) {
    if (i > 1) daemon->start();
    std::this_thread::sleep_for(milliseconds(later(rng)));  // spacing the kills; the kill moment is the point
    const auto exited = daemon->wait_exit(0ms);
    ASSERT_FALSE(exited.has_value()) << "the daemon exited by itself with " << *exited << ":\n"
                                     << daemon->log_tail();
    daemon->kill();
    ASSERT_EQ(daemon->wait_exit(10s), 128 + SIGKILL);
  }
  load.stop();
  std::cout << "[ e2e      ] " << kKills << " kills, " << daemon->log_count("dropped slot")
            << " of them during the initial snapshot; " << load.summary() << std::endl;
  daemon->start();
  p.expect_oracle(load.deleted_ids(), 120s, daemon.get());
  sampler.stop();
  expect_never_ahead(sampler);
  EXPECT_EQ(daemon->log_count("critical"), 0u) << daemon->log_tail();
  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(10s), 0) << daemon->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
