// Network faults between the daemon and each server, through one loopback TCP proxy per link: added
// latency, a source stall longer than wal_sender_timeout, connections reset, half-open links. The daemon
// is never restarted by the test: it must notice and recover by itself, and the oracle (the target equals
// the source projection, every delete a tombstone, Redis never ahead) must hold at the end.
#include <gtest/gtest.h>

#include <iostream>
#include <thread>

#include "tests/e2e/faults/faults_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::unique_ptr<DaemonProcess> start_proxied(SyncPipeline& p, const Proxies& px, const ConfigOptions& co,
                                             const ProxiedOptions& extra = {}) {
  Workload::insert_rows(p.customer_admin(), 200, "seed");
  auto d = std::make_unique<DaemonProcess>(p.dir(), "cdcsync", proxied_config(p, px, co, extra));
  d->start();
  EXPECT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  return d;
}

// The end of every test: the load done, the oracle, the slot confirmed up to the source's position, the
// daemon still running (it recovered by itself) and stopping cleanly.
void expect_recovered(SyncPipeline& p, Workload& load, DaemonProcess& d,
                      ConfirmedNeverAheadSampler& sampler) {
  ASSERT_TRUE(load.wait_finished(90s));
  std::cout << "[ e2e      ] " << load.summary() << std::endl;
  p.expect_oracle(load.deleted_ids(), 60s, &d);
  const Lsn after = p.source_wal_lsn();
  EXPECT_TRUE(eventually([&] { return p.slot_confirmed().value_or(Lsn{}) >= after; }, 30s, 100ms))
      << "slot confirmed " << p.slot_confirmed().value_or(Lsn{}).str() << " never reached " << after.str()
      << "\n"
      << d.log_tail();
  sampler.stop();
  const auto v = sampler.violations();
  EXPECT_TRUE(v.empty()) << v.size()
                         << " samples had the slot confirmed ahead of the target, first: " << v.front();
  ASSERT_TRUE(d.running()) << "the daemon exited by itself:\n" << d.log_tail();
  EXPECT_EQ(d.log_count("critical"), 0u) << d.log_tail();
  d.terminate();
  EXPECT_EQ(d.wait_exit(15s), 0) << d.log_tail();
}

TEST(FaultsNetwork, FiftyMillisecondsOfLatencyEachWayOnEveryLinkCostsNoReconnectAndNoData) {
  SyncPipeline p{"net_latency"};
  Proxies px;
  for (TcpProxy* proxy : {&px.source, &px.target, &px.redis}) proxy->set_latency(50ms, 50ms);
  auto d = start_proxied(p, px, {});
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(8s, 50)};
  load.start();
  ASSERT_TRUE(load.wait_finished(60s));
  const auto t0 = Clock::now();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 60s)) << d->log_tail();
  std::cout << "[ e2e      ] with 50 ms each way on every link: caught up " << ms_since(t0)
            << " ms after the load ended" << std::endl;
  expect_recovered(p, load, *d, sampler);
  EXPECT_EQ(d->log_count("reconnecting in"), 0u) << "latency alone made the daemon reconnect:\n"
                                                 << d->log_tail();
  EXPECT_EQ(d->log_count(std::string(kStreaming)), 1u) << d->log_tail();
}

TEST(FaultsNetwork, ASourceStallLongerThanWalSenderTimeoutIsDetectedAndTheStreamResumesByItself) {
  SyncPipeline p{"net_stall"};
  Proxies px;
  ConfigOptions co;
  co.receive_timeout_ms = 3000;
  // The walsender gives up on us after 1.5 s of silence; the daemon after 3 s.
  auto d =
      start_proxied(p, px, co, {.source_conninfo = "connect_timeout=3 options='-cwal_sender_timeout=1500'"});
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(12s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  px.source.stall(true);
  const auto stalled_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, "source.receive_timeout_ms", 15s)) << d->log_tail();
  const auto detected = ms_since(stalled_at);
  std::this_thread::sleep_for(1s);  // stalled for about 5 s in all
  px.source.stall(false);
  const auto healed_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s, 2)) << "no new session after the stall:\n" << d->log_tail();
  std::cout << "[ e2e      ] source stall: detected after " << detected << " ms, streaming again "
            << ms_since(healed_at) << " ms after it ended" << std::endl;
  EXPECT_GE(detected, 2500) << "detected before receive_timeout_ms could have passed";
  expect_recovered(p, load, *d, sampler);
}

