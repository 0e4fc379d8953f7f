// The pipeline session with fakes: a scripted ChangeSource, the RecordingSink and the memory checkpoint
// store. What it must never do: confirm to the source a position that is not durable in the target and
// mirrored in the checkpoint store.
#include "daemon/core/pipeline.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "checkpoints/memory_store.h"
#include "daemon/core/errors.h"
#include "sinks/recording_sink.h"
#include "tests/harness/eventually.h"

namespace cdcsync {
namespace {

using namespace std::chrono_literals;

Transaction txn(std::uint32_t xid, std::uint64_t end, std::size_t changes = 1) {
  Transaction t;
  t.info.xid = Xid{xid};
  t.info.final_lsn = Lsn{end - 8};
  t.info.end_lsn = Lsn{end};
  t.changes.resize(changes);
  return t;
}

class FakeSource : public ChangeSource {
 public:
  void push(Transaction t) {
    std::lock_guard lock(mu_);
    ready_.push_back(std::move(t));
    cv_.notify_all();
  }
  void set_idle(std::optional<Lsn> lsn) {
    std::lock_guard lock(mu_);
    idle_ = lsn;
  }
  void fail_next_poll() {
    std::lock_guard lock(mu_);
    fail_ = true;
  }

  Polled poll(std::chrono::milliseconds timeout, std::vector<Transaction>& out) override {
    poll_policy_ = sched_getscheduler(0);  // the calling thread's, on Linux
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !ready_.empty() || fail_; });
    if (fail_) {
      fail_ = false;
      throw std::runtime_error("connection to the source lost");
    }
    Polled p;
    while (!ready_.empty()) {
      out.push_back(std::move(ready_.front()));
      ready_.pop_front();
    }
    if (out.empty()) p.idle_lsn = idle_;
    p.received = idle_.value_or(Lsn{});
    return p;
  }
  void report(Lsn written, Lsn flushed) override {
    std::lock_guard lock(mu_);
    reports_.emplace_back(written, flushed);
    max_flushed_ = std::max(max_flushed_, flushed);
  }
  // Called with the transactions the pipeline hands back (on its receiver thread).
  void on_recycle(std::function<void(const std::vector<Transaction>&)> hook) {
    std::lock_guard lock(mu_);
    recycle_hook_ = std::move(hook);
  }
  void recycle(std::vector<Transaction>& spent) override {
    std::function<void(const std::vector<Transaction>&)> hook;
    {
      std::lock_guard lock(mu_);
      hook = recycle_hook_;
    }
    if (hook) hook(spent);
    spent.clear();
  }
  bool absorb() override {
    absorbs_.fetch_add(1);
    return true;  // as a source spooling a streamed transaction's blocks during a replay
  }
  std::uint64_t absorbs() const { return absorbs_.load(); }
  int poll_policy() const { return poll_policy_.load(); }
  std::uint64_t absorbed() const override { return 3 * absorbs_.load(); }  // three messages a call
  Lsn max_flushed() {
    std::lock_guard lock(mu_);
    return max_flushed_;
  }
  std::size_t reports() {
    std::lock_guard lock(mu_);
    return reports_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Transaction> ready_;
  std::optional<Lsn> idle_;
  bool fail_ = false;
  std::vector<std::pair<Lsn, Lsn>> reports_;
  Lsn max_flushed_;
  std::function<void(const std::vector<Transaction>&)> recycle_hook_;
  std::atomic<std::uint64_t> absorbs_{0};
  std::atomic<int> poll_policy_{-1};
};

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() {
    options_.batch_max_wait = 5ms;
    options_.status_interval = 10ms;
    options_.idle_ack_after = 20ms;
    options_.lease_renew = 50ms;
    store_.acquire_lease(token_, 10s);
  }
  ~PipelineTest() override { stop_pipeline(); }

