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
#include "decoders/replication_stream.h"

namespace cdcsync {

class PgChangeSource : public ChangeSource {
 public:
  // `stream` must already be started (START_REPLICATION). At most `max_changes_per_poll` changes are
  // handed out per poll (bounded memory between polls).
  // With nothing heard from the server for half of `receive_timeout` it is asked for a keepalive; with
  // nothing for the whole of it the connection is taken for dead (a half-open TCP connection sends nothing).
  PgChangeSource(ReplicationStream& stream, AssemblerOptions options,
                 std::chrono::milliseconds receive_timeout = std::chrono::milliseconds(30000),
                 std::size_t max_changes_per_poll = 20000);

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

  ReplicationStream& stream_;
  std::vector<Transaction>* out_ = nullptr;
  std::size_t out_changes_ = 0;
  TransactionAssembler assembler_;
  std::size_t max_changes_per_poll_;
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
