#include "decoders/assembler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/decoders/pgoutput_test_support.h"

namespace cdcsync {
namespace {

using testing::begin_message;
using testing::commit_message;
using testing::insert_message;
using testing::MessageBuilder;
using testing::relation_message;

std::string with_xid(std::string_view message, std::uint32_t xid) {
  return std::string(1, message[0]) + MessageBuilder('x').u32(xid).bytes().substr(1) +
         std::string(message.substr(1));
}

class AssemblerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spool_dir =
        std::filesystem::temp_directory_path() /
        ("cdcsync-assembler-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(spool_dir);
  }
  void TearDown() override { std::filesystem::remove_all(spool_dir); }

  TransactionAssembler& make(int version = 3, std::size_t chunk = 10000, bool in_steps = false) {
    assembler = std::make_unique<TransactionAssembler>(
        AssemblerOptions{.protocol = {.version = version,
                                      .streaming = version >= 2 ? StreamingMode::On : StreamingMode::Off},
                         .max_changes_per_chunk = chunk,
                         .spool_dir = spool_dir,
                         .replay_in_steps = in_steps},
        [this](Transaction&& t) { emitted.push_back(std::move(t)); });
    return *assembler;
  }
  void feed(std::string_view message, std::uint64_t lsn) { assembler->feed(message, Lsn{lsn}); }
  // xid 100 streams relation 1 and ten inserts (0x101..0x10a) in one block and commits at 0x130 (end 0x131).
  void stream_ten_inserts_and_commit() {
    feed(MessageBuilder('S').u32(100).u8(1), 0x100);
    feed(with_xid(relation_message(1), 100), 0x100);
    for (int i = 0; i < 10; ++i) feed(with_xid(insert_message(1, std::to_string(i), "a"), 100), 0x101 + i);
    feed(MessageBuilder('E'), 0x120);
    feed(MessageBuilder('c').u32(100).u8(0).u64(0x130).u64(0x131).u64(9), 0x130);
  }
  std::size_t spool_files() const {
    if (!std::filesystem::exists(spool_dir)) return 0;
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(spool_dir)) ++n;
    return n;
  }

  std::filesystem::path spool_dir;
  std::unique_ptr<TransactionAssembler> assembler;
  std::vector<Transaction> emitted;
};

TEST_F(AssemblerTest, EmitsOneWholeTransactionPerBeginAndCommitWithItsInfoAndChangeLsns) {
  make(1);
  feed(begin_message(0x200, 42, 1000), 0x100);
  feed(relation_message(1), 0x100);
  feed(insert_message(1, "1", "a"), 0x110);
  feed(insert_message(1, "2", "b"), 0x120);
  EXPECT_TRUE(emitted.empty());
  EXPECT_EQ(assembler->oldest_held_lsn(), Lsn{0x100});
  feed(commit_message(0x200, 0x230, 1000), 0x200);
  ASSERT_EQ(emitted.size(), 1u);
  const Transaction& t = emitted[0];
  EXPECT_TRUE(t.whole());
  EXPECT_EQ(t.info.xid.value, 42u);
  EXPECT_EQ(t.info.final_lsn, Lsn{0x200});
  EXPECT_EQ(t.info.end_lsn, Lsn{0x230});
  EXPECT_EQ(t.info.commit_time_us, 1000);
  ASSERT_EQ(t.changes.size(), 2u);
  EXPECT_EQ(t.changes[0].lsn, Lsn{0x110});
  EXPECT_EQ(t.changes[1].lsn, Lsn{0x120});
  EXPECT_EQ(t.changes[1].after.value(1), "b");
  EXPECT_FALSE(assembler->oldest_held_lsn().has_value());
}

