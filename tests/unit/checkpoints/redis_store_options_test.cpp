// What the Redis store checks before it ever connects.
#include <gtest/gtest.h>

#include "checkpoints/redis_store.h"

namespace cdcsync {
namespace {

RedisStoreOptions options(std::string pipeline) {
  return RedisStoreOptions{.connection = {.url = RedisUrl::parse("redis://127.0.0.1:1/0")},
                           .pipeline = std::move(pipeline)};
}

TEST(RedisCheckpointStore, NamesKeysWithThePipelineAsHashTag) {
  RedisCheckpointStore store(options("customers-main"));
  EXPECT_EQ(store.checkpoint_key(), "cdcsync:{customers-main}:checkpoint");
  EXPECT_EQ(store.lease_key(), "cdcsync:{customers-main}:lease");
}

TEST(RedisCheckpointStore, RefusesPipelineNamesThatWouldBreakTheKeys) {
  EXPECT_THROW(RedisCheckpointStore(options("")), std::invalid_argument);
  EXPECT_THROW(RedisCheckpointStore(options("a}b")), std::invalid_argument);
  EXPECT_THROW(RedisCheckpointStore(options("a b")), std::invalid_argument);
  EXPECT_THROW(RedisCheckpointStore(options(std::string(65, 'a'))), std::invalid_argument);
}

TEST(RedisCheckpointStore, RefusesAnAclUserWithoutPassword) {
  auto o = options("p");
  o.connection.url = RedisUrl::parse("redis://cdcsync@127.0.0.1");
  EXPECT_THROW(RedisCheckpointStore{o}, std::invalid_argument);
}

TEST(RedisCheckpointStore, UnreachableServerIsUnavailableNotFatal) {
  RedisCheckpointStore store(options("p"));  // port 1: nothing listens
  EXPECT_THROW(store.load(), CheckpointUnavailable);
  EXPECT_THROW(store.lease_holder(), CheckpointUnavailable);
}

TEST(LsnHex, IsSixteenUpperCaseDigitsThatSortLikeTheLsn) {
  EXPECT_EQ(lsn_hex(*Lsn::parse("16/B374D848")), "00000016B374D848");
  EXPECT_EQ(lsn_hex(Lsn{1}), "0000000000000001");
  EXPECT_EQ(lsn_hex(*Lsn::parse("FFFFFFFF/FFFFFFFF")), "FFFFFFFFFFFFFFFF");
  EXPECT_LT(lsn_hex(*Lsn::parse("9/FFFFFFFF")), lsn_hex(*Lsn::parse("A/0")));
}

}  // namespace
}  // namespace cdcsync
