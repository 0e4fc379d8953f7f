// The production ChangeSource: the customer DB's replication stream, decoded and assembled into whole
// transactions (or chunks of a large one).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/change_source.h"
#include "decoders/assembler.h"
#include "decoders/memory_budget.h"
#include "decoders/replication_stream.h"

namespace cdcsync {

class PgChangeSource : public ChangeSource {
 public:
  // `stream` must already be started (START_REPLICATION). At most `max_changes_per_poll` changes, and
  // `max_bytes_per_poll` bytes (approximate_bytes; 0: no bound) unless a single transaction or chunk is
  // larger, are handed out per poll (bounded memory between polls). With a `budget`, no message is read
  // while what it holds plus this poll's output and the assembler's open chunk reach its limit: the poll
  // waits for the pipeline to release some (a wide row is never read while the one before it is applied,
  // unless the budget has room for both).
  // With nothing heard from the server for half of `receive_timeout` it is asked for a keepalive; with
  // nothing for the whole of it the connection is taken for dead (a half-open TCP connection sends nothing).
  PgChangeSource(ReplicationStream& stream, AssemblerOptions options,
                 std::chrono::milliseconds receive_timeout = std::chrono::milliseconds(30000),
                 std::size_t max_changes_per_poll = 20000, std::size_t max_bytes_per_poll = 0,
                 MemoryBudget* budget = nullptr);

  Polled poll(std::chrono::milliseconds timeout, std::vector<Transaction>& out) override;
  void report(Lsn written, Lsn flushed) override;
  void recycle(std::vector<Transaction>& spent) override { assembler_.recycle(spent); }
  bool absorb() override;

  std::uint64_t messages() const { return messages_; }
  std::uint64_t bytes() const { return bytes_; }
  // Messages taken by absorb() (spooled while a committed streamed transaction was replayed).
  std::uint64_t absorbed() const override { return absorbed_; }

 private:
  // A message read during a replay that the assembler can only take after it: held until then.
  struct Held {
    std::string payload;
    Lsn wal_start;
    std::int64_t server_time_us = 0;
  };
  // A message the decoder or the assembler refuses throws SourceStreamError with its LSN and bytes.
  void feed(std::string_view payload, Lsn wal_start, std::int64_t server_time_us);
  // Reads what has arrived without waiting, while the assembler replays: feeds what it can take, holds
  // the first message it cannot and stops there. Returns whether it stopped for want of data.
  bool absorb_arrived();
  // Whether the budget has room for another message; without, waits for it until `deadline` while nothing
  // is ready to hand out, reading on into spools meanwhile.
  bool room_for_more(std::chrono::steady_clock::time_point deadline);
  bool poll_full() const {
    return out_changes_ >= max_changes_per_poll_ ||
           (max_bytes_per_poll_ != 0 && out_bytes_ >= max_bytes_per_poll_);
  }

  ReplicationStream& stream_;
  std::vector<Transaction>* out_ = nullptr;
  std::size_t out_changes_ = 0;
  std::size_t out_bytes_ = 0;
  TransactionAssembler assembler_;
  std::size_t max_changes_per_poll_;
  std::size_t max_bytes_per_poll_;
  MemoryBudget* budget_;
  Lsn received_;
  Lsn reported_written_;
  Lsn reported_flushed_;
  std::chrono::milliseconds receive_timeout_;
  std::chrono::steady_clock::time_point last_heard_ = std::chrono::steady_clock::now();
  bool pinged_ = false;
  std::int64_t sent_time_us_ = 0;  // the source's send time of the message being decoded
  std::uint64_t messages_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t absorbed_ = 0;
  std::uint64_t absorbed_before_replay_ = 0;  // absorbed_ when the last replay ended
  std::optional<Held> held_;
  bool ended_ = false;            // the server ended the stream during absorb()
  bool reply_requested_ = false;  // a keepalive read by absorb() asked for a reply
};

}  // namespace cdcsync
