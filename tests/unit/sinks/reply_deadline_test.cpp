// The client-side reply deadline on a socket pair: a round trip that outlives the limit shuts the socket
// down; short round trips one after another never do, however many there are.
#include "sinks/reply_deadline.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace cdcsync {
namespace {

using namespace std::chrono_literals;

class SocketPair {
 public:
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  ~SocketPair() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int ours() const { return fds_[0]; }
  // True once our end was shut down: the peer reads end-of-file.
  bool shut_down(std::chrono::milliseconds within) const {
    pollfd p{.fd = fds_[1], .events = POLLIN, .revents = 0};
    if (poll(&p, 1, static_cast<int>(within.count())) <= 0) return false;
    char c;
    return read(fds_[1], &c, 1) == 0;
  }

 private:
  int fds_[2] = {-1, -1};
};

TEST(ReplyDeadline, ARoundTripLongerThanTheLimitShutsTheSocketDown) {
  SocketPair s;
  ReplyDeadline d{50ms, "the test peer"};
  d.watch(s.ours());
  const auto started = std::chrono::steady_clock::now();
  {
    auto rt = d.round_trip();
    EXPECT_TRUE(s.shut_down(2s));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
}

TEST(ReplyDeadline, ManyShortRoundTripsInARowNeverTripIt) {
  SocketPair s;
  ReplyDeadline d{80ms, "the test peer"};
  d.watch(s.ours());
  const auto until = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < until) {
    auto rt = d.round_trip();
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_FALSE(s.shut_down(150ms));  // disarmed: the watcher's pending wake-up finds nothing to do
}

TEST(ReplyDeadline, ArmingAfterAnIdleSpellStillTrips) {
  SocketPair s;
  ReplyDeadline d{50ms, "the test peer"};
  d.watch(s.ours());
  { auto rt = d.round_trip(); }
  std::this_thread::sleep_for(200ms);  // the watcher has gone back to waiting without a deadline
  auto rt = d.round_trip();
  EXPECT_TRUE(s.shut_down(2s));
}

TEST(ReplyDeadline, TouchRestartsTheClockOfALongExchange) {
  SocketPair s;
  ReplyDeadline d{100ms, "the test peer"};
  d.watch(s.ours());
  auto rt = d.round_trip();
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(40ms);
    d.touch();
  }
  EXPECT_FALSE(s.shut_down(0ms));
  EXPECT_TRUE(s.shut_down(2s));  // no more replies: it trips
}

}  // namespace
}  // namespace cdcsync
