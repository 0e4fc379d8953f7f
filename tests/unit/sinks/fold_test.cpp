// Folding a batch's changes to one action per key gives what applying them in order would give.
#include "sinks/fold.h"

#include <gtest/gtest.h>

#include <deque>

#include "sinks/sink.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

using test::insert;
using test::remove;
using test::tuple;
using test::update;

class SinkFold : public ::testing::Test {
 protected:
  void SetUp() override { use(DeletePolicy::Hard); }
  void use(DeletePolicy deletes) {
    TableMapping t;
    t.source = {"public", "customers"};
    t.target = {"ref", "customer"};
    t.key = {"id"};
    t.columns = {{"id", "customer_id", Transform::copy()},
                 {"name", "display_name", Transform::copy()},
                 {"bio", "bio", Transform::copy()}};
    t.deletes = deletes;
    mapping_ = std::make_unique<Mapping>(std::vector<TableMapping>{t});
    binder_ = std::make_unique<RelationBinder>(*mapping_);
    bound_ = binder_->bind(rel_, Lsn{1});
    fold_ = TableFold(mapping_->tables()[0]);
  }
  // Each change here stands for a source transaction of its own, committed at the change's LSN. The fold
  // refers to the changes' bytes, so they are kept like a batch keeps them.
  void add(const Change& c) {
    changes_.push_back(c);
    fold_.add(*bound_, changes_.back(), c.lsn);
  }
  std::string cell(std::size_t row, std::size_t col) const {
    const auto& v = fold_.value(fold_.rows()[row], col);
    switch (v.state) {
      case ValueState::Null:
        return "<null>";
      case ValueState::Absent:
        return "<absent>";
      case ValueState::Value:
        return std::string(fold_.text(v));
    }
    return "?";
  }

  RelationPtr rel_ = test::relation("public", "customers", {"id", "name", "bio", "email"});
  std::unique_ptr<Mapping> mapping_;
  std::unique_ptr<RelationBinder> binder_;
  const BoundTable* bound_ = nullptr;
  std::deque<Change> changes_;
  TableFold fold_;
};

TEST_F(SinkFold, KeepsTheLastVersionOfEachKey) {
  add(insert(rel_, 10, tuple({"1", "a", "x", "secret"})));
  add(update(rel_, 20, tuple({"1", "b", "y", "secret"})));
  add(insert(rel_, 30, tuple({"2", "c", std::nullopt, "secret"})));
  ASSERT_EQ(fold_.size(), 2u);
  EXPECT_EQ(fold_.rows()[0].lsn, Lsn{20});
  EXPECT_EQ(cell(0, 1), "b");
  EXPECT_EQ(cell(0, 2), "y");
  EXPECT_EQ(cell(1, 2), "<null>");
  EXPECT_EQ(fold_.columns(), 3u);  // the unmapped email never enters the fold
}

TEST_F(SinkFold, UnchangedToastKeepsTheEarlierValueFromTheSameBatch) {
  add(insert(rel_, 10, tuple({"1", "a", "big", "e"})));
  add(update(rel_, 20, tuple({"1", "b", "<toast>", "e"})));
  ASSERT_EQ(fold_.size(), 1u);
  EXPECT_EQ(cell(0, 2), "big");
  EXPECT_FALSE(fold_.rows()[0].has_absent);
}

TEST_F(SinkFold, UnchangedToastWithoutAnEarlierValueStaysAbsent) {
  add(update(rel_, 20, tuple({"1", "b", "<toast>", "e"})));
  EXPECT_EQ(cell(0, 2), "<absent>");
  EXPECT_TRUE(fold_.rows()[0].has_absent);
}

TEST_F(SinkFold, HardDeleteAfterUpsertLeavesADeleteAndReinsertLeavesAnUpsert) {
  add(insert(rel_, 10, tuple({"1", "a", "x", "e"})));
  add(remove(rel_, 20, tuple({"1", std::nullopt, std::nullopt, std::nullopt})));
  ASSERT_EQ(fold_.size(), 1u);
  EXPECT_EQ(fold_.rows()[0].action, RowAction::Delete);
  EXPECT_EQ(fold_.rows()[0].lsn, Lsn{20});
  EXPECT_EQ(cell(0, 0), "1");
  add(insert(rel_, 30, tuple({"1", "n", "<toast>", "e"})));
  EXPECT_EQ(fold_.rows()[0].action, RowAction::Upsert);
  EXPECT_EQ(cell(0, 1), "n");
  EXPECT_EQ(cell(0, 2), "<absent>");
}

