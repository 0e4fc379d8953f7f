// DeadLetterSink: a refused source transaction is isolated, stored whole before the progress passes it,
// and the others are applied; chunks, the initial snapshot and a full store still stop the pipeline.
#include "sinks/dead_letter_sink.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "sinks/recording_sink.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

class MemoryDeadLetterStore final : public DeadLetterStore {
 public:
  std::size_t size() override { return entries_.size(); }
  bool contains(Lsn lsn) override { return entries_.contains(lsn.value()); }
  void add(const DeadLetter& d) override {
    if (fail_next_add_) {
      fail_next_add_ = false;
      throw TransientError("store unreachable");
    }
    ++adds_;
    entries_[d.lsn.value()] = d;
  }
  std::vector<DeadLetter> list(bool) override {
    std::vector<DeadLetter> out;
    for (const auto& [_, d] : entries_) out.push_back(d);
    return out;
  }
  bool remove(const std::string& id) override {
    return std::erase_if(entries_, [&](const auto& e) { return e.second.id == id; }) > 0;
  }

  bool fail_next_add_ = false;
  int adds_ = 0;

 private:
  std::map<std::uint64_t, DeadLetter> entries_;
};

const RelationPtr kCustomers = test::relation("public", "customers", {"id", "name"});

Transaction txn(std::uint32_t xid, std::uint64_t end_lsn, int rows = 1) {
  std::vector<Change> changes;
  for (int i = 0; i < rows; ++i) {
    changes.push_back(test::insert(kCustomers, end_lsn - 16, test::tuple({std::to_string(xid), "x"})));
  }
  return test::txn(xid, end_lsn, std::move(changes));
}

// The target refuses every batch that holds a row change of one of these xids (a stand-in has none).
void refuse(RecordingSink& target, std::set<std::uint32_t> xids) {
  target.on_apply([xids](const Batch& b) {
    for (const auto& t : b.transactions) {
      if (xids.contains(t.info.xid.value) && !t.changes.empty()) {
        throw PermanentError("ref.customer", t.info.final_lsn, "23514",
                             "new row for relation \"customer\" violates check constraint \"tier_ok\"");
      }
    }
  });
}

DeadLetterSinkOptions options(std::size_t max = 10) {
  DeadLetterSinkOptions o;
  o.max_transactions = max;
  o.store_name = "test store";
  o.encode_rows = [](const Transaction& t, std::size_t& changes) {
    changes = t.changes.size();
    return "rows of " + std::to_string(t.info.xid.value);
  };
  return o;
}

std::vector<std::uint32_t> applied_xids(const RecordingSink& s) {
  std::vector<std::uint32_t> out;
  for (const auto& a : s.applied()) out.push_back(a.xid.value);
  return out;
}

std::size_t changes_of(const RecordingSink& s, std::uint32_t xid) {
  for (const auto& a : s.applied())
    if (a.xid.value == xid) return a.changes;
  return 999;
}

TEST(DeadLetterSink, PassesABatchTheTargetAcceptsThroughUnchanged) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  EXPECT_EQ(sink.apply(Batch{{txn(1, 100), txn(2, 200)}}), Lsn{200});
  EXPECT_EQ(target.batches().size(), 1u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(DeadLetterSink, StoresTheRefusedTransactionWholeAndAppliesTheOthers) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  std::vector<DeadLetter> seen;
  auto o = options();
  o.dead_lettered = [&](const DeadLetter& d) { seen.push_back(d); };
  DeadLetterSink sink{target, store, o};
  refuse(target, {2});

  EXPECT_EQ(sink.apply(Batch{{txn(1, 100), txn(2, 200, 3), txn(3, 300)}}), Lsn{300});

  EXPECT_EQ(applied_xids(target), (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(changes_of(target, 1), 1u);
  EXPECT_EQ(changes_of(target, 2), 0u);  // only its place in the progress row
  EXPECT_EQ(changes_of(target, 3), 1u);
  ASSERT_EQ(store.size(), 1u);
  const DeadLetter d = store.list(true).front();
  EXPECT_EQ(d.id, dead_letter_id(Lsn{192}));
  EXPECT_EQ(d.lsn, Lsn{192});
  EXPECT_EQ(d.end_lsn, Lsn{200});
  EXPECT_EQ(d.xid, Xid{2});
  EXPECT_EQ(d.table, "ref.customer");
  EXPECT_EQ(d.sqlstate, "23514");
  EXPECT_NE(d.error.find("tier_ok"), std::string::npos);
  EXPECT_EQ(d.changes, 3u);
  EXPECT_EQ(d.rows, "rows of 2");
  EXPECT_EQ(sink.dead_lettered(), 1u);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.front().xid, Xid{2});
}

TEST(DeadLetterSink, TheStandInRidesWithTheNextTransactionsTargetTransaction) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {1});
  sink.apply(Batch{{txn(1, 100), txn(2, 200)}});
  const auto batches = target.batches();
  // whole batch (refused), 1 alone (refused), then the stand-in of 1 together with 2.
  ASSERT_EQ(batches.size(), 3u);
  ASSERT_EQ(batches[2].transactions.size(), 2u);
  EXPECT_EQ(batches[2].transactions[0].info.xid, Xid{1});
  EXPECT_TRUE(batches[2].transactions[0].changes.empty());
  EXPECT_EQ(batches[2].transactions[1].info.xid, Xid{2});
}