  void start(Lsn confirmed = Lsn{}) {
    pipeline_ = std::make_unique<Pipeline>(source_, sink_, store_, token_, options_, status_);
    if (pipeline_lease_) pipeline_->set_lease(*pipeline_lease_);
    thread_ = std::thread([this, confirmed] {
      try {
        pipeline_->run(stop_, confirmed);
      } catch (...) {
        error_ = std::current_exception();
      }
      finished_ = true;
    });
  }
  void stop_pipeline() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  FakeSource source_;
  RecordingSink sink_;
  MemoryCheckpointStore store_;
  LeaseToken token_{"me"};
  PipelineOptions options_;
  PipelineStatus status_;
  std::unique_ptr<Pipeline> pipeline_;
  std::optional<std::chrono::steady_clock::time_point> pipeline_lease_;  // set_lease() when set
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::exception_ptr error_;
  std::thread thread_;
};

// The receiver reads with SCHED_BATCH (no wake-up preemption of the walsender that woke it); the applier,
// this test's thread, keeps the default policy.
TEST_F(PipelineTest, TheReceiverThreadDoesNotPreemptTheProcessThatWokeIt) {
  int allowed = -1;  // a seccomp filter may refuse the call here: then the pipeline runs as before
  std::thread([&] {
    sched_param param{};
    allowed = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  }).join();
  if (allowed != 0) GTEST_SKIP() << "SCHED_BATCH refused here: " << std::strerror(allowed);
  const int applier_policy = sched_getscheduler(0);
  start();
  ASSERT_TRUE(test::eventually([&] { return source_.poll_policy() != -1; }, 5s));
  EXPECT_EQ(source_.poll_policy(), SCHED_BATCH);
  EXPECT_EQ(sched_getscheduler(0), applier_policy);
}

TEST_F(PipelineTest, AppliesTransactionsAndConfirmsTheirEndOnlyAfterTheCheckpoint) {
  start();
  source_.push(txn(1, 0x100));
  source_.push(txn(2, 0x200));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x200}; }, 5s));
  EXPECT_EQ(store_.load()->lsn, Lsn{0x200});
  EXPECT_EQ(sink_.load_progress()->end_lsn, Lsn{0x200});
  EXPECT_EQ(status_.transactions.load(), 2u);
}

