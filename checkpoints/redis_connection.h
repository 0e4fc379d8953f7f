// One hiredis connection, opened the way every Redis user in cdcsync opens it (the checkpoint store,
// RedisClient): connect and command timeouts; on TCP, keepalive probing and TCP_USER_TIMEOUT, so that a
// blackholed Redis is noticed without a command; AUTH (with the ACL user when the URL names one) and
// SELECT. A connection problem throws CheckpointUnavailable, an error reply that retrying will not fix
// CheckpointFatal. Messages name the redacted URL, never the password. After any CheckpointUnavailable the
// connection is unusable (hiredis contexts do not recover from I/O or protocol errors): drop it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoints/redis_url.h"

struct redisContext;  // hiredis
struct redisReply;

namespace cdcsync {

struct RedisConnectOptions {
  RedisUrl url;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
  // TCP only: how long unacknowledged data may stay in flight before the kernel drops the connection, and
  // keepalive probing of an idle connection (so a blackholed Redis is noticed without a command).
  std::chrono::milliseconds tcp_user_timeout{10000};
  std::chrono::seconds keepalive_idle{10};
  std::chrono::seconds keepalive_interval{5};
  int keepalive_count = 3;
};

struct RedisReplyFree {
  void operator()(redisReply* r) const;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

class RedisConnection {
 public:
  explicit RedisConnection(const RedisConnectOptions& options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // The reply, which may be an error reply; throws CheckpointUnavailable when the connection failed.
  // `what` names the command in errors.
  RedisReplyPtr command(std::string_view what, const std::vector<std::string_view>& argv);
  // The same, with an error reply thrown by its class.
  RedisReplyPtr checked(std::string_view what, const std::vector<std::string_view>& argv);

 private:
  struct ContextFree {
    void operator()(redisContext* c) const;
  };
  [[noreturn]] void unavailable(std::string_view what, std::string_view detail) const;
  void set_tcp_options(const RedisConnectOptions& o);

  RedisUrl url_;
  std::unique_ptr<redisContext, ContextFree> ctx_;
};

// Classifies an error reply: retriable ones (LOADING, READONLY, BUSY, TRYAGAIN, MASTERDOWN, OOM,
// CLUSTERDOWN, max clients) throw CheckpointUnavailable, the rest CheckpointFatal with the reply's code
// (a script's CDCSYNC_CORRUPT as "CORRUPT").
[[noreturn]] void throw_redis_reply_error(const RedisUrl& url, std::string_view what, const redisReply* r);

}  // namespace cdcsync