TEST_F(AssemblerTest, RejectsCommitWithoutBeginNestedBeginAndACommitLsnThatDiffersFromTheBegin) {
  make(1);
  EXPECT_THROW(feed(commit_message(0x200, 0x230), 0x200), ProtocolError);
  make(1);
  feed(begin_message(0x200, 1), 0x100);
  EXPECT_THROW(feed(begin_message(0x300, 2), 0x150), ProtocolError);
  make(1);
  feed(begin_message(0x200, 1), 0x100);
  try {
    feed(commit_message(0x201, 0x230), 0x201);
    FAIL();
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.lsn(), Lsn{0x201});
    EXPECT_NE(std::string(e.what()).find("0/200"), std::string::npos) << e.what();
  }
  make(1);
  feed(relation_message(1), 0x10);
  EXPECT_THROW(feed(insert_message(1, "1", "a"), 0x20), ProtocolError);
}

TEST_F(AssemblerTest, SplitsALargeTransactionIntoChunksAndSetsEndLsnOnTheLastOnly) {
  make(1, 3);
  feed(begin_message(0x900, 5), 0x100);
  feed(relation_message(1), 0x100);
  for (int i = 0; i < 7; ++i) {
    feed(insert_message(1, std::to_string(i), "x"), 0x100 + i);
    EXPECT_LE(emitted.size(), static_cast<std::size_t>(i / 3 + (i % 3 == 0 ? 0 : 1)));
  }
  ASSERT_EQ(emitted.size(), 2u) << "a full chunk leaves when the next change comes";
  feed(commit_message(0x900, 0x990), 0x900);
  ASSERT_EQ(emitted.size(), 3u);
  EXPECT_TRUE(emitted[0].first_chunk);
  EXPECT_FALSE(emitted[0].last_chunk);
  EXPECT_FALSE(emitted[1].first_chunk);
  EXPECT_FALSE(emitted[1].last_chunk);
  EXPECT_FALSE(emitted[2].first_chunk);
  EXPECT_TRUE(emitted[2].last_chunk);
  EXPECT_EQ(emitted[0].changes.size(), 3u);
  EXPECT_EQ(emitted[1].changes.size(), 3u);
  EXPECT_EQ(emitted[2].changes.size(), 1u);
  EXPECT_FALSE(emitted[0].info.end_lsn.valid());
  EXPECT_EQ(emitted[2].info.end_lsn, Lsn{0x990});
  EXPECT_EQ(emitted[1].info.xid.value, 5u);
  EXPECT_EQ(emitted[2].changes[0].after.value(0), "6");
}

// Recycled changes (TransactionAssembler::recycle) carry the content of what they held before: none of it
// may show in the changes decoded into them, nor in chunks built on recycled lists.
TEST_F(AssemblerTest, ChangesDecodedIntoRecycledMemoryCarryNothingOfWhatItHeldBefore) {
  make(1, 2);
  feed(begin_message(0x300, 5), 0x100);
  feed(relation_message(1), 0x100);
  const MessageBuilder update =
      MessageBuilder('U').u32(1).byte('O').i16(2).text("1").text("old").byte('N').i16(2).text("1");
  feed(MessageBuilder(update).text("new"), 0x110);
  feed(MessageBuilder('T').u32(1).u8(1).u32(1), 0x120);
  feed(MessageBuilder('M').u8(1).u64(0x130).str("prefix").i32(7).raw("content"), 0x130);
  feed(commit_message(0x300, 0x310), 0x300);
  ASSERT_EQ(emitted.size(), 2u);
  assembler->recycle(emitted);
  EXPECT_TRUE(emitted.empty());
  EXPECT_EQ(assembler->pool().spare_changes(), 3u);
  EXPECT_EQ(assembler->pool().spare_lists(), 2u);

  feed(begin_message(0x500, 6), 0x400);
  for (int i = 0; i < 4; ++i) feed(insert_message(1, std::to_string(i), "v" + std::to_string(i)), 0x410 + i);
  feed(commit_message(0x500, 0x510), 0x500);
  ASSERT_EQ(emitted.size(), 2u);
  for (std::size_t t = 0; t < 2; ++t) {
    ASSERT_EQ(emitted[t].changes.size(), 2u) << "a recycled list comes back empty";
    for (std::size_t c = 0; c < 2; ++c) {
      const Change& ch = emitted[t].changes[c];
      const std::string n = std::to_string(t * 2 + c);
      EXPECT_EQ(ch.op, ChangeOp::Insert);
      EXPECT_EQ(ch.lsn, Lsn{0x410 + t * 2 + c});
      EXPECT_EQ(ch.before_kind, 0);
      EXPECT_TRUE(ch.before.empty());
      ASSERT_EQ(ch.after.size(), 2u);
      EXPECT_EQ(ch.after.value(0), n);
      EXPECT_EQ(ch.after.value(1), "v" + n);
      EXPECT_TRUE(ch.truncated.empty());
      EXPECT_FALSE(ch.truncate_cascade);
      EXPECT_FALSE(ch.message_transactional);
      EXPECT_TRUE(ch.message_prefix.empty());
      EXPECT_TRUE(ch.message_content.empty());
      ASSERT_NE(ch.relation, nullptr);
    }
  }
  EXPECT_EQ(emitted[1].info.end_lsn, Lsn{0x510});
}

