// One streaming session of a pipeline: a receiver thread reads whole source transactions from the
// ChangeSource onto a bounded queue; the applier (the calling thread) groups them into batches and applies
// each batch to the Sink in one target transaction; a keeper thread (CheckpointKeeper) mirrors the durable
// LSN to the CheckpointStore under the lease, and only then does the receiver confirm it to the source.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/checkpoint_store.h"
#include "daemon/core/change_source.h"
#include "decoders/lsn.h"
#include "decoders/memory_budget.h"
#include "decoders/spool.h"
#include "sinks/sink.h"

namespace cdcsync {

class CheckpointKeeper;

struct PipelineOptions {
  // A batch is applied when nothing more is queued, or earlier at one of these bounds (whole source
  // transactions are never split; a transaction larger than a bound is a batch of its own).
  std::size_t batch_max_rows = 5000;
  std::size_t batch_max_bytes = 16u << 20;  // decoded bytes, as the queue counts them
  // Longest a batch keeps taking transactions that keep arriving.
  std::chrono::milliseconds batch_max_wait{50};
  // Catching up: the source sent the newest transaction in the batch this long after it committed it (a
  // backlog; both times by the source's clock). Then a
  // batch is not applied merely because the queue is momentarily empty: it grows to its row or byte bound
  // while transactions keep arriving, and is applied when none arrived for batch_max_wait, or when it is
  // this old (the delay it adds is at most the lag that started it). Bigger batches cost the target less
  // per change. 0: off.
  std::chrono::milliseconds catch_up_lag{1000};
  // A batch's target commit does not wait for the WAL flush (Batch::durable false): its rows are visible at
  // once, and the applier learns afterwards how far the target flushed them (Sink::flushed, with each commit
  // and every 20 ms between batches). The first batch this long after the durable position last advanced
  // waits for its flush and makes every commit before it durable; so does Sink::sync once nothing arrived for
  // min(batch_max_wait, 100 ms), and at a stop. Nothing is mirrored or confirmed before it is durable. 0:
  // every batch waits for its flush.
  std::chrono::milliseconds flush_interval{1000};
  std::size_t queue_max_transactions = 100000;
  std::size_t queue_max_bytes = 16u << 20;
  std::chrono::milliseconds status_interval{1000};
  std::chrono::milliseconds lease_ttl{10000};
  std::chrono::milliseconds lease_renew{3000};
  // How long the pipeline must be idle before it confirms a keepalive position without a transaction.
  std::chrono::milliseconds idle_ack_after{1000};
  // memory.limit_bytes: what the receiver hands out counts against it until the batch holding it is applied
  // (null: not counted).
  MemoryBudget* budget = nullptr;
};

// What the session observed; read by the probe (metrics) and by tests. All fields are atomics so the
// metrics endpoint reads them without locks.
struct PipelineStatus {
  std::atomic<Lsn> received_lsn{};   // server WAL end last seen
  std::atomic<Lsn> durable_lsn{};    // committed and flushed in the target
  std::atomic<Lsn> confirmed_lsn{};  // mirrored to the checkpoint store and reported to the source
  std::atomic<std::uint64_t> transactions{0};
  std::atomic<std::uint64_t> changes{0};
  std::atomic<std::uint64_t> batches{0};
  // Batches committed without waiting for the target's flush (PipelineOptions::flush_interval).
  std::atomic<std::uint64_t> commits_unflushed{0};
  std::atomic<std::int64_t> last_commit_time_us{0};  // PostgreSQL epoch, of the last applied source txn
  std::atomic<bool> checkpoint_store_ok{true};
  // The lease this session held expired without a renewal: nothing is applied until it is renewed.
  std::atomic<bool> lease_expired{false};
  std::atomic<std::size_t> queue_depth{0};
  // Messages of streamed transactions read into their spools while a committed one was applied
  // (ChangeSource::absorb), over every session.
  std::atomic<std::uint64_t> messages_read_during_replay{0};
  // memory.limit_bytes and what counts against it now (decoded changes, encoders' buffers).
  MemoryBudget memory;
  // The bytes in the pipeline's spool files now, against spool.limit_bytes.
  SpoolUsage spool;
};

static_assert(std::atomic<Lsn>::is_always_lock_free, "the metrics endpoint reads LSNs without locks");

// When a transaction of a batch was queued by the receiver and taken from the queue by the applier (steady
// clock), for the per-stage latency metrics.
struct Arrival {
  std::chrono::steady_clock::time_point queued;
  std::chrono::steady_clock::time_point taken;
};

// Where the time of one applied batch went, for the per-stage latency metrics.
struct BatchTimings {
  std::chrono::steady_clock::time_point started;  // Sink::apply was called
  std::chrono::steady_clock::duration apply{};    // Sink::apply, whole
  ApplyTimings sink;                              // its parts, as the sink measured them
  std::chrono::steady_clock::duration mirror{};   // mirroring the position it made durable (0: none)
  // One per transaction of the batch, in order (empty: not known).
  const std::vector<Arrival>* arrivals = nullptr;
};

// Called after each applied batch (for metrics: rows per table and op, apply time, latency, stages).
using BatchObserver = std::function<void(const Batch&, const BatchTimings&)>;

class Pipeline {
 public:
  Pipeline(ChangeSource& source, Sink& sink, CheckpointStore& store, LeaseToken token,
           PipelineOptions options, PipelineStatus& status, BatchObserver observer = {});

