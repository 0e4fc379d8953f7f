// Envelopes, keys, tombstones, transaction metadata, truncate and message events. Expected values follow the
// Debezium PostgreSQL connector documentation (postgresql.adoc); the section is cited on each test.
#include <gtest/gtest.h>

#include "decoders/debezium_json.h"
#include "decoders/pg_types.h"
#include "tests/unit/debezium/debezium_test_util.h"

namespace cdcsync {
namespace {

using testing::parse;
using testing::test_options;
using testing::text_tuple;

// The documentation's example table: customers(id serial primary key, first_name, last_name, email).
RelationPtr customers() {
  return testing::make_relation("public", "customers",
                                {{"id", pgtype::kInt4, -1, true},
                                 {"first_name", pgtype::kVarchar, 259},
                                 {"last_name", pgtype::kVarchar, 259},
                                 {"email", pgtype::kVarchar, 259}});
}

// commit time 2019-05-28T09:58:24.863123Z in PostgreSQL epoch microseconds
constexpr std::int64_t kCommitPgMicros = 1'559'037'504'863'123 - kPgEpochUnixMicros - 3'600'000'000;

TransactionInfo txn555() {
  return {.xid = Xid{555},
          .final_lsn = Lsn{24023128},
          .end_lsn = Lsn{24023200},
          .commit_time_us = kCommitPgMicros};
}

Change insert_anne(const RelationPtr& rel) {
  Change c;
  c.op = ChangeOp::Insert;
  c.lsn = Lsn{24023128};
  c.relation = rel;
  c.after = text_tuple({"1", "Anne", "Kretchmar", "annek@noanswer.org"});
  return c;
}

struct Recorded {
  EventKind kind;
  std::string topic;
  std::string key;
  std::string value;
  bool has_key;
  bool has_value;
};

std::vector<Recorded> encode_all(DebeziumEncoder& enc, const Transaction& txn) {
  std::vector<Recorded> out;
  enc.encode(txn, [&](const DebeziumEvent& e) {
    out.push_back(
        {e.kind, std::string{e.topic}, std::string{e.key}, std::string{e.value}, e.has_key, e.has_value});
  });
  return out;
}

// "Data change events > create events": before null, after the row, source metadata, op c, ts_ms.
TEST(DebeziumEnvelope, CreateEventMatchesTheDocumentedPayload) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  const auto rel = customers();
  const DebeziumEvent ev =
      enc.encode_change(txn555(), insert_anne(rel), {.last_commit_lsn = Lsn{24023119}, .total_order = 1});
  EXPECT_EQ(ev.topic, "PostgreSQL_server.public.customers");
  const auto d = parse(ev.value);
  ASSERT_FALSE(d.HasParseError());
  EXPECT_TRUE(d["before"].IsNull());
  EXPECT_EQ(d["after"]["id"].GetInt(), 1);
  EXPECT_STREQ(d["after"]["first_name"].GetString(), "Anne");
  EXPECT_STREQ(d["after"]["email"].GetString(), "annek@noanswer.org");
  const auto& s = d["source"];
  EXPECT_STREQ(s["connector"].GetString(), "postgresql");
  EXPECT_STREQ(s["name"].GetString(), "PostgreSQL_server");
  EXPECT_EQ(s["ts_ms"].GetInt64(), 1559033904863);
  EXPECT_EQ(s["ts_us"].GetInt64(), 1559033904863123);
  EXPECT_EQ(s["ts_ns"].GetInt64(), 1559033904863123000);
  EXPECT_STREQ(s["snapshot"].GetString(), "false");
  EXPECT_STREQ(s["db"].GetString(), "postgres");
  EXPECT_STREQ(s["sequence"].GetString(), "[\"24023119\",\"24023128\"]");
  EXPECT_STREQ(s["schema"].GetString(), "public");
  EXPECT_STREQ(s["table"].GetString(), "customers");
  EXPECT_EQ(s["txId"].GetInt64(), 555);
  EXPECT_EQ(s["lsn"].GetInt64(), 24023128);
  EXPECT_TRUE(s["xmin"].IsNull());
  EXPECT_STREQ(d["op"].GetString(), "c");
  EXPECT_EQ(d["ts_ms"].GetInt64(), 1559033904863);
  EXPECT_EQ(d["ts_us"].GetInt64(), 1559033904863841);
  EXPECT_FALSE(d.HasMember("transaction"));
  // "Change event keys": {"id": 1}.
  ASSERT_TRUE(ev.has_key);
  EXPECT_EQ(ev.key, R"({"id":1})");
}

// "Change event keys" / "create events" with the JSON converter's schemas.enable: schema names
// <prefix>.<schema>.<table>.Key/.Value/.Envelope and io.debezium.connector.postgresql.Source.
TEST(DebeziumEnvelope, WritesTheSchemaPartAsJsonConverterDoes) {
  TypeCatalog catalog;
  DebeziumOptions o = test_options();
  o.include_schema = true;
  DebeziumEncoder enc{o, catalog};
  const auto rel = customers();
  const DebeziumEvent ev = enc.encode_change(txn555(), insert_anne(rel), {});
  const auto key = parse(ev.key);
  EXPECT_STREQ(key["schema"]["name"].GetString(), "PostgreSQL_server.public.customers.Key");
  EXPECT_FALSE(key["schema"]["optional"].GetBool());
  EXPECT_STREQ(key["schema"]["fields"][0]["type"].GetString(), "int32");
  EXPECT_STREQ(key["schema"]["fields"][0]["field"].GetString(), "id");
  EXPECT_EQ(key["payload"]["id"].GetInt(), 1);

  const auto d = parse(ev.value);
  const auto& schema = d["schema"];
  EXPECT_STREQ(schema["type"].GetString(), "struct");
  EXPECT_STREQ(schema["name"].GetString(), "PostgreSQL_server.public.customers.Envelope");
  const auto& before = schema["fields"][0];
  EXPECT_STREQ(before["field"].GetString(), "before");
  EXPECT_STREQ(before["name"].GetString(), "PostgreSQL_server.public.customers.Value");
  EXPECT_TRUE(before["optional"].GetBool());
  EXPECT_STREQ(before["fields"][1]["type"].GetString(), "string");
  EXPECT_STREQ(schema["fields"][2]["name"].GetString(), "io.debezium.connector.postgresql.Source");
  EXPECT_STREQ(schema["fields"][3]["field"].GetString(), "op");
  EXPECT_STREQ(d["payload"]["op"].GetString(), "c");
}

// "Decimal types": Decimal carries the `scale` parameter (and connect.decimal.precision); "Basic types": ENUM
// carries `allowed`.
TEST(DebeziumEnvelope, DeclaresLogicalTypesAndParametersInTheSchema) {
  TypeCatalog catalog;
  catalog.add_enum(17010, "public", "tier", {"bronze", "silver", "gold"});
  DebeziumOptions o = test_options();
  o.include_schema = true;
  DebeziumEncoder enc{o, catalog};
  const auto rel = testing::make_relation("public", "c",
                                          {{"id", pgtype::kInt8, -1, true},
                                           {"balance", pgtype::kNumeric, ((12 << 16) | 2) + 4},
                                           {"tier", 17010},
                                           {"at", pgtype::kTimestampTz}});
  Change c;
  c.relation = rel;
  c.after = text_tuple({"1", "1.00", "gold", "2020-01-01 00:00:00+00"});
  const auto d = parse(enc.encode_change({}, c, {}).value);
  const auto& after = d["schema"]["fields"][1]["fields"];
  EXPECT_STREQ(after[1]["name"].GetString(), "org.apache.kafka.connect.data.Decimal");
  EXPECT_STREQ(after[1]["type"].GetString(), "bytes");
  EXPECT_STREQ(after[1]["parameters"]["scale"].GetString(), "2");
  EXPECT_STREQ(after[1]["parameters"]["connect.decimal.precision"].GetString(), "12");
  EXPECT_STREQ(after[2]["name"].GetString(), "io.debezium.data.Enum");
  EXPECT_STREQ(after[2]["parameters"]["allowed"].GetString(), "bronze,silver,gold");
  EXPECT_STREQ(after[3]["name"].GetString(), "io.debezium.time.ZonedTimestamp");
}

// "delete events" + "Tombstone events": the delete carries before (the old key) and is followed by a record
// with the same key and a null value.
TEST(DebeziumEnvelope, FollowsDeletesWithATombstone) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  Transaction txn{.info = txn555()};
  Change del;
  del.op = ChangeOp::Delete;
  del.relation = customers();
  del.before_kind = 'K';
  del.before = text_tuple({"1", std::nullopt, std::nullopt, std::nullopt});
  txn.changes.push_back(std::move(del));
  const auto events = encode_all(enc, txn);
  ASSERT_EQ(events.size(), 2u);
  const auto d = parse(events[0].value);
  EXPECT_STREQ(d["op"].GetString(), "d");
  EXPECT_EQ(d["before"]["id"].GetInt(), 1);
  EXPECT_TRUE(d["after"].IsNull());
  EXPECT_EQ(events[1].kind, EventKind::Tombstone);
  EXPECT_EQ(events[1].key, R"({"id":1})");
  EXPECT_FALSE(events[1].has_value);
}