TEST_F(AssemblerTest, EndsATransactionOfExactlyOneChunkWithThatChunkNotAnEmptyOne) {
  make(1, 2);
  feed(begin_message(0x900, 5), 0x100);
  feed(relation_message(1), 0x100);
  feed(insert_message(1, "1", "x"), 0x101);
  feed(insert_message(1, "2", "x"), 0x102);
  feed(commit_message(0x900, 0x990), 0x900);
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_TRUE(emitted[0].whole());
  EXPECT_EQ(emitted[0].changes.size(), 2u);
}

TEST_F(AssemblerTest, EmitsANonTransactionalMessageAsItsOwnTransactionWithXidZero) {
  make(1);
  feed(MessageBuilder('M').u8(0).u64(0x777).str("cdcsync").i32(2).raw("hi"), 0x777);
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].info.xid.value, 0u);
  EXPECT_EQ(emitted[0].info.final_lsn, Lsn{0x777});
  EXPECT_EQ(emitted[0].info.end_lsn, Lsn{0x777});
  ASSERT_EQ(emitted[0].changes.size(), 1u);
  EXPECT_EQ(emitted[0].changes[0].op, ChangeOp::Message);
  EXPECT_EQ(emitted[0].changes[0].message_content, "hi");
}

TEST_F(AssemblerTest, KeepsTransactionalMessagesAndOriginInTheirTransaction) {
  make(1);
  feed(begin_message(0x200, 3), 0x100);
  feed(MessageBuilder('O').u64(0xABC).str("upstream"), 0x100);
  feed(MessageBuilder('M').u8(1).u64(0x150).str("p").i32(1).raw("x"), 0x150);
  feed(commit_message(0x200, 0x210), 0x200);
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].info.origin, "upstream");
  ASSERT_EQ(emitted[0].changes.size(), 1u);
  EXPECT_TRUE(emitted[0].changes[0].message_transactional);
}

