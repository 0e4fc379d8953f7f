// RecordingSink follows the Sink contract closely enough for pipeline tests.
#include "sinks/recording_sink.h"

#include <gtest/gtest.h>

#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

Batch batch(std::vector<Transaction> txns) {
  return Batch{std::move(txns)};
}

TEST(RecordingSink, AppliesWholeTransactionsAndSkipsThoseAtOrBelowProgress) {
  RecordingSink sink;
  EXPECT_EQ(sink.apply(batch({test::txn(1, 100, {}), test::txn(2, 200, {})})), Lsn{200});
  EXPECT_EQ(sink.apply(batch({test::txn(2, 200, {}), test::txn(3, 300, {})})), Lsn{300});
  ASSERT_EQ(sink.applied().size(), 3u);
  EXPECT_EQ(sink.applied()[2].xid, Xid{3});
  EXPECT_EQ(sink.load_progress()->end_lsn, Lsn{300});
}

TEST(RecordingSink, KeepsChunksOpenUntilTheLastOne) {
  RecordingSink sink;
  auto first = test::txn(7, 700, {});
  first.last_chunk = false;
  auto last = test::txn(7, 700, {});
  last.first_chunk = false;
  EXPECT_EQ(sink.apply(batch({first})), std::nullopt);
  EXPECT_TRUE(sink.applied().empty());
  EXPECT_EQ(sink.apply(batch({last})), Lsn{700});
  EXPECT_EQ(sink.applied().size(), 1u);
}

TEST(RecordingSink, ThrowsWhenToldAndAppliesNothingOfThatBatch) {
  RecordingSink sink;
  sink.fail_next_apply(TransientError("lost connection"));
  EXPECT_THROW(sink.apply(batch({test::txn(1, 100, {})})), TransientError);
  EXPECT_TRUE(sink.applied().empty());
  EXPECT_EQ(sink.apply(batch({test::txn(1, 100, {})})), Lsn{100});
}

TEST(RecordingSink, NeverMovesAckedBackwards) {
  RecordingSink sink;
  sink.record_ack(Lsn{500});
  sink.record_ack(Lsn{400});
  EXPECT_EQ(sink.load_progress()->acked_lsn, Lsn{500});
  EXPECT_EQ(sink.acks().size(), 2u);
}

}  // namespace
}  // namespace cdcsync
