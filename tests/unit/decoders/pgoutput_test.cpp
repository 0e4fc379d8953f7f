#include "decoders/pgoutput.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "tests/unit/decoders/pgoutput_test_support.h"

namespace cdcsync {
namespace {

using testing::MessageBuilder;
using testing::relation_message;

class PgOutputDecoderTest : public ::testing::Test {
 protected:
  pgoutput::Message decode(std::string_view bytes) { return decoder.decode(bytes, relations, change); }
  void learn(std::string_view relation_bytes) {
    auto m = decode(relation_bytes);
    relations.put(std::get<pgoutput::Relation>(m).relation);
  }

  PgOutputDecoder decoder{ProtocolOptions{.version = 4, .streaming = StreamingMode::On}};
  RelationCache relations;
  Change change;
};

TEST_F(PgOutputDecoderTest, DecodesBeginWithFinalLsnCommitTimeAndXid) {
  auto m = std::get<pgoutput::Begin>(decode(testing::begin_message(0x16B374D848, 755, 123456)));
  EXPECT_EQ(m.final_lsn.str(), "16/B374D848");
  EXPECT_EQ(m.commit_time_us, 123456);
  EXPECT_EQ(m.xid.value, 755u);
}

TEST_F(PgOutputDecoderTest, DecodesCommitWithFlagsCommitLsnEndLsnAndTime) {
  auto m = std::get<pgoutput::Commit>(decode(testing::commit_message(0x100, 0x180, 99)));
  EXPECT_EQ(m.flags, 0);
  EXPECT_EQ(m.commit_lsn, Lsn{0x100});
  EXPECT_EQ(m.end_lsn, Lsn{0x180});
  EXPECT_EQ(m.commit_time_us, 99);
}

TEST_F(PgOutputDecoderTest, DecodesOriginNameAndLsn) {
  auto m = std::get<pgoutput::Origin>(decode(MessageBuilder('O').u64(0xABCDEF).str("upstream")));
  EXPECT_EQ(m.name, "upstream");
  EXPECT_EQ(m.origin_commit_lsn, Lsn{0xABCDEF});
}

TEST_F(PgOutputDecoderTest, DecodesRelationWithKeyFlagTypesAndModifiers) {
  auto m = decode(MessageBuilder('R')
                      .u32(16385)
                      .str("")
                      .str("customer")
                      .byte('f')
                      .i16(2)
                      .u8(1)
                      .str("id")
                      .u32(20)
                      .i32(-1)
                      .u8(0)
                      .str("balance")
                      .u32(1700)
                      .i32(786438));
  const auto& rel = *std::get<pgoutput::Relation>(m).relation;
  EXPECT_EQ(rel.id.value, 16385u);
  EXPECT_EQ(rel.schema, "");
  EXPECT_EQ(rel.name, "customer");
  EXPECT_EQ(rel.replica_identity, 'f');
  ASSERT_EQ(rel.columns.size(), 2u);
  EXPECT_TRUE(rel.columns[0].part_of_key);
  EXPECT_FALSE(rel.columns[1].part_of_key);
  EXPECT_EQ(rel.columns[1].type_oid, 1700u);
  EXPECT_EQ(rel.columns[1].type_modifier, 786438);
  EXPECT_EQ(relations.size(), 0u) << "decode() leaves the cache to the caller";
}

TEST_F(PgOutputDecoderTest, DecodesTypeMessage) {
  auto m = std::get<pgoutput::Type>(decode(MessageBuilder('Y').u32(16390).str("fixture").str("mood")));
  EXPECT_EQ(m.type.oid, 16390u);
  EXPECT_EQ(m.type.schema, "fixture");
  EXPECT_EQ(m.type.name, "mood");
}

TEST_F(PgOutputDecoderTest, DecodesInsertWithNullUnchangedToastTextAndBinaryColumns) {
  learn(relation_message(1, 4));
  auto m =
      decode(MessageBuilder('I').u32(1).byte('N').i16(4).text("42").null().byte('u').byte('b').i32(3).raw(
          std::string("\x00\x01\x02", 3)));
  EXPECT_TRUE(std::holds_alternative<pgoutput::DataChange>(m));
  EXPECT_EQ(change.op, ChangeOp::Insert);
  EXPECT_EQ(change.relation->name, "t1");
  ASSERT_EQ(change.after.size(), 4u);
  EXPECT_EQ(change.after.value(0), "42");
  EXPECT_EQ(change.after.kind(0), DatumKind::Text);
  EXPECT_TRUE(change.after.is_null(1));
  EXPECT_TRUE(change.after.is_unchanged_toast(2));
  EXPECT_EQ(change.after.kind(3), DatumKind::Binary);
  EXPECT_EQ(change.after.value(3), std::string_view("\x00\x01\x02", 3));
  EXPECT_TRUE(change.before.empty());
  EXPECT_EQ(change.before_kind, 0);
}

TEST_F(PgOutputDecoderTest, DecodesUpdateWithOldKeyOldRowOrNoOldTuple) {
  learn(relation_message(1));
  decode(MessageBuilder('U').u32(1).byte('K').i16(2).text("1").null().byte('N').i16(2).text("2").text("b"));
  EXPECT_EQ(change.op, ChangeOp::Update);
  EXPECT_EQ(change.before_kind, 'K');
  EXPECT_EQ(change.before.value(0), "1");
  EXPECT_EQ(change.after.value(0), "2");

  decode(
      MessageBuilder('U').u32(1).byte('O').i16(2).text("1").text("a").byte('N').i16(2).text("1").text("b"));
  EXPECT_EQ(change.before_kind, 'O');
  EXPECT_EQ(change.before.value(1), "a");

  decode(MessageBuilder('U').u32(1).byte('N').i16(2).text("1").text("c"));
  EXPECT_EQ(change.before_kind, 0);
  EXPECT_TRUE(change.before.empty()) << "the reused Change must not keep the previous old tuple";
  EXPECT_EQ(change.after.value(1), "c");
}

TEST_F(PgOutputDecoderTest, DecodesDeleteWithOldKeyAndRejectsOneWithoutOldTuple) {
  learn(relation_message(1));
  decode(MessageBuilder('D').u32(1).byte('K').i16(2).text("9").null());
  EXPECT_EQ(change.op, ChangeOp::Delete);
  EXPECT_EQ(change.before_kind, 'K');
  EXPECT_EQ(change.before.value(0), "9");
  EXPECT_TRUE(change.after.empty());
  EXPECT_THROW(decode(MessageBuilder('D').u32(1).byte('N').i16(2).text("9").null()), DecodeError);
}

TEST_F(PgOutputDecoderTest, DecodesTruncateFlagsAndRelations) {
  learn(relation_message(1));
  learn(relation_message(2));
  decode(MessageBuilder('T').u32(2).u8(3).u32(1).u32(2));
  EXPECT_EQ(change.op, ChangeOp::Truncate);
  EXPECT_TRUE(change.truncate_cascade);
  EXPECT_TRUE(change.truncate_restart_identity);
  ASSERT_EQ(change.truncated.size(), 2u);
  EXPECT_EQ(change.truncated[1]->name, "t2");
  decode(MessageBuilder('T').u32(1).u8(2).u32(1));
  EXPECT_FALSE(change.truncate_cascade);
  EXPECT_TRUE(change.truncate_restart_identity);
  EXPECT_EQ(change.truncated.size(), 1u);
}

TEST_F(PgOutputDecoderTest, DecodesLogicalMessageFlagsPrefixAndContent) {
  auto m = decode(MessageBuilder('M').u8(1).u64(0x500).str("cdcsync").i32(5).raw("hello"));
  EXPECT_EQ(std::get<pgoutput::DataChange>(m).message_lsn, Lsn{0x500});
  EXPECT_EQ(change.op, ChangeOp::Message);
  EXPECT_TRUE(change.message_transactional);
  EXPECT_EQ(change.message_prefix, "cdcsync");
  EXPECT_EQ(change.message_content, "hello");
  decode(MessageBuilder('M').u8(0).u64(0x600).str("p").i32(0));
  EXPECT_FALSE(change.message_transactional);
  EXPECT_EQ(change.message_content, "");
}

TEST_F(PgOutputDecoderTest, ReadsTheXidPrefixOnlyInsideAStreamBlock) {
  learn(relation_message(1));
  auto start = std::get<pgoutput::StreamStart>(decode(MessageBuilder('S').u32(700).u8(1)));
  EXPECT_EQ(start.xid.value, 700u);
  EXPECT_TRUE(start.first_segment);
  EXPECT_TRUE(decoder.in_stream());
  const std::string streamed =
      MessageBuilder('I').u32(701).u32(1).byte('N').i16(2).text("1").text("a").bytes();
  EXPECT_EQ(decoder.peek_stream_xid(streamed)->value, 701u);
  EXPECT_EQ(std::get<pgoutput::DataChange>(decode(streamed)).xid.value, 701u);
  EXPECT_EQ(change.after.value(1), "a");
  auto rel = std::get<pgoutput::Relation>(
      decode("R" + std::string("\0\0\x02\xbc", 4) + relation_message(1).substr(1)));
  EXPECT_EQ(rel.xid.value, 700u);
  decode(MessageBuilder('E'));
  EXPECT_FALSE(decoder.in_stream());
  EXPECT_FALSE(decoder.peek_stream_xid(streamed).has_value());
  EXPECT_THROW(decode(streamed), DecodeError) << "outside a stream the same bytes have 4 trailing bytes";
}

TEST_F(PgOutputDecoderTest, DecodesStreamCommitAndAbort) {
  auto c =
      std::get<pgoutput::StreamCommit>(decode(MessageBuilder('c').u32(9).u8(0).u64(0x10).u64(0x20).u64(5)));
  EXPECT_EQ(c.xid.value, 9u);
  EXPECT_EQ(c.commit_lsn, Lsn{0x10});
  EXPECT_EQ(c.end_lsn, Lsn{0x20});
  EXPECT_EQ(c.commit_time_us, 5);
  auto a = std::get<pgoutput::StreamAbort>(decode(MessageBuilder('A').u32(9).u32(10)));
  EXPECT_EQ(a.subxid.value, 10u);
  EXPECT_FALSE(a.abort_lsn.valid());
}

TEST(PgOutputDecoder, ReadsStreamAbortLsnAndTimeOnlyWithProtocol4ParallelStreaming) {
  RelationCache relations;
  Change change;
  const std::string with_info = MessageBuilder('A').u32(9).u32(10).u64(0x30).u64(77).bytes();
  PgOutputDecoder parallel{{.version = 4, .streaming = StreamingMode::Parallel}};
  auto a = std::get<pgoutput::StreamAbort>(parallel.decode(with_info, relations, change));
  EXPECT_EQ(a.abort_lsn, Lsn{0x30});
  EXPECT_EQ(a.abort_time_us, 77);
  PgOutputDecoder on{{.version = 4, .streaming = StreamingMode::On}};
  EXPECT_THROW(on.decode(with_info, relations, change), DecodeError);
  EXPECT_THROW((PgOutputDecoder{{.version = 3, .streaming = StreamingMode::Parallel}}),
               std::invalid_argument);
}

TEST(PgOutputDecoder, RejectsProtocolVersionsOutsideOneToFourAndStreamingWithVersion1) {
  EXPECT_THROW(PgOutputDecoder{{.version = 0}}, std::invalid_argument);
  EXPECT_THROW(PgOutputDecoder{{.version = 5}}, std::invalid_argument);
  EXPECT_THROW((PgOutputDecoder{{.version = 1, .streaming = StreamingMode::On}}), std::invalid_argument);
}

TEST(PgOutputDecoder, RejectsStreamMessagesUnderProtocol1AndPrepareMessagesUnderProtocol3) {
  RelationCache relations;
  Change change;
  PgOutputDecoder v1{{.version = 1}};
  EXPECT_THROW(v1.decode(MessageBuilder('S').u32(1).u8(1), relations, change), DecodeError);
  EXPECT_THROW(v1.decode(MessageBuilder('E'), relations, change), DecodeError);
  PgOutputDecoder v2{{.version = 2, .streaming = StreamingMode::On}};
  const std::string prepare = MessageBuilder('P').u8(0).u64(1).u64(2).u64(3).u32(4).str("g").bytes();
  EXPECT_THROW(v2.decode(prepare, relations, change), DecodeError);
  PgOutputDecoder v3{{.version = 3}};
  EXPECT_NO_THROW(v3.decode(prepare, relations, change));
}

TEST_F(PgOutputDecoderTest, DecodesTwoPhaseMessages) {
  auto bp = std::get<pgoutput::BeginPrepare>(
      decode(MessageBuilder('b').u64(0x10).u64(0x20).u64(3).u32(4).str("g1")));
  EXPECT_EQ(bp.prepare_lsn, Lsn{0x10});
  EXPECT_EQ(bp.end_lsn, Lsn{0x20});
  EXPECT_EQ(bp.prepare_time_us, 3);
  EXPECT_EQ(bp.xid.value, 4u);
  EXPECT_EQ(bp.gid, "g1");
  auto p = std::get<pgoutput::Prepare>(
      decode(MessageBuilder('P').u8(0).u64(0x10).u64(0x20).u64(3).u32(4).str("g1")));
  EXPECT_FALSE(p.streamed);
  EXPECT_EQ(p.gid, "g1");
  auto sp = std::get<pgoutput::Prepare>(
      decode(MessageBuilder('p').u8(0).u64(0x10).u64(0x20).u64(3).u32(4).str("g2")));
  EXPECT_TRUE(sp.streamed);
  auto cp = std::get<pgoutput::CommitPrepared>(
      decode(MessageBuilder('K').u8(0).u64(0x30).u64(0x40).u64(5).u32(4).str("g1")));
  EXPECT_EQ(cp.commit_lsn, Lsn{0x30});
  EXPECT_EQ(cp.end_lsn, Lsn{0x40});
  EXPECT_EQ(cp.commit_time_us, 5);
  auto rp = std::get<pgoutput::RollbackPrepared>(
      decode(MessageBuilder('r').u8(0).u64(0x20).u64(0x50).u64(3).u64(6).u32(4).str("g2")));
  EXPECT_EQ(rp.prepare_end_lsn, Lsn{0x20});
  EXPECT_EQ(rp.rollback_end_lsn, Lsn{0x50});
  EXPECT_EQ(rp.prepare_time_us, 3);
  EXPECT_EQ(rp.rollback_time_us, 6);
  EXPECT_EQ(rp.gid, "g2");
}

TEST_F(PgOutputDecoderTest, RejectsInsertForAnUnknownRelationAndNamesIt) {
  try {
    decode(testing::insert_message(16385, "1", "a"));
    FAIL() << "expected DecodeError";
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.message_type(), "Insert");
    EXPECT_EQ(e.offset(), 1u);
    EXPECT_NE(std::string(e.what()).find("relation 16385 unknown: no Relation message before Insert"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(PgOutputDecoderTest, RejectsATupleWhoseColumnCountDiffersFromTheRelation) {
  learn(relation_message(1, 2));
  EXPECT_THROW(decode(MessageBuilder('I').u32(1).byte('N').i16(3).text("1").text("a").text("b")),
               DecodeError);
  EXPECT_THROW(decode(MessageBuilder('I').u32(1).byte('N').i16(-1)), DecodeError);
}

TEST_F(PgOutputDecoderTest, RejectsNegativeAndHugeValueLengths) {
  learn(relation_message(1));
  EXPECT_THROW(decode(MessageBuilder('I').u32(1).byte('N').i16(2).text("1").byte('t').i32(-5)), DecodeError);
  EXPECT_THROW(
      decode(MessageBuilder('I').u32(1).byte('N').i16(2).text("1").byte('t').i32(0x7fffffff).raw("ab")),
      DecodeError);
  EXPECT_THROW(decode(MessageBuilder('M').u8(0).u64(1).str("p").i32(-1)), DecodeError);
  EXPECT_THROW(decode(MessageBuilder('T').u32(0xffffffff).u8(0).u32(1)), DecodeError);
}

TEST_F(PgOutputDecoderTest, RejectsUnknownTagsColumnKindsTrailingBytesAndEmptyMessages) {
  learn(relation_message(1));
  try {
    decode(MessageBuilder('Z').u32(1));
    FAIL();
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown message type 'Z'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(decode(MessageBuilder('I').u32(1).byte('N').i16(2).text("1").byte('x')), DecodeError);
  EXPECT_THROW(decode(MessageBuilder('B').u64(1).u64(2).u32(3).u8(0)), DecodeError);
  EXPECT_THROW(decode(""), DecodeError);
  EXPECT_THROW(decode(MessageBuilder('R').u32(1).str("s").str("t").byte('x').i16(0)), DecodeError);
}

TEST_F(PgOutputDecoderTest, RejectsTruncatedInsertAndNamesTheOffset) {
  learn(relation_message(1));
  const std::string full = testing::insert_message(1, "12345", "a name");
  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    try {
      decode(std::string_view(full).substr(0, cut));
      FAIL() << "a message cut at " << cut << " decoded";
    } catch (const DecodeError& e) {
      EXPECT_LE(e.offset(), cut);
      if (cut > 0) {
        EXPECT_EQ(e.message_type(), "Insert");
      }
    }
  }
  EXPECT_NO_THROW(decode(full));
}

// Every captured message, cut short at every offset, is rejected with a DecodeError (never a crash);
// the decoder state (relations, stream block) follows the whole messages in between.
TEST(PgOutputDecoder, RejectsEveryTruncationOfEveryCapturedMessage) {
  std::size_t checked = 0;
  for (const auto& name : testing::capture_names()) {
    const auto capture = testing::load_capture(name);
    PgOutputDecoder decoder{capture.options};
    RelationCache relations;
    Change change;
    for (const auto& message : capture.messages) {
      if (message.bytes.size() > 4096) continue;  // the 20 kB TOAST row: its prefix is covered below
      PgOutputDecoder probe = decoder;
      for (std::size_t cut = 0; cut < message.bytes.size(); ++cut) {
        EXPECT_THROW(probe.decode(std::string_view(message.bytes).substr(0, cut), relations, change),
                     DecodeError)
            << name << " message at " << message.lsn.str() << " cut at " << cut;
        ++checked;
      }
      auto decoded = decoder.decode(message.bytes, relations, change);
      if (auto* r = std::get_if<pgoutput::Relation>(&decoded)) relations.put(r->relation);
    }
  }
  EXPECT_GT(checked, 100000u);
}

}  // namespace
}  // namespace cdcsync
