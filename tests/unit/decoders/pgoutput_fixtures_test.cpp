// Decodes the messages captured from a real PostgreSQL 15 (scripts/capture-pgoutput.sh) and checks what
// the scenario's SQL determines: values, operations, flags, and how LSNs relate between messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "decoders/assembler.h"
#include "tests/unit/decoders/pgoutput_test_support.h"

namespace cdcsync {
namespace {

struct Replayed {
  testing::Capture capture;
  std::vector<Transaction> transactions;
  RelationCache relations;
};

Replayed replay(const std::string& name, std::size_t chunk = 10000) {
  Replayed r{testing::load_capture(name), {}, {}};
  const auto dir = std::filesystem::temp_directory_path() / ("cdcsync-fixture-test-" + name);
  {
    TransactionAssembler assembler{
        AssemblerOptions{.protocol = r.capture.options, .max_changes_per_chunk = chunk, .spool_dir = dir},
        [&](Transaction&& t) { r.transactions.push_back(std::move(t)); }};
    for (const auto& m : r.capture.messages) assembler.feed(m.bytes, m.lsn);
    EXPECT_FALSE(assembler.in_transaction()) << name;
    EXPECT_EQ(assembler.streamed_in_progress(), 0u) << name;
    EXPECT_EQ(assembler.prepared_held(), 0u) << name;
    r.relations = assembler.relations();
  }
  std::filesystem::remove_all(dir);
  return r;
}

std::vector<std::string_view> values(const Tuple& t) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < t.size(); ++i) out.push_back(t.is_null(i) ? "NULL" : t.value(i));
  return out;
}
using V = std::vector<std::string_view>;

// Each non-streamed transaction's Begin.final_lsn equals its Commit.commit_lsn, every change carries the
// LSN of the line it came from, and LSNs never go backwards within a transaction.
TEST(PgOutputFixtures, DecodeEveryCapturedScenarioIntoWholeTransactionsWithConsistentLsns) {
  for (const auto& name : testing::capture_names()) {
    auto r = replay(name);
    EXPECT_FALSE(r.transactions.empty()) << name;
    for (const auto& t : r.transactions) {
      EXPECT_TRUE(t.whole()) << name;
      EXPECT_TRUE(t.info.final_lsn.valid()) << name;
      EXPECT_GE(t.info.end_lsn, t.info.final_lsn) << name;
      for (std::size_t i = 1; i < t.changes.size(); ++i)
        EXPECT_LE(t.changes[i - 1].lsn, t.changes[i].lsn) << name;
      for (const auto& c : t.changes) {
        bool found = false;
        for (const auto& m : r.capture.messages) found = found || m.lsn == c.lsn;
        EXPECT_TRUE(found) << name << ": change at " << c.lsn.str() << " matches no captured message";
      }
    }
  }
}

TEST(PgOutputFixtures, DmlCarriesValuesNullsOldKeysAndWholeOldRows) {
  auto r = replay("dml");
  ASSERT_EQ(r.transactions.size(), 5u);
  const auto& ins = r.transactions[0].changes;
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(ins[0].op, ChangeOp::Insert);
  EXPECT_EQ(ins[0].relation->qualified_name(), "fixture.customer");
  EXPECT_EQ(ins[0].relation->columns.size(), 9u);
  EXPECT_TRUE(ins[0].relation->columns[0].part_of_key);
  EXPECT_FALSE(ins[0].relation->columns[1].part_of_key);
  EXPECT_EQ(ins[0].relation->columns[5].type_oid, 1700u);  // numeric(12,2)
  EXPECT_EQ(ins[0].relation->columns[5].type_modifier, (12 << 16 | 2) + 4);
  EXPECT_EQ(values(ins[0].after), (V{"1", "Ada Lovelace", "ada@example.com", "active", "gold", "1234.50",
                                     "1815-12-10", "2024-01-02 03:04:05+00", "2024-01-02 03:04:05+00"}));
  EXPECT_EQ(values(ins[1].after), (V{"2", "Alan Turing", "NULL", "active", "standard", "0.00", "NULL",
                                     "2024-01-02 03:04:05+00", "2024-01-02 03:04:05+00"}));

  const auto& upd = r.transactions[1].changes.at(0);
  EXPECT_EQ(upd.op, ChangeOp::Update);
  EXPECT_EQ(upd.before_kind, 0) << "the key did not change: no old key";
  EXPECT_EQ(upd.after.value(4), "platinum");
  EXPECT_EQ(upd.after.value(5), "99.99");

  const auto& key = r.transactions[2].changes.at(0);
  EXPECT_EQ(key.before_kind, 'K');
  EXPECT_EQ(key.before.value(0), "2");
  for (std::size_t i = 1; i < 9; ++i) EXPECT_TRUE(key.before.is_null(i));
  EXPECT_EQ(key.after.value(0), "3");

  const auto& del = r.transactions[3].changes.at(0);
  EXPECT_EQ(del.op, ChangeOp::Delete);
  EXPECT_EQ(del.before_kind, 'K');
  EXPECT_EQ(del.before.value(0), "1");
  EXPECT_TRUE(del.after.empty());

  const auto& full = r.transactions[4].changes;
  ASSERT_EQ(full.size(), 3u);
  EXPECT_EQ(full[0].relation->replica_identity, 'f');
  EXPECT_EQ(full[1].before_kind, 'O');
  EXPECT_EQ(values(full[1].before), (V{"10", "ada", "5"}));
  EXPECT_EQ(values(full[1].after), (V{"10", "ada", "6"}));
  EXPECT_EQ(full[2].before_kind, 'O');
  EXPECT_EQ(values(full[2].before), (V{"10", "ada", "6"}));
}

