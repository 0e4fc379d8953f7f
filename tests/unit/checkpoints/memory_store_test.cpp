#include "checkpoints/memory_store.h"

#include <gtest/gtest.h>

namespace cdcsync {
namespace {

using namespace std::chrono_literals;

class MemoryStore : public ::testing::Test {
 protected:
  std::chrono::milliseconds now_{1'700'000'000'000};
  MemoryCheckpointStore store_{[this] { return now_; }};
  LeaseToken a_{"host-a:1:aaaa"};
  LeaseToken b_{"host-b:2:bbbb"};
};

TEST_F(MemoryStore, StartsEmpty) {
  EXPECT_EQ(store_.load(), std::nullopt);
  EXPECT_EQ(store_.lease_holder(), std::nullopt);
}

TEST_F(MemoryStore, AdvancesForwardOnly) {
  ASSERT_TRUE(store_.acquire_lease(a_, 10s));
  EXPECT_EQ(store_.advance(a_, Lsn{100}), Advance::Moved);
  EXPECT_EQ(store_.advance(a_, Lsn{100}), Advance::NotAhead);
  EXPECT_EQ(store_.advance(a_, Lsn{99}), Advance::NotAhead);
  EXPECT_EQ(store_.advance(a_, Lsn{101}), Advance::Moved);
  const auto cp = store_.load();
  ASSERT_TRUE(cp);
  EXPECT_EQ(cp->lsn, Lsn{101});
  EXPECT_EQ(cp->owner, a_.value);
  EXPECT_EQ(cp->unix_ms, now_.count());
  EXPECT_EQ(store_.advances(), 2);
}

TEST_F(MemoryStore, AdvanceWithoutTheLeaseIsLeaseLost) {
  EXPECT_EQ(store_.advance(a_, Lsn{1}), Advance::LeaseLost);
  ASSERT_TRUE(store_.acquire_lease(a_, 10s));
  EXPECT_EQ(store_.advance(b_, Lsn{1}), Advance::LeaseLost);
  EXPECT_EQ(store_.load(), std::nullopt);
}

TEST_F(MemoryStore, LeaseIsExclusiveAndReentrant) {
  EXPECT_TRUE(store_.acquire_lease(a_, 10s));
  EXPECT_FALSE(store_.acquire_lease(b_, 10s));
  EXPECT_TRUE(store_.acquire_lease(a_, 10s));
  EXPECT_EQ(store_.lease_holder(), a_.value);
  EXPECT_FALSE(store_.renew_lease(b_, 10s));
}

TEST_F(MemoryStore, ExpiredLeaseGoesToTheNextInstanceAndFencesTheOld) {
  ASSERT_TRUE(store_.acquire_lease(a_, 10s));
  ASSERT_EQ(store_.advance(a_, Lsn{10}), Advance::Moved);
  now_ += 10s;
  EXPECT_EQ(store_.lease_holder(), std::nullopt);
  ASSERT_TRUE(store_.acquire_lease(b_, 10s));
  EXPECT_EQ(store_.advance(a_, Lsn{20}), Advance::LeaseLost);
  EXPECT_FALSE(store_.renew_lease(a_, 10s));
  EXPECT_EQ(store_.advance(b_, Lsn{20}), Advance::Moved);
  EXPECT_EQ(store_.load()->owner, b_.value);
}

TEST_F(MemoryStore, RenewExtendsTheLease) {
  ASSERT_TRUE(store_.acquire_lease(a_, 10s));
  now_ += 9s;
  ASSERT_TRUE(store_.renew_lease(a_, 10s));
  now_ += 9s;
  EXPECT_EQ(store_.lease_holder(), a_.value);
  EXPECT_FALSE(store_.acquire_lease(b_, 10s));
}

TEST_F(MemoryStore, ReleaseOnlyByTheHolder) {
  ASSERT_TRUE(store_.acquire_lease(a_, 10s));
  store_.release_lease(b_);
  EXPECT_EQ(store_.lease_holder(), a_.value);
  store_.release_lease(a_);
  EXPECT_EQ(store_.lease_holder(), std::nullopt);
  EXPECT_TRUE(store_.acquire_lease(b_, 10s));
}

TEST_F(MemoryStore, OverwriteAndResetIgnoreTheLeaseAndOrder) {
  ASSERT_TRUE(store_.acquire_lease(a_, 10s));
  ASSERT_EQ(store_.advance(a_, Lsn{500}), Advance::Moved);
  store_.overwrite(Lsn{5}, "operator");
  EXPECT_EQ(store_.load()->lsn, Lsn{5});
  EXPECT_EQ(store_.load()->owner, "operator");
  EXPECT_EQ(store_.advance(a_, Lsn{6}), Advance::Moved);
  store_.reset();
  EXPECT_EQ(store_.load(), std::nullopt);
}

TEST_F(MemoryStore, UnavailableThrowsOnEveryCallUntilBack) {
  store_.set_available(false);
  EXPECT_THROW(store_.load(), CheckpointUnavailable);
  EXPECT_THROW(store_.acquire_lease(a_, 10s), CheckpointUnavailable);
  EXPECT_THROW(store_.advance(a_, Lsn{1}), CheckpointUnavailable);
  store_.set_available(true);
  EXPECT_TRUE(store_.acquire_lease(a_, 10s));
}

TEST_F(MemoryStore, RefusesBadArguments) {
  EXPECT_THROW(store_.acquire_lease(LeaseToken{""}, 10s), std::invalid_argument);
  EXPECT_THROW(store_.acquire_lease(a_, 0ms), std::invalid_argument);
  ASSERT_TRUE(store_.acquire_lease(a_, 10s));
  EXPECT_THROW(store_.advance(a_, Lsn{}), std::invalid_argument);
}

}  // namespace
}  // namespace cdcsync