TEST(FaultsNetwork, AResetOfEachConnectionInTurnIsRiddenOut) {
  SyncPipeline p{"net_reset"};
  Proxies px;
  auto d = start_proxied(p, px, {});
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(12s, 60)};
  load.start();
  std::this_thread::sleep_for(2s);

  px.source.reset_all();
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s, 2)) << d->log_tail();
  std::cout << "[ e2e      ] source reset: streaming again after " << ms_since(t0) << " ms" << std::endl;
  std::this_thread::sleep_for(1500ms);

  const auto target_accepted = px.target.accepted();
  px.target.reset_all();
  t0 = Clock::now();
  ASSERT_TRUE(eventually([&] { return px.target.accepted() > target_accepted && px.target.open() > 0; }, 30s))
      << d->log_tail();
  std::cout << "[ e2e      ] target reset: reconnected after " << ms_since(t0) << " ms" << std::endl;
  std::this_thread::sleep_for(1500ms);

  const auto redis_accepted = px.redis.accepted();
  px.redis.reset_all();
  t0 = Clock::now();
  ASSERT_TRUE(eventually([&] { return px.redis.accepted() > redis_accepted; }, 30s)) << d->log_tail();
  std::cout << "[ e2e      ] Redis reset: reconnected after " << ms_since(t0) << " ms" << std::endl;

  expect_recovered(p, load, *d, sampler);
  // The checkpoint mirror caught up after its connection was reset.
  const auto progress = p.progress();
  ASSERT_TRUE(progress.has_value());
  EXPECT_TRUE(eventually([&] { return p.redis_checkpoint().value_or(Lsn{}) >= progress->end_lsn; }, 10s));
}

TEST(FaultsNetwork, AHalfOpenSourceConnectionIsTakenForDeadAfterReceiveTimeoutAndReplaced) {
  SyncPipeline p{"net_halfopen_src"};
  Proxies px;
  ConfigOptions co;
  co.receive_timeout_ms = 3000;
  auto d = start_proxied(p, px, co, {.source_conninfo = "connect_timeout=3"});
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(12s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  px.source.half_open(true);  // the open connection, and every new one, goes silent
  const auto cut_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, "source.receive_timeout_ms", 15s)) << d->log_tail();
  const auto detected = ms_since(cut_at);
  // Reconnecting into the half-open link: the connect gets no answer and gives up (connect_timeout). A
  // session first looks up its tables on an ordinary connection, then opens the replication one.
  ASSERT_TRUE(wait_for_log(*d, "cannot connect to the source", 15s)) << d->log_tail();
  // The metrics poller's session through the same link: its reply deadline (8 s) notices it too.
  ASSERT_TRUE(wait_for_log(*d, "no reply from the customer database (metrics poller)", 20s)) << d->log_tail();
  px.source.half_open(false);
  const auto healed_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s, 2)) << "no new session after the link healed:\n"
                                                    << d->log_tail();
  std::cout << "[ e2e      ] half-open source: detected after " << detected << " ms, streaming again "
            << ms_since(healed_at) << " ms after the link healed" << std::endl;
  expect_recovered(p, load, *d, sampler);
}

TEST(FaultsNetwork, AHalfOpenTargetConnectionIsTakenForDeadByTheReplyDeadlineAndReplaced) {
  SyncPipeline p{"net_halfopen_tgt"};
  Proxies px;
  auto d = start_proxied(
      p, px, {}, {.target_conninfo = "connect_timeout=3", .target_keys = "statement_timeout_ms = 2000\n"});
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(12s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  px.target.half_open(true);
  const auto cut_at = Clock::now();
  // statement_timeout_ms 2000: no reply 4 s after a statement was sent means a dead connection.
  ASSERT_TRUE(wait_for_log(*d, "no reply from the order database", 20s)) << d->log_tail();
  const auto detected = ms_since(cut_at);
  ASSERT_TRUE(wait_for_log(*d, "cannot connect to the order database", 20s)) << d->log_tail();
  px.target.half_open(false);
  const auto healed_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s, 2)) << "no new session after the link healed:\n"
                                                    << d->log_tail();
  std::cout << "[ e2e      ] half-open target: detected after " << detected << " ms, streaming again "
            << ms_since(healed_at) << " ms after the link healed" << std::endl;
  expect_recovered(p, load, *d, sampler);
}