// While the target holds the queue full, the receiver keeps letting the source read on (absorb), every few
// milliseconds, and never while there is room; then everything is applied in order.
TEST_F(PipelineTest, LetsTheSourceReadOnWhileTheQueueIsFull) {
  options_.queue_max_transactions = 2;
  std::atomic<bool> release{false};
  sink_.on_apply([&](const Batch&) {
    while (!release) std::this_thread::sleep_for(1ms);
  });
  start();
  for (std::uint32_t xid = 1; xid <= 10; ++xid) source_.push(txn(xid, 0x100 * xid));
  ASSERT_TRUE(test::eventually([&] { return source_.absorbs() > 0; }, 5s));
  const std::uint64_t first = source_.absorbs();
  std::this_thread::sleep_for(300ms);
  EXPECT_GE(source_.absorbs() - first, 10u) << "absorb is not called often while the queue is full";
  release = true;
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0xA00}; }, 5s));
  const std::uint64_t settled = source_.absorbs();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(source_.absorbs(), settled) << "absorb was called with room in the queue";
  EXPECT_EQ(status_.messages_read_during_replay.load(), 3 * settled) << "for the metrics";
  std::vector<std::uint32_t> xids;
  for (const auto& a : sink_.applied()) xids.push_back(a.xid.value);
  EXPECT_EQ(xids, (std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

// Applied transactions go back to the source, which reuses their memory: never one the sink has not applied.
TEST_F(PipelineTest, HandsAppliedTransactionsBackToTheSourceAndNoOtherOnes) {
  std::mutex mu;
  std::vector<std::uint32_t> recycled;
  std::vector<std::uint32_t> not_applied;
  source_.on_recycle([&](const std::vector<Transaction>& spent) {
    const auto applied = sink_.applied();
    std::lock_guard lock(mu);
    for (const auto& t : spent) {
      recycled.push_back(t.info.xid.value);
      const bool found = std::any_of(applied.begin(), applied.end(),
                                     [&](const RecordingSink::Applied& a) { return a.xid == t.info.xid; });
      if (!found) not_applied.push_back(t.info.xid.value);
    }
  });
  // Slow applies while transactions keep arriving: the receiver runs while batches are being applied.
  sink_.on_apply([](const Batch&) { std::this_thread::sleep_for(10ms); });
  start();
  std::uint32_t xid = 0;
  for (int group = 0; group < 5; ++group) {
    for (int i = 0; i < 10; ++i) {
      ++xid;
      source_.push(txn(xid, 0x100 * xid, 3));
      std::this_thread::sleep_for(2ms);
    }
    ASSERT_TRUE(test::eventually([&] { return status_.transactions.load() == xid; }, 5s));
  }
  ASSERT_TRUE(test::eventually(
      [&] {
        std::lock_guard lock(mu);
        return !recycled.empty();
      },
      5s));
  stop_pipeline();
  std::lock_guard lock(mu);
  EXPECT_TRUE(not_applied.empty()) << not_applied.size()
                                   << " transactions came back before they were applied";
  EXPECT_LE(recycled.size(), 50u);
  EXPECT_EQ(std::set<std::uint32_t>(recycled.begin(), recycled.end()).size(), recycled.size())
      << "a transaction came back twice";
}

TEST_F(PipelineTest, GroupsSeveralSourceTransactionsIntoOneBatch) {
  options_.batch_max_wait = 200ms;
  options_.batch_max_rows = 1000;
  std::mutex gate;
  gate.lock();
  std::atomic<bool> applying{false};
  sink_.on_apply([&](const Batch&) {
    applying = true;
    std::lock_guard wait(gate);  // the first batch is slow: the others queue up meanwhile
  });
  start();
  source_.push(txn(1, 0x100, 3));
  ASSERT_TRUE(test::eventually([&] { return applying.load(); }, 5s));
  for (std::uint32_t i = 2; i <= 50; ++i) source_.push(txn(i, 0x100 * i, 3));
  ASSERT_TRUE(test::eventually([&] { return status_.queue_depth.load() == 49; }, 5s));
  gate.unlock();
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * 50}; }, 5s));
  EXPECT_EQ(sink_.batches().size(), 2u);
  EXPECT_EQ(status_.changes.load(), 150u);
}

TEST_F(PipelineTest, AppliesATransactionAtOnceWhenNothingElseIsQueued) {
  options_.batch_max_wait = 60s;  // never reached: an idle queue closes the batch
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  source_.push(txn(2, 0x200));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x200}; }, 5s));
  EXPECT_EQ(sink_.batches().size(), 2u);
}

// A transaction the source sent `behind` after it committed it (PostgreSQL epoch microseconds; this host's
// clock plays no part, so a fixed date will do).
Transaction committed(std::uint32_t xid, std::uint64_t end, std::chrono::milliseconds behind) {
  Transaction t = txn(xid, end);
  t.info.commit_time_us = 800'000'000'000'000;
  t.info.sent_time_us = t.info.commit_time_us + std::chrono::microseconds(behind).count();
  return t;
}

TEST_F(PipelineTest, CatchingUpABatchKeepsGrowingWhileTransactionsKeepArriving) {
  options_.batch_max_wait = 400ms;  // the longest gap between arrivals that still grows the batch
  options_.catch_up_lag = 1s;
  options_.batch_max_rows = 1000;
  start();
  for (std::uint32_t i = 1; i <= 10; ++i) {
    source_.push(committed(i, 0x100 * i, 60s));  // a backlog: sent a minute after its commit
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * 10}; }, 5s));
  EXPECT_EQ(sink_.batches().size(), 1u);
}

