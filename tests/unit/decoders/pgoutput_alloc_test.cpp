// The hot path allocates nothing per row once the reused Change's buffers have grown: counted by
// replacing the global operator new for this test binary.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <variant>

#include "decoders/assembler.h"
#include "decoders/pgoutput.h"
#include "tests/unit/decoders/pgoutput_test_support.h"

namespace {
std::atomic<long> allocations{0};
}

// g++ 12 under -fsanitize=thread inlines this replacement into its callers and then takes the free() below
// for a mismatch with a `new` (-Wmismatched-new-delete): a false positive, the pair is malloc/free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace cdcsync {
namespace {

using testing::MessageBuilder;

TEST(PgOutputDecoder, DecodesRowsWithoutAllocatingOnceTheChangeBuffersHaveGrown) {
  PgOutputDecoder decoder{{.version = 1}};
  RelationCache relations;
  Change change;
  relations.put(
      std::get<pgoutput::Relation>(decoder.decode(testing::relation_message(1, 2), relations, change))
          .relation);
  const std::string insert = testing::insert_message(1, "123", "a fairly long name for a customer row");
  const std::string update = MessageBuilder('U')
                                 .u32(1)
                                 .byte('K')
                                 .i16(2)
                                 .text("123")
                                 .null()
                                 .byte('N')
                                 .i16(2)
                                 .text("124")
                                 .text("x")
                                 .bytes();
  const std::string del = MessageBuilder('D').u32(1).byte('K').i16(2).text("124").null().bytes();
  for (int warm = 0; warm < 2; ++warm) {
    decoder.decode(insert, relations, change);
    decoder.decode(update, relations, change);
    decoder.decode(del, relations, change);
  }
  const long before = allocations.load();
  for (int i = 0; i < 1000; ++i) {
    decoder.decode(insert, relations, change);
    decoder.decode(update, relations, change);
    decoder.decode(del, relations, change);
  }
  EXPECT_EQ(allocations.load() - before, 0);
  EXPECT_EQ(change.before.value(0), "124");
}

// In the daemon the applier hands applied transactions back to the receiver (TransactionAssembler::recycle):
// assembling the next ones reuses their changes' buffers and lists.
TEST(TransactionAssembler, AssemblesTransactionsWithoutAllocatingOnceAppliedOnesComeBack) {
  std::vector<Transaction> emitted;
  emitted.reserve(4);
  TransactionAssembler assembler{AssemblerOptions{.protocol = {.version = 1}},
                                 [&](Transaction&& t) { emitted.push_back(std::move(t)); }};
  const std::string relation = testing::relation_message(1, 2);
  std::uint64_t lsn = 0x1000;
  std::size_t changes = 0;
  const auto round = [&] {
    const std::uint64_t final_lsn = lsn + 200;
    assembler.feed(testing::begin_message(final_lsn, 7), Lsn{lsn});
    if (lsn == 0x1000) assembler.feed(relation, Lsn{lsn});
    for (int i = 0; i < 100; ++i) {
      assembler.feed(testing::insert_message(1, "123", "a fairly long name for a customer row"), Lsn{++lsn});
    }
    assembler.feed(testing::commit_message(final_lsn, final_lsn + 8), Lsn{final_lsn});
    lsn = final_lsn + 8;
    changes += emitted.at(0).changes.size();
    EXPECT_EQ(emitted.at(0).changes.back().after.value(1), "a fairly long name for a customer row");
    assembler.recycle(emitted);
  };
  const std::string insert = testing::insert_message(1, "123", "a fairly long name for a customer row");
  for (int warm = 0; warm < 3; ++warm) round();
  for (int i = 0; i < 50; ++i) {
    const std::uint64_t final_lsn = lsn + 200;
    const std::string begin = testing::begin_message(final_lsn, 7);
    const std::string commit = testing::commit_message(final_lsn, final_lsn + 8);
    const long built = allocations.load();  // the messages themselves are built outside the count
    assembler.feed(begin, Lsn{lsn});
    for (int k = 0; k < 100; ++k) assembler.feed(insert, Lsn{++lsn});
    assembler.feed(commit, Lsn{final_lsn});
    lsn = final_lsn + 8;
    ASSERT_EQ(emitted.size(), 1u);
    changes += emitted[0].changes.size();
    assembler.recycle(emitted);
    EXPECT_EQ(allocations.load() - built, 0) << "round " << i;
  }
  EXPECT_EQ(changes, 5300u);
  EXPECT_EQ(assembler.pool().spare_changes(), 100u);
  EXPECT_EQ(assembler.pool().spare_lists(), 1u);
}

}  // namespace
}  // namespace cdcsync
