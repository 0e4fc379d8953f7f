// The dead-letter stream in Redis: one stream entry per source transaction the order DB refused.
//
//   key     cdcsync:{<pipeline>}:dlq (the hash tag keeps it in the checkpoint's cluster slot)
//   id      "<commit LSN as a 64-bit number>-0" (sorts like the LSN; see dead_letter_id). If the stream
//           already passed that id (the target was restored and the transaction refused again after its
//           entry was dropped) Redis picks the id; the lsn field stays authoritative.
//   fields  lsn      commit LSN ("16/B374D848"), the version the rows carry in the target
//           end      end LSN of the commit record
//           xid      source transaction id
//           ts       commit time, ISO 8601 UTC; ts_us: the same in Unix microseconds
//           table    the target table named by the refusal
//           sqlstate the target's SQLSTATE
//           error    the target's message (never DETAIL, so no key values)
//           changes  number of row changes
//           at       when it was dead-lettered (Unix milliseconds)
//           format   "archive-row-v1-jsonl"
//           rows     the changes in target form: one archive row JSON per line (sinks/archive_codec.h), so
//                    no source column outside the mapping and no clear text of a hashed column
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/redis_client.h"
#include "daemon/config/config.h"
#include "sinks/archive_codec.h"
#include "sinks/dead_letter_sink.h"
#include "sinks/mapping.h"

namespace cdcsync {

inline constexpr std::string_view kDeadLetterRowsFormat = "archive-row-v1-jsonl";

std::string dead_letter_key(const std::string& pipeline);
// "2026-11-24T15:30:00Z" from Unix microseconds.
std::string iso_utc(std::int64_t unix_us);

// Redis errors become TransientError (unreachable, retriable replies) or PermanentError (refusals such as
// NOPERM or WRONGTYPE, naming the key).
class RedisDeadLetterStore final : public DeadLetterStore {
 public:
  RedisDeadLetterStore(RedisConnectOptions redis, std::string pipeline);

  std::size_t size() override;
  bool contains(Lsn commit_lsn) override;
  void add(const DeadLetter& entry) override;
  std::vector<DeadLetter> list(bool with_rows) override;
  bool remove(const std::string& id) override;

  const std::string& key() const { return key_; }

 private:
  template <typename F>
  auto guarded(const char* doing, F&& f);

  RedisClient client_;
  std::string key_;
};

RedisConnectOptions redis_options(const config::Config& config);

// Encodes a transaction's changes as archive rows in target form, one JSON per line; `changes` gets their
// number. Unmapped tables and messages leave nothing.
class DeadLetterRowEncoder {
 public:
  explicit DeadLetterRowEncoder(const Mapping& mapping) : projector_(mapping) {}
  std::string encode(const Transaction& txn, std::size_t& changes);

 private:
  ArchiveProjector projector_;
  std::vector<ProjectedChange> scratch_;
};

// Rebuilds the source transaction of an entry as Changes of replay.mapping(); throws ArchiveFormatError
// naming the entry, or std::runtime_error when a table is not configured any more.
Transaction dead_letter_transaction(const DeadLetter& entry, const ArchiveReplayMapping& replay);

// What `run` needs: the order-DB sink wrapped for dead-lettering when dead_letter.enabled, else itself.
class DeadLetterWiring {
 public:
  struct Hooks {
    std::function<void(const DeadLetter&)> dead_lettered;
    std::function<void(std::size_t)> entries;
  };
  DeadLetterWiring(const config::Config& config, const Mapping& mapping, Sink& target, Hooks hooks);
  Sink& sink() { return sink_ ? *sink_ : target_; }

 private:
  Sink& target_;
  std::unique_ptr<RedisDeadLetterStore> store_;
  std::unique_ptr<DeadLetterRowEncoder> encoder_;
  std::unique_ptr<DeadLetterSink> sink_;
};

}  // namespace cdcsync