TEST_F(AssemblerTest, ReleasesInterleavedStreamsAtTheirCommitsWithoutAbortedSubtransactions) {
  make(2);
  feed(relation_message(1), 0x10);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(relation_message(1), 100), 0x100);
  feed(with_xid(insert_message(1, "1", "a"), 100), 0x101);
  feed(MessageBuilder('E'), 0x101);
  feed(MessageBuilder('S').u32(200).u8(1), 0x102);
  feed(with_xid(relation_message(1), 200), 0x102);
  feed(with_xid(insert_message(1, "2", "b"), 200), 0x103);
  feed(MessageBuilder('E'), 0x103);
  feed(MessageBuilder('S').u32(100).u8(0), 0x104);
  feed(with_xid(insert_message(1, "3", "sub"), 101), 0x105);
  feed(with_xid(insert_message(1, "4", "a"), 100), 0x106);
  feed(MessageBuilder('E'), 0x106);
  EXPECT_EQ(spool_files(), 2u);
  EXPECT_EQ(assembler->streamed_in_progress(), 2u);
  EXPECT_EQ(assembler->oldest_held_lsn(), Lsn{0x100});
  feed(MessageBuilder('A').u32(100).u32(101), 0x107);
  feed(MessageBuilder('c').u32(200).u8(0).u64(0x108).u64(0x109).u64(9), 0x108);
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].info.xid.value, 200u);
  EXPECT_EQ(emitted[0].info.final_lsn, Lsn{0x108});
  EXPECT_EQ(emitted[0].info.end_lsn, Lsn{0x109});
  ASSERT_EQ(emitted[0].changes.size(), 1u);
  EXPECT_EQ(emitted[0].changes[0].after.value(0), "2");
  EXPECT_EQ(emitted[0].changes[0].lsn, Lsn{0x103});
  feed(MessageBuilder('c').u32(100).u8(0).u64(0x10a).u64(0x10b).u64(9), 0x10a);
  ASSERT_EQ(emitted.size(), 2u);
  ASSERT_EQ(emitted[1].changes.size(), 2u);
  EXPECT_EQ(emitted[1].changes[0].after.value(0), "1");
  EXPECT_EQ(emitted[1].changes[1].after.value(0), "4");
  EXPECT_EQ(emitted[1].changes[1].lsn, Lsn{0x106});
  EXPECT_EQ(spool_files(), 0u);
}

TEST_F(AssemblerTest, DropsAWholeStreamedTransactionAndItsSpoolOnAbortOfItsXid) {
  make(2);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(relation_message(1), 100), 0x100);
  feed(with_xid(insert_message(1, "1", "a"), 100), 0x101);
  feed(MessageBuilder('E'), 0x101);
  EXPECT_EQ(spool_files(), 1u);
  feed(MessageBuilder('A').u32(100).u32(100), 0x102);
  EXPECT_EQ(spool_files(), 0u);
  EXPECT_TRUE(emitted.empty());
  EXPECT_THROW(feed(MessageBuilder('c').u32(100).u8(0).u64(1).u64(2).u64(3), 0x103), ProtocolError);
}

// A Relation message inside a stream is the streamed transaction's own: a transaction committed in
// between still decodes with the schema it was sent with.
TEST_F(AssemblerTest, AppliesARelationMessageInsideAStreamOnlyToThatTransaction) {
  make(2);
  feed(begin_message(0x50, 1), 0x40);
  feed(relation_message(1, 2), 0x40);
  feed(insert_message(1, "1", "a"), 0x41);
  feed(commit_message(0x50, 0x51), 0x50);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(relation_message(1, 3), 100), 0x100);
  feed(with_xid(MessageBuilder('I').u32(1).byte('N').i16(3).text("2").text("b").text("c").bytes(), 100),
       0x101);
  feed(MessageBuilder('E'), 0x101);
  feed(begin_message(0x150, 2), 0x140);
  feed(insert_message(1, "3", "two columns still"), 0x141);
  feed(commit_message(0x150, 0x151), 0x150);
  ASSERT_EQ(emitted.size(), 2u);
  EXPECT_EQ(emitted[1].changes[0].relation->columns.size(), 2u);
  EXPECT_EQ(assembler->relations().find(RelationId{1})->columns.size(), 2u);
  feed(MessageBuilder('c').u32(100).u8(0).u64(0x160).u64(0x161).u64(9), 0x160);
  ASSERT_EQ(emitted.size(), 3u);
  EXPECT_EQ(emitted[2].changes[0].relation->columns.size(), 3u);
  EXPECT_EQ(emitted[2].changes[0].after.value(2), "c");
}

// pgoutput counts a schema sent inside a stream as sent once the stream commits: the next transaction's
// changes come without a Relation message (found with streaming = "on" against PostgreSQL 15).
TEST_F(AssemblerTest, ARelationSentInACommittedStreamDescribesTheTransactionsAfterIt) {
  make(2);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(relation_message(1), 100), 0x100);
  feed(with_xid(insert_message(1, "1", "a"), 100), 0x101);
  feed(MessageBuilder('E'), 0x101);
  EXPECT_EQ(assembler->relations().find(RelationId{1}), nullptr);
  feed(MessageBuilder('c').u32(100).u8(0).u64(0x110).u64(0x111).u64(9), 0x110);
  feed(begin_message(0x150, 2), 0x140);
  feed(insert_message(1, "2", "b"), 0x141);
  feed(commit_message(0x150, 0x151), 0x150);
  ASSERT_EQ(emitted.size(), 2u);
  EXPECT_EQ(emitted[1].changes[0].after.value(0), "2");
}

