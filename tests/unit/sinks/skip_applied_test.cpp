// The exactly-once skip both progress-keeping sinks share: what is at or below the progress is not applied
// again, a chunked source transaction is judged once at its first chunk.
#include "sinks/skip_applied.h"

#include <gtest/gtest.h>

#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

std::optional<Progress> progress_at(std::uint64_t end_lsn) {
  return Progress{.end_lsn = Lsn{end_lsn}, .acked_lsn = Lsn{end_lsn}};
}

Transaction chunk(std::uint64_t final_lsn, bool first, bool last) {
  Transaction t;
  t.info.final_lsn = Lsn{final_lsn};
  if (last) t.info.end_lsn = Lsn{final_lsn + 8};  // known on the last chunk only
  t.first_chunk = first;
  t.last_chunk = last;
  return t;
}

TEST(AppliedBefore, IsFalseWithoutProgress) {
  EXPECT_FALSE(applied_before(test::txn(1, 0x100, {}).info, std::nullopt));
  EXPECT_FALSE(applied_before(test::txn(1, 0x100, {}).info, progress_at(0)));
}

TEST(AppliedBefore, HoldsAWholeTransactionAtOrBelowTheProgress) {
  EXPECT_TRUE(applied_before(test::txn(1, 0x100, {}).info, progress_at(0x100)));
  EXPECT_TRUE(applied_before(test::txn(1, 0x0F0, {}).info, progress_at(0x100)));
  EXPECT_FALSE(applied_before(test::txn(1, 0x108, {}).info, progress_at(0x100)));
}

TEST(AppliedBefore, JudgesAFirstChunkByItsCommitRecordStrictlyBelowTheProgress) {
  EXPECT_TRUE(applied_before(chunk(0x0F8, true, false).info, progress_at(0x100)));
  EXPECT_FALSE(applied_before(chunk(0x100, true, false).info, progress_at(0x100)));
  EXPECT_FALSE(applied_before(chunk(0, true, false).info, progress_at(0x100)));
}

TEST(SkipApplied, SelectsWhatIsAboveTheProgressAndCountsTheRest) {
  Batch b;
  b.transactions = {test::txn(1, 0x100, {}), test::txn(2, 0x200, {}), test::txn(3, 0x300, {})};
  SkipApplied skip;
  const auto s = skip.select(b, progress_at(0x200));
  ASSERT_EQ(s.apply.size(), 1u);
  EXPECT_EQ(s.apply[0], &b.transactions[2]);
  EXPECT_EQ(s.last_whole, &b.transactions[2].info);
  EXPECT_EQ(s.skipped, 2u);
}

TEST(SkipApplied, SkipsEveryChunkOfATransactionAppliedBeforeAcrossBatches) {
  SkipApplied skip;
  const auto progress = progress_at(0x1000);
  Batch first;
  first.transactions = {chunk(0x800, true, false)};
  const auto a = skip.select(first, progress);
  EXPECT_TRUE(a.apply.empty());
  EXPECT_EQ(a.skipped, 0u);  // counted at its last chunk

  Batch middle;
  middle.transactions = {chunk(0x800, false, false)};
  EXPECT_NO_THROW(skip.check_continuation(middle, /*in_txn=*/false));
  EXPECT_TRUE(skip.select(middle, progress).apply.empty());

  Batch last;
  last.transactions = {chunk(0x800, false, true), test::txn(9, 0x2000, {})};
  const auto c = skip.select(last, progress);
  ASSERT_EQ(c.apply.size(), 1u);
  EXPECT_EQ(c.apply[0], &last.transactions[1]);
  EXPECT_EQ(c.skipped, 1u);
}

TEST(SkipApplied, AppliesEveryChunkOfATransactionAboveTheProgress) {
  SkipApplied skip;
  const auto progress = progress_at(0x100);
  Batch first;
  first.transactions = {chunk(0x800, true, false)};
  EXPECT_EQ(skip.select(first, progress).apply.size(), 1u);
  Batch last;
  last.transactions = {chunk(0x800, false, true)};
  const auto s = skip.select(last, progress);
  ASSERT_EQ(s.apply.size(), 1u);
  EXPECT_EQ(s.last_whole, &last.transactions[0].info);
}

TEST(SkipApplied, RefusesAContinuationChunkWithoutItsStart) {
  Batch b;
  b.transactions = {chunk(0x800, false, true)};
  SkipApplied skip;
  EXPECT_THROW(skip.check_continuation(b, /*in_txn=*/false), PermanentError);
  EXPECT_NO_THROW(skip.check_continuation(b, /*in_txn=*/true));
}

TEST(SkipApplied, ForgetsTheSkippedTransactionOnReset) {
  SkipApplied skip;
  Batch first;
  first.transactions = {chunk(0x800, true, false)};
  skip.select(first, progress_at(0x1000));
  skip.reset();
  Batch next;
  next.transactions = {chunk(0x800, false, true)};
  EXPECT_THROW(skip.check_continuation(next, /*in_txn=*/false), PermanentError);
}

}  // namespace
}  // namespace cdcsync