TEST(DeadLetterSink, TheProgressPassesARefusedLastTransaction) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {3});
  EXPECT_EQ(sink.apply(Batch{{txn(1, 100), txn(3, 300)}}), Lsn{300});
  EXPECT_EQ(target.load_progress()->end_lsn, Lsn{300});
  EXPECT_EQ(store.size(), 1u);
}

TEST(DeadLetterSink, ASingleRefusedTransactionIsNotAskedTwice) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {5});
  EXPECT_EQ(sink.apply(Batch{{txn(5, 500)}}), Lsn{500});
  EXPECT_EQ(target.batches().size(), 2u);  // refused, then the stand-in
  EXPECT_EQ(store.size(), 1u);
}

TEST(DeadLetterSink, ConsecutiveRefusalsAreEachStoredAndTheRestApplied) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {2, 3});
  EXPECT_EQ(sink.apply(Batch{{txn(1, 100), txn(2, 200), txn(3, 300), txn(4, 400)}}), Lsn{400});
  EXPECT_EQ(applied_xids(target), (std::vector<std::uint32_t>{1, 2, 3, 4}));
  EXPECT_EQ(changes_of(target, 4), 1u);
  const auto entries = store.list(false);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].xid, Xid{2});
  EXPECT_EQ(entries[1].xid, Xid{3});
}

TEST(DeadLetterSink, ProgressNeverPassesATransactionTheStoreDidNotTake) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {2});
  store.fail_next_add_ = true;
  const Batch b{{txn(1, 100), txn(2, 200), txn(3, 300)}};
  EXPECT_THROW(sink.apply(b), TransientError);
  EXPECT_EQ(target.load_progress()->end_lsn, Lsn{100});  // 1 committed on its own; 2 not passed
  EXPECT_EQ(store.size(), 0u);

  // The pipeline retries the same batch.
  EXPECT_EQ(sink.apply(b), Lsn{300});
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(applied_xids(target), (std::vector<std::uint32_t>{1, 2, 3}));
}

TEST(DeadLetterSink, ATransactionAlreadyStoredBeforeACrashIsNotStoredAgain) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {2});
  sink.apply(Batch{{txn(2, 200)}});
  target.set_progress(Progress{Lsn{100}, Xid{1}, 1, Lsn{100}});  // the stand-in's commit was lost
  EXPECT_EQ(sink.apply(Batch{{txn(2, 200)}}), Lsn{200});
  EXPECT_EQ(store.adds_, 1);
  EXPECT_EQ(store.size(), 1u);
}

TEST(DeadLetterSink, AFullStoreStopsThePipelineNamingTheLimit) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options(1)};
  refuse(target, {2, 3});
  sink.apply(Batch{{txn(2, 200)}});
  try {
    sink.apply(Batch{{txn(3, 300), txn(4, 400)}});
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_EQ(e.sqlstate(), "23514");
    EXPECT_EQ(e.lsn(), Lsn{292});
    EXPECT_NE(std::string(e.what()).find("dead_letter.max_transactions = 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(target.load_progress()->end_lsn, Lsn{200});
  EXPECT_EQ(store.size(), 1u);
}

TEST(DeadLetterSink, ARefusedContinuationChunkStopsThePipelineAndSaysWhy) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  auto first = txn(7, 700);
  first.last_chunk = false;
  EXPECT_EQ(sink.apply(Batch{{first}}), std::nullopt);
  refuse(target, {7});
  auto last = txn(7, 700);
  last.first_chunk = false;
  try {
    sink.apply(Batch{{last}});
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_NE(std::string(e.what()).find("not dead-lettered"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("chunks"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store.size(), 0u);
}

TEST(DeadLetterSink, ARefusedFirstChunkStopsThePipelineAfterTheWholeTransactionsBeforeIt) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {8});
  auto chunk = txn(8, 800);
  chunk.last_chunk = false;
  EXPECT_THROW(sink.apply(Batch{{txn(1, 100), chunk}}), PermanentError);
  EXPECT_EQ(target.load_progress()->end_lsn, Lsn{100});
  EXPECT_EQ(store.size(), 0u);
}

TEST(DeadLetterSink, SnapshotRowsAreNeverDeadLettered) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  DeadLetterSink sink{target, store, options()};
  refuse(target, {9});
  auto snap = txn(9, 900);
  snap.info.snapshot = true;
  EXPECT_THROW(sink.apply(Batch{{snap}}), PermanentError);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(target.load_progress(), std::nullopt);
}

TEST(DeadLetterSink, ReportsTheStoreSizeAtTheFirstApplyAndAfterEachEntry) {
  RecordingSink target;
  MemoryDeadLetterStore store;
  std::vector<std::size_t> sizes;
  auto o = options();
  o.store_size = [&](std::size_t n) { sizes.push_back(n); };
  DeadLetterSink sink{target, store, o};
  refuse(target, {2});
  sink.apply(Batch{{txn(1, 100)}});
  ASSERT_EQ(sizes, (std::vector<std::size_t>{0}));
  sink.apply(Batch{{txn(2, 200)}});
  EXPECT_EQ(sizes.back(), 1u);
}

}  // namespace
}  // namespace cdcsync
