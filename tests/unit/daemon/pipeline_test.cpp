// The pipeline session with fakes: a scripted ChangeSource, the RecordingSink and the memory checkpoint
// store. What it must never do: confirm to the source a position that is not durable in the target and
// mirrored in the checkpoint store.
#include "daemon/pipeline.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "checkpoints/memory_store.h"
#include "daemon/errors.h"
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
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::exception_ptr error_;
  std::thread thread_;
};

TEST_F(PipelineTest, AppliesTransactionsAndConfirmsTheirEndOnlyAfterTheCheckpoint) {
  start();
  source_.push(txn(1, 0x100));
  source_.push(txn(2, 0x200));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x200}; }, 5s));
  EXPECT_EQ(store_.load()->lsn, Lsn{0x200});
  EXPECT_EQ(sink_.load_progress()->end_lsn, Lsn{0x200});
  EXPECT_EQ(status_.transactions.load(), 2u);
}

TEST_F(PipelineTest, GroupsSeveralSourceTransactionsIntoOneBatch) {
  options_.batch_max_wait = 200ms;
  options_.batch_max_rows = 1000;
  start();
  for (std::uint32_t i = 1; i <= 50; ++i) source_.push(txn(i, 0x100 * i, 3));
  ASSERT_TRUE(test::eventually([&] { return source_.max_flushed() == Lsn{0x100 * 50}; }, 5s));
  EXPECT_LT(sink_.batches().size(), 50u);
  EXPECT_EQ(status_.changes.load(), 150u);
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

}  // namespace
}  // namespace cdcsync
