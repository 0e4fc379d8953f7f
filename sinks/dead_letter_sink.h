// DeadLetterSink: wraps the order-DB sink so that a source transaction the target refuses (constraint,
// permission, bad value: a PermanentError) is parked in a dead-letter store and the pipeline goes on.
//
// apply(batch) first tries the whole batch on the inner sink. On PermanentError it rolls back and applies
// the batch's source transactions one at a time to find the refused one(s). Each refused transaction is
// written whole to the store (its rows in target form, see DeadLetterSinkOptions::encode_rows) BEFORE the
// target's progress moves past it; its stand-in (same TransactionInfo, no changes) then rides with the
// next transaction's target transaction (or is committed alone at the end of the batch), so the progress
// row passes it: it is never re-applied by streaming and never lost. Retrying after a crash anywhere in
// between is safe: committed transactions are skipped by the progress row, and adding an entry whose
// commit LSN is already in the store does nothing.
//
// Not dead-lettered (the PermanentError propagates, the daemon stops with exit 4, the message says why):
//   - a refused part of a source transaction applied in chunks (too large for one batch, or the initial
//     snapshot): earlier chunks are in the same open target transaction and cannot be isolated;
//   - any refusal once the store holds `max_transactions` entries (the message names the limit).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sinks/sink.h"

namespace cdcsync {

// One dead-lettered source transaction.
struct DeadLetter {
  std::string id;  // the store's entry id; derived from the commit LSN (dead_letter_id)
  Lsn lsn;         // commit LSN (the rows' version)
  Lsn end_lsn;     // end of the commit record (the progress row's position)
  Xid xid;
  std::int64_t commit_time_us = 0;  // PostgreSQL epoch microseconds
  std::string table;                // the table the target named in its refusal (may be empty)
  std::string sqlstate;
  std::string error;         // the target's message: no DETAIL, so no key values
  std::size_t changes = 0;   // number of row changes in `rows`
  std::int64_t unix_ms = 0;  // when it was dead-lettered
  std::string rows;          // the changes in target form (empty when listed without rows)
};

// The entry id for a commit LSN: "<64-bit LSN value>-0", a Redis stream id that sorts like the LSN.
std::string dead_letter_id(Lsn commit_lsn);

// Where dead-lettered transactions are kept (Redis stream cdcsync:{<pipeline>}:dlq in the daemon; a
// memory fake in tests). Implementations throw TransientError when the store is unreachable (retry) and
// PermanentError when it refuses (permissions, wrong type).
class DeadLetterStore {
 public:
  virtual ~DeadLetterStore() = default;
  virtual std::size_t size() = 0;
  virtual bool contains(Lsn commit_lsn) = 0;
  // Adds the entry (its id is set by the store when it must differ from dead_letter_id(lsn)).
  virtual void add(const DeadLetter& entry) = 0;
  // In commit LSN order; `rows` filled only when `with_rows`.
  virtual std::vector<DeadLetter> list(bool with_rows) = 0;
  // False when no entry has that id.
  virtual bool remove(const std::string& id) = 0;
};

struct DeadLetterSinkOptions {
  std::size_t max_transactions = 1000;
  std::string store_name;  // for messages: "Redis stream cdcsync:{p}:dlq"
  // The transaction's changes in target form (mapped and transformed columns only); returns the encoded
  // rows and sets `changes` to how many row changes they hold.
  std::function<std::string(const Transaction&, std::size_t& changes)> encode_rows;
  // After each entry is stored (metrics).
  std::function<void(const DeadLetter&)> dead_lettered;
  // The store's size whenever the sink reads it: at the first apply, around every dead-lettering and at
  // most every `size_refresh` while applying or acknowledging (the operator may replay or drop entries).
  std::function<void(std::size_t)> store_size;
  std::chrono::milliseconds size_refresh{15000};
};

class DeadLetterSink final : public Sink {
 public:
  DeadLetterSink(Sink& inner, DeadLetterStore& store, DeadLetterSinkOptions options);

  std::optional<Lsn> apply(const Batch& batch) override;
  void abort() override { inner_.abort(); }
  std::optional<Lsn> sync() override { return inner_.sync(); }
  std::optional<Lsn> flushed() override { return inner_.flushed(); }
  ApplyTimings last_timings() const override { return inner_.last_timings(); }
  std::optional<Progress> load_progress() override { return inner_.load_progress(); }
  void record_ack(Lsn lsn) override;

  std::uint64_t dead_lettered() const { return dead_lettered_; }

 private:
  std::optional<Lsn> isolate(const Batch& batch, const PermanentError& first);
  void dead_letter(const Transaction& txn, const PermanentError& refusal);
  void refresh_size();

  Sink& inner_;
  DeadLetterStore& store_;
  DeadLetterSinkOptions options_;
  std::uint64_t dead_lettered_ = 0;
  std::optional<std::chrono::steady_clock::time_point> size_read_at_;
};

}  // namespace cdcsync
