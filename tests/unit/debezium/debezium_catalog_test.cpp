// What the encoder takes from the source's catalog (CatalogFacts, faked here): NOT NULL and defaults in the
// schemas, NULLs of NOT NULL columns, the message key under every replica identity, unchanged TOAST values,
// types created while streaming; and the Java-side text rules behind them. Each expectation cites the
// Debezium 2.7.3 code it follows.
#include <gtest/gtest.h>

#include <map>

#include "decoders/debezium/defaults.h"
#include "decoders/debezium/java_text.h"
#include "decoders/debezium_json.h"
#include "decoders/pg_types.h"
#include "decoders/relation_facts.h"
#include "tests/unit/debezium/debezium_test_util.h"

namespace cdcsync {
namespace {

using debezium::debezium_topic_name;
using debezium::default_literal;
using testing::parse;
using testing::test_options;
using testing::text_tuple;

class FakeFacts final : public CatalogFacts {
 public:
  RelationFacts relation_facts(const RelationDef& relation, Xid) override {
    ++queries;
    return facts[relation.name];
  }
  bool reload_types() override {
    ++reloads;
    if (on_reload) on_reload();
    return true;
  }

  std::map<std::string, RelationFacts> facts;
  std::function<void()> on_reload;
  int queries = 0;
  int reloads = 0;
};

// items(id int4 PK NOT NULL DEFAULT nextval, name text NOT NULL DEFAULT 'none', qty int4 NOT NULL, note
// text), every column flagged as identity (REPLICA IDENTITY FULL).
RelationPtr items_full() {
  auto rel = testing::make_relation("public", "items",
                                    {{"id", pgtype::kInt4, -1, true},
                                     {"name", pgtype::kText, -1, true},
                                     {"qty", pgtype::kInt4, -1, true},
                                     {"note", pgtype::kText, -1, true}});
  std::const_pointer_cast<RelationDef>(rel)->replica_identity = 'f';
  return rel;
}

RelationFacts items_facts() {
  return {.columns = {{"id", true, "nextval('items_id_seq'::regclass)"},
                      {"name", true, "'none'::text"},
                      {"qty", true, std::nullopt},
                      {"note", false, std::nullopt}},
          .key = {"id"}};
}

TransactionInfo info() {
  return {.xid = Xid{700}, .final_lsn = Lsn{5000}, .end_lsn = Lsn{5100}};
}

struct Recorded {
  EventKind kind;
  std::string key;
  std::string value;
  bool has_key;
};

std::vector<Recorded> encode_all(DebeziumEncoder& enc, std::vector<Change> changes) {
  Transaction txn{.info = info(), .changes = std::move(changes)};
  std::vector<Recorded> out;
  enc.encode(txn, [&](const DebeziumEvent& e) {
    out.push_back({e.kind, std::string{e.key}, std::string{e.value}, e.has_key});
  });
  return out;
}

Change change(ChangeOp op, const RelationPtr& rel, std::optional<Tuple> before, std::optional<Tuple> after,
              char before_kind = 'O') {
  Change c;
  c.op = op;
  c.lsn = Lsn{4000};
  c.relation = rel;
  if (before) {
    c.before = std::move(*before);
    c.before_kind = before_kind;
  }
  if (after) c.after = std::move(*after);
  return c;
}

const rapidjson::Value* field_schema(const rapidjson::Document& d, const char* part, const char* column) {
  for (const auto& f : d["schema"]["fields"].GetArray()) {
    if (f["field"] != part) continue;
    for (const auto& c : f["fields"].GetArray()) {
      if (c["field"] == column) return &c;
    }
  }
  return nullptr;
}

// PgOutputMessageDecoder.handleRelationMessage: optionality and defaults from the catalog; TableSchemaBuilder
// addField: a NOT NULL column is required, its parsed default is the schema's default
// (PostgresDefaultValueConverter: nextval(...) gives int4's placeholder 0).
TEST(DebeziumCatalog, NotNullColumnsAreRequiredAndCarryTheirDefaults) {
  TypeCatalog catalog;
  FakeFacts facts;
  facts.facts["items"] = items_facts();
  DebeziumOptions o = test_options();
  o.include_schema = true;
  DebeziumEncoder enc{o, catalog, &facts};
  const auto ev = encode_all(
      enc, {change(ChangeOp::Insert, items_full(), std::nullopt, text_tuple({"1", "a", "2", "n"}))});
  ASSERT_EQ(ev.size(), 1u);
  const auto d = parse(ev[0].value);
  EXPECT_FALSE((*field_schema(d, "after", "id"))["optional"].GetBool());
  EXPECT_EQ((*field_schema(d, "after", "id"))["default"].GetInt(), 0);
  EXPECT_STREQ((*field_schema(d, "after", "name"))["default"].GetString(), "none");
  EXPECT_FALSE((*field_schema(d, "after", "qty"))["optional"].GetBool());
  EXPECT_FALSE(field_schema(d, "after", "qty")->HasMember("default"));
  EXPECT_TRUE((*field_schema(d, "after", "note"))["optional"].GetBool());
  const auto key = parse(ev[0].key);
  ASSERT_EQ(key["schema"]["fields"].Size(), 1u);
  EXPECT_STREQ(key["schema"]["fields"][0]["field"].GetString(), "id");
  EXPECT_EQ(key["payload"]["id"].GetInt(), 1);
}

// A default is written as its value's JSON, not as the catalog's text: Integer.parseInt("007") is 7.
TEST(DebeziumCatalog, DefaultsAreWrittenAsTheirValuesJson) {
  TypeCatalog catalog;
  FakeFacts facts;
  RelationFacts f = items_facts();
  f.columns[2].default_expression = "007";
  facts.facts["items"] = f;
  DebeziumOptions o = test_options();
  o.include_schema = true;
  DebeziumEncoder enc{o, catalog, &facts};
  const auto ev = encode_all(
      enc, {change(ChangeOp::Insert, items_full(), std::nullopt, text_tuple({"1", "a", "2", "n"}))});
  const auto d = parse(ev.at(0).value);
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ((*field_schema(d, "after", "qty"))["default"].GetInt(), 7);
}

// Under REPLICA IDENTITY FULL the key is still the primary key (TableSchemaBuilder: Key.keyColumns), and an
// update is op "u" unless the key changed (RelationalChangeRecordEmitter.emitUpdateRecord).
TEST(DebeziumCatalog, FullIdentityUpdatesKeepTheirPrimaryKeyAndOpU) {
  TypeCatalog catalog;
  FakeFacts facts;
  facts.facts["items"] = items_facts();
  DebeziumEncoder enc{test_options(), catalog, &facts};
  const auto rel = items_full();
  const auto ev = encode_all(enc, {change(ChangeOp::Update, rel, text_tuple({"1", "a", "2", std::nullopt}),
                                          text_tuple({"1", "b", "3", std::nullopt}))});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_STREQ(parse(ev[0].value)["op"].GetString(), "u");
  EXPECT_EQ(ev[0].key, R"({"id":1})");

  const auto moved = encode_all(enc, {change(ChangeOp::Update, rel, text_tuple({"1", "b", "3", std::nullopt}),
                                             text_tuple({"2", "b", "3", std::nullopt}))});
  ASSERT_EQ(moved.size(), 3u);
  EXPECT_STREQ(parse(moved[0].value)["op"].GetString(), "d");
  EXPECT_EQ(moved[0].key, R"({"id":1})");
  EXPECT_EQ(moved[1].kind, EventKind::Tombstone);
  EXPECT_EQ(moved[1].key, R"({"id":1})");
  EXPECT_STREQ(parse(moved[2].value)["op"].GetString(), "c");
  EXPECT_EQ(moved[2].key, R"({"id":2})");
  EXPECT_EQ(facts.queries, 1) << "one query per Relation message, not per row";
}

// A table without primary key or unique index has no key (TableSchemaBuilder: keySchema null), whatever its
// replica identity; the tombstone after a delete has a null key too (EventDispatcher).
TEST(DebeziumCatalog, NoPrimaryKeyMeansANullKey) {
  TypeCatalog catalog;
  FakeFacts facts;
  RelationFacts f = items_facts();
  f.key.clear();
  facts.facts["items"] = f;
  DebeziumEncoder enc{test_options(), catalog, &facts};
  const auto rel = items_full();
  const auto ev = encode_all(
      enc, {change(ChangeOp::Update, rel, text_tuple({"1", "a", "2", std::nullopt}),
                   text_tuple({"2", "a", "2", std::nullopt})),
            change(ChangeOp::Delete, rel, text_tuple({"2", "a", "2", std::nullopt}), std::nullopt)});
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_STREQ(parse(ev[0].value)["op"].GetString(), "u");
  for (const auto& e : ev) EXPECT_FALSE(e.has_key);
  EXPECT_EQ(ev[2].kind, EventKind::Tombstone);
}

// REPLICA IDENTITY DEFAULT: a delete's old tuple has the key columns only. A NULL in a NOT NULL column
// becomes the schema default, else the converter's fallback (JdbcValueConverters.convertValue); a nullable
// one stays null.
TEST(DebeziumCatalog, DeleteUnderDefaultIdentityFillsNotNullColumns) {
  TypeCatalog catalog;
  FakeFacts facts;
  facts.facts["items"] = items_facts();
  DebeziumEncoder enc{test_options(), catalog, &facts};
  auto rel = testing::make_relation("public", "items",
                                    {{"id", pgtype::kInt4, -1, true},
                                     {"name", pgtype::kText, -1},
                                     {"qty", pgtype::kInt4, -1},
                                     {"note", pgtype::kText, -1}});
  const auto ev = encode_all(
      enc, {change(ChangeOp::Delete, rel, text_tuple({"7", std::nullopt, std::nullopt, std::nullopt}),
                   std::nullopt, 'K')});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].key, R"({"id":7})");
  const auto d = parse(ev[0].value);
  EXPECT_EQ(d["before"]["id"].GetInt(), 7);
  EXPECT_STREQ(d["before"]["name"].GetString(), "none");  // the default
  EXPECT_EQ(d["before"]["qty"].GetInt(), 0);              // int4's fallback
  EXPECT_TRUE(d["before"]["note"].IsNull());
}