TEST_F(PipelineTest, CaughtUpEachArrivalIsAppliedAtOnce) {
  options_.batch_max_wait = 400ms;
  options_.catch_up_lag = 1s;
  options_.batch_max_rows = 1000;
  start();
  for (std::uint32_t i = 1; i <= 10; ++i) {
    source_.push(committed(i, 0x100 * i, 0ms));
    ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * i}; }, 5s));
  }
  EXPECT_EQ(sink_.batches().size(), 10u);
}

TEST_F(PipelineTest, CatchingUpABatchIsAppliedOnceItIsAsOldAsTheCatchUpLag) {
  options_.batch_max_wait = 10s;
  options_.catch_up_lag = 100ms;
  options_.batch_max_rows = 100000;
  start();
  const auto until = std::chrono::steady_clock::now() + 600ms;
  std::uint32_t i = 0;
  while (std::chrono::steady_clock::now() < until) {
    ++i;
    source_.push(committed(i, 0x100 * i, 60s));
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * i}; }, 5s));
  EXPECT_GE(sink_.batches().size(), 3u);  // arrivals never stopped: the age bound closed the batches
}

TEST_F(PipelineTest, BoundsABatchByItsDecodedBytes) {
  options_.batch_max_wait = 60s;
  options_.batch_max_rows = 1000;
  options_.batch_max_bytes = 32 * 1024;  // three transactions of 10 kB fit, a fourth closes the batch
  std::mutex gate;
  gate.lock();
  std::atomic<bool> applying{false};
  sink_.on_apply([&](const Batch&) {
    applying = true;
    std::lock_guard wait(gate);
  });
  start();
  const auto wide = [](std::uint32_t i) {
    Transaction t = txn(i, 0x100 * i, 1);
    t.changes[0].after.add_text(std::string(10000, 'x'));
    return t;
  };
  source_.push(wide(1));
  ASSERT_TRUE(test::eventually([&] { return applying.load(); }, 5s));
  for (std::uint32_t i = 2; i <= 20; ++i) source_.push(wide(i));
  ASSERT_TRUE(test::eventually([&] { return status_.queue_depth.load() == 19; }, 5s));
  gate.unlock();
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * 20}; }, 5s));
  std::size_t transactions = 0;
  for (const Batch& b : sink_.batches()) {
    EXPECT_LE(b.transactions.size(), 4u);
    transactions += b.transactions.size();
  }
  EXPECT_EQ(transactions, 20u);
  EXPECT_GE(sink_.batches().size(), 6u);  // 1, then 19 in batches of at most 4
}

// What the receiver hands out counts against the memory budget until its batch is applied, and nothing is
// left counted once everything is applied or the session ends.
TEST_F(PipelineTest, CountsWhatItHoldsAgainstTheMemoryBudgetUntilItIsApplied) {
  options_.budget = &status_.memory;
  status_.memory.set_limit(1 << 20);
  std::mutex gate;
  gate.lock();
  std::atomic<bool> applying{false};
  sink_.on_apply([&](const Batch&) {
    applying = true;
    std::lock_guard wait(gate);
  });
  start();
  Transaction t = txn(1, 0x100, 1);
  t.changes[0].after.add_text(std::string(100000, 'x'));
  const std::size_t bytes = approximate_bytes(t);
  source_.push(std::move(t));
  ASSERT_TRUE(test::eventually([&] { return applying.load(); }, 5s));
  EXPECT_EQ(status_.memory.held(), bytes) << "held while it is applied";
  gate.unlock();
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  EXPECT_TRUE(test::eventually([&] { return status_.memory.held() == 0; }, 5s));
  source_.push(txn(2, 0x200, 3));
  stop_pipeline();
  EXPECT_EQ(status_.memory.held(), 0u) << "nothing counted after the session";
  EXPECT_GE(status_.memory.peak(), bytes);
}