// An aborted stream's schema is not promoted; a Relation sent outside the stream after the stream's own
// stays (it is what pgoutput last sent for transactions outside the stream).
TEST_F(AssemblerTest, AnAbortedStreamOrANewerRelationOutsideTheStreamKeepsTheCache) {
  make(2);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(relation_message(1, 3), 100), 0x100);
  feed(MessageBuilder('E'), 0x101);
  feed(MessageBuilder('A').u32(100).u32(100), 0x102);
  EXPECT_EQ(assembler->relations().find(RelationId{1}), nullptr);
  feed(MessageBuilder('S').u32(200).u8(1), 0x200);
  feed(with_xid(relation_message(1, 3), 200), 0x200);
  feed(with_xid(MessageBuilder('I').u32(1).byte('N').i16(3).text("1").text("a").text("b").bytes(), 200),
       0x201);
  feed(MessageBuilder('E'), 0x201);
  feed(begin_message(0x250, 2), 0x240);
  feed(relation_message(1, 2), 0x240);
  feed(insert_message(1, "2", "b"), 0x241);
  feed(commit_message(0x250, 0x251), 0x250);
  feed(MessageBuilder('c').u32(200).u8(0).u64(0x260).u64(0x261).u64(9), 0x260);
  ASSERT_EQ(emitted.size(), 2u);
  EXPECT_EQ(emitted[1].changes[0].relation->columns.size(), 3u);
  EXPECT_EQ(assembler->relations().find(RelationId{1})->columns.size(), 2u);
}

TEST_F(AssemblerTest, RejectsMessagesThatDoNotBelongInsideAStreamBlock) {
  make(2);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  EXPECT_THROW(feed(begin_message(0x200, 1), 0x101), ProtocolError);
  make(2);
  EXPECT_THROW(feed(MessageBuilder('S').u32(100).u8(0), 0x100), ProtocolError);
  make(2);
  feed(begin_message(0x200, 1), 0x100);
  EXPECT_THROW(feed(MessageBuilder('S').u32(100).u8(1), 0x101), ProtocolError);
}

TEST_F(AssemblerTest, HoldsAPreparedTransactionUntilCommitPreparedAndDropsARolledBackOne) {
  make(3);
  feed(MessageBuilder('b').u64(0x200).u64(0x210).u64(5).u32(7).str("g1"), 0x100);
  feed(relation_message(1), 0x100);
  feed(insert_message(1, "1", "a"), 0x110);
  feed(MessageBuilder('P').u8(0).u64(0x200).u64(0x210).u64(5).u32(7).str("g1"), 0x200);
  feed(MessageBuilder('b').u64(0x300).u64(0x310).u64(5).u32(8).str("g2"), 0x250);
  feed(insert_message(1, "2", "b"), 0x260);
  feed(MessageBuilder('P').u8(0).u64(0x300).u64(0x310).u64(5).u32(8).str("g2"), 0x300);
  EXPECT_TRUE(emitted.empty());
  EXPECT_EQ(assembler->prepared_held(), 2u);
  EXPECT_EQ(assembler->oldest_held_lsn(), Lsn{0x100});
  // A transaction committed meanwhile goes first.
  feed(begin_message(0x350, 9), 0x340);
  feed(insert_message(1, "3", "c"), 0x341);
  feed(commit_message(0x350, 0x351), 0x350);
  feed(MessageBuilder('r').u8(0).u64(0x310).u64(0x360).u64(5).u64(6).u32(8).str("g2"), 0x360);
  feed(MessageBuilder('K').u8(0).u64(0x400).u64(0x410).u64(11).u32(7).str("g1"), 0x400);
  ASSERT_EQ(emitted.size(), 2u);
  EXPECT_EQ(emitted[0].info.xid.value, 9u);
  const Transaction& t = emitted[1];
  EXPECT_EQ(t.info.xid.value, 7u);
  EXPECT_EQ(t.info.final_lsn, Lsn{0x400});
  EXPECT_EQ(t.info.end_lsn, Lsn{0x410});
  EXPECT_EQ(t.info.commit_time_us, 11);
  ASSERT_EQ(t.changes.size(), 1u);
  EXPECT_EQ(t.changes[0].after.value(1), "a");
  EXPECT_EQ(t.changes[0].lsn, Lsn{0x110});
  EXPECT_EQ(spool_files(), 0u);
  EXPECT_THROW(feed(MessageBuilder('K').u8(0).u64(0x500).u64(0x510).u64(1).u32(7).str("g1"), 0x500),
               ProtocolError);
}

