// The archive's row format: source changes in target form (mapping and transforms applied), a JSON round
// trip that refuses malformed rows by entry id, the way back to changes a PostgresSink applies, the chain.
#include "sinks/archive_codec.h"

#include <gtest/gtest.h>

#include "sinks/fold.h"
#include "sinks/sink.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

using test::insert;
using test::remove;
using test::tuple;
using test::update;

class ArchiveCodec : public ::testing::Test {
 protected:
  ArchiveCodec() {
    TableMapping t;
    t.source = {"public", "customers"};
    t.target = {"ref", "customer"};
    t.key = {"id"};
    t.columns = {{"id", "customer_id", Transform::copy()},
                 {"email", "email_hash", Transform::hmac_sha256("k")},
                 {"phone", "phone_masked", Transform::mask(2)},
                 {"bio", "bio", Transform::copy()}};
    t.deletes = DeletePolicy::Soft;
    mapping_ = Mapping({t});
  }

  std::vector<ProjectedChange> project(const Change& c, bool snapshot = false) {
    std::vector<ProjectedChange> out;
    projector_.project(c, c.lsn, snapshot, out);
    return out;
  }

  // Source columns: id, name (unmapped PII), email, phone, bio.
  RelationPtr rel_ = test::relation("public", "customers", {"id", "name", "email", "phone", "bio"});
  Mapping mapping_;
  ArchiveProjector projector_{mapping_};
};

TEST_F(ArchiveCodec, ProjectsOnlyMappedColumnsWithTransformsApplied) {
  const auto out =
      project(insert(rel_, 100, tuple({"7", "Alice Secret", "alice@example.com", "5551234", "hi"})));
  ASSERT_EQ(out.size(), 1u);
  const ArchivedChange& row = out[0].row;
  EXPECT_EQ(row.table.str(), "ref.customer");
  EXPECT_EQ(row.op, ArchivedOp::Create);
  EXPECT_EQ(row.columns, (std::vector<std::string>{"customer_id", "email_hash", "phone_masked", "bio"}));
  EXPECT_EQ(row.key, (std::vector<std::size_t>{0}));
  ASSERT_EQ(row.after.size(), 4u);
  EXPECT_EQ(row.after[0], ArchivedValue::value("7"));
  std::string expected_hash;
  Transform::hmac_sha256("k").apply("alice@example.com", expected_hash);
  EXPECT_EQ(row.after[1], ArchivedValue::value(expected_hash));
  EXPECT_EQ(row.after[2], ArchivedValue::value("*****34"));
  const std::string json = encode_archived_change(row);
  EXPECT_EQ(json.find("Alice"), std::string::npos);
  EXPECT_EQ(json.find("alice@example.com"), std::string::npos);
  EXPECT_EQ(json.find("5551234"), std::string::npos);
  // The target-form change carries target names and text for transformed columns.
  ASSERT_TRUE(out[0].target.relation);
  EXPECT_EQ(out[0].target.relation->qualified_name(), "ref.customer");
  EXPECT_EQ(out[0].target.relation->columns[1].name, "email_hash");
  EXPECT_TRUE(out[0].target.relation->columns[0].part_of_key);
  EXPECT_EQ(out[0].target.after.value(1), expected_hash);
}

TEST_F(ArchiveCodec, RoundTripsEveryOpAndValueKind) {
  std::vector<Change> changes;
  changes.push_back(insert(rel_, 10, tuple({"1", "n", std::nullopt, "12", "<toast>"})));
  changes.push_back(
      update(rel_, 20, tuple({"2", "n", "e", "34", "b"}), tuple({"1", "n", "e", "12", "x"}), 'O'));
  changes.push_back(remove(rel_, 30, tuple({"2", std::nullopt, std::nullopt, std::nullopt, std::nullopt})));
  changes.push_back(test::truncate({rel_}, 40));
  for (const Change& c : changes) {
    for (const auto& p : project(c)) {
      const std::string json = encode_archived_change(p.row);
      EXPECT_EQ(decode_archived_change(json, "40-0"), p.row) << json;
    }
  }
  EXPECT_EQ(project(insert(rel_, 1, tuple({"1", "n", "e", "p", "b"})), true)[0].row.op, ArchivedOp::Read);
  const auto del = project(changes[2]);
  ASSERT_EQ(del.size(), 1u);
  EXPECT_EQ(del[0].row.op, ArchivedOp::Delete);
  EXPECT_EQ(del[0].row.before[0], ArchivedValue::value("2"));
  EXPECT_EQ(del[0].row.before[1], ArchivedValue::absent());  // old key only: the rest is not known
  EXPECT_TRUE(del[0].row.after.empty());
  const auto trunc = project(changes[3]);
  ASSERT_EQ(trunc.size(), 1u);
  EXPECT_EQ(trunc[0].row.op, ArchivedOp::Truncate);
}

TEST_F(ArchiveCodec, LeavesUnmappedTablesAndMessagesOut) {
  const auto other = test::relation("public", "payment_methods", {"id", "card"}, 16999);
  EXPECT_TRUE(project(insert(other, 1, tuple({"1", "4111111111111111"}))).empty());
  Change m;
  m.op = ChangeOp::Message;
  m.message_content = "x";
  EXPECT_TRUE(project(m).empty());
  EXPECT_TRUE(project(test::truncate({other}, 2)).empty());
}

TEST_F(ArchiveCodec, RefusesBinaryValuesLikeTheSink) {
  Tuple t;
  t.add_text("1");
  t.add_text("n");
  t.add_binary("\x01\x02");
  t.add_text("p");
  t.add_text("b");
  EXPECT_THROW(project(insert(rel_, 5, std::move(t))), PermanentError);
}

