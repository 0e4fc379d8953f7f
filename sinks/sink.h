// The seam between the pipeline and a target. A sink receives batches of whole source transactions
// (or, for a source transaction too large for memory, its chunks) and makes them durable.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "decoders/change.h"
#include "decoders/lsn.h"

namespace cdcsync {

struct Batch {
  // In source commit order. Only the first element may be a continuation chunk and only the last one may
  // be an unfinished chunk of its source transaction.
  std::vector<Transaction> transactions;
  // false: the sink may commit this batch without waiting for the target to flush it (a backlog follows
  // behind it), and then returns nullopt from apply: nothing new is durable yet. A later durable commit, or
  // Sink::sync, makes it durable together with everything committed before it.
  bool durable = true;

  bool empty() const { return transactions.empty(); }
  std::size_t changes() const {
    std::size_t n = 0;
    for (const auto& t : transactions) n += t.changes.size();
    return n;
  }
  // True when the batch ends with a finished source transaction, i.e. applying it can commit.
  bool ends_whole() const { return !transactions.empty() && transactions.back().last_chunk; }
  Lsn end_lsn() const { return transactions.empty() ? Lsn{} : transactions.back().info.end_lsn; }
};

// Where the time of a sink's last apply went, for the per-stage latency metrics (zero where a sink does not
// measure it).
struct ApplyTimings {
  std::chrono::steady_clock::duration statements{};  // the changes, from BEGIN on
  std::chrono::steady_clock::duration progress{};    // writing the progress row
  std::chrono::steady_clock::duration commit{};      // COMMIT, with its flush wait when it waited for it
  bool committed = false;                            // the apply committed
  bool waited_for_flush = false;                     // and its commit waited for the WAL flush
};

// The progress row a target keeps in the same transaction as the applied rows: the target, not Redis,
// is the authority for what has been applied.
struct Progress {
  Lsn end_lsn;                      // commit end LSN of the last source transaction applied
  Xid xid;                          // its xid
  std::int64_t commit_time_us = 0;  // its commit time (PostgreSQL epoch microseconds)
  Lsn acked_lsn;                    // highest position ever confirmed to the source as flushed
};

// Retry the same batch after reconnecting (lost connection, serialization failure, deadlock, shutdown,
// resource exhaustion).
class TransientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Stop: applying cannot succeed without an operator (constraint violation, missing column, permission).
// Names the table, the source transaction's end LSN and the SQLSTATE; never row values.
class PermanentError : public std::runtime_error {
 public:
  PermanentError(std::string table, Lsn lsn, std::string sqlstate, const std::string& what)
      : std::runtime_error(what), table_(std::move(table)), lsn_(lsn), sqlstate_(std::move(sqlstate)) {}
  const std::string& table() const { return table_; }
  Lsn lsn() const { return lsn_; }
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string table_;
  Lsn lsn_;
  std::string sqlstate_;
};

class Sink {
 public:
  virtual ~Sink() = default;

  // Applies the batch in one target transaction together with the progress row. Source transactions whose
  // end LSN is at or below the committed progress are skipped whole. Returns the end LSN now durable, or
  // nullopt when the batch ended inside a source transaction (the target transaction then stays open and
  // the next apply continues it) or was committed without waiting for its flush (`durable = false`); after
  // such a commit it may return the end LSN of an earlier one the target was found to have flushed. Throws
  // TransientError or PermanentError; after a throw nothing of the open target transaction is kept.
  virtual std::optional<Lsn> apply(const Batch& batch) = 0;

  // Makes every commit of a batch applied with `durable = false` durable and returns the end LSN now
  // durable; nullopt when nothing was waiting for it. Sinks whose every commit is durable keep the default.
  virtual std::optional<Lsn> sync() { return std::nullopt; }

  // Without waiting for a flush: the end LSN of the newest commit made with `durable = false` that the
  // target has flushed since it was last returned (by this or by apply); nullopt when none is new. What it
  // returns is durable, like what sync returns. Sinks whose every commit is durable keep the default.
  virtual std::optional<Lsn> flushed() { return std::nullopt; }

  // Where the time of the last apply went.
  virtual ApplyTimings last_timings() const { return {}; }

  // Rolls back an open target transaction, if any.
  virtual void abort() = 0;

  // The progress row as committed in the target; nullopt when the pipeline has never applied anything.
  virtual std::optional<Progress> load_progress() = 0;

  // Records, durably and before it is sent, a position about to be confirmed to the source without a
  // transaction behind it (an idle keepalive); every earlier commit is durable afterwards too. Never moves
  // acked_lsn backwards.
  virtual void record_ack(Lsn lsn) = 0;
};

}  // namespace cdcsync