TEST_F(SinkFold, SoftDeleteTombstonesTheBatchImageOrJustTheKey) {
  use(DeletePolicy::Soft);
  add(insert(rel_, 10, tuple({"1", "a", "x", "e"})));
  add(remove(rel_, 20, tuple({"1", std::nullopt, std::nullopt, std::nullopt})));
  add(remove(rel_, 30, tuple({"2", std::nullopt, std::nullopt, std::nullopt})));
  ASSERT_EQ(fold_.size(), 2u);
  EXPECT_TRUE(fold_.rows()[0].tombstone);
  EXPECT_EQ(fold_.rows()[0].action, RowAction::Upsert);
  EXPECT_EQ(cell(0, 1), "a");
  EXPECT_TRUE(fold_.rows()[1].tombstone);
  EXPECT_EQ(cell(1, 0), "2");
  EXPECT_EQ(cell(1, 1), "<absent>");
  add(insert(rel_, 40, tuple({"2", "back", "x", "e"})));
  EXPECT_FALSE(fold_.rows()[1].tombstone);
}

TEST_F(SinkFold, IgnoredDeletesVanish) {
  use(DeletePolicy::Ignore);
  add(insert(rel_, 10, tuple({"1", "a", "x", "e"})));
  add(remove(rel_, 20, tuple({"1", std::nullopt, std::nullopt, std::nullopt})));
  add(remove(rel_, 30, tuple({"2", std::nullopt, std::nullopt, std::nullopt})));
  ASSERT_EQ(fold_.size(), 1u);
  EXPECT_EQ(fold_.rows()[0].action, RowAction::Upsert);
  EXPECT_EQ(fold_.rows()[0].lsn, Lsn{10});
}

TEST_F(SinkFold, KeyChangeDeletesTheOldKeyAndUpsertsTheNewOne) {
  add(insert(rel_, 10, tuple({"1", "a", "x", "e"})));
  add(update(rel_, 20, tuple({"2", "a", "x", "e"}), tuple({"1", std::nullopt, std::nullopt, std::nullopt})));
  ASSERT_EQ(fold_.size(), 2u);
  const auto order = fold_.apply_order();
  EXPECT_EQ(fold_.rows()[order[0]].action, RowAction::Delete);
  EXPECT_EQ(cell(order[0], 0), "1");
  EXPECT_EQ(fold_.rows()[order[1]].action, RowAction::Upsert);
  EXPECT_EQ(cell(order[1], 0), "2");
}

TEST_F(SinkFold, UpdateWithAnUnchangedKeyInTheOldTupleIsAPlainUpsert) {
  add(update(rel_, 20, tuple({"1", "b", "x", "e"}), tuple({"1", std::nullopt, std::nullopt, std::nullopt})));
  ASSERT_EQ(fold_.size(), 1u);
  EXPECT_EQ(fold_.rows()[0].action, RowAction::Upsert);
}

TEST_F(SinkFold, OnlyAKeyWhoseFirstChangeInTheBatchIsAStreamedInsertIsFresh) {
  add(insert(rel_, 10, tuple({"1", "a", "x", "e"})));
  add(update(rel_, 20, tuple({"1", "b", "x", "e"})));  // insert then update: still new to the target
  add(update(rel_, 20, tuple({"2", "b", "x", "e"})));  // existed before the batch
  add(remove(rel_, 30, tuple({"3", std::nullopt, std::nullopt, std::nullopt})));
  add(insert(rel_, 40, tuple({"3", "c", "x", "e"})));  // deleted then inserted: the target may have it
  add(insert(rel_, 50, tuple({"4", "d", "x", "e"})));
  add(remove(rel_, 60, tuple({"4", std::nullopt, std::nullopt, std::nullopt})));
  add(insert(rel_, 70, tuple({"4", "e", "x", "e"})));  // inserted, deleted, inserted: still new
  ASSERT_EQ(fold_.size(), 4u);
  EXPECT_TRUE(fold_.rows()[0].fresh);
  EXPECT_FALSE(fold_.rows()[1].fresh);
  EXPECT_FALSE(fold_.rows()[2].fresh);
  EXPECT_TRUE(fold_.rows()[3].fresh);
  fold_.clear();
  changes_.clear();
  add(update(rel_, 80, tuple({"1", "f", "x", "e"})));  // the next batch starts over
  EXPECT_FALSE(fold_.rows()[0].fresh);
}

