#include "decoders/change_pool.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cdcsync {
namespace {

Change row(std::size_t value_bytes) {
  Change c;
  c.op = ChangeOp::Insert;
  c.relation = std::make_shared<RelationDef>();
  c.after.add_text("1");
  c.after.add_text(std::string(value_bytes, 'v'));
  return c;
}

std::vector<Transaction> spent(std::size_t transactions, std::size_t changes, std::size_t value_bytes) {
  std::vector<Transaction> out(transactions);
  for (auto& t : out) {
    for (std::size_t i = 0; i < changes; ++i) t.changes.push_back(row(value_bytes));
  }
  return out;
}

TEST(ChangePool, KeepsTheBuffersOfSpentChangesAndHandsThemBackToTheDecoder) {
  ChangePool pool;
  auto done = spent(2, 3, 100);
  const char* buffer = done[1].changes[2].after.value(0).data();
  pool.give(done);
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(pool.spare_changes(), 6u);
  EXPECT_EQ(pool.spare_lists(), 2u);
  EXPECT_GT(pool.bytes(), 600u);

  Change scratch;
  pool.take(scratch);  // the last one given comes back first
  EXPECT_GE(scratch.after.capacity_bytes(), 101u);
  EXPECT_EQ(scratch.relation, nullptr) << "a spare must not keep its relation alive";
  scratch.after.clear();
  scratch.after.add_text("2");
  EXPECT_EQ(scratch.after.value(0).data(), buffer) << "the value went into the spent change's buffer";
  EXPECT_EQ(pool.spare_changes(), 5u);

  const std::vector<Change> list = pool.take_list();
  EXPECT_TRUE(list.empty());
  EXPECT_GE(list.capacity(), 3u);
  EXPECT_EQ(pool.spare_lists(), 1u);
}

TEST(ChangePool, HoldsNoMoreThanItsByteBoundAndFreesChangesWithWideValues) {
  ChangePool pool{{.max_bytes = 64 * 1024, .max_change_bytes = 4096}};
  auto wide = spent(1, 10, 10000);
  pool.give(wide);
  EXPECT_EQ(pool.spare_changes(), 0u) << "a change holding a wide value is freed, not kept";
  EXPECT_EQ(pool.spare_lists(), 1u);

  auto many = spent(100, 10, 200);
  pool.give(many);
  EXPECT_TRUE(many.empty());
  EXPECT_LE(pool.bytes(), 64u * 1024);
  EXPECT_GT(pool.spare_changes(), 50u);
  EXPECT_LT(pool.spare_changes(), 1000u);

  std::size_t taken = 0;
  for (Change c; pool.spare_changes() > 0; ++taken) pool.take(c);
  while (pool.spare_lists() > 0) pool.take_list();
  EXPECT_GT(taken, 50u);
  EXPECT_EQ(pool.bytes(), 0u) << "what was counted in is counted out";
}

TEST(ChangePool, TakingFromAnEmptyPoolLeavesTheChangeAndGivesAnEmptyList) {
  ChangePool pool;
  Change c = row(10);
  pool.take(c);
  EXPECT_EQ(c.after.value(0), "1");
  EXPECT_EQ(pool.take_list().capacity(), 0u);
}

}  // namespace
}  // namespace cdcsync
