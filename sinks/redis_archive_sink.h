// The event archive: every applied source transaction's changes, in target form, appended to one Redis
// stream per pipeline and chained by hash. `cdcsync replay` re-applies from it, `cdcsync audit
// verify-archive` proves it, and any Redis Streams consumer can read it as a Debezium-style Redis sink.
//
// Keys (the {hash tag} keeps both in one cluster slot, so one script writes both):
//   cdcsync:{<pipeline>}:archive       stream, one entry per archived change
//   cdcsync:{<pipeline>}:archive:head  hash: last_id, last_hash (of the last entry appended), end_lsn, xid,
//                                      commit_time_us (of the last whole source transaction appended)
//
// Entry id "<commit LSN as uint64>-<seq>", given explicitly to XADD: seq counts the archived changes of a
// source transaction from 0 across its chunks (one per mapped row change, one per mapped table of a
// truncate; changes of unmapped tables and logical messages are not archived). An initial snapshot's rows
// (TransactionInfo.snapshot, one huge transaction at the slot's consistent point C) use "<C - 1>-<seq>":
// no WAL record starts at C - 1, so they never collide with a streamed transaction committed at C.
// Ids only grow, so after a restart entries at or below the head's last_id are skipped, not re-appended.
//
// Fields, in this order:
//   topic  <prefix>.<schema>.<table> of the target table (archive.topic_prefix, default the pipeline)
//   key    Debezium key JSON of the target row ("" for a truncate)
//   value  Debezium envelope JSON of the target-form row (op c/u/d/r/t, before/after, source block)
//   row    the archive row (sinks/archive_codec.h): what replay applies
//   lsn    commit LSN of the source transaction ("16/B374D848"): the rows' version in the order DB
//   end    end LSN of the source transaction: only on its last entry
//   xid    source transaction id
//   ts     commit time, Unix milliseconds
//   prev   hash of the previous entry (64 zeros for the first one ever)
//   hash   archive_entry_hash(prev, id, the fields above)
//
// Appends go through one Lua script per group of entries that checks the head's last_hash is the prev the
// sink expects (a second writer is noticed, not interleaved), XADDs with MAXLEN ~ archive.stream_maxlen and
// moves the head in the same step: chain and head never disagree. Entries whose commit time is older than
// archive.max_age_hours are trimmed (XTRIM MINID at a transaction's first entry) at most every few
// seconds. Errors: connection problems and retriable replies -> TransientError; anything else ->
// PermanentError naming the stream key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "checkpoints/redis_client.h"
#include "checkpoints/redis_url.h"
#include "decoders/lsn.h"
#include "decoders/memory_budget.h"
#include "sinks/archive_codec.h"
#include "sinks/mapping.h"
#include "sinks/sink.h"

namespace cdcsync {

std::string archive_stream_key(std::string_view pipeline);
std::string archive_head_key(std::string_view pipeline);

struct ArchiveEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;  // stream order, prev and hash included

  // nullptr when the entry has no such field.
  const std::string* field(std::string_view name) const;
  // The fields the hash covers (all but prev and hash), in stream order.
  std::vector<std::pair<std::string, std::string>> hashed_fields() const;
};

// Walks entries in id order and reports the first that breaks the archive's invariants: its hash recomputes,
// its prev is the previous entry's hash, ids strictly increase, a transaction's entries have seq 0, 1, 2, ...
// and the transaction before a new one ended (field `end` on its last entry). The first entry walked may
// continue a transaction (trimming cuts the oldest part); its prev is taken as given unless `expected_prev`.
class ArchiveChainChecker {
 public:
  explicit ArchiveChainChecker(std::optional<std::string> expected_prev = std::nullopt)
      : expected_prev_(std::move(expected_prev)) {}

  // nullopt when the entry is fine, else what is wrong with it.
  std::optional<std::string> check(const ArchiveEntry& e);

  std::uint64_t entries() const { return entries_; }
  std::uint64_t whole_transactions() const { return whole_; }
  const std::string& last_hash() const { return last_hash_; }
  const std::string& last_id() const { return last_id_; }
  // The last entry walked ended its transaction.
  bool at_transaction_end() const { return ended_; }

 private:
  std::optional<std::string> expected_prev_;
  std::string last_hash_;
  std::string last_id_;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> last_;
  bool ended_ = true;
  bool started_whole_ = false;  // the current transaction was seen from its seq 0
  std::uint64_t entries_ = 0;
  std::uint64_t whole_ = 0;
};

struct ArchiveHead {
  std::string last_id;    // empty: nothing appended yet
  std::string last_hash;  // kArchiveGenesisHash when nothing appended yet
  Lsn end_lsn;            // of the last whole source transaction; 0/0 when none
  Xid xid;
  std::int64_t commit_time_us = 0;  // PostgreSQL epoch microseconds
};