TEST_F(SinkFold, SnapshotRowsAndNewKeysOfAKeyChangeAreNeverFresh) {
  changes_.push_back(insert(rel_, 10, tuple({"1", "a", "x", "e"})));
  fold_.add(*bound_, changes_.back(), Lsn{10}, /*snapshot=*/true);
  add(update(rel_, 20, tuple({"2", "a", "x", "e"}), tuple({"9", std::nullopt, std::nullopt, std::nullopt})));
  ASSERT_EQ(fold_.size(), 3u);
  for (const auto& row : fold_.rows()) EXPECT_FALSE(row.fresh);
}

TEST_F(SinkFold, AppliesDeletesFirstThenUpsertsInLsnOrder) {
  add(insert(rel_, 50, tuple({"1", "a", "x", "e"})));
  add(insert(rel_, 30, tuple({"2", "a", "x", "e"})));
  add(remove(rel_, 40, tuple({"3", std::nullopt, std::nullopt, std::nullopt})));
  const auto order = fold_.apply_order();
  EXPECT_EQ(order, (std::vector<std::size_t>{2, 1, 0}));
}

TEST_F(SinkFold, DeleteWithoutAnOldKeyIsAPermanentErrorNamingTheTable) {
  Change c = remove(rel_, 20, Tuple{}, 0);
  try {
    add(c);
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_EQ(e.table(), "public.customers");
    EXPECT_EQ(e.lsn(), Lsn{20});
  }
}

TEST_F(SinkFold, NullKeyIsAPermanentErrorWithoutTheValues) {
  try {
    add(insert(rel_, 10, tuple({std::nullopt, "private name", "x", "e"})));
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_EQ(std::string(e.what()).find("private name"), std::string::npos);
  }
}

TEST_F(SinkFold, ManyKeysEachFoldToTheirOwnLastVersionAcrossBatches) {
  for (int batch = 0; batch < 2; ++batch) {
    for (int round = 0; round < 3; ++round) {
      for (int k = 0; k < 5000; ++k) {
        const std::string key = std::to_string(k);
        add(update(rel_, 10 + round, tuple({key, key + "-" + std::to_string(round), "x", "e"})));
      }
    }
    ASSERT_EQ(fold_.size(), 5000u);
    for (std::size_t r = 0; r < fold_.size(); ++r) {
      const std::string key = cell(r, 0);
      EXPECT_EQ(cell(r, 1), key + "-2");
      EXPECT_EQ(fold_.rows()[r].lsn, Lsn{12});
    }
    fold_.clear();
    changes_.clear();
    EXPECT_TRUE(fold_.empty());
  }
}

TEST_F(SinkFold, TransformsRunBeforeValuesEnterTheFold) {
  TableMapping t;
  t.source = {"public", "customers"};
  t.target = {"ref", "customer"};
  t.key = {"id"};
  t.columns = {{"id", "customer_id", Transform::hmac_sha256("k")}, {"name", "name", Transform::mask(1)}};
  Mapping m({t});
  RelationBinder binder(m);
  TableFold fold(m.tables()[0]);
  fold.add(*binder.bind(rel_, Lsn{1}), insert(rel_, 10, tuple({"1", "abc", "x", "e"})), Lsn{1});
  fold.add(*binder.bind(rel_, Lsn{1}), update(rel_, 20, tuple({"1", "xyz", "x", "e"})), Lsn{1});
  ASSERT_EQ(fold.size(), 1u);
  EXPECT_EQ(fold.text(fold.value(fold.rows()[0], 0)).size(), 64u);
  EXPECT_EQ(fold.text(fold.value(fold.rows()[0], 1)), "**z");
}

}  // namespace
}  // namespace cdcsync