// REPLICA IDENTITY USING INDEX on a column that is not the primary key: the old tuple lacks the primary key,
// whose NULL becomes its fallback, so the old key differs from the new one and the update is a "primary key
// update" (emitUpdateAsPrimaryKeyChangeRecord) with the old key {id: 0}.
TEST(DebeziumCatalog, UsingIndexOldTupleWithoutThePrimaryKeyIsAKeyChange) {
  TypeCatalog catalog;
  FakeFacts facts;
  RelationFacts f = items_facts();
  f.columns[0].default_expression.reset();
  facts.facts["items"] = f;
  DebeziumEncoder enc{test_options(), catalog, &facts};
  auto rel = testing::make_relation("public", "items",
                                    {{"id", pgtype::kInt4, -1},
                                     {"name", pgtype::kText, -1, true},
                                     {"qty", pgtype::kInt4, -1},
                                     {"note", pgtype::kText, -1}});
  const auto ev = encode_all(
      enc, {change(ChangeOp::Update, rel, text_tuple({std::nullopt, "a", std::nullopt, std::nullopt}),
                   text_tuple({"5", "b", "1", std::nullopt}), 'K')});
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].key, R"({"id":0})");
  EXPECT_STREQ(parse(ev[0].value)["before"]["name"].GetString(), "a");
  EXPECT_EQ(ev[2].key, R"({"id":5})");
}

