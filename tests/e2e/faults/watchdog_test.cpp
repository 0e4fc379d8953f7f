// systemd's watchdog against a slow target statement, in an equivalent harness: the test is the service
// manager. It listens on a NOTIFY_SOCKET of its own and gives the daemon WATCHDOG_USEC, as systemd does for
// Type=notify with WatchdogSec=, then holds a lock on a target table for 40 s, longer than the default
// target.statement_timeout_ms (30 s). The apply loop does not turn meanwhile, but its statement is in flight
// within its reply deadline: the health check passes and WATCHDOG=1 keeps coming, where systemd would have
// killed a daemon fed only from the apply loop.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "decoders/pg.h"
#include "tests/e2e/faults/faults_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A datagram socket that takes sd_notify's messages and notes when each WATCHDOG=1 came.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("notify socket path too long");
    path.copy(addr.sun_path, path.size());
    unlink(path.c_str());
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot bind the notify socket " + path);
    }
    timeval tv{.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::jthread([this](std::stop_token stop) {
      char buf[4096];
      while (!stop.stop_requested()) {
        const ssize_t n = recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) continue;
        const std::string msg(buf, static_cast<std::size_t>(n));
        std::lock_guard lock(mu_);
        if (msg.find("WATCHDOG=1") != std::string::npos) fed_.push_back(Clock::now());
      }
    });
  }
  ~NotifySocket() {
    thread_.request_stop();
    thread_.join();
    close(fd_);
    unlink(path_.c_str());
  }

  // The WATCHDOG=1 times so far.
  std::vector<Clock::time_point> fed() const {
    std::lock_guard lock(mu_);
    return fed_;
  }

 private:
  std::string path_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::vector<Clock::time_point> fed_;
  std::jthread thread_;
};

// The longest wait for a WATCHDOG=1 between `from` and `to` (from `from` to the first, between two, from the
// last to `to`).
Clock::duration longest_gap(const std::vector<Clock::time_point>& fed, Clock::time_point from,
                            Clock::time_point to) {
  Clock::duration longest{0};
  Clock::time_point last = from;
  for (const auto t : fed) {
    if (t < from || t > to) continue;
    longest = std::max(longest, t - last);
    last = t;
  }
  return std::max(longest, to - last);
}

TEST(FaultsWatchdog, AStatementBlockedLongerThanTheWatchdogIntervalKeepsTheWatchdogFed) {
  SyncPipeline p{"watchdog_slow"};
  Workload::insert_rows(p.customer_admin(), 200, "seed");
  NotifySocket notify{p.dir() + "/notify.sock"};
  constexpr auto kWatchdog = 10s;  // WatchdogSec=10: fed every 5 s while healthy
  auto d = std::make_unique<DaemonProcess>(p.dir(), "cdcsync", p.config({}));
  d->add_env("NOTIFY_SOCKET=" + p.dir() + "/notify.sock");
  d->add_env("WATCHDOG_USEC=" + std::to_string(std::chrono::microseconds(kWatchdog).count()));
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ASSERT_TRUE(eventually([&] { return !notify.fed().empty(); }, 15s)) << "never fed:\n" << d->log_tail();

  Workload load{p.workload_options(8s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  Clock::time_point locked_at;
  Clock::time_point released_at;
  {
    PgConn locker = pg_connect(p.order_admin(), "the order DB (lock holder)");
    pg_exec(locker.get(), "BEGIN; LOCK TABLE ref.customer IN ACCESS EXCLUSIVE MODE", "locking ref.customer");
    locked_at = Clock::now();
    // What is tested is a statement blocked for 40 s: time passing is the fault.
    std::this_thread::sleep_for(40s);
    ASSERT_TRUE(d->running()) << d->log_tail();
    pg_exec(locker.get(), "COMMIT", "releasing the lock");
    released_at = Clock::now();
  }
  const auto gap = longest_gap(notify.fed(), locked_at, released_at);
  std::cout << "[ e2e      ] watchdog: longest wait for WATCHDOG=1 during the 40 s lock "
            << std::chrono::duration_cast<std::chrono::milliseconds>(gap).count() << " ms (WatchdogSec "
            << kWatchdog.count() << " s); " << d->log_count("57014") << " statement timeouts" << std::endl;
  EXPECT_LT(gap, kWatchdog) << "systemd would have killed the daemon:\n" << d->log_tail();
  EXPECT_EQ(d->log_count("health check fails"), 0u) << d->log_tail();
  ASSERT_TRUE(load.wait_finished(90s));
  p.expect_oracle(load.deleted_ids(), 90s, d.get());
  d->terminate();
  EXPECT_EQ(d->wait_exit(30s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