TEST_F(PipelineTest, NeverConfirmsWhatTheTargetHasNotCommitted) {
  std::mutex gate;
  gate.lock();
  sink_.on_apply([&](const Batch&) {
    std::lock_guard wait(gate);  // the target hangs
  });
  start(Lsn{0x10});
  source_.push(txn(1, 0x100));
  // While the target hangs the receiver keeps reporting (keepalives) but never past the start.
  ASSERT_TRUE(test::eventually([&] { return source_.reports() > 5; }, 5s));
  EXPECT_EQ(source_.max_flushed(), Lsn{0x10});
  gate.unlock();
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
}

TEST_F(PipelineTest, ConfirmsTheKeepalivePositionWhenIdleAfterRecordingIt) {
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  source_.set_idle(Lsn{0x900});
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x900}; }, 5s));
  // Recorded in the target before it was sent: a restart can tell its own confirmation from a gap.
  EXPECT_EQ(sink_.load_progress()->acked_lsn, Lsn{0x900});
  EXPECT_EQ(sink_.load_progress()->end_lsn, Lsn{0x100});
}

TEST_F(PipelineTest, KeepsApplyingButStopsConfirmingWhileTheCheckpointStoreIsDown) {
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  store_.set_available(false);
  source_.push(txn(2, 0x200));
  ASSERT_TRUE(test::eventually([&] { return sink_.load_progress()->end_lsn == Lsn{0x200}; }, 5s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(source_.max_flushed(), Lsn{0x100});
  EXPECT_FALSE(status_.checkpoint_store_ok.load());
  store_.set_available(true);
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x200}; }, 5s));
  EXPECT_EQ(store_.load()->lsn, Lsn{0x200});
}

// Redis takes the bytes and never answers: every call waits out its timeout, on the keeper's thread. The
// target goes on taking each transaction as it arrives; only the confirmation waits for the store.
TEST_F(PipelineTest, AppliesOnWhileTheCheckpointStoreHangsAndConfirmsOnlyWhatItMirrored) {
  pipeline_lease_ = std::chrono::steady_clock::now();
  options_.lease_ttl = 30s;
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  store_.set_blackholed(true, 500ms);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint32_t i = 2; i <= 11; ++i) {
    source_.push(txn(i, 0x100 * i));
    ASSERT_TRUE(test::eventually([&] { return sink_.load_progress()->end_lsn == Lsn{0x100 * i}; }, 5s));
  }
  // Ten transactions one after the other in less time than five of the store's timeouts (waiting for the
  // mirror would have cost one each).
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
  EXPECT_EQ(source_.max_flushed(), Lsn{0x100});
  EXPECT_EQ(store_.load_unchecked(), Lsn{0x100});
  store_.set_blackholed(false);
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0xB00}; }, 5s));
  EXPECT_EQ(store_.load()->lsn, Lsn{0xB00});
}

// The lease this session holds expires while the store is unreachable: nothing more is applied until it
// is renewed; then the stream goes on where it stopped.
TEST_F(PipelineTest, StopsApplyingWhenItsLeaseExpiresUnrenewedAndGoesOnOnceRenewed) {
  pipeline_lease_ = std::chrono::steady_clock::now();
  options_.lease_ttl = 400ms;
  options_.lease_renew = 100ms;
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  store_.set_available(false);
  // Past the lease's expiry (counted from the last renewal sent), a new transaction waits in the queue.
  ASSERT_TRUE(test::eventually([&] { return status_.lease_expired.load(); }, 5s));
  const auto applied = sink_.applied().size();
  source_.push(txn(2, 0x200));
  ASSERT_TRUE(test::eventually([&] { return status_.queue_depth.load() == 1; }, 5s));
  EXPECT_EQ(sink_.applied().size(), applied);
  EXPECT_EQ(sink_.load_progress()->end_lsn, Lsn{0x100});
  store_.set_available(true);  // the lease lapsed in the store too: nobody else took it, it is taken again
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x200}; }, 5s));
  EXPECT_FALSE(status_.lease_expired.load());
  EXPECT_FALSE(finished_.load());
}

