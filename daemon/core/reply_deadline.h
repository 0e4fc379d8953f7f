// A client-side deadline on the round trips of one libpq connection, armed per statement: the bulk loader's
// (daemon/core/bulk_load.h), whose sessions mix short statements, which must answer within
// snapshot.stall_timeout_ms, with long single statements (a part's upsert, a sweep) that may be silent for
// longer. Every other connection has pg_link's deadline (decoders/pg_link.h), which the loader's sessions
// turn off (a limit of 0) in favour of this one.
//
// statement_timeout is enforced by the server. When the server, or something between (a stuck pooler or
// load balancer, a half-open link through a proxy), takes the bytes but never answers, a blocking libpq
// call waits forever, and TCP keepalives and tcp_user_timeout do not help: the peer's kernel still ACKs.
// The deadline's thread shuts the socket down once one round trip has waited longer than the limit; the
// blocked call then fails as a lost connection (transient), and the caller reconnects.
#pragma once

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

namespace cdcsync {

class ReplyDeadline {
 public:
  // limit 0: no deadline. `what` names the server in the log line.
  ReplyDeadline(std::chrono::milliseconds limit, std::string what) : limit_(limit), what_(std::move(what)) {
    if (limit_.count() <= 0) return;
    thread_ = std::jthread([this](std::stop_token stop) { watch_loop(stop); });
  }
  ReplyDeadline(const ReplyDeadline&) = delete;
  ReplyDeadline& operator=(const ReplyDeadline&) = delete;

  // The socket of the current connection, -1 for none. Set -1 before closing the connection: a shutdown
  // never reaches a descriptor that was closed and reused.
  void watch(int fd) {
    std::lock_guard lock(mu_);
    fd_ = fd;
    armed_ = false;
  }

  // Armed from construction to destruction: one round trip (a statement and its reply).
  class RoundTrip {
   public:
    explicit RoundTrip(ReplyDeadline& d) : d_(d) { d_.arm(true); }
    ~RoundTrip() { d_.arm(false); }
    RoundTrip(const RoundTrip&) = delete;
    RoundTrip& operator=(const RoundTrip&) = delete;

   private:
    ReplyDeadline& d_;
  };
  [[nodiscard]] RoundTrip round_trip() { return RoundTrip{*this}; }
  // A reply arrived inside a longer exchange (pipelined results): the clock starts again.
  void touch() { arm(true); }

 private:
  // The watcher is woken only when it sleeps without a deadline. Disarming never wakes it, and arming it
  // again while it sleeps towards an earlier deadline does not either: it wakes then, sees the later start,
  // and sleeps on. So a busy connection costs the watcher a wake-up per `limit`, not two per statement.
  void arm(bool on) {
    if (limit_.count() <= 0) return;
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      armed_ = on;
      since_ = std::chrono::steady_clock::now();
      wake = on && idle_;
    }
    if (wake) cv_.notify_all();
  }

  void watch_loop(std::stop_token stop) {
    std::unique_lock lock(mu_);
    while (!stop.stop_requested()) {
      if (!armed_ || fd_ < 0) {
        idle_ = true;
        cv_.wait(lock, stop, [&] { return armed_ && fd_ >= 0; });
        idle_ = false;
        continue;
      }
      const auto deadline = since_ + limit_;
      if (std::chrono::steady_clock::now() < deadline) {
        cv_.wait_until(lock, stop, deadline, [] { return false; });
        continue;
      }
      spdlog::warn("no reply from {} for {} ms: taking the connection for dead and reconnecting", what_,
                   limit_.count());
      shutdown(fd_, SHUT_RDWR);
      armed_ = false;
    }
  }

  const std::chrono::milliseconds limit_;
  const std::string what_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  int fd_ = -1;
  bool armed_ = false;
  bool idle_ = false;  // the watcher waits without a deadline: arming must wake it
  std::chrono::steady_clock::time_point since_;
  std::jthread thread_;  // last: stopped and joined before the rest goes
};

}  // namespace cdcsync
