// RedisCheckpointStore against the real Redis of the servers fixture.
#include <gtest/gtest.h>
#include <unistd.h>

#include "checkpoints/redis_store.h"
#include "tests/harness/servers.h"

namespace cdcsync {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::redis_command;
using test::TestServers;

class RedisStore : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
                std::to_string(getpid());
  }
  void TearDown() override {
    try {
      redis_command({"DEL", "cdcsync:{" + pipeline_ + "}:checkpoint", "cdcsync:{" + pipeline_ + "}:lease"});
    } catch (const std::exception&) {
      // Redis may be down after a failed restart test; nothing to clean then.
    }
  }

  RedisStoreOptions options() const {
    return RedisStoreOptions{.connection = {.url = RedisUrl::parse(TestServers::get().redis_url()),
                                            .connect_timeout = 1s,
                                            .command_timeout = 1s},
                             .pipeline = pipeline_};
  }
  std::string checkpoint_key() const { return "cdcsync:{" + pipeline_ + "}:checkpoint"; }

  std::string pipeline_;
  LeaseToken a_{"host-a:100:aaaa"};
  LeaseToken b_{"host-b:200:bbbb"};
};

TEST_F(RedisStore, AdvancesForwardOnlyAndLoadsWhatItWrote) {
  RedisCheckpointStore store(options());
  EXPECT_EQ(store.load(), std::nullopt);
  ASSERT_TRUE(store.acquire_lease(a_, 10s));
  EXPECT_EQ(store.advance(a_, *Lsn::parse("0/16B3748")), Advance::Moved);
  EXPECT_EQ(store.advance(a_, *Lsn::parse("0/16B3748")), Advance::NotAhead);
  EXPECT_EQ(store.advance(a_, *Lsn::parse("0/16B3700")), Advance::NotAhead);
  EXPECT_EQ(store.advance(a_, *Lsn::parse("16/B374D848")), Advance::Moved);
  const auto cp = store.load();
  ASSERT_TRUE(cp);
  EXPECT_EQ(cp->lsn.str(), "16/B374D848");
  EXPECT_EQ(cp->owner, a_.value);
  EXPECT_GT(cp->unix_ms, 1'600'000'000'000);
  EXPECT_EQ(redis_command({"HGET", checkpoint_key(), "lsn_hex"}), "00000016B374D848");
}

TEST_F(RedisStore, ComparesLsnsBeyondDoublePrecisionAndAcrossTheHalves) {
  RedisCheckpointStore store(options());
  ASSERT_TRUE(store.acquire_lease(a_, 10s));
  EXPECT_EQ(store.advance(a_, *Lsn::parse("9/FFFFFFFF")), Advance::Moved);
  EXPECT_EQ(store.advance(a_, *Lsn::parse("A/0")), Advance::Moved);
  EXPECT_EQ(store.advance(a_, *Lsn::parse("9/FFFFFFFF")), Advance::NotAhead);
  // 2^53 + 1 and 2^53 are the same double: a naive Lua comparison would call this "not ahead".
  EXPECT_EQ(store.advance(a_, Lsn{(1ULL << 53)}), Advance::Moved);
  EXPECT_EQ(store.advance(a_, Lsn{(1ULL << 53) + 1}), Advance::Moved);
  EXPECT_EQ(store.advance(a_, *Lsn::parse("FFFFFFFF/FFFFFFFE")), Advance::Moved);
  EXPECT_EQ(store.advance(a_, *Lsn::parse("FFFFFFFF/FFFFFFFF")), Advance::Moved);
  EXPECT_EQ(store.load()->lsn.str(), "FFFFFFFF/FFFFFFFF");
}

TEST_F(RedisStore, LeaseIsExclusiveBetweenTwoInstances) {
  RedisCheckpointStore first(options());
  RedisCheckpointStore second(options());
  EXPECT_TRUE(first.acquire_lease(a_, 10s));
  EXPECT_FALSE(second.acquire_lease(b_, 10s));
  EXPECT_TRUE(first.acquire_lease(a_, 10s));  // already ours: renewed
  EXPECT_EQ(second.lease_holder(), a_.value);
  EXPECT_EQ(second.advance(b_, Lsn{1}), Advance::LeaseLost);
  EXPECT_FALSE(second.renew_lease(b_, 10s));
  second.release_lease(b_);  // not the holder: no effect
  EXPECT_EQ(first.lease_holder(), a_.value);
  first.release_lease(a_);
  EXPECT_EQ(first.lease_holder(), std::nullopt);
  EXPECT_TRUE(second.acquire_lease(b_, 10s));
}