TEST(FaultsNetwork, AHalfOpenRedisConnectionDelaysOnlyTheCheckpointMirror) {
  SyncPipeline p{"net_halfopen_redis"};
  Proxies px;
  // A lease longer than the cut: applying goes on while Redis is away, within the lease (once it expires
  // unrenewed the daemon stops applying: unit test
  // PipelineTest.StopsApplyingWhenItsLeaseExpiresUnrenewed...).
  ConfigOptions co;
  co.lease_ttl_ms = 30000;
  co.renew_ms = 1000;
  auto d = start_proxied(p, px, co);
  ConfirmedNeverAheadSampler sampler{p};
  Workload load{p.workload_options(10s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  px.redis.half_open(true);
  const auto cut_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, "checkpoint store unreachable", 20s)) << d->log_tail();
  const auto detected = ms_since(cut_at);
  // The target keeps taking batches meanwhile (it is the authority); the slot is not confirmed past Redis.
  const auto progress_before = p.progress();
  ASSERT_TRUE(eventually([&] { return p.progress()->end_lsn > progress_before->end_lsn; }, 10s))
      << "nothing was applied while Redis was cut off:\n"
      << d->log_tail();
  px.redis.half_open(false);
  const auto healed_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, "checkpoint store reachable again", 30s)) << d->log_tail();
  std::cout << "[ e2e      ] half-open Redis: detected after " << detected << " ms, mirror back "
            << ms_since(healed_at) << " ms after the link healed" << std::endl;
  expect_recovered(p, load, *d, sampler);
}

// A half-open source link in the middle of the initial snapshot: the copy sessions' reply deadline
// (snapshot.stall_timeout_ms) takes them for dead, the load fails as a transient error instead of hanging,
// and once the link heals the next session resumes it; the oracle holds.
TEST(FaultsNetwork, AHalfOpenSourceLinkDuringTheInitialSnapshotEndsWithinTheStallTimeoutAndTheLoadResumes) {
  SyncPipeline p{"net_halfopen_snap"};
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (full_name, email, address, notes) SELECT 'Customer ' || g, 'c' || g || "
      "'@example.test', g || ' Main Street', repeat('n', 100) FROM generate_series(1, 200000) g; ANALYZE "
      "public.customers");
  Proxies px;
  ConfigOptions co;
  co.lease_ttl_ms = 2000;
  co.extra = "\n[snapshot]\nparallel = 2\nstall_timeout_ms = 2000\n";
  auto d = std::make_unique<DaemonProcess>(
      p.dir(), "cdcsync", proxied_config(p, px, co, {.source_conninfo = "connect_timeout=3"}));
  ConfirmedNeverAheadSampler sampler{p};
  d->start();
  ASSERT_TRUE(eventually(
      [&] {
        return query_value(p.order_admin(), "SELECT count(*) > 0 FROM ref.customer") == "t" ||
               d->log_count("snapshot complete") > 0;
      },
      120s, 20ms))
      << d->log_tail();
  px.source.half_open(true);
  const auto cut_at = Clock::now();
  ASSERT_EQ(d->log_count("snapshot complete"), 0u) << "the load was over before the link was cut";
  ASSERT_TRUE(wait_for_log(*d, "no reply from the customer database (snapshot) for 2000 ms", 20s))
      << d->log_tail();
  const auto detected = ms_since(cut_at);
  ASSERT_TRUE(wait_for_log(*d, "reconnecting in", 20s)) << "the load did not end:\n" << d->log_tail();
  const auto ended = ms_since(cut_at);
  px.source.half_open(false);
  ASSERT_TRUE(wait_for_log(*d, "snapshot complete", 120s)) << d->log_tail();
  EXPECT_GE(d->log_count("resuming it"), 1u) << d->log_tail();
  std::cout << "[ e2e      ] half-open source during the snapshot: detected after " << detected
            << " ms, the load ended after " << ended << " ms (stall_timeout_ms 2000)" << std::endl;
  EXPECT_LT(ended, 10000) << "the load hung past its deadline";
  Workload load{p.workload_options(3s, 30)};
  load.start();
  expect_recovered(p, load, *d, sampler);
}

}  // namespace
}  // namespace cdcsync::test