  // Runs until `stop` becomes true (returns normally after applying or rolling back the open batch and a
  // final status update) or an error: FatalError, LeaseLost, PermanentError, or anything transient.
  // `confirmed_start` is the position already confirmed (the durable progress at session start).
  void run(const std::atomic<bool>& stop, Lsn confirmed_start);

  // Called on every turn of the apply loop (the liveness the watchdog and /healthz check).
  void set_tick(std::function<void()> tick) { tick_ = std::move(tick); }
  // The session holds the pipeline's lease, taken or renewed at `at`: from then on it applies only while
  // the lease is renewed in time (CheckpointKeeper). Without it, the session runs on the target's writer lock
  // until the lease can be taken.
  void set_lease(std::chrono::steady_clock::time_point at) { lease_renewed_at_ = at; }

 private:
  struct Session;
  struct ApplyLoop;
  // One turn of the applier's loop (run).
  void turn(Session& session, ApplyLoop& loop);
  // The receiver thread: polls the source onto the session's queue and reports positions to it.
  void receive(Session& session, const std::atomic<bool>& stop);
  // Nothing arrived for idle_ack_after: confirms the source's idle position once all before it is durable.
  void ack_idle(Session& session);
  void apply_batch(Batch& batch, const std::vector<Arrival>& arrivals);
  // The batch's bytes go back to the memory budget once it is applied (or dropped).
  void release_budget(std::size_t bytes);
  // Whether the lease lets the applier start something now; logs when it stops and goes on.
  bool lease_lets_apply();
  // After commits that did not wait for their flush: makes them durable (Sink::sync) and mirrors them.
  void sync_unflushed();
  // `lsn` is durable in the target: the durable position advances to it and goes to the keeper to mirror.
  void made_durable(Lsn lsn);

  ChangeSource& source_;
  Sink& sink_;
  CheckpointStore& store_;
  LeaseToken token_;
  PipelineOptions options_;
  PipelineStatus& status_;
  BatchObserver observer_;
  std::function<void()> tick_;
  std::optional<std::chrono::steady_clock::time_point> lease_renewed_at_;

  // Shared between receiver and applier.
  std::atomic<std::uint64_t> pushed_items_{0};
  std::atomic<std::size_t> budgeted_{0};  // bytes this session counts in options_.budget now
  std::atomic<std::uint64_t> applied_items_{0};
  // Applier only.
  std::chrono::steady_clock::time_point last_flush_;         // when the durable position last advanced
  std::chrono::steady_clock::time_point last_flushed_poll_;  // when the target last said how far it flushed
  Lsn applied_lsn_;         // the end of the last source transaction committed in the target
  bool unflushed_ = false;  // durable_lsn is behind applied_lsn_: commits that did not wait for their flush
  CheckpointKeeper* keeper_ = nullptr;  // during run(): mirrors durable positions, renews the lease
  bool fenced_ = false;                 // the lease expired un-renewed: nothing is applied
  // Applied transactions on their way back to the source, which reuses their memory: the applier leaves a
  // batch here when the receiver has taken the previous one (at most one batch waits), else frees it.
  std::mutex spent_mu_;
  std::vector<Transaction> spent_;
};

}  // namespace cdcsync