TEST_F(RedisStore, ExpiredLeaseFencesTheZombie) {
  RedisCheckpointStore old_instance(options());
  RedisCheckpointStore new_instance(options());
  ASSERT_TRUE(old_instance.acquire_lease(a_, 300ms));
  ASSERT_EQ(old_instance.advance(a_, Lsn{100}), Advance::Moved);
  ASSERT_TRUE(eventually([&] { return new_instance.acquire_lease(b_, 10s); }, 5s));
  EXPECT_EQ(old_instance.advance(a_, Lsn{200}), Advance::LeaseLost);
  EXPECT_FALSE(old_instance.renew_lease(a_, 10s));
  EXPECT_EQ(new_instance.advance(b_, Lsn{150}), Advance::Moved);
  const auto cp = old_instance.load();
  ASSERT_TRUE(cp);
  EXPECT_EQ(cp->lsn, Lsn{150});
  EXPECT_EQ(cp->owner, b_.value);
}

TEST_F(RedisStore, RenewKeepsTheLeasePastItsFirstTtl) {
  RedisCheckpointStore store(options());
  ASSERT_TRUE(store.acquire_lease(a_, 1s));
  ASSERT_TRUE(store.renew_lease(a_, 60s));
  const auto ttl = std::stoll(redis_command({"PTTL", "cdcsync:{" + pipeline_ + "}:lease"}));
  EXPECT_GT(ttl, 30'000);
}

TEST_F(RedisStore, FallsBackToEvalWhenTheScriptCacheWasFlushed) {
  RedisCheckpointStore store(options());
  ASSERT_TRUE(store.acquire_lease(a_, 10s));
  ASSERT_EQ(store.advance(a_, Lsn{1}), Advance::Moved);
  redis_command({"SCRIPT", "FLUSH"});
  EXPECT_EQ(store.advance(a_, Lsn{2}), Advance::Moved);
  EXPECT_EQ(store.load()->lsn, Lsn{2});
}

TEST_F(RedisStore, OverwriteAndResetAreUnconditional) {
  RedisCheckpointStore store(options());
  ASSERT_TRUE(store.acquire_lease(a_, 10s));
  ASSERT_EQ(store.advance(a_, Lsn{500}), Advance::Moved);
  store.overwrite(Lsn{5}, "operator");
  EXPECT_EQ(store.load()->lsn, Lsn{5});
  EXPECT_EQ(store.load()->owner, "operator");
  store.reset();
  EXPECT_EQ(store.load(), std::nullopt);
  redis_command({"SET", checkpoint_key(), "garbage"});
  store.overwrite(Lsn{7}, "operator");  // repairs a key of the wrong type too
  EXPECT_EQ(store.load()->lsn, Lsn{7});
}

TEST_F(RedisStore, UnavailableWhileRedisIsDownThenReconnects) {
  RedisCheckpointStore store(options());
  ASSERT_TRUE(store.acquire_lease(a_, 60s));
  ASSERT_EQ(store.advance(a_, Lsn{1000}), Advance::Moved);
  TestServers::get().control({"redis-stop", "nosave"});
  EXPECT_THROW(store.load(), CheckpointUnavailable);
  EXPECT_THROW(store.advance(a_, Lsn{2000}), CheckpointUnavailable);
  EXPECT_THROW(store.ping(), CheckpointUnavailable);
  TestServers::get().control({"redis-start"});
  ASSERT_TRUE(eventually(
      [&] {
        store.ping();
        return true;
      },
      10s));
  // The AOF may or may not hold the last second; either way the store works again under the lease.
  ASSERT_TRUE(store.acquire_lease(a_, 60s));
  EXPECT_EQ(store.advance(a_, Lsn{2000}), Advance::Moved);
  EXPECT_EQ(store.load()->lsn, Lsn{2000});
}

TEST_F(RedisStore, KeyOfTheWrongTypeIsFatal) {
  RedisCheckpointStore store(options());
  redis_command({"SET", checkpoint_key(), "garbage"});
  try {
    store.load();
    FAIL() << "no error";
  } catch (const CheckpointFatal& e) {
    EXPECT_EQ(e.code(), "WRONGTYPE");
    EXPECT_NE(std::string(e.what()).find(checkpoint_key()), std::string::npos);
  }
  ASSERT_TRUE(store.acquire_lease(a_, 10s));
  EXPECT_THROW(store.advance(a_, Lsn{1}), CheckpointFatal);
}

TEST_F(RedisStore, GarbageFieldsAreCorruptAndNamed) {
  RedisCheckpointStore store(options());
  redis_command(
      {"HSET", checkpoint_key(), "lsn", "banana", "lsn_hex", "banana", "unix_ms", "1", "owner", "x"});
  try {
    store.load();
    FAIL() << "no error";
  } catch (const CheckpointFatal& e) {
    EXPECT_EQ(e.code(), "CORRUPT");
    EXPECT_NE(std::string(e.what()).find("field lsn is not an LSN"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("banana"), std::string::npos);
  }
  ASSERT_TRUE(store.acquire_lease(a_, 10s));
  try {
    store.advance(a_, Lsn{1});
    FAIL() << "no error";
  } catch (const CheckpointFatal& e) {
    EXPECT_EQ(e.code(), "CORRUPT");
  }
  redis_command({"DEL", checkpoint_key()});
  redis_command({"HSET", checkpoint_key(), "unrelated", "1"});
  EXPECT_THROW(store.load(), CheckpointFatal);
  redis_command({"DEL", checkpoint_key()});
  redis_command(
      {"HSET", checkpoint_key(), "lsn", "0/10", "lsn_hex", "0000000000000011", "unix_ms", "1", "owner", "x"});
  EXPECT_THROW(store.load(), CheckpointFatal);  // lsn and lsn_hex disagree
}

TEST_F(RedisStore, OversizedReplyIsRefused) {
  RedisCheckpointStore store(options());
  redis_command({"SET", "cdcsync:{" + pipeline_ + "}:lease", std::string(64 * 1024, 'x')});
  try {
    store.lease_holder();
    FAIL() << "no error";
  } catch (const CheckpointFatal& e) {
    EXPECT_EQ(e.code(), "REPLY_TOO_LARGE");
  }
}

class RedisStoreAcl : public RedisStore {
 protected:
  void SetUp() override {
    RedisStore::SetUp();
    user_ = "cdcsync_ckpt_" + std::to_string(getpid());
    // The least-privilege set the store needs: our key prefix only, no channels, these commands only.
    redis_command({"ACL",       "SETUSER",    user_,           "reset",   "on",       ">" + password_,
                   "resetkeys", "~cdcsync:*", "resetchannels", "-@all",   "+ping",    "+select",
                   "+get",      "+set",       "+del",          "+exists", "+pexpire", "+hset",
                   "+hget",     "+hmget",     "+eval",         "+evalsha"});
  }
  void TearDown() override {
    redis_command({"ACL", "DELUSER", user_});
    RedisStore::TearDown();
  }
  RedisStoreOptions acl_options(const std::string& password) const {
    auto o = options();
    o.connection.url.user = user_;
    o.connection.url.password = password;
    return o;
  }

  std::string user_;
  std::string password_ = "s3cret-for-acl-test";
};

TEST_F(RedisStoreAcl, WorksWithAnAclUserLimitedToTheKeyPrefix) {
  RedisCheckpointStore store(acl_options(password_));
  ASSERT_TRUE(store.acquire_lease(a_, 10s));
  EXPECT_EQ(store.advance(a_, Lsn{42}), Advance::Moved);
  EXPECT_EQ(store.load()->lsn, Lsn{42});
  redis_command({"SCRIPT", "FLUSH"});
  EXPECT_EQ(store.advance(a_, Lsn{43}), Advance::Moved);
  store.release_lease(a_);
}

TEST_F(RedisStoreAcl, WrongPasswordIsFatalAndNotLogged) {
  RedisCheckpointStore store(acl_options("not-the-password"));
  try {
    store.load();
    FAIL() << "no error";
  } catch (const CheckpointFatal& e) {
    EXPECT_EQ(e.code(), "WRONGPASS");
    EXPECT_EQ(std::string(e.what()).find("not-the-password"), std::string::npos);
  }
}

TEST_F(RedisStoreAcl, KeysOutsideThePrefixAreNoPerm) {
  auto o = acl_options(password_);
  RedisCheckpointStore store(o);
  ASSERT_NO_THROW(store.ping());
  // A pipeline name cannot leave the prefix, so prove the ACL bites with a user limited to another prefix.
  redis_command({"ACL", "SETUSER", user_, "resetkeys", "~other:*"});
  try {
    store.load();
    FAIL() << "no error";
  } catch (const CheckpointFatal& e) {
    EXPECT_EQ(e.code(), "NOPERM");
  }
}

}  // namespace
}  // namespace cdcsync