// Under FULL an unchanged TOAST value of the new row takes the old row's value
// (PostgresChangeRecordEmitter.columnValues: cachedOldToastedValues).
TEST(DebeziumCatalog, FullIdentityFillsUnchangedToastFromTheOldRow) {
  TypeCatalog catalog;
  FakeFacts facts;
  facts.facts["items"] = items_facts();
  DebeziumEncoder enc{test_options(), catalog, &facts};
  Tuple after = text_tuple({"1", "a", "3"});
  after.add_unchanged_toast();
  const auto ev =
      encode_all(enc, {change(ChangeOp::Update, items_full(), text_tuple({"1", "a", "2", "long"}), after)});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_STREQ(parse(ev[0].value)["after"]["note"].GetString(), "long");
}

// UnchangedToastedPlaceholder: by the column's type, the placeholder string, its bytes, a list of its bytes
// as numbers for int4[]/int8[]/date[], [placeholder] for text-like arrays, [nameUUIDFromBytes] for uuid[].
TEST(DebeziumCatalog, UnchangedToastPlaceholdersFollowTheColumnType) {
  TypeCatalog catalog;
  DebeziumEncoder enc{test_options(), catalog};
  auto rel = testing::make_relation("public", "t",
                                    {{"id", pgtype::kInt4, -1, true},
                                     {"t", pgtype::kText, -1},
                                     {"b", pgtype::kBytea, -1},
                                     {"ia", 1007, -1},
                                     {"ta", 1009, -1},
                                     {"ua", 2951, -1},
                                     {"na", 1231, -1},
                                     {"n", pgtype::kNumeric, -1}});
  Tuple after = text_tuple({"1"});
  for (int i = 0; i < 7; ++i) after.add_unchanged_toast();
  const auto ev = encode_all(enc, {change(ChangeOp::Update, rel, std::nullopt, after)});
  const auto d = parse(ev.at(0).value);
  const auto& a = d["after"];
  EXPECT_STREQ(a["t"].GetString(), "__debezium_unavailable_value");
  EXPECT_STREQ(a["b"].GetString(), "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==");
  ASSERT_TRUE(a["ia"].IsArray());
  EXPECT_EQ(a["ia"].Size(), 28u);
  EXPECT_EQ(a["ia"][0].GetInt(), 95);
  EXPECT_STREQ(a["ta"][0].GetString(), "__debezium_unavailable_value");
  EXPECT_STREQ(a["ua"][0].GetString(), "b68a35a7-17ad-35b3-af2a-ae46edb4545a");
  EXPECT_TRUE(a["na"].IsNull());
  EXPECT_TRUE(a["n"].IsNull());
}