// Redis restarts empty while nothing arrives: the renewal, not a mirror, finds the lease gone. It takes the
// lease again, says the checkpoint is gone, and writes it again at once rather than at the next change.
TEST_F(PipelineTest, ACheckpointStoreFoundEmptyByTheRenewalIsRewrittenAtOnceWithAWarning) {
  std::ostringstream log;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("keeper", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  struct Restore {
    std::shared_ptr<spdlog::logger> logger;
    ~Restore() { spdlog::set_default_logger(logger); }
  } restore{previous};
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  store_.wipe();
  ASSERT_TRUE(test::eventually([&] { return store_.load_unchecked() == Lsn{0x100}; }, 5s));
  EXPECT_EQ(store_.lease_holder(), token_.value);
  EXPECT_FALSE(finished_.load());
  stop_pipeline();
  EXPECT_NE(log.str().find("restoring it from the target's progress (0/100)"), std::string::npos)
      << log.str();
}

TEST_F(PipelineTest, StepsDownWhenAnotherInstanceHoldsTheLease) {
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  store_.release_lease(token_);
  ASSERT_TRUE(store_.acquire_lease(LeaseToken{"other"}, 10s));
  source_.push(txn(2, 0x200));
  ASSERT_TRUE(test::eventually([&] { return finished_.load(); }, 5s));
  ASSERT_TRUE(error_);
  EXPECT_THROW(std::rethrow_exception(error_), LeaseLost);
  EXPECT_EQ(store_.load()->lsn, Lsn{0x100});
  EXPECT_EQ(source_.max_flushed(), Lsn{0x100});
}

TEST_F(PipelineTest, ConfirmsAChunkedTransactionOnlyAtItsLastChunk) {
  options_.batch_max_wait = 1ms;
  start();
  Transaction first = txn(7, 0x500, 10);
  first.info.end_lsn = Lsn{};
  first.last_chunk = false;
  source_.push(std::move(first));
  ASSERT_TRUE(test::eventually([&] { return sink_.batches().size() >= 1; }, 5s));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(source_.max_flushed(), Lsn{});
  Transaction last = txn(7, 0x500, 10);
  last.first_chunk = false;
  source_.push(std::move(last));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x500}; }, 5s));
  ASSERT_EQ(sink_.applied().size(), 1u);
  EXPECT_EQ(sink_.applied()[0].changes, 20u);
}

TEST_F(PipelineTest, GracefulStopRollsBackAnOpenChunkedTransaction) {
  options_.batch_max_wait = 1ms;
  start();
  Transaction first = txn(7, 0x500, 10);
  first.info.end_lsn = Lsn{};
  first.last_chunk = false;
  source_.push(std::move(first));
  ASSERT_TRUE(test::eventually([&] { return sink_.batches().size() >= 1; }, 5s));
  stop_pipeline();
  EXPECT_FALSE(error_);
  EXPECT_GE(sink_.aborts(), 1u);
  EXPECT_EQ(source_.max_flushed(), Lsn{});
}

TEST_F(PipelineTest, ASourceFailureEndsTheSessionWithoutConfirmingMore) {
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  source_.fail_next_poll();
  ASSERT_TRUE(test::eventually([&] { return finished_.load(); }, 5s));
  ASSERT_TRUE(error_);
  EXPECT_THROW(std::rethrow_exception(error_), std::runtime_error);
}

TEST_F(PipelineTest, ATargetErrorEndsTheSessionAndKeepsTheLastDurablePosition) {
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100}; }, 5s));
  sink_.fail_next_apply(TransientError("lost connection to the target"));
  source_.push(txn(2, 0x200));
  ASSERT_TRUE(test::eventually([&] { return finished_.load(); }, 5s));
  EXPECT_THROW(std::rethrow_exception(error_), TransientError);
  EXPECT_EQ(source_.max_flushed(), Lsn{0x100});
  EXPECT_EQ(store_.load()->lsn, Lsn{0x100});
}

