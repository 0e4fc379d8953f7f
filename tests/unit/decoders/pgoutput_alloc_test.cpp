// The hot path allocates nothing per row once the reused Change's buffers have grown: counted by
// replacing the global operator new for this test binary.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <variant>

#include "decoders/pgoutput.h"
#include "tests/unit/decoders/pgoutput_test_support.h"

namespace {
std::atomic<long> allocations{0};
}

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

}  // namespace
}  // namespace cdcsync
