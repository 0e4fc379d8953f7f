// FanoutSink: every sink gets every batch, a failed secondary is caught up on retry, and the reported
// progress is where the slowest sink stopped.
#include "sinks/fanout_sink.h"

#include <gtest/gtest.h>

#include "sinks/recording_sink.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

Batch batch(std::vector<Transaction> txns) {
  return Batch{std::move(txns)};
}

TEST(FanoutSink, AppliesEachBatchToEverySink) {
  RecordingSink target, archive;
  FanoutSink fan{target, {&archive}};
  EXPECT_EQ(fan.apply(batch({test::txn(1, 100, {}), test::txn(2, 200, {})})), Lsn{200});
  EXPECT_EQ(target.applied().size(), 2u);
  EXPECT_EQ(archive.applied().size(), 2u);
}

TEST(FanoutSink, RetryAfterASecondaryFailedCatchesItUpWithoutReapplyingThePrimary) {
  RecordingSink target, archive;
  FanoutSink fan{target, {&archive}};
  archive.fail_next_apply(TransientError("redis went away"));
  const auto b = batch({test::txn(1, 100, {})});
  EXPECT_THROW(fan.apply(b), TransientError);
  EXPECT_EQ(target.applied().size(), 1u);
  EXPECT_TRUE(archive.applied().empty());
  EXPECT_EQ(fan.apply(b), Lsn{100});
  EXPECT_EQ(target.applied().size(), 1u);
  EXPECT_EQ(archive.applied().size(), 1u);
}

TEST(FanoutSink, ProgressIsTheSlowestSinksButANewSecondaryDoesNotPullItBack) {
  RecordingSink target, archive, kafka;
  target.set_progress(Progress{Lsn{500}, Xid{5}, 1, Lsn{600}});
  archive.set_progress(Progress{Lsn{300}, Xid{3}, 1, Lsn{300}});
  FanoutSink fan{target, {&archive, &kafka}};
  const auto p = fan.load_progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->end_lsn, Lsn{300});
  EXPECT_EQ(p->xid, Xid{3});
  EXPECT_EQ(p->acked_lsn, Lsn{600});  // the primary's: what was ever confirmed to the source

  kafka.record_ack(Lsn{700});  // acks alone are not progress
  EXPECT_EQ(fan.load_progress()->end_lsn, Lsn{300});
}

TEST(FanoutSink, NoPrimaryProgressMeansNeverApplied) {
  RecordingSink target, archive;
  archive.set_progress(Progress{Lsn{300}, Xid{3}, 1, Lsn{300}});
  FanoutSink fan{target, {&archive}};
  EXPECT_EQ(fan.load_progress(), std::nullopt);
}

TEST(FanoutSink, AnOpenChunkAnywhereMeansNothingIsDurableYet) {
  RecordingSink target, archive;
  FanoutSink fan{target, {&archive}};
  auto first = test::txn(7, 700, {});
  first.last_chunk = false;
  EXPECT_EQ(fan.apply(batch({first})), std::nullopt);
  fan.abort();
  EXPECT_EQ(target.aborts(), 1);
  EXPECT_EQ(archive.aborts(), 1);
}

}  // namespace
}  // namespace cdcsync