struct ArchiveConnectionOptions {
  RedisUrl url;
  std::string pipeline;
  std::chrono::milliseconds timeout{5000};
};

// One connection to a pipeline's archive keys (reads for replay and audit, the append script for the sink),
// through RedisClient and its network policy (checkpoints/redis_client.h), with `timeout` as both its connect
// and its command timeout. Not thread-safe.
class RedisArchive {
 public:
  explicit RedisArchive(ArchiveConnectionOptions options);
  ~RedisArchive();
  RedisArchive(const RedisArchive&) = delete;
  RedisArchive& operator=(const RedisArchive&) = delete;

  const std::string& stream_key() const { return stream_key_; }
  const std::string& head_key() const { return head_key_; }

  // nullopt when the head key does not exist.
  std::optional<ArchiveHead> head();
  // XRANGE start end COUNT count ("-", "+", an id, or "(" id for exclusive).
  std::vector<ArchiveEntry> range(std::string_view start, std::string_view end, std::size_t count);
  // XREVRANGE end start COUNT count: the newest first.
  std::vector<ArchiveEntry> range_reverse(std::string_view end, std::string_view start, std::size_t count);
  std::uint64_t length();

  struct Append {
    std::string expected_prev;  // the head's last_hash now (or the genesis hash)
    std::vector<ArchiveEntry> entries;
    std::optional<ArchiveHead> end;  // moves end_lsn/xid/commit_time_us when a source transaction ended
  };
  // One atomic script: refuses (TransientError, "head moved") when the head's last_hash is not
  // expected_prev, else XADDs every entry (MAXLEN ~ max_len) and moves the head.
  void append(const Append& a, std::int64_t max_len);
  // XTRIM MINID (exact); returns the entries removed.
  std::uint64_t trim_before(std::string_view id);

  // Any command, for tests and tools (the reply's first string or integer as text).
  std::string raw(const std::vector<std::string>& argv);

 private:
  // Throws TransientError (connection, retriable replies, a moved head) or PermanentError (other error
  // replies, naming `key`).
  RedisValue run(const std::vector<std::string_view>& argv, std::string_view what, std::string_view key = "");
  std::vector<ArchiveEntry> read_range(std::string_view verb, std::string_view a, std::string_view b,
                                       std::size_t count);

  ArchiveConnectionOptions options_;
  std::string stream_key_;
  std::string head_key_;
  std::unique_ptr<RedisClient> client_;
};

// Counts for the metrics, called on the applying thread: entries appended, skipped (appended before a
// restart) or trimmed by age; and each apply that failed.
struct ArchiveSinkObserver {
  std::function<void(std::string_view outcome, std::uint64_t n)> entries;  // "appended", "skipped", "trimmed"
  std::function<void()> error;
};

struct ArchiveSinkOptions {
  ArchiveConnectionOptions connection;
  std::string topic_prefix;           // Debezium topic.prefix; empty: the pipeline name
  std::string database = "postgres";  // source.db of the envelopes
  std::int64_t max_len = 1'000'000;
  std::chrono::hours max_age{168};  // 0: no age limit
  std::chrono::milliseconds trim_interval{5000};
  std::size_t entries_per_script = 256;
  std::function<std::int64_t()> clock_unix_ms;  // for tests; system clock when empty
  ArchiveSinkObserver observer;
  // memory.limit_bytes: a batch's entries count against it until they are appended (null: not counted).
  MemoryBudget* memory = nullptr;
};

struct ArchiveSinkStats {
  std::uint64_t entries_appended = 0;
  std::uint64_t entries_skipped = 0;  // at or below the head: appended before a restart
  std::uint64_t entries_trimmed = 0;  // by age
  std::uint64_t errors = 0;
};

class RedisArchiveSink final : public Sink {
 public:
  RedisArchiveSink(Mapping mapping, ArchiveSinkOptions options);
  ~RedisArchiveSink() override;

  std::optional<Lsn> apply(const Batch& batch) override;
  void abort() override;
  // The head's last whole source transaction; nullopt when none was appended yet.
  std::optional<Progress> load_progress() override;
  void record_ack(Lsn) override {}

  const ArchiveSinkStats& stats() const { return stats_; }

 private:
  struct Impl;
  std::optional<Lsn> apply_inner(const Batch& batch);
  void maybe_trim();
  std::int64_t now_ms() const;

  ArchiveSinkOptions options_;
  std::unique_ptr<Impl> impl_;
  ArchiveSinkStats stats_;
};

}  // namespace cdcsync