TEST_F(AssemblerTest, ReleasesAStreamPreparedTransactionAtCommitPrepared) {
  make(3);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(relation_message(1), 100), 0x100);
  feed(with_xid(insert_message(1, "1", "a"), 100), 0x101);
  feed(MessageBuilder('E'), 0x101);
  feed(MessageBuilder('p').u8(0).u64(0x200).u64(0x210).u64(5).u32(100).str("g"), 0x200);
  EXPECT_EQ(assembler->streamed_in_progress(), 0u);
  EXPECT_EQ(assembler->prepared_held(), 1u);
  feed(MessageBuilder('K').u8(0).u64(0x300).u64(0x310).u64(6).u32(100).str("g"), 0x300);
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].changes.size(), 1u);
  EXPECT_EQ(emitted[0].info.end_lsn, Lsn{0x310});
}

TEST_F(AssemblerTest, ReplaysASpooledTransactionInChunks) {
  make(2, 4);
  stream_ten_inserts_and_commit();
  ASSERT_EQ(emitted.size(), 3u);
  EXPECT_EQ(emitted[0].changes.size(), 4u);
  EXPECT_EQ(emitted[2].changes.size(), 2u);
  EXPECT_TRUE(emitted[0].first_chunk && !emitted[0].last_chunk);
  EXPECT_TRUE(!emitted[2].first_chunk && emitted[2].last_chunk);
  EXPECT_FALSE(emitted[1].info.end_lsn.valid());
  EXPECT_EQ(emitted[2].info.end_lsn, Lsn{0x131});
  EXPECT_EQ(emitted[2].info.final_lsn, Lsn{0x130});
}

// What keeps a daemon's memory bounded when a streamed transaction of millions of rows commits: its chunks
// come out one per step, not all within the feed() of the Stream Commit.
TEST_F(AssemblerTest, ReplaysInStepsOneChunkAtATimeAndHoldsEverythingElseMeanwhile) {
  make(2, 4, /*in_steps=*/true);
  stream_ten_inserts_and_commit();
  EXPECT_TRUE(emitted.empty());
  EXPECT_TRUE(assembler->replaying());
  EXPECT_TRUE(assembler->in_transaction());
  EXPECT_EQ(assembler->oldest_held_lsn(), Lsn{0x100});
  EXPECT_THROW(feed(begin_message(0x150, 2), 0x140), std::logic_error);
  EXPECT_TRUE(assembler->resume_replay());
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].changes.size(), 4u);
  EXPECT_TRUE(assembler->resume_replay());
  EXPECT_EQ(emitted.size(), 2u);
  EXPECT_FALSE(assembler->resume_replay());
  ASSERT_EQ(emitted.size(), 3u);
  EXPECT_EQ(emitted[2].changes.size(), 2u);
  EXPECT_EQ(emitted[2].info.end_lsn, Lsn{0x131});
  EXPECT_FALSE(assembler->replaying());
  EXPECT_FALSE(assembler->in_transaction());
  EXPECT_EQ(assembler->oldest_held_lsn(), std::nullopt);
  EXPECT_EQ(spool_files(), 0u);
  // The relation the stream sent now decodes an ordinary transaction without a Relation message.
  feed(begin_message(0x150, 2), 0x140);
  feed(insert_message(1, "x", "b"), 0x141);
  feed(commit_message(0x150, 0x151), 0x150);
  EXPECT_EQ(emitted.size(), 4u);
}

