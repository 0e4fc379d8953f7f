// The one way cdcsync talks to Redis (hiredis, synchronous): the checkpoint store, the event archive, the
// dead-letter stream and the verify results all go through RedisClient, so every connection follows one
// network policy (RedisConnectOptions): connect and command timeouts; on TCP, keepalive probing and
// TCP_USER_TIMEOUT, so that a blackholed Redis is noticed without a command; AUTH (with the ACL user when
// the URL names one) and SELECT. TLS (rediss://) is refused when the URL is parsed: the hiredis this build
// uses has none. Commands are given as argv (values travel as binary-safe arguments, never spliced into a
// command line) and each reply is copied into a RedisValue.
//
// Errors: a connection problem or a retriable reply (LOADING, READONLY, BUSY, TRYAGAIN, MASTERDOWN, OOM,
// CLUSTERDOWN, max clients) throws CheckpointUnavailable; any other error reply CheckpointFatal with its code
// (NOPERM, WRONGTYPE, ...; a script's CDCSYNC_CORRUPT as "CORRUPT"). After a CheckpointUnavailable the
// connection is dropped (hiredis contexts do not recover from I/O or protocol errors) and the next command
// reconnects. Messages name the redacted URL, never the password.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoints/checkpoint_store.h"
#include "checkpoints/redis_url.h"

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

struct RedisValue {
  enum class Type : std::uint8_t { Nil, Integer, String, Status, Array, Error };
  Type type = Type::Nil;
  long long integer = 0;
  std::string str;  // String, Status and Error
  std::vector<RedisValue> elements;

  bool nil() const { return type == Type::Nil; }
  bool error() const { return type == Type::Error; }
};

class RedisClient {
 public:
  // Checks the options (throws std::invalid_argument: an ACL user without a password, a timeout or keepalive
  // setting that is not positive); connects lazily, on the first command.
  explicit RedisClient(RedisConnectOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command; an error reply is thrown by its class. `what` names it in errors ("XADD on
  // cdcsync:{p}:dlq").
  RedisValue command(std::string_view what, const std::vector<std::string_view>& argv);
  // The same, but an error reply is returned (Type::Error, its text in `str`) for the caller to classify;
  // only connection problems throw.
  RedisValue command_or_error(std::string_view what, const std::vector<std::string_view>& argv);

  // Connects (timeouts, keepalive, AUTH, SELECT) unless connected; true when this call opened a connection.
  bool connect();
  void disconnect();

  const RedisUrl& url() const { return options_.url; }

 private:
  class Connection;
  RedisConnectOptions options_;
  std::unique_ptr<Connection> connection_;
};

// Throws an error reply's text by its class: retriable ones (see above) as CheckpointUnavailable, the rest as
// CheckpointFatal with the reply's code. The message names the redacted URL and `what`.
[[noreturn]] void throw_redis_error_reply(const RedisUrl& url, std::string_view what, std::string_view text);

}  // namespace cdcsync