TEST_F(ArchiveCodec, DecodingRefusesMalformedRowsAndNamesTheEntry) {
  const std::vector<std::string> bad = {
      "",
      "[]",
      R"({"v":2,"s":"ref","t":"c","op":"c","cols":["a"],"key":[0],"after":["1"]})",
      R"({"v":1,"s":"","t":"c","op":"c","cols":["a"],"key":[0],"after":["1"]})",
      R"({"v":1,"s":"ref","t":"c","op":"x","cols":["a"],"key":[0],"after":["1"]})",
      R"({"v":1,"s":"ref","t":"c","op":"c","cols":["a"],"key":[1],"after":["1"]})",
      R"({"v":1,"s":"ref","t":"c","op":"c","cols":["a","a"],"key":[0],"after":["1","2"]})",
      R"({"v":1,"s":"ref","t":"c","op":"c","cols":["a","b"],"key":[0],"after":["1"]})",
      R"({"v":1,"s":"ref","t":"c","op":"c","cols":["a"],"key":[0]})",
      R"({"v":1,"s":"ref","t":"c","op":"c","cols":["a"],"key":[0],"after":[1]})",
      R"({"v":1,"s":"ref","t":"c","op":"c","cols":["a"],"key":[0],"after":[null]})",
      R"({"v":1,"s":"ref","t":"c","op":"d","cols":["a"],"key":[0],"after":["1"]})",
      R"({"v":1,"s":"ref","t":"c","op":"t","cols":[],"key":[],"after":[]})",
  };
  for (const auto& json : bad) {
    try {
      decode_archived_change(json, "123-4");
      ADD_FAILURE() << "accepted: " << json;
    } catch (const ArchiveFormatError& e) {
      EXPECT_EQ(e.entry_id(), "123-4");
      EXPECT_NE(std::string(e.what()).find("archive entry 123-4"), std::string::npos) << e.what();
    }
  }
}

TEST_F(ArchiveCodec, ReplayMappingTurnsRowsIntoChangesOfTheTargetTables) {
  ArchiveReplayMapping replay(mapping_);
  const TableMapping* t = replay.table({"ref", "customer"});
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->source.str(), "ref.customer");
  EXPECT_EQ(t->deletes, DeletePolicy::Soft);
  EXPECT_EQ(t->key, (std::vector<std::string>{"customer_id"}));
  for (const auto& c : t->columns) EXPECT_EQ(c.transform.kind(), TransformKind::Copy);

  const auto projected =
      project(update(rel_, 20, tuple({"2", "n", "e", "34", "<toast>"}), tuple({"1", "n", "e", "12", "x"})));
  ASSERT_EQ(projected.size(), 1u);
  const auto change = replay.to_change(projected[0].row, "20-0");
  ASSERT_TRUE(change);
  EXPECT_EQ(change->op, ChangeOp::Update);
  EXPECT_EQ(change->relation->qualified_name(), "ref.customer");
  EXPECT_EQ(change->after.value(0), "2");
  EXPECT_EQ(change->after.value(1), projected[0].row.after[1].text);  // already hashed: copied as is
  EXPECT_TRUE(change->after.is_unchanged_toast(3));
  EXPECT_EQ(change->before.value(0), "1");

  // Folding the replayed change through the identity mapping gives the target rows the sink writes.
  RelationBinder binder(replay.mapping());
  const BoundTable* bound = binder.bind(change->relation, Lsn{20});
  ASSERT_NE(bound, nullptr);
  TableFold fold(*t);
  fold.add(*bound, *change, Lsn{20});
  ASSERT_EQ(fold.size(), 2u);  // key 1 -> 2: tombstone of the old key, upsert of the new one

  ArchivedChange unknown = projected[0].row;
  unknown.table = {"ref", "gone"};
  EXPECT_FALSE(replay.to_change(unknown, "20-0"));
  ArchivedChange no_key = projected[0].row;
  no_key.columns[0] = "renamed";
  EXPECT_THROW(replay.to_change(no_key, "20-0"), ArchiveFormatError);
}

TEST(ArchiveChain, EntryIdsSortLikeCommitLsnsAndParseBack) {
  EXPECT_EQ(archive_entry_id(Lsn{0x16B374D848}, 3), "97500059720-3");
  const auto p = parse_archive_entry_id("97500059720-3");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->first, 0x16B374D848u);
  EXPECT_EQ(p->second, 3u);
  EXPECT_FALSE(parse_archive_entry_id("97500059720"));
  EXPECT_FALSE(parse_archive_entry_id("-3"));
  EXPECT_FALSE(parse_archive_entry_id("1-x"));
}

TEST(ArchiveChain, HashDependsOnPrevIdEveryFieldAndItsBoundaries) {
  const std::vector<std::pair<std::string, std::string>> f = {{"topic", "p.ref.customer"}, {"row", "{}"}};
  const std::string h = archive_entry_hash(kArchiveGenesisHash, "1-0", f);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, archive_entry_hash(kArchiveGenesisHash, "1-0", f));
  EXPECT_NE(h, archive_entry_hash(h, "1-0", f));
  EXPECT_NE(h, archive_entry_hash(kArchiveGenesisHash, "1-1", f));
  auto g = f;
  g[1].second = "{ }";
  EXPECT_NE(h, archive_entry_hash(kArchiveGenesisHash, "1-0", g));
  // Moving bytes between adjacent fields changes the hash.
  const std::vector<std::pair<std::string, std::string>> a = {{"a", "xy"}, {"b", "z"}};
  const std::vector<std::pair<std::string, std::string>> b = {{"a", "x"}, {"b", "yz"}};
  EXPECT_NE(archive_entry_hash(kArchiveGenesisHash, "1-0", a),
            archive_entry_hash(kArchiveGenesisHash, "1-0", b));
}

}  // namespace
}  // namespace cdcsync