// A caller keeps reading the stream while a committed stream replays (so the server goes on streaming):
// the blocks of other streamed transactions are spooled and emit nothing; what would emit waits. A stream
// whose first block came during the replay decodes with the schema the replayed stream sent (pgoutput
// counts it as sent once that stream committed), unless it sent its own.
TEST_F(AssemblerTest, SpoolsOtherStreamsWhileReplayingAndDecodesThemWithTheSchemaTheReplayedOneSent) {
  make(2, 4, /*in_steps=*/true);
  stream_ten_inserts_and_commit();
  ASSERT_TRUE(assembler->replaying());
  EXPECT_TRUE(assembler->resume_replay());
  ASSERT_EQ(emitted.size(), 1u);

  // xid 200 sends no Relation; xid 300 sends its own, with three columns; xid 400 is aborted.
  const std::string three_columns =
      MessageBuilder('I').u32(1).byte('N').i16(3).text("z").text("b").text("c").bytes();
  const std::vector<std::pair<std::string, std::uint64_t>> blocks = {
      {MessageBuilder('S').u32(200).u8(1).bytes(), 0x140},
      {with_xid(insert_message(1, "y", "b"), 200), 0x141},
      {MessageBuilder('E').bytes(), 0x142},
      {MessageBuilder('S').u32(300).u8(1).bytes(), 0x143},
      {with_xid(relation_message(1, 3), 300), 0x143},
      {with_xid(three_columns, 300), 0x144},
      {MessageBuilder('E').bytes(), 0x145},
      {MessageBuilder('S').u32(400).u8(1).bytes(), 0x146},
      {with_xid(insert_message(1, "gone", "b"), 400), 0x147},
      {MessageBuilder('E').bytes(), 0x148},
      {MessageBuilder('A').u32(400).u32(400).bytes(), 0x149},
  };
  for (const auto& [message, lsn] : blocks) {
    ASSERT_TRUE(assembler->can_feed(message)) << message[0];
    feed(message, lsn);
  }
  EXPECT_EQ(emitted.size(), 1u);
  EXPECT_EQ(assembler->streamed_in_progress(), 2u);
  EXPECT_EQ(assembler->oldest_held_lsn(), Lsn{0x100});
  // What would emit, or must follow the replay, is refused until it ends.
  const std::string commit_200 = MessageBuilder('c').u32(200).u8(0).u64(0x150).u64(0x151).u64(9).bytes();
  EXPECT_FALSE(assembler->can_feed(commit_200));
  EXPECT_FALSE(assembler->can_feed(begin_message(0x160, 5)));
  EXPECT_FALSE(assembler->can_feed(relation_message(1)));
  EXPECT_THROW(feed(commit_200, 0x150), std::logic_error);

  while (assembler->resume_replay()) {
  }
  ASSERT_EQ(emitted.size(), 3u);
  EXPECT_TRUE(emitted[2].last_chunk);
  EXPECT_TRUE(assembler->can_feed(commit_200));
  feed(commit_200, 0x150);
  while (assembler->resume_replay()) {
  }
  feed(MessageBuilder('c').u32(300).u8(0).u64(0x152).u64(0x153).u64(9), 0x152);
  while (assembler->resume_replay()) {
  }
  ASSERT_EQ(emitted.size(), 5u);
  ASSERT_EQ(emitted[3].changes.size(), 1u);
  EXPECT_EQ(emitted[3].info.xid.value, 200u);
  EXPECT_EQ(emitted[3].changes[0].relation->columns.size(), 2u);
  EXPECT_EQ(emitted[3].changes[0].after.value(0), "y");
  ASSERT_EQ(emitted[4].changes.size(), 1u);
  EXPECT_EQ(emitted[4].changes[0].relation->columns.size(), 3u);
  EXPECT_EQ(emitted[4].changes[0].after.value(2), "c");
  EXPECT_EQ(assembler->oldest_held_lsn(), std::nullopt);
  EXPECT_EQ(spool_files(), 0u);
}

