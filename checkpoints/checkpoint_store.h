// The seam to the checkpoint mirror and the pipeline's single-writer lease.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "decoders/lsn.h"

namespace cdcsync {

struct Checkpoint {
  Lsn lsn;
  std::int64_t unix_ms = 0;  // when it was written
  std::string owner;         // the lease token of the writer
};

struct LeaseToken {
  std::string value;  // unique per daemon instance: host, pid, random
  bool operator==(const LeaseToken&) const = default;
};

enum class Advance {
  Moved,      // the checkpoint now holds the new LSN
  NotAhead,   // the stored LSN was already at or past it; nothing changed
  LeaseLost,  // another instance holds the lease; nothing changed
};

// The store is unreachable or answered an error worth retrying; the caller reconnects.
class CheckpointUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Retrying will not help: wrong credentials or permissions, a key of the wrong type, a corrupt value.
class CheckpointFatal : public std::runtime_error {
 public:
  CheckpointFatal(std::string code, const std::string& what)
      : std::runtime_error(what), code_(std::move(code)) {}
  // The Redis error code ("WRONGPASS", "NOPERM", "WRONGTYPE", ...) or "CORRUPT" / "REPLY_TOO_LARGE".
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;

  virtual std::optional<Checkpoint> load() = 0;

  // Takes the lease when nobody holds it (or `token` already does); false when another instance holds it.
  virtual bool acquire_lease(const LeaseToken& token, std::chrono::milliseconds ttl) = 0;
  // Extends a lease `token` holds; false when it no longer holds it.
  virtual bool renew_lease(const LeaseToken& token, std::chrono::milliseconds ttl) = 0;
  virtual void release_lease(const LeaseToken& token) = 0;
  // Current holder of the lease, if any.
  virtual std::optional<std::string> lease_holder() = 0;

  // Moves the checkpoint forward, atomically checking that `token` holds the lease.
  virtual Advance advance(const LeaseToken& token, Lsn lsn) = 0;

  // Operator commands: overwrite the checkpoint whatever its value, or delete it.
  virtual void overwrite(Lsn lsn, const std::string& owner) = 0;
  virtual void reset() = 0;
};

}  // namespace cdcsync