// A backlog: no batch waits for the target's flush, not even the one that empties the queue; nothing is
// mirrored or confirmed past the last flushed commit meanwhile, and once nothing arrives a sync makes it all
// durable.
TEST_F(PipelineTest, ABacklogCommitsWithoutWaitingForTheFlushAndIsSyncedOnceNothingArrives) {
  options_.batch_max_rows = 5;
  options_.flush_interval = 60s;
  std::mutex gate;
  gate.lock();
  std::mutex mu;
  std::vector<Lsn> confirmed_at_apply;  // the source's and the store's highest position as each batch starts
  std::vector<Lsn> stored_at_apply;
  sink_.on_apply([&](const Batch&) {
    {
      std::lock_guard lock(mu);
      confirmed_at_apply.push_back(source_.max_flushed());
      const auto cp = store_.load();
      stored_at_apply.push_back(cp ? cp->lsn : Lsn{});
    }
    std::lock_guard wait(gate);
  });
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return sink_.batches().size() == 1; }, 5s));
  for (std::uint32_t i = 2; i <= 21; ++i) source_.push(txn(i, 0x100 * i));
  ASSERT_TRUE(test::eventually([&] { return status_.queue_depth.load() == 20; }, 5s));
  gate.unlock();
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * 21}; }, 5s));

  std::vector<bool> durable;
  for (const Batch& b : sink_.batches()) durable.push_back(b.durable);
  EXPECT_EQ(durable, (std::vector<bool>{false, false, false, false, false}));
  EXPECT_EQ(status_.commits_unflushed.load(), 5u);
  EXPECT_EQ(sink_.syncs(), 1);
  std::lock_guard lock(mu);
  ASSERT_EQ(confirmed_at_apply.size(), 5u);
  // Every batch was committed but not flushed: nothing confirmed or mirrored before the sync.
  EXPECT_EQ(confirmed_at_apply[4], Lsn{});
  EXPECT_EQ(stored_at_apply[4], Lsn{});
  EXPECT_EQ(store_.load()->lsn, Lsn{0x100 * 21});
}

// Catching up, batches do not wait for the flush even when the queue runs empty between them (the source
// sends slower than the target applies); once nothing arrived for batch_max_wait, a sync makes them durable.
TEST_F(PipelineTest, CatchingUpBatchesDoNotWaitForTheFlushAndAreSyncedWhenTheBacklogEnds) {
  options_.batch_max_rows = 1;
  options_.batch_max_wait = 30ms;
  options_.catch_up_lag = 1s;
  options_.flush_interval = 60s;
  start();
  for (std::uint32_t i = 1; i <= 5; ++i) {
    source_.push(committed(i, 0x100 * i, 60s));
    ASSERT_TRUE(test::eventually([&] { return sink_.batches().size() == i; }, 5s));
  }
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x500}; }, 5s));
  for (const Batch& b : sink_.batches()) EXPECT_FALSE(b.durable);
  EXPECT_GE(sink_.syncs(), 1);  // more when the test pushed more than batch_max_wait apart
  EXPECT_EQ(status_.commits_unflushed.load(), 5u);
  EXPECT_EQ(store_.load()->lsn, Lsn{0x500});
}