TEST_F(AssemblerTest, RemovesSpoolFilesOnDestructionAndStaleOnesAtStart) {
  make(2);
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(insert_message(1, "1", "a"), 100), 0x101);
  EXPECT_EQ(spool_files(), 1u);
  assembler.reset();
  EXPECT_EQ(spool_files(), 0u);
  std::filesystem::create_directories(spool_dir);
  { std::ofstream stale(spool_dir / "cdcsync-spool-1-1-xid-5"); }
  { std::ofstream other(spool_dir / "not-ours"); }
  make(2);
  EXPECT_EQ(spool_files(), 1u);
  EXPECT_TRUE(std::filesystem::exists(spool_dir / "not-ours"));
}

TEST_F(AssemblerTest, ChunksWideRowsByBytesAndSendsAChunkAsSoonAsItIsFull) {
  const std::string wide(100'000, 'w');
  assembler = std::make_unique<TransactionAssembler>(
      AssemblerOptions{
          .protocol = {.version = 1}, .max_changes_per_chunk = 10000, .max_chunk_bytes = 250'000},
      [this](Transaction&& t) { emitted.push_back(std::move(t)); });
  feed(begin_message(0x900, 5), 0x100);
  feed(relation_message(1), 0x100);
  for (int i = 0; i < 5; ++i) feed(insert_message(1, std::to_string(i), wide), 0x101 + i);
  // Three rows reach 250 kB: that chunk leaves at once, not when the next row comes.
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(emitted[0].changes.size(), 3u);
  EXPECT_TRUE(emitted[0].first_chunk);
  EXPECT_FALSE(emitted[0].last_chunk);
  EXPECT_GE(assembler->open_bytes(), 200'000u);
  feed(insert_message(1, "5", wide), 0x106);
  ASSERT_EQ(emitted.size(), 2u);
  EXPECT_EQ(assembler->open_bytes(), 0u);
  feed(commit_message(0x900, 0x990), 0x900);
  ASSERT_EQ(emitted.size(), 3u);
  EXPECT_TRUE(emitted[2].changes.empty()) << "the last chunk may hold nothing but the commit";
  EXPECT_TRUE(emitted[2].last_chunk);
  EXPECT_EQ(emitted[2].info.end_lsn, Lsn{0x990});
  for (const auto& t : emitted) EXPECT_LE(approximate_bytes(t), 250'000u + approximate_bytes(emitted[0]) / 3);
}

TEST_F(AssemblerTest, AStreamedTransactionPastTheSpoolLimitIsRefusedNamingIt) {
  SpoolUsage usage;
  usage.limit = 4096;
  assembler = std::make_unique<TransactionAssembler>(
      AssemblerOptions{.protocol = {.version = 2, .streaming = StreamingMode::On},
                       .spool_dir = spool_dir,
                       .spool_usage = &usage},
      [this](Transaction&& t) { emitted.push_back(std::move(t)); });
  feed(MessageBuilder('S').u32(100).u8(1), 0x100);
  feed(with_xid(relation_message(1), 100), 0x100);
  try {
    for (int i = 0; i < 100; ++i)
      feed(with_xid(insert_message(1, std::to_string(i), std::string(100, 'a')), 100), 0x101 + i);
    FAIL() << "the spool passed its limit";
  } catch (const SpoolLimitExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("xid 100"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("spool.limit_bytes"), std::string::npos) << e.what();
  }
  EXPECT_LE(usage.bytes.load(), usage.limit);
  assembler.reset();
  EXPECT_EQ(usage.bytes.load(), 0u);
}

}  // namespace
}  // namespace cdcsync
