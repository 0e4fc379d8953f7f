// End to end through faults the daemon must ride out by itself: each server restarted under load, a
// graceful stop, a second instance of the same pipeline, and an idle source.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "tests/e2e/sync/sync_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

void expect_never_ahead(const ConfirmedNeverAheadSampler& sampler) {
  const auto v = sampler.violations();
  EXPECT_TRUE(v.empty()) << v.size() << " of " << sampler.samples()
                         << " samples had the slot confirmed ahead of the target, first: " << v.front();
}

// Runs a workload, applies `fault` in its middle (the daemon is never restarted by the test), and checks
// the oracle, that the slot's confirmed position reaches the source's position after the load, and that
// the daemon is still running and stops cleanly.
void ride_out(SyncPipeline& p, const std::function<void()>& fault, DaemonProcess& daemon) {
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(14s, 80)};
  load.start();
  std::this_thread::sleep_for(3s);  // the fault lands under load
  fault();
  ASSERT_TRUE(load.wait_finished(60s));
  std::cout << "[ e2e      ] " << load.summary() << std::endl;
  p.expect_oracle(load.deleted_ids(), 60s, &daemon);
  const Lsn after = p.source_wal_lsn();
  EXPECT_TRUE(eventually([&] { return p.slot_confirmed().value_or(Lsn{}) >= after; }, 30s, 100ms))
      << "slot confirmed " << p.slot_confirmed().value_or(Lsn{}).str() << " never reached " << after.str()
      << "\n"
      << daemon.log_tail();
  sampler.stop();
  expect_never_ahead(sampler);
  ASSERT_TRUE(daemon.running()) << "the daemon exited by itself:\n" << daemon.log_tail();
  daemon.terminate();
  EXPECT_EQ(daemon.wait_exit(10s), 0) << daemon.log_tail();
}

std::unique_ptr<DaemonProcess> started_daemon(SyncPipeline& p, const std::string& name = "cdcsync") {
  Workload::insert_rows(p.customer_admin(), 200, "seed");
  auto d = p.daemon(name);
  d->start();
  EXPECT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  return d;
}