TEST_F(PipelineTest, ABacklogStillFlushesEveryFlushInterval) {
  options_.batch_max_rows = 1;
  options_.flush_interval = 40ms;
  sink_.on_apply([](const Batch&) { std::this_thread::sleep_for(10ms); });
  start();
  for (std::uint32_t i = 1; i <= 40; ++i) source_.push(txn(i, 0x100 * i));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * 40}; }, 10s));
  const auto batches = sink_.batches();
  ASSERT_EQ(batches.size(), 40u);
  // 400 ms of applying with a flush due every 40 ms: some batches in the middle waited for their flush, and
  // never more than five (50 ms) in a row did not.
  std::size_t in_a_row = 0;
  std::size_t flushed_before_the_last = 0;
  for (std::size_t i = 0; i + 1 < batches.size(); ++i) {
    in_a_row = batches[i].durable ? 0 : in_a_row + 1;
    EXPECT_LE(in_a_row, 5u) << "batch " << i;
    flushed_before_the_last += batches[i].durable ? 1 : 0;
  }
  EXPECT_GE(flushed_before_the_last, 3u);
}

// Caught up, a batch with nothing queued behind it does not wait for its flush either: its rows are visible
// at once, and the applier, asking the target between batches, confirms it once the target flushed it by
// itself, without a sync.
TEST_F(PipelineTest, CaughtUpBatchesDoNotWaitForTheFlushAndAreConfirmedOnceTheTargetFlushedThem) {
  options_.batch_max_wait = 1s;  // no sync before 100 ms without an arrival
  options_.flush_interval = 60s;
  sink_.flush_in_background(true);
  start();
  for (std::uint32_t i = 1; i <= 3; ++i) {
    source_.push(txn(i, 0x100 * i));
    ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * i}; }, 5s));
  }
  for (const Batch& b : sink_.batches()) EXPECT_FALSE(b.durable);
  EXPECT_EQ(status_.commits_unflushed.load(), sink_.batches().size());
  EXPECT_EQ(sink_.syncs(), 0);
  EXPECT_GE(sink_.flushed_asks(), 3);
  EXPECT_EQ(store_.load()->lsn, Lsn{0x300});
}

TEST_F(PipelineTest, WithoutAFlushIntervalEveryBatchWaitsForItsFlush) {
  options_.batch_max_rows = 1;
  options_.flush_interval = 0ms;
  start();
  for (std::uint32_t i = 1; i <= 10; ++i) source_.push(txn(i, 0x100 * i));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * 10}; }, 5s));
  for (const Batch& b : sink_.batches()) EXPECT_TRUE(b.durable);
  EXPECT_EQ(status_.commits_unflushed.load(), 0u);
}

// Stopped right after a batch that did not wait for its flush: the stop makes it durable and confirms it.
TEST_F(PipelineTest, AGracefulStopFlushesAndConfirmsWhatDidNotWaitForItsFlush) {
  options_.batch_max_rows = 1;
  options_.flush_interval = 60s;
  std::mutex gate;
  gate.lock();
  std::atomic<int> applies{0};
  sink_.on_apply([&](const Batch&) {
    if (++applies == 1) {
      std::lock_guard wait(gate);  // the backlog queues up behind the first batch
    }
    if (applies == 3) stop_ = true;
  });
  start();
  source_.push(txn(1, 0x100));
  ASSERT_TRUE(test::eventually([&] { return applies.load() == 1; }, 5s));
  for (std::uint32_t i = 2; i <= 10; ++i) source_.push(txn(i, 0x100 * i));
  ASSERT_TRUE(test::eventually([&] { return status_.queue_depth.load() == 9; }, 5s));
  gate.unlock();
  ASSERT_TRUE(test::eventually([&] { return finished_.load(); }, 5s));
  EXPECT_FALSE(error_);
  const auto batches = sink_.batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_FALSE(batches[2].durable);
  EXPECT_EQ(sink_.syncs(), 1);
  EXPECT_FALSE(sink_.unflushed());
  EXPECT_EQ(store_.load()->lsn, Lsn{0x300});
  EXPECT_EQ(source_.max_flushed(), Lsn{0x300});
  EXPECT_EQ(status_.durable_lsn.load(), Lsn{0x300});
}

}  // namespace
}  // namespace cdcsync