// "Snapshot events": rows read by an initial snapshot are read events (op "r", source.snapshot "true").
TEST(DebeziumEnvelope, RowsOfASnapshotTransactionAreReadEvents) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  Transaction txn{.info = txn555()};
  txn.info.snapshot = true;
  txn.changes.push_back(insert_anne(customers()));
  const auto events = encode_all(enc, txn);
  ASSERT_EQ(events.size(), 1u);
  const auto r = parse(events[0].value);
  EXPECT_STREQ(r["op"].GetString(), "r");
  EXPECT_STREQ(r["source"]["snapshot"].GetString(), "true");
}

// "Primary key updates": an update that changes the key becomes a delete of the old key (with its tombstone)
// and a create with the new key.
TEST(DebeziumEnvelope, SplitsKeyChangingUpdatesIntoDeleteAndCreate) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  Transaction txn{.info = txn555()};
  Change up;
  up.op = ChangeOp::Update;
  up.relation = customers();
  up.before_kind = 'K';
  up.before = text_tuple({"1", std::nullopt, std::nullopt, std::nullopt});
  up.after = text_tuple({"2", "Anne", "Kretchmar", "annek@noanswer.org"});
  txn.changes.push_back(std::move(up));
  const auto events = encode_all(enc, txn);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_STREQ(parse(events[0].value)["op"].GetString(), "d");
  EXPECT_EQ(events[0].key, R"({"id":1})");
  EXPECT_EQ(events[1].kind, EventKind::Tombstone);
  EXPECT_STREQ(parse(events[2].value)["op"].GetString(), "c");
  EXPECT_EQ(events[2].key, R"({"id":2})");
}

