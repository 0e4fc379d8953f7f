// A plain Redis connection (hiredis, synchronous) for the keys next to the checkpoint: the dead-letter
// stream and other per-pipeline data. Connects lazily, as the checkpoint store does (timeouts, TCP
// keepalive, AUTH, SELECT: checkpoints/redis_connection.h), runs commands given as argv (values travel as
// binary-safe arguments, never spliced into a command line) and copies each reply into a RedisValue.
//
// Errors are classified like the checkpoint store's: a connection problem or a retriable reply (LOADING,
// READONLY, BUSY, TRYAGAIN, MASTERDOWN, OOM, max clients) throws CheckpointUnavailable; any other error
// reply throws CheckpointFatal with its code (NOPERM, WRONGTYPE, ...). After a connection error the
// connection is dropped and the next call reconnects. Messages name the redacted URL, never the password.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoints/redis_store.h"
#include "checkpoints/redis_url.h"

namespace cdcsync {

struct RedisValue {
  enum class Type : std::uint8_t { Nil, Integer, String, Status, Array };
  Type type = Type::Nil;
  long long integer = 0;
  std::string str;  // String and Status
  std::vector<RedisValue> elements;

  bool nil() const { return type == Type::Nil; }
};

class RedisClient {
 public:
  struct Options {
    RedisUrl url;
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds command_timeout{5000};
  };

  explicit RedisClient(Options options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command; `what` names it in errors ("XADD on cdcsync:{p}:dlq").
  RedisValue command(std::string_view what, const std::vector<std::string_view>& argv);

  const RedisUrl& url() const { return options_.url; }

 private:
  class Connection;
  Options options_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace cdcsync