TEST(PgOutputFixtures, TruncateCascadeWithRestartIdentityNamesBothTables) {
  auto r = replay("truncate");
  ASSERT_EQ(r.transactions.size(), 4u);
  const auto& cascade = r.transactions[2].changes.at(0);
  EXPECT_EQ(cascade.op, ChangeOp::Truncate);
  EXPECT_TRUE(cascade.truncate_cascade);
  EXPECT_TRUE(cascade.truncate_restart_identity);
  ASSERT_EQ(cascade.truncated.size(), 2u);
  EXPECT_EQ(cascade.truncated[0]->qualified_name(), "fixture.parent");
  EXPECT_EQ(cascade.truncated[1]->qualified_name(), "fixture.child");
  const auto& plain = r.transactions[3].changes.at(0);
  EXPECT_FALSE(plain.truncate_cascade);
  EXPECT_FALSE(plain.truncate_restart_identity);
  ASSERT_EQ(plain.truncated.size(), 1u);
  EXPECT_EQ(plain.truncated[0]->name, "child");
}

TEST(PgOutputFixtures, AnUpdateLeavingALargeValueAloneSendsItAsUnchangedToast) {
  auto r = replay("toast");
  ASSERT_EQ(r.transactions.size(), 2u);
  const auto& ins = r.transactions[0].changes.at(0);
  EXPECT_EQ(ins.after.value(2).size(), 640u * 32);
  const auto& upd = r.transactions[1].changes.at(0);
  EXPECT_EQ(upd.after.value(1), "second");
  EXPECT_TRUE(upd.after.is_unchanged_toast(2));
  EXPECT_EQ(upd.after.value(2), "");
}

TEST(PgOutputFixtures, BinaryModeSendsValuesInTheirSendFormat) {
  auto r = replay("binary");
  ASSERT_EQ(r.transactions.size(), 2u);
  const auto& c = r.transactions[0].changes.at(0);
  EXPECT_EQ(c.after.kind(0), DatumKind::Binary);
  EXPECT_EQ(c.after.value(0), std::string_view("\0\0\0\0\0\0\0\7", 8));  // int8 7, big-endian
  EXPECT_EQ(c.after.value(1), "Grace Hopper");                           // text's send format is its text
  const auto& p = r.transactions[1].changes.at(0);
  EXPECT_EQ(p.after.value(0), std::string_view("\0\0\0\1", 4));
  EXPECT_TRUE(p.after.is_null(1));
  EXPECT_TRUE(p.after.is_null(2));
}

TEST(PgOutputFixtures, TransactionalMessagesStayInTheirTransactionAndOthersStandAlone) {
  auto r = replay("messages");
  ASSERT_EQ(r.transactions.size(), 3u);
  const auto& in_txn = r.transactions[0].changes;
  ASSERT_EQ(in_txn.size(), 2u);
  EXPECT_EQ(in_txn[1].op, ChangeOp::Message);
  EXPECT_TRUE(in_txn[1].message_transactional);
  EXPECT_EQ(in_txn[1].message_prefix, "cdcsync");
  EXPECT_EQ(in_txn[1].message_content, "inside the transaction");
  const auto& alone = r.transactions[1];
  EXPECT_EQ(alone.info.xid.value, 0u);
  ASSERT_EQ(alone.changes.size(), 1u);
  EXPECT_FALSE(alone.changes[0].message_transactional);
  EXPECT_EQ(alone.changes[0].message_content, "outside any transaction");
  EXPECT_EQ(alone.info.final_lsn, alone.changes[0].lsn);
  EXPECT_EQ(alone.info.end_lsn, alone.info.final_lsn);
}

TEST(PgOutputFixtures, AnOriginMessageNamesTheTransactionsOrigin) {
  auto r = replay("origin");
  ASSERT_EQ(r.transactions.size(), 1u);
  EXPECT_EQ(r.transactions[0].info.origin, "upstream");
  EXPECT_EQ(r.transactions[0].changes.at(0).after.value(1), "from upstream");
}