// "Transaction metadata": BEGIN {status, id "txID:LSN", ts_ms, event_count null, data_collections null}, END
// with event_count and per-collection counts; change events get transaction {id, total_order,
// data_collection_order}.
TEST(DebeziumEnvelope, EmitsTransactionBoundariesAndEnrichesEvents) {
  TypeCatalog catalog;
  DebeziumOptions o = test_options();
  o.transaction_metadata = true;
  DebeziumEncoder enc{o, catalog};
  const auto a1 = testing::make_relation("s1", "a", {{"pk", pgtype::kInt4, -1, true}, {"aa", pgtype::kInt4}});
  const auto a2 = testing::make_relation("s2", "a", {{"pk", pgtype::kInt4, -1, true}, {"aa", pgtype::kInt4}});
  Transaction txn{.info = {.xid = Xid{571}, .final_lsn = Lsn{53195832}, .commit_time_us = 0}};
  for (const auto& rel : {a1, a2}) {
    Change c;
    c.relation = rel;
    c.after = text_tuple({"2", "1"});
    txn.changes.push_back(std::move(c));
  }
  const auto events = encode_all(enc, txn);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, EventKind::TransactionBegin);
  EXPECT_EQ(events[0].topic, "PostgreSQL_server.transaction");
  const auto begin = parse(events[0].value);
  EXPECT_STREQ(begin["status"].GetString(), "BEGIN");
  EXPECT_STREQ(begin["id"].GetString(), "571:53195832");
  EXPECT_EQ(begin["ts_ms"].GetInt64(), 946684800000);
  EXPECT_TRUE(begin["event_count"].IsNull());
  EXPECT_TRUE(begin["data_collections"].IsNull());

  const auto change = parse(events[2].value);
  EXPECT_STREQ(change["transaction"]["id"].GetString(), "571:53195832");
  EXPECT_EQ(change["transaction"]["total_order"].GetInt(), 2);
  EXPECT_EQ(change["transaction"]["data_collection_order"].GetInt(), 1);

  const auto end = parse(events[3].value);
  EXPECT_STREQ(end["status"].GetString(), "END");
  EXPECT_EQ(end["event_count"].GetInt(), 2);
  ASSERT_EQ(end["data_collections"].Size(), 2u);
  EXPECT_STREQ(end["data_collections"][0]["data_collection"].GetString(), "s1.a");
  EXPECT_EQ(end["data_collections"][0]["event_count"].GetInt(), 1);
  EXPECT_STREQ(end["data_collections"][1]["data_collection"].GetString(), "s2.a");
}