// Crashes the order server (an immediate stop, then a start) while the daemon is frozen, so that what the
// target showed before is known exactly, and asserts the crash lost commits that were visible: the daemon
// must notice its progress went back and apply them again.
void crash_order_server_losing_commits(const SyncPipeline& p, const DaemonProcess& d) {
  ASSERT_EQ(::kill(d.pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(100ms);  // a statement already sent finishes
  const Lsn visible = p.progress().value_or(ProgressRow{}).end_lsn;
  TestServers::get().control({"pg-stop", "order", "immediate"});
  TestServers::get().control({"pg-start", "order"});
  const Lsn kept = p.progress().value_or(ProgressRow{}).end_lsn;
  ASSERT_EQ(::kill(d.pid(), SIGCONT), 0);
  std::cout << "[ e2e      ] progress " << visible.str() << " visible before the crash, " << kept.str()
            << " kept" << std::endl;
  ASSERT_LT(kept, visible) << "the crash lost no commit: nothing here tests applying lost commits again";
}

TEST(SyncThroughFaults, CustomerServerImmediateRestartUnderLoadIsRiddenOut) {
  SyncPipeline p{"restart_customer"};
  auto d = started_daemon(p);
  ride_out(
      p,
      [&] {
        TestServers::get().control({"pg-stop", "customer", "immediate"});
        std::this_thread::sleep_for(1500ms);  // down for a while: the daemon backs off and retries
        TestServers::get().control({"pg-start", "customer"});
      },
      *d);
  EXPECT_GE(d->log_count(std::string(kStreaming)), 2u) << "no new streaming session after the restart";
}

TEST(SyncThroughFaults, OrderServerImmediateRestartUnderLoadIsRiddenOut) {
  SyncPipeline p{"restart_order"};
  auto d = started_daemon(p);
  ride_out(
      p,
      [&] {
        TestServers::get().control({"pg-stop", "order", "immediate"});
        std::this_thread::sleep_for(1500ms);
        TestServers::get().control({"pg-start", "order"});
      },
      *d);
  EXPECT_GE(d->log_count(std::string(kStreaming)), 2u) << "no new streaming session after the restart";
}

TEST(SyncThroughFaults, RedisKilledAndRestartedWithItsAppendOnlyFileIsRiddenOut) {
  SyncPipeline p{"restart_redis"};
  auto d = started_daemon(p);
  ride_out(
      p,
      [&] {
        TestServers::get().control({"redis-stop", "kill"});
        std::this_thread::sleep_for(1500ms);
        TestServers::get().control({"redis-start"});
      },
      *d);
  EXPECT_TRUE(p.redis_checkpoint().has_value());
}

TEST(SyncThroughFaults, RedisRestartedEmptyIsRepairedFromTheTargetWithAWarning) {
  SyncPipeline p{"empty_redis"};
  auto d = started_daemon(p);
  ride_out(
      p,
      [&] {
        const auto& s = TestServers::get();
        s.control({"redis-stop", "nosave"});
        std::filesystem::remove_all(s.env("CDCSYNC_REDIS_DIR") + "/appendonlydir");
        s.control({"redis-start"});
        // No DBSIZE check here: the daemon may already have written its lease and checkpoint again. The
        // warning below says it found the checkpoint gone.
      },
      *d);
  const auto progress = p.progress();
  const auto redis = p.redis_checkpoint();
  ASSERT_TRUE(progress && redis) << "the checkpoint was not rewritten";
  EXPECT_LE(*redis, progress->highest());
  EXPECT_GE(d->log_count("restoring it from the target's progress"), 1u)
      << "expected a warning that the checkpoint was repaired from the target:\n"
      << d->log_tail();
}

TEST(SyncThroughFaults, SigtermUnderLoadExitsZeroWithinTenSecondsAndARestartLosesNothing) {
  SyncPipeline p{"sigterm"};
  auto d = started_daemon(p);
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(12s, 100)};
  load.start();
  std::this_thread::sleep_for(3s);
  const auto t0 = std::chrono::steady_clock::now();
  d->terminate();
  const auto code = d->wait_exit(10s);
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  ASSERT_TRUE(code.has_value()) << "still running 10 s after SIGTERM:\n" << d->log_tail();
  EXPECT_EQ(*code, 0) << d->log_tail();
  std::cout << "[ e2e      ] stopped " << took.count() << " ms after SIGTERM" << std::endl;
  EXPECT_GE(d->log_count("stopped at"), 1u) << d->log_tail();

  d->start();
  ASSERT_TRUE(load.wait_finished(60s));
  p.expect_oracle(load.deleted_ids(), 60s, d.get());
  sampler.stop();
  expect_never_ahead(sampler);
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

TEST(SyncThroughFaults, OfTwoDaemonsOnOnePipelineOneStreamsAndTheOtherTakesOverAfterTheLeaseLapses) {
  SyncPipeline p{"two"};
  Workload::insert_rows(p.customer_admin(), 200, "seed");
  ConfigOptions co;
  co.lease_ttl_ms = 2000;
  co.renew_ms = 500;
  auto a = p.daemon("cdcsync-a", co);
  auto b = p.daemon("cdcsync-b", co);
  a->start();
  b->start();
  ASSERT_TRUE(eventually([&] { return a->log_count(kStreaming) + b->log_count(kStreaming) >= 1; }, 30s))
      << a->log_tail() << "\n"
      << b->log_tail();
  DaemonProcess& active = a->log_count(kStreaming) > 0 ? *a : *b;
  DaemonProcess& standby = &active == a.get() ? *b : *a;
  ASSERT_TRUE(wait_for_log(standby, "standing by", 10s)) << standby.log_tail();

  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(12s, 80)};
  load.start();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(standby.log_count(kStreaming), 0u) << "both daemons streamed:\n" << standby.log_tail();
  const auto killed_at = std::chrono::steady_clock::now();
  active.kill();
  ASSERT_EQ(active.wait_exit(10s), 128 + SIGKILL);
  ASSERT_TRUE(wait_for_log(standby, kStreaming, 30s)) << "the standby never took over:\n"
                                                      << standby.log_tail();
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed_at);
  std::cout << "[ e2e      ] standby streaming " << took.count() << " ms after the kill (lease TTL "
            << co.lease_ttl_ms << " ms)" << std::endl;
  EXPECT_GE(took.count(), co.lease_ttl_ms / 2) << "took over before the lease could have lapsed";

  ASSERT_TRUE(load.wait_finished(60s));
  p.expect_oracle(load.deleted_ids(), 60s, &standby);
  sampler.stop();
  expect_never_ahead(sampler);
  ASSERT_TRUE(standby.running()) << standby.log_tail();
  EXPECT_EQ(standby.log_count("critical"), 0u) << standby.log_tail();
  standby.terminate();
  EXPECT_EQ(standby.wait_exit(10s), 0) << standby.log_tail();
}

TEST(SyncThroughFaults, AnIdleSourceWithOnlyUnpublishedWritesKeepsTheSlotAdvancing) {
  SyncPipeline p{"idle"};
  auto d = started_daemon(p);
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  const auto customers = query_value(p.order_admin(), "SELECT count(*) FROM ref.customer");

  auto wo = p.workload_options(15s, 20);
  wo.mix = WorkloadMix::unpublished_only();
  Workload noise{wo};
  noise.start();
  std::set<Lsn> seen;
  Lsn first = p.slot_confirmed().value_or(Lsn{});
  // While only unpublished tables change, the slot keeps moving (the daemon confirms idle positions).
  while (!noise.wait_finished(500ms)) {
    if (const auto c = p.slot_confirmed()) seen.insert(*c);
  }
  std::cout << "[ e2e      ] " << noise.summary() << "; slot confirmed took " << seen.size()
            << " distinct values" << std::endl;
  EXPECT_GT(noise.stats().unpublished, 100u);
  EXPECT_GE(seen.size(), 5u) << "the slot's confirmed_flush_lsn barely moved while the source was idle";
  const Lsn after = p.source_wal_lsn();
  EXPECT_TRUE(eventually([&] { return p.slot_confirmed().value_or(Lsn{}) >= after; }, 20s, 100ms))
      << "slot confirmed " << p.slot_confirmed().value_or(Lsn{}).str() << " (was " << first.str()
      << ") never reached " << after.str() << "\n"
      << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), customers);
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