// A Relation message naming a type the catalog does not know (created while streaming) makes the encoder read
// the types again, once per Relation message.
TEST(DebeziumCatalog, UnknownTypeReloadsTheCatalogOnce) {
  TypeCatalog catalog;
  FakeFacts facts;
  facts.on_reload = [&] { catalog.add_domain(90100, "public", "posint", pgtype::kInt4, -1); };
  DebeziumEncoder enc{test_options(), catalog, &facts};
  auto rel = testing::make_relation("public", "d", {{"id", pgtype::kInt4, -1, true}, {"v", 90100, -1}});
  const auto ev = encode_all(enc, {change(ChangeOp::Insert, rel, std::nullopt, text_tuple({"1", "42"})),
                                   change(ChangeOp::Insert, rel, std::nullopt, text_tuple({"2", "43"}))});
  EXPECT_EQ(parse(ev.at(0).value)["after"]["v"].GetInt(), 42);
  EXPECT_EQ(facts.reloads, 1);
}

// Kafka's JsonConverter prints FLOAT64/FLOAT32 with Java's Double.toString/Float.toString.
TEST(JavaText, DoublesAndFloatsAsJavaPrintsThem) {
  char buf[debezium::kJavaNumberChars];
  EXPECT_EQ(debezium::java_double(buf, 4), "4.0");
  EXPECT_EQ(debezium::java_double(buf, -0.0), "-0.0");
  EXPECT_EQ(debezium::java_double(buf, 0.001), "0.001");
  EXPECT_EQ(debezium::java_double(buf, 0.0001), "1.0E-4");
  EXPECT_EQ(debezium::java_double(buf, 1234567.5), "1234567.5");
  EXPECT_EQ(debezium::java_double(buf, 1e7), "1.0E7");
  EXPECT_EQ(debezium::java_double(buf, 1.5e-7), "1.5E-7");
  EXPECT_EQ(debezium::java_double(buf, 1.7976931348623157e308), "1.7976931348623157E308");
  EXPECT_EQ(debezium::java_float(buf, 3.14f), "3.14");
  EXPECT_EQ(debezium::java_float(buf, 1e10f), "1.0E10");
}

