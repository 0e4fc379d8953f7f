// The batcher: whole transactions into batches by rows, bytes and time, with the time passed in.
#include "daemon/core/batcher.h"

#include <gtest/gtest.h>

namespace cdcsync {
namespace {

using namespace std::chrono_literals;
using Clock = Batcher::Clock;

const Clock::time_point t0{};

Transaction txn(std::size_t changes, std::chrono::milliseconds behind = 0ms) {
  Transaction t;
  t.changes.resize(changes);
  if (behind > 0ms) {
    t.info.commit_time_us = 1'000'000;
    t.info.sent_time_us = 1'000'000 + std::chrono::duration_cast<std::chrono::microseconds>(behind).count();
  }
  return t;
}

BatcherOptions options() {
  return {.max_rows = 10, .max_bytes = 1000, .max_wait = 50ms, .catch_up_lag = 1000ms};
}

TEST(Batcher, IsNeverDueWhileEmpty) {
  Batcher b{options()};
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(b.due(true, t0 + 1h));
}

TEST(Batcher, CaughtUpAppliesAsSoonAsNothingMoreIsQueued) {
  Batcher b{options()};
  b.add(txn(1), 10, t0);
  EXPECT_FALSE(b.due(/*queue_empty=*/false, t0 + 10ms));
  EXPECT_TRUE(b.due(/*queue_empty=*/true, t0 + 10ms));
}

TEST(Batcher, CaughtUpAppliesAtMaxWaitEvenWhileMoreKeepsComing) {
  Batcher b{options()};
  b.add(txn(1), 10, t0);
  b.add(txn(1), 10, t0 + 40ms);
  EXPECT_FALSE(b.due(false, t0 + 49ms));
  EXPECT_TRUE(b.due(false, t0 + 50ms));  // measured from the batch's first transaction
}

TEST(Batcher, IsDueAtMaxRowsWithoutSplittingATransaction) {
  Batcher b{options()};
  b.add(txn(6), 10, t0);
  EXPECT_FALSE(b.due(false, t0));
  b.add(txn(6), 10, t0);
  EXPECT_EQ(b.rows(), 12u);  // the second transaction stays whole: the batch may exceed the bound
  EXPECT_TRUE(b.due(false, t0));
}

TEST(Batcher, IsDueAtMaxBytes) {
  Batcher b{options()};
  b.add(txn(1), 999, t0);
  EXPECT_FALSE(b.due(false, t0));
  b.add(txn(1), 1, t0);
  EXPECT_EQ(b.bytes(), 1000u);
  EXPECT_TRUE(b.due(false, t0));
}

TEST(Batcher, IsDueAtOnceWhenItEndsInAChunkOfALargerTransaction) {
  Batcher b{options()};
  Transaction chunk = txn(1);
  chunk.last_chunk = false;
  b.add(std::move(chunk), 10, t0);
  EXPECT_TRUE(b.due(false, t0));
  EXPECT_FALSE(b.batch().ends_whole());
}

TEST(Batcher, CatchingUpKeepsGrowingWhileTransactionsKeepArriving) {
  Batcher b{options()};
  b.add(txn(1, 1500ms), 10, t0);
  EXPECT_TRUE(b.catching_up());
  EXPECT_FALSE(b.due(/*queue_empty=*/true, t0 + 10ms));  // an empty queue alone does not end it
  b.add(txn(1, 1500ms), 10, t0 + 40ms);
  EXPECT_FALSE(b.due(true, t0 + 89ms));
  EXPECT_TRUE(b.due(true, t0 + 90ms));    // max_wait without an arrival, nothing queued
  EXPECT_FALSE(b.due(false, t0 + 90ms));  // ... but something is queued: it grows on
}

TEST(Batcher, CatchingUpAppliesAtCatchUpLagAfterItStarted) {
  Batcher b{options()};
  b.add(txn(1, 1500ms), 10, t0);
  for (auto at = 40ms; at < 1000ms; at += 40ms) b.add(txn(0, 1500ms), 10, t0 + at);
  EXPECT_FALSE(b.due(false, t0 + 999ms));
  EXPECT_TRUE(b.due(false, t0 + 1000ms));
}

TEST(Batcher, TimeLeftIsTheEarlierOfMaxWaitSinceTheLastArrivalAndCatchUpLagSinceTheStart) {
  Batcher b{options()};
  b.add(txn(1, 1500ms), 10, t0);
  EXPECT_EQ(b.time_left(t0 + 20ms), 30ms);
  b.add(txn(1, 1500ms), 10, t0 + 980ms);
  EXPECT_EQ(b.time_left(t0 + 990ms), 10ms);  // catch_up_lag since the start comes first
  EXPECT_EQ(b.time_left(t0 + 2s), 0ms);
}

TEST(Batcher, JudgesTheBacklogByTheSourcesOwnTimesOfTheNewestTransaction) {
  Batcher b{options()};
  b.add(txn(1, 999ms), 10, t0);
  EXPECT_FALSE(b.catching_up());
  b.add(txn(1, 1000ms), 10, t0);
  EXPECT_TRUE(b.catching_up());
  b.add(txn(1), 10, t0);  // no times: the judgement stands
  EXPECT_TRUE(b.catching_up());
  b.add(txn(1, 10ms), 10, t0);
  EXPECT_FALSE(b.catching_up());
}

TEST(Batcher, NeverCatchesUpWhenCatchUpLagIsZero) {
  BatcherOptions o = options();
  o.catch_up_lag = 0ms;
  Batcher b{o};
  b.add(txn(1, 1h), 10, t0);
  EXPECT_FALSE(b.catching_up());
  EXPECT_TRUE(b.due(true, t0));
}

TEST(Batcher, ResetStartsTheNextBatchAndKeepsTheBacklogJudgement) {
  Batcher b{options()};
  b.add(txn(3, 1500ms), 100, t0);
  b.reset();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.rows(), 0u);
  EXPECT_EQ(b.bytes(), 0u);
  EXPECT_TRUE(b.catching_up());
  b.add(txn(1), 10, t0 + 5s);  // the next batch starts at its own first transaction
  EXPECT_FALSE(b.due(true, t0 + 5s + 49ms));
  EXPECT_TRUE(b.due(true, t0 + 5s + 50ms));
}

}  // namespace
}  // namespace cdcsync