// Catching up on a backlog, batches commit without waiting for the order server's flush (only one a
// second, and the last, wait for it). The order server crashes in the middle, with its WAL writer slowed
// to every 10 s so that the commits not flushed yet are lost: the daemon notices its progress went back,
// streams again from it, and nothing is lost or confirmed ahead of what the target kept.
TEST(SyncThroughFaults, OrderServerCrashWhileABacklogIsAppliedLosesNothing) {
  SyncPipeline p{"crash_backlog"};
  ConfigOptions co;
  co.batch_max_rows = 40;
  co.metrics_port = free_port();
  auto d = p.daemon("cdcsync", co);
  Workload::insert_rows(p.customer_admin(), 200, "seed");
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  d->terminate();
  ASSERT_EQ(d->wait_exit(10s), 0) << d->log_tail();

  Workload load{p.workload_options(5s, 600)};
  load.start();
  ASSERT_TRUE(load.wait_finished(60s));
  std::cout << "[ e2e      ] backlog: " << load.summary() << std::endl;

  const ClusterSetting slow_wal_writer{Server::Order, "wal_writer_delay", "10s"};

  ConfirmedNeverAheadSampler sampler{p};
  const Lsn before = p.progress().value_or(ProgressRow{}).end_lsn;
  d->start();
  ASSERT_TRUE(eventually([&] { return p.progress().value_or(ProgressRow{}).end_lsn > before; }, 30s, 5ms))
      << d->log_tail();
  ASSERT_NO_FATAL_FAILURE(crash_order_server_losing_commits(p, *d));

  p.expect_oracle(load.deleted_ids(), 60s, d.get());
  sampler.stop();
  expect_never_ahead(sampler);
  // The backlog did go through commits that did not wait for their flush.
  const std::string metrics = http_get(co.metrics_port, "/metrics");
  const std::string series = "cdcsync_batches_unflushed_total{pipeline=\"" + p.pipeline() + "\"} ";
  const auto at = metrics.find(series);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GT(std::stod(metrics.substr(at + series.size())), 0.0) << metrics.substr(at, 80);
  ASSERT_TRUE(d->running()) << "the daemon exited by itself:\n" << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

// Caught up, a batch's commit does not wait for the order server's flush either: the applier learns the
// flushed position from the server afterwards, and only that is mirrored and confirmed. The order server
// crashes under a steady load with its WAL writer slowed to every 10 s and no forced flush, so that commits
// already visible are lost: the daemon notices its progress went back, streams again from what was
// confirmed, and nothing is lost or confirmed ahead of what the target kept.
TEST(SyncThroughFaults, OrderServerCrashWhileCaughtUpLosesNothing) {
  SyncPipeline p{"crash_caught_up"};
  ConfigOptions co;
  co.flush_interval_ms = 60000;
  co.batch_max_wait_ms = 1000;  // no flush before 100 ms without an arrival
  co.metrics_port = free_port();
  auto d = p.daemon("cdcsync", co);
  Workload::insert_rows(p.customer_admin(), 200, "seed");
  const ClusterSetting slow_wal_writer{Server::Order, "wal_writer_delay", "10s"};
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();

  ConfirmedNeverAheadSampler sampler{p};
  const Lsn before = p.progress().value_or(ProgressRow{}).end_lsn;
  Workload load{p.workload_options(6s, 100)};
  load.start();
  // A few hundred commits visible since the load began, none of them waiting for its flush.
  ASSERT_TRUE(eventually([&] { return load.stats().committed >= 200; }, 30s, 5ms));
  ASSERT_TRUE(eventually([&] { return p.progress().value_or(ProgressRow{}).end_lsn > before; }, 30s, 5ms))
      << d->log_tail();
  ASSERT_NO_FATAL_FAILURE(crash_order_server_losing_commits(p, *d));

  ASSERT_TRUE(load.wait_finished(60s));
  p.expect_oracle(load.deleted_ids(), 60s, d.get());
  const Lsn after = p.source_wal_lsn();
  EXPECT_TRUE(eventually([&] { return p.slot_confirmed().value_or(Lsn{}) >= after; }, 30s, 100ms))
      << "slot confirmed " << p.slot_confirmed().value_or(Lsn{}).str() << " never reached " << after.str()
      << "\n"
      << d->log_tail();
  sampler.stop();
  expect_never_ahead(sampler);
  ASSERT_TRUE(d->running()) << "the daemon exited by itself:\n" << d->log_tail();
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