// AbstractTopicNamingStrategy.sanitizedTopicName, per UTF-16 code unit; dots kept; mkString skips blank
// parts.
TEST(JavaText, TopicNamesAreSanitizedPerUtf16CodeUnit) {
  EXPECT_EQ(debezium_topic_name({"srv", "public", "テスト"}), "srv.public.___");
  EXPECT_EQ(debezium_topic_name({"srv", "s", "a\xF0\x9F\x98\x80"}), "srv.s.a__");  // outside the BMP: 2 units
  EXPECT_EQ(debezium_topic_name({"srv", "a.b", "c-d e"}), "srv.a.b.c-d_e");
  EXPECT_EQ(debezium_topic_name({"srv", " ", "t"}), "srv.t");
  EXPECT_EQ(debezium_topic_name({"srv", "s", std::string(300, 'x')}).size(), 249u);
}

// pgjdbc's HStoreConverter.fromString fills a java.util.HashMap: its iteration order.
TEST(JavaText, HashMapOrderOfStringKeys) {
  EXPECT_EQ(debezium::java_string_hash("key"), 106079);
  const std::vector<std::size_t> order = debezium::java_hash_map_order({"key4", "key5"});
  EXPECT_EQ(order, (std::vector<std::size_t>{1, 0}));
  std::vector<std::string> many;
  std::vector<std::string_view> views;
  for (int i = 0; i < 40; ++i) many.push_back("k" + std::to_string(i));
  for (const auto& k : many) views.emplace_back(k);
  EXPECT_EQ(debezium::java_hash_map_order(views).size(), 40u);
}

// PostgresDefaultValueConverter: which literal each default expression gives.
TEST(DebeziumDefaults, ExpressionsGiveDebeziumsLiterals) {
  EXPECT_EQ(default_literal("int4", false, "nextval('t_id_seq'::regclass)")->text, "0");
  EXPECT_FALSE(default_literal("int4", false, "NULL::integer"));
  EXPECT_EQ(default_literal("int4", false, "'-1'::integer")->text, "-1");
  EXPECT_EQ(default_literal("varchar", false, "'NULL'::character varying")->text, "NULL");
  EXPECT_FALSE(default_literal("varchar", false, "NULL::character varying"));
  EXPECT_EQ(default_literal("timestamp", false, "CURRENT_TIMESTAMP")->text, "1970-01-01");
  EXPECT_EQ(default_literal("uuid", false, "s2.gen_id()")->text, "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(default_literal("mood", true, "'happy'::mood")->text, "happy");
  EXPECT_FALSE(default_literal("mood", true, "'happy'::s1.mood"));
  EXPECT_FALSE(default_literal("money", false, "'1.00'::money"));  // no mapper
}

// PgCatalogFacts waits until its snapshot (pg_current_snapshot()'s "xmin:xmax:xip,...") sees the Relation
// message's transaction ended: a 32-bit xid is taken in xmax's epoch, or the one before when that would be at
// or past xmax.
TEST(CatalogFactsSnapshot, TellsWhetherATransactionHasEndedAcrossEpochs) {
  EXPECT_TRUE(transaction_visible("100:105:101,103", Xid{102}));
  EXPECT_TRUE(transaction_visible("100:105:101,103", Xid{99}));
  EXPECT_FALSE(transaction_visible("100:105:101,103", Xid{101}));
  EXPECT_FALSE(transaction_visible("100:105:101,103", Xid{103}));
  EXPECT_FALSE(transaction_visible("100:105:", Xid{105}));  // not started in this snapshot
  EXPECT_FALSE(transaction_visible("100:105:", Xid{200}));  // epoch 0 has no epoch before it
  // xmax 2^32 + 10: xid 5 is epoch 1's (2^32 + 5), xid 20 and xid 10 are epoch 0's.
  EXPECT_TRUE(transaction_visible("4294967300:4294967306:", Xid{5}));
  EXPECT_FALSE(transaction_visible("4294967300:4294967306:4294967301", Xid{5}));
  EXPECT_TRUE(transaction_visible("4294967300:4294967306:4294967301", Xid{20}));
  EXPECT_FALSE(transaction_visible("4294967290:4294967306:20", Xid{20}));
  EXPECT_TRUE(transaction_visible("4294967300:4294967306:", Xid{10}));
  EXPECT_TRUE(transaction_visible("not a snapshot", Xid{7}));  // nothing to wait for
}

}  // namespace
}  // namespace cdcsync