// Chunks of one source transaction continue its orders; BEGIN on the first chunk, END on the last.
TEST(DebeziumEnvelope, ContinuesOrdersAcrossChunks) {
  TypeCatalog catalog;
  DebeziumOptions o = test_options();
  o.transaction_metadata = true;
  DebeziumEncoder enc{o, catalog};
  const auto rel = customers();
  Transaction first{.info = txn555(), .first_chunk = true, .last_chunk = false};
  first.changes.push_back(insert_anne(rel));
  Transaction last{.info = txn555(), .first_chunk = false, .last_chunk = true};
  last.changes.push_back(insert_anne(rel));
  const auto a = encode_all(enc, first);
  const auto b = encode_all(enc, last);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(parse(b[0].value)["transaction"]["total_order"].GetInt(), 2);
  EXPECT_EQ(parse(b[1].value)["event_count"].GetInt(), 2);
  // The next transaction's sequence starts with this commit's LSN.
  Transaction next{.info = txn555()};
  next.changes.push_back(insert_anne(rel));
  const auto c = encode_all(enc, next);
  EXPECT_STREQ(parse(c[1].value)["source"]["sequence"].GetString(), "[\"24023128\",\"24023128\"]");
}

// "truncate events": key null; value {before null, after null, source, op "t", ts_ms}; one event per table.
TEST(DebeziumEnvelope, EncodesTruncateAsOneEventPerTable) {
  TypeCatalog catalog;
  DebeziumOptions o = test_options();
  o.skipped_operations = "";  // skipped.operations=none
  DebeziumEncoder enc{o, catalog};
  Transaction txn{.info = txn555()};
  Change t;
  t.op = ChangeOp::Truncate;
  t.lsn = Lsn{46523128};
  t.truncated = {customers(), testing::make_relation("public", "orders", {{"id", pgtype::kInt4, -1, true}})};
  txn.changes.push_back(std::move(t));
  const auto events = encode_all(enc, txn);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[0].has_key);
  const auto d = parse(events[1].value);
  EXPECT_STREQ(d["op"].GetString(), "t");
  EXPECT_STREQ(d["source"]["table"].GetString(), "orders");
  EXPECT_EQ(d["source"]["lsn"].GetInt64(), 46523128);
  // Envelope.truncate fills the table's Envelope: before and after are there, null
  // (VerifyRecord.isValidTruncate).
  ASSERT_TRUE(d.HasMember("before"));
  EXPECT_TRUE(d["before"].IsNull());
  EXPECT_TRUE(d["after"].IsNull());
}

// skipped.operations defaults to "t": no truncate events (PgOutputMessageDecoder.isTruncateEventsIncluded).
TEST(DebeziumEnvelope, LeavesTruncatesOutByDefault) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  Transaction txn{.info = txn555()};
  Change t;
  t.op = ChangeOp::Truncate;
  t.truncated = {customers()};
  txn.changes.push_back(std::move(t));
  EXPECT_TRUE(encode_all(enc, txn).empty());
}

// "message events": key {prefix}; value source with empty schema/table, op m, message {prefix, content}
// with the content's bytes base64 ("bar" -> "YmFy"; the documentation's example prints "Ymfy").
// Non-transactional messages have no txId.
TEST(DebeziumEnvelope, EncodesLogicalDecodingMessages) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  Change m;
  m.op = ChangeOp::Message;
  m.lsn = Lsn{46523128};
  m.message_transactional = true;
  m.message_prefix = "foo";
  m.message_content = "bar";
  DebeziumEvent ev = enc.encode_change(txn555(), m, {});
  EXPECT_EQ(ev.key, R"({"prefix":"foo"})");
  auto d = parse(ev.value);
  EXPECT_STREQ(d["op"].GetString(), "m");
  EXPECT_STREQ(d["source"]["schema"].GetString(), "");
  EXPECT_STREQ(d["source"]["table"].GetString(), "");
  EXPECT_EQ(d["source"]["txId"].GetInt64(), 555);
  EXPECT_STREQ(d["message"]["prefix"].GetString(), "foo");
  EXPECT_STREQ(d["message"]["content"].GetString(), "YmFy");
  m.message_transactional = false;
  d = parse(enc.encode_change(txn555(), m, {}).value);
  EXPECT_TRUE(d["source"]["txId"].IsNull());
}

// Snapshot reads: op "r", source.snapshot "true".
TEST(DebeziumEnvelope, MarksSnapshotReads) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  const auto d = parse(enc.encode_change(txn555(), insert_anne(customers()), {.snapshot = true}).value);
  EXPECT_STREQ(d["op"].GetString(), "r");
  EXPECT_STREQ(d["source"]["snapshot"].GetString(), "true");
}

}  // namespace
}  // namespace cdcsync
