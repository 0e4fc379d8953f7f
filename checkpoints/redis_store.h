// The checkpoint mirror in Redis (through RedisClient: checkpoints/redis_client.h), with the single-writer
// lease.
//
// Keys per pipeline (the {hash tag} keeps both in one cluster slot, so one script may touch both):
//   cdcsync:{<pipeline>}:checkpoint  hash: lsn ("16/B374D848"), lsn_hex (16 hex digits), unix_ms, owner
//   cdcsync:{<pipeline>}:lease       string: the holder's token, with a PX expiry
// advance(), renew and release are single Lua scripts, so "still the holder" and "forward only" are checked
// atomically with the write: a zombie whose lease expired cannot move the checkpoint (fencing).
//
// Errors: CheckpointUnavailable for connection problems and retriable replies (LOADING, READONLY, BUSY,
// TRYAGAIN, MASTERDOWN, OOM, max clients); CheckpointFatal for everything that retrying will not fix
// (NOAUTH, WRONGPASS, NOPERM, WRONGTYPE, a corrupt checkpoint, an oversized reply, unknown errors).
// After any error the connection is dropped; the next call reconnects.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoints/checkpoint_store.h"
#include "checkpoints/redis_client.h"
#include "checkpoints/redis_url.h"

namespace cdcsync {

struct RedisStoreOptions {
  RedisConnectOptions connection;      // the URL, timeouts and TCP keepalive (checkpoints/redis_client.h)
  std::string pipeline;                // 1..64 of [A-Za-z0-9_.-]; names the keys
  std::size_t max_reply_bytes = 4096;  // any longer string in a reply is refused (CheckpointFatal)
};

class RedisCheckpointStore final : public CheckpointStore {
 public:
  // Validates the options (throws std::invalid_argument); connects lazily, on the first call.
  explicit RedisCheckpointStore(RedisStoreOptions options);
  ~RedisCheckpointStore() override;
  RedisCheckpointStore(const RedisCheckpointStore&) = delete;
  RedisCheckpointStore& operator=(const RedisCheckpointStore&) = delete;

  std::optional<Checkpoint> load() override;
  bool acquire_lease(const LeaseToken& token, std::chrono::milliseconds ttl) override;
  bool renew_lease(const LeaseToken& token, std::chrono::milliseconds ttl) override;
  void release_lease(const LeaseToken& token) override;
  std::optional<std::string> lease_holder() override;
  Advance advance(const LeaseToken& token, Lsn lsn) override;
  void overwrite(Lsn lsn, const std::string& owner) override;
  void reset() override;

  // Round trip to the server (connecting when needed); throws like every other call.
  void ping();

  const std::string& checkpoint_key() const { return checkpoint_key_; }
  const std::string& lease_key() const { return lease_key_; }

 private:
  // With the mutex held. Connects on demand, drops the connection after any error, throws by error class;
  // a NOSCRIPT reply is returned (not thrown) when `pass_noscript`.
  RedisValue run(std::string_view what, const std::vector<std::string_view>& argv,
                 bool pass_noscript = false);
  // EVALSHA, falling back to EVAL when the server does not have the script cached.
  RedisValue eval(std::string_view what, std::string_view script, const std::vector<std::string_view>& keys,
                  const std::vector<std::string_view>& args);

  RedisStoreOptions options_;
  std::string checkpoint_key_;
  std::string lease_key_;
  std::mutex mutex_;  // one command at a time on the connection
  std::unique_ptr<RedisClient> client_;
  bool connected_once_ = false;  // for logging state changes once, not every retry
  bool lost_ = false;
};

// 16 upper-case hex digits of the LSN's 64-bit value: sorts like the LSN and survives Lua's doubles when
// split into two 32-bit halves.
std::string lsn_hex(Lsn lsn);

}  // namespace cdcsync
