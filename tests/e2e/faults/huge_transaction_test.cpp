// Long suite only (ctest label "long"): one 5M-row source transaction under a light workload, applied in
// chunks inside one target transaction with bounded memory; the daemon's peak RSS is reported and capped.
#include <gtest/gtest.h>

#include <iostream>
#include <thread>

#include "tests/e2e/faults/faults_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr long long kRows = 5'000'000;
constexpr std::size_t kPeakRssLimitKiB = 256 * 1024;

TEST(FaultsLong, AFiveMillionRowTransactionIsAppliedWholeWithBoundedMemory) {
  SyncPipeline p{"long_5m"};
  Workload::insert_rows(p.customer_admin(), 1000, "seed");
  auto d = p.daemon("cdcsync");
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(30s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  const auto t0 = Clock::now();
  Workload::insert_rows(p.customer_admin(), kRows, "huge");
  const Lsn huge_end = p.source_wal_lsn();
  std::cout << "[ e2e      ] " << kRows << "-row transaction committed in " << ms_since(t0) << " ms"
            << std::endl;
  const auto committed_at = Clock::now();
  ASSERT_TRUE(p.wait_caught_up(huge_end, 1800s)) << d->log_tail();
  std::cout << "[ e2e      ] applied " << ms_since(committed_at) << " ms after its commit (" << ms_since(t0)
            << " ms after the insert began)" << std::endl;
  ASSERT_TRUE(load.wait_finished(120s));
  p.expect_oracle(load.deleted_ids(), 300s, d.get());
  const auto peak = d->peak_rss_kib();
  ASSERT_TRUE(peak.has_value()) << "the daemon is not running:\n" << d->log_tail();
  std::cout << "[ e2e      ] daemon VmHWM " << *peak / 1024 << " MiB" << std::endl;
  EXPECT_LT(*peak, kPeakRssLimitKiB);
  sampler.stop();
  const auto v = sampler.violations();
  EXPECT_TRUE(v.empty()) << v.front();
  d->terminate();
  EXPECT_EQ(d->wait_exit(30s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