TEST(PgOutputFixtures, ASchemaChangeMidTransactionKeepsTheOldSchemaForEarlierChanges) {
  auto r = replay("schema_change");
  ASSERT_EQ(r.transactions.size(), 1u);
  const auto& c = r.transactions[0].changes;
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].relation->columns.size(), 2u);
  EXPECT_EQ(values(c[0].after), (V{"1", "before"}));
  EXPECT_EQ(c[1].relation->columns.size(), 3u);
  EXPECT_EQ(c[1].relation->columns[2].name, "b");
  EXPECT_EQ(values(c[1].after), (V{"2", "after", "42"}));
  EXPECT_EQ(r.relations.find(c[0].relation->id)->columns.size(), 3u);
}

TEST(PgOutputFixtures, AnEnumColumnIsAnnouncedByATypeMessage) {
  auto r = replay("type");
  const auto& person = r.transactions.at(0).changes.at(0);
  const Oid mood = person.relation->columns[2].type_oid;
  const TypeDef* type = r.relations.find_type(mood);
  ASSERT_NE(type, nullptr);
  EXPECT_EQ(type->schema, "fixture");
  EXPECT_EQ(type->name, "mood");
  EXPECT_EQ(person.after.value(2), "sad");
}

bool all_payloads(const std::vector<Change>& changes, std::size_t from, std::size_t to, char c) {
  for (std::size_t i = from; i < to; ++i) {
    if (changes[i].after.value(1) != std::string(50, c)) return false;
  }
  return true;
}

TEST(PgOutputFixtures, InterleavedStreamsCommitInOrderWithoutTheRolledBackSavepoint) {
  const auto capture = testing::load_capture("stream");
  std::size_t aborts = 0;
  for (const auto& m : capture.messages) aborts += m.bytes[0] == 'A';
  EXPECT_EQ(aborts, 1u) << "the savepoint rollback arrives as one Stream Abort";

  auto r = replay("stream");
  ASSERT_EQ(r.transactions.size(), 3u);
  const auto& b = r.transactions[0];  // the other session's transaction committed first
  ASSERT_EQ(b.changes.size(), 400u);
  EXPECT_TRUE(all_payloads(b.changes, 0, 400, 'b'));
  EXPECT_EQ(b.changes[0].after.value(0), "100001");

  const auto& a = r.transactions[1];
  ASSERT_EQ(a.changes.size(), 500u) << "the 400 rows of the rolled back savepoint are gone";
  EXPECT_TRUE(all_payloads(a.changes, 0, 400, 'a'));
  EXPECT_TRUE(all_payloads(a.changes, 400, 500, 'd'));
  EXPECT_EQ(a.changes[399].relation->columns.size(), 2u);
  EXPECT_EQ(a.changes[400].relation->columns.size(), 3u) << "the Relation message inside the stream applies";
  EXPECT_EQ(a.changes[400].after.value(2), "2001");
  EXPECT_GT(a.info.xid.value, 0u);
  EXPECT_LT(a.info.xid, b.info.xid);

  const auto& small = r.transactions[2];
  ASSERT_EQ(small.changes.size(), 1u);
  EXPECT_EQ(values(small.changes[0].after), (V{"5000", "small", "1"}));
}

TEST(PgOutputFixtures, StreamsReplayInChunksOfTheConfiguredSize) {
  auto r = replay("stream", 64);
  std::size_t changes = 0, lasts = 0;
  for (const auto& t : r.transactions) {
    EXPECT_LE(t.changes.size(), 64u);
    changes += t.changes.size();
    lasts += t.last_chunk;
    EXPECT_EQ(t.last_chunk, t.info.end_lsn.valid());
  }
  EXPECT_EQ(changes, 901u);
  EXPECT_EQ(lasts, 3u);
}

TEST(PgOutputFixtures, TwoPhaseEmitsTheCommittedPreparedTransactionOnly) {
  auto r = replay("two_phase");
  ASSERT_EQ(r.transactions.size(), 1u);
  const auto& t = r.transactions[0];
  ASSERT_EQ(t.changes.size(), 1u);
  EXPECT_EQ(values(t.changes[0].after), (V{"10", "prepared then committed", "ok"}));
  // final_lsn is the Commit Prepared's commit LSN, which is where it was captured.
  const auto& msgs = r.capture.messages;
  bool found = false;
  for (const auto& m : msgs) {
    if (m.bytes[0] == 'K') {
      found = true;
      EXPECT_EQ(t.info.end_lsn, m.lsn);
    }
  }
  EXPECT_TRUE(found);
}

TEST(PgOutputFixtures, AStreamedPreparedTransactionIsReleasedByCommitPrepared) {
  auto r = replay("two_phase_stream");
  ASSERT_EQ(r.transactions.size(), 1u);
  ASSERT_EQ(r.transactions[0].changes.size(), 400u);
  EXPECT_EQ(r.transactions[0].changes[0].after.value(0), "20001");
  EXPECT_TRUE(all_payloads(r.transactions[0].changes, 0, 400, 'e'));
}

}  // namespace
}  // namespace cdcsync
