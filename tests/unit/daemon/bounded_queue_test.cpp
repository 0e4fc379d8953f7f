// The queue between the receiver and the applier: bounded by count and bytes, never stuck on a large item.
#include "daemon/core/bounded_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace cdcsync {
namespace {

using namespace std::chrono_literals;

TEST(BoundedQueue, PushesWhatFitsUnderTheCountBoundAndKeepsTheRestForLater) {
  BoundedQueue<std::string> q{3, 1 << 20};
  std::vector<std::string> items{"a", "b", "c", "d", "e"};
  const std::vector<std::size_t> sizes(items.size(), 10);
  EXPECT_EQ(q.push_some_for(items, sizes, 0, 0ms), 3u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.bytes(), 30u);
  EXPECT_EQ(q.push_some_for(items, sizes, 3, 10ms), 0u);  // full: nothing moved after the timeout
  EXPECT_EQ(items[3], "d");
  const auto first = q.pop_for(0ms);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->item, "a");
  EXPECT_EQ(first->bytes, 10u);  // as pushed: the consumer need not count it again
  EXPECT_EQ(first->left, 2u);    // b and c still queued
  EXPECT_EQ(q.push_some_for(items, sizes, 3, 0ms), 1u);
  EXPECT_EQ(q.pop_for(0ms)->item, "b");
  EXPECT_EQ(q.pop_for(0ms)->item, "c");
  EXPECT_EQ(q.pop_for(0ms)->item, "d");
  EXPECT_FALSE(q.pop_for(0ms).has_value());
}

TEST(BoundedQueue, PushesWhatFitsUnderTheByteBoundAndTakesAnOversizedItemIntoAnEmptyQueue) {
  BoundedQueue<int> q{100, 100};
  std::vector<int> items{1, 2, 3};
  const std::vector<std::size_t> sizes{60, 50, 500};
  EXPECT_EQ(q.push_some_for(items, sizes, 0, 0ms), 1u);  // 60 + 50 > 100
  EXPECT_EQ(q.pop_for(0ms)->item, 1);
  EXPECT_EQ(q.push_some_for(items, sizes, 1, 0ms), 1u);  // 50 + 500 > 100
  EXPECT_EQ(q.pop_for(0ms)->item, 2);
  EXPECT_EQ(q.push_some_for(items, sizes, 2, 0ms), 1u);  // alone, larger than the bound
  EXPECT_EQ(q.bytes(), 500u);
  EXPECT_EQ(q.pop_for(0ms)->item, 3);
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(BoundedQueue, AWaitingPushResumesWhenTheConsumerMakesRoom) {
  BoundedQueue<int> q{1, 1000};
  std::vector<int> first{1};
  std::vector<int> second{2};
  const std::vector<std::size_t> sizes{1};
  ASSERT_EQ(q.push_some_for(first, sizes, 0, 0ms), 1u);
  std::thread consumer([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(q.pop_for(0ms)->item, 1);
  });
  EXPECT_EQ(q.push_some_for(second, sizes, 0, 5s), 1u);
  consumer.join();
  EXPECT_EQ(q.pop_for(0ms)->item, 2);
}

TEST(BoundedQueue, ClosingWakesAWaitingPushAndPopAndRefusesMore) {
  BoundedQueue<int> q{1, 1000};
  std::vector<int> items{1, 2};
  const std::vector<std::size_t> sizes{1, 1};
  ASSERT_EQ(q.push_some_for(items, sizes, 0, 0ms), 1u);
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    q.close();
  });
  EXPECT_EQ(q.push_some_for(items, sizes, 1, 5s), 0u);
  closer.join();
  EXPECT_TRUE(q.closed());
  EXPECT_EQ(q.pop_for(0ms)->item, 1);  // what was queued before the close is still handed out
  EXPECT_FALSE(q.pop_for(5s).has_value());
}

}  // namespace
}  // namespace cdcsync
