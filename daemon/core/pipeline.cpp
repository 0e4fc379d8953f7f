// Pipeline: the receiver thread, the bounded queue, batches applied to the sink, and what is confirmed.
#include "daemon/core/pipeline.h"

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include <algorithm>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/core/batcher.h"
#include "daemon/core/bounded_queue.h"
#include "daemon/core/checkpoint_keeper.h"
#include "daemon/core/errors.h"
#include "daemon/core/first_error.h"
#include "daemon/core/log_context.h"
#include "decoders/change_pool.h"
#include "decoders/pg.h"

namespace cdcsync {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often an applier catching up on a backlog looks for more transactions while its batch grows.
constexpr milliseconds kCatchUpLook{5};
// How often a receiver whose queue is full lets the source read on into its spools (ChangeSource::absorb).
constexpr milliseconds kAbsorbInterval{2};
// Commits that did not wait for their flush, once nothing arrived for this long (or batch_max_wait, when
// shorter): they are flushed and confirmed.
constexpr milliseconds kSyncWhenIdle{100};
// Between batches, how often the applier asks the target how far the commits that did not wait for their
// flush are flushed (each such commit's reply says it too).
constexpr milliseconds kFlushedPoll{20};

// The receiver's thread does not preempt the process that woke it (SCHED_BATCH): the walsender sends a
// transaction as several messages (BEGIN, its changes, COMMIT) and wakes the receiver with the first one; on
// a busy machine the receiver used to take the CPU from the walsender at once, for every message, and the
// walsender, preempted ~10,000 times a second at 5,000 tx/s, sent later and later. Now the receiver runs when
// a core is free or the walsender waits, and reads what was sent meanwhile at once. It keeps its fair share
// of the CPU: only wake-up preemption is given up. Where the policy cannot be set (a seccomp filter without
// sched_setscheduler), the thread runs as before.
void batch_scheduling() {
  sched_param param{};
  param.sched_priority = 0;
  if (const int e = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param); e != 0) {
    spdlog::debug("the receiver thread keeps its scheduling policy (SCHED_BATCH refused: {})",
                  std::strerror(e));
  }
}

}  // namespace

Pipeline::Pipeline(ChangeSource& source, Sink& sink, CheckpointStore& store, LeaseToken token,
                   PipelineOptions options, PipelineStatus& status, BatchObserver observer)
    : source_(source),
      sink_(sink),
      store_(store),
      token_(std::move(token)),
      options_(options),
      status_(status),
      observer_(std::move(observer)) {}

// What one run() shares between its receiver thread and the applier.
struct Pipeline::Session {
  explicit Session(const PipelineOptions& o) : queue{o.queue_max_transactions, o.queue_max_bytes} {}

  BoundedQueue<Transaction> queue;
  std::atomic<bool> stop{false};
  FirstError receiver_error;  // written by the receiver, polled by the applier on every turn
  std::mutex idle_mu;
  std::optional<std::pair<Lsn, std::uint64_t>> idle_candidate;  // (lsn, items pushed when it was seen)
};

// The applier's state across the turns of its loop.
struct Pipeline::ApplyLoop {
  explicit ApplyLoop(BatcherOptions options) : batcher(options) {}
  Batcher batcher;
  std::vector<Arrival> arrivals;  // of the open batch's transactions
  bool in_chunked_txn = false;    // the target transaction is open across batches
  Clock::time_point last_activity = Clock::now();
  Clock::time_point last_arrival = Clock::now();  // the last transaction taken from the queue
};

void Pipeline::run(const std::atomic<bool>& stop, Lsn confirmed_start) {
  status_.durable_lsn = confirmed_start;
  status_.confirmed_lsn = confirmed_start;
  last_flush_ = Clock::now();
  last_flushed_poll_ = last_flush_;
  unflushed_ = false;
  applied_lsn_ = confirmed_start;

  CheckpointKeeper keeper{store_,
                          token_,
                          {.lease_ttl = options_.lease_ttl, .lease_renew = options_.lease_renew},
                          status_,
                          lease_renewed_at_};
  keeper_ = &keeper;
  struct Unset {
    CheckpointKeeper*& keeper;
    ~Unset() { keeper = nullptr; }
  } unset{keeper_};
  fenced_ = false;
  status_.lease_expired = false;
  Session session{options_};
  // The receiver owns the replication connection: it alone reads from it and reports to it, so that
  // keepalives are answered even while the applier waits on a slow target.
  std::thread receiver([&] { receive(session, stop); });

  ApplyLoop loop{{.max_rows = options_.batch_max_rows,
                  .max_bytes = options_.batch_max_bytes,
                  .max_wait = options_.batch_max_wait,
                  .catch_up_lag = options_.catch_up_lag}};

  auto finish = [&](bool stopping) {
    session.stop = true;
    session.queue.close();
    if (receiver.joinable()) receiver.join();
    spent_.clear();
    // What the queue and the batch still hold is freed with them.
    release_budget(budgeted_.load());
    if (stopping && loop.in_chunked_txn) sink_.abort();
  };

  try {
    while (true) {
      session.receiver_error.rethrow_if_failed();
      keeper.rethrow_if_failed();
      if (stop) break;
      if (tick_) tick_();
      if (!lease_lets_apply()) {
        // Nothing is taken from the queue either: the receiver goes on answering the source meanwhile.
        std::this_thread::sleep_for(milliseconds(100));
        continue;
      }

      turn(session, loop);
    }
    // Graceful stop: a pending whole batch is applied, an open chunked source transaction rolled back, and
    // commits that did not wait for their flush are made durable.
    Batch& batch = loop.batcher.batch();
    const bool leased = lease_lets_apply();
    if (leased && !batch.empty() && !loop.in_chunked_txn && batch.ends_whole()) {
      batch.durable = true;
      apply_batch(batch, loop.arrivals);
    }
    finish(true);
    try {
      if (leased) sync_unflushed();
    } catch (const std::exception& e) {
      // Not confirmed, so not lost: the next session finds these commits in the target's progress row.
      spdlog::warn("could not make the last commits durable before stopping: {}", e.what());
    }
    keeper.finish();
    source_.report(status_.received_lsn.load(), status_.confirmed_lsn.load());
  } catch (...) {
    finish(false);
    try {
      sink_.abort();
    } catch (...) {
      // the sink's connection may be gone; the target rolls back on its own
    }
    throw;
  }
}

// One turn of the applier's loop: takes what is queued into the open batch, applies it when it is due,
// acknowledges an idle source, and follows up commits that did not wait for their flush.
void Pipeline::turn(Session& session, ApplyLoop& loop) {
  // An open batch takes what is already queued and does not wait for more: at a low rate a transaction
  // is applied as soon as it arrives, and whatever arrives meanwhile forms the next batch (group
  // commit). Catching up on a backlog (the source sends transactions catch_up_lag or more after their
  // commit), a batch keeps taking transactions while they keep arriving, up to its bounds: fewer, bigger
  // target transactions, and nobody waits for the difference.
  bool queue_empty = true;
  // Idle, with commits not known flushed: wake to ask the target how far it flushed them.
  milliseconds wait{loop.batcher.empty() ? (unflushed_ ? kFlushedPoll : milliseconds(100)) : milliseconds(0)};
  if (!loop.batcher.empty() && loop.batcher.catching_up()) {
    // Look at the queue every few milliseconds rather than wake for each of the receiver's pushes
    // (thousands a second on a backlog of small transactions): nobody waits for this batch yet.
    const milliseconds left = loop.batcher.time_left(Clock::now());
    if (session.queue.size() == 0) std::this_thread::sleep_for(std::min(left, kCatchUpLook));
    wait = milliseconds(0);
  }
  if (auto popped = session.queue.pop_for(wait)) {
    status_.queue_depth = popped->left;
    queue_empty = popped->left == 0;
    loop.last_activity = Clock::now();
    loop.last_arrival = loop.last_activity;
    loop.arrivals.push_back({popped->pushed, loop.last_activity});
    loop.batcher.add(std::move(popped->item), popped->bytes, loop.last_activity);
  }
  const auto now = Clock::now();
  if (loop.batcher.due(queue_empty, now)) {
    Batch& batch = loop.batcher.batch();
    loop.in_chunked_txn = !batch.ends_whole();
    // The batch's commit does not wait for the target's flush: its rows are visible at once, and what
    // is confirmed is what the target is found to have flushed since (Sink::flushed). Only a batch
    // flush_interval after the position last became durable waits, and covers every commit before it.
    batch.durable = options_.flush_interval.count() == 0 || now - last_flush_ >= options_.flush_interval;
    apply_batch(batch, loop.arrivals);
    release_budget(loop.batcher.bytes());
    loop.batcher.reset();
    loop.arrivals.clear();
  } else if (loop.batcher.empty() && !loop.in_chunked_txn &&
             Clock::now() - loop.last_activity >= options_.idle_ack_after) {
    ack_idle(session);
    loop.last_activity = Clock::now();
  }
  if (!loop.batcher.empty()) return;

  // Commits that did not wait for their flush: learn how far the target flushed them, and once nothing
  // arrived for a while, flush them.
  if (unflushed_ && !loop.in_chunked_txn && session.queue.size() == 0) {
    if (Clock::now() - loop.last_arrival >= std::min(options_.batch_max_wait, kSyncWhenIdle)) {
      sync_unflushed();
    } else if (Clock::now() - last_flushed_poll_ >= kFlushedPoll) {
      last_flushed_poll_ = Clock::now();
      if (const auto flushed = sink_.flushed()) made_durable(*flushed);
    }
  }
}

void Pipeline::receive(Session& session, const std::atomic<bool>& stop) {
  batch_scheduling();
  std::vector<Transaction> out;
  std::vector<Transaction> spent;
  std::vector<std::size_t> sizes;
  auto last_report = Clock::now() - options_.status_interval;
  std::uint64_t absorbed_seen = source_.absorbed();
  auto report = [&](bool force) {
    if (force || Clock::now() - last_report >= options_.status_interval) {
      source_.report(status_.received_lsn.load(), status_.confirmed_lsn.load());
      last_report = Clock::now();
    }
  };
  try {
    while (!stop && !session.stop) {
      {
        std::lock_guard lock{spent_mu_};
        spent.swap(spent_);
      }
      source_.recycle(spent);
      out.clear();
      const Polled polled = source_.poll(milliseconds(100), out);
      if (polled.received.valid()) status_.received_lsn = polled.received;
      sizes.clear();
      for (const auto& t : out) sizes.push_back(approximate_bytes(t));
      if (options_.budget != nullptr) {
        std::size_t polled_bytes = 0;
        for (const std::size_t n : sizes) polled_bytes += n;
        options_.budget->add(polled_bytes);
        budgeted_ += polled_bytes;
      }
      bool absorbing = true;
      for (std::size_t next = 0; next < out.size();) {
        // While the queue is full, the source may read on what it can hold without handing it out.
        const std::size_t n =
            session.queue.push_some_for(out, sizes, next, absorbing ? kAbsorbInterval : milliseconds(200));
        if (n == 0) {
          if (stop || session.stop) return;
          absorbing = source_.absorb();
          const std::uint64_t absorbed = source_.absorbed();
          status_.messages_read_during_replay += absorbed - absorbed_seen;
          absorbed_seen = absorbed;
          report(false);  // keep the walsender's timeout at bay while the target applies backpressure
          continue;
        }
        next += n;
        pushed_items_ += n;
      }
      if (!out.empty()) status_.queue_depth = session.queue.size();
      if (polled.idle_lsn) {
        std::lock_guard lock(session.idle_mu);
        session.idle_candidate = std::make_pair(*polled.idle_lsn, pushed_items_.load());
      }
      if (polled.ended) throw PgError(kConnectionLost, "the source server ended the replication stream");
      report(polled.reply_requested);
    }
  } catch (...) {
    session.receiver_error.set(std::current_exception());
    session.stop = true;
    session.queue.close();
  }
}

void Pipeline::ack_idle(Session& session) {
  // Idle: confirm the server's position when every transaction handed out before it is durable.
  std::optional<std::pair<Lsn, std::uint64_t>> candidate;
  {
    std::lock_guard lock(session.idle_mu);
    candidate = session.idle_candidate;
  }
  if (candidate && candidate->second == applied_items_.load() &&
      candidate->first > status_.durable_lsn.load()) {
    sink_.record_ack(candidate->first);  // its commit waits for the flush of everything before it
    applied_lsn_ = std::max(applied_lsn_, candidate->first);
    made_durable(candidate->first);
  }
}

bool Pipeline::lease_lets_apply() {
  const bool valid = keeper_->lease_valid(Clock::now());
  if (valid == !fenced_) return valid;
  fenced_ = !valid;
  status_.lease_expired = fenced_;
  if (fenced_) {
    spdlog::warn(
        "the pipeline's lease expired without a renewal (the checkpoint store is unreachable): applying "
        "stopped until it is renewed");
  } else {
    spdlog::info("the pipeline's lease is renewed: applying again");
  }
  return valid;
}

void Pipeline::apply_batch(Batch& batch, const std::vector<Arrival>& arrivals) {
  const LogScope scope{"", batch.end_lsn()};  // what the sinks log while applying it
  BatchTimings timings;
  if (arrivals.size() == batch.transactions.size()) timings.arrivals = &arrivals;
  timings.started = Clock::now();
  const auto durable = sink_.apply(batch);
  timings.apply = Clock::now() - timings.started;
  timings.sink = sink_.last_timings();
  const bool committed = batch.ends_whole();  // the batch's transactions go back to the source below
  if (committed) applied_lsn_ = std::max(applied_lsn_, batch.end_lsn());
  if (committed && (!durable || *durable < batch.end_lsn())) status_.commits_unflushed += 1;
  if (durable) {
    const auto t0 = Clock::now();
    made_durable(*durable);
    timings.mirror = Clock::now() - t0;
  } else {
    unflushed_ = status_.durable_lsn.load() < applied_lsn_;
  }
  if (committed && !batch.durable) last_flushed_poll_ = Clock::now();  // its reply said how far is flushed
  if (observer_) observer_(batch, timings);
  status_.batches += 1;
  status_.changes += batch.changes();
  for (const auto& t : batch.transactions) {
    if (t.last_chunk) {
      status_.transactions += 1;
      status_.last_commit_time_us = t.info.commit_time_us;
    }
  }
  applied_items_ += batch.transactions.size();
  // Wide changes are freed here, before their bytes go back to the budget: the pool would not keep them,
  // and the receiver may read the next wide row before it takes this batch back.
  for (auto& t : batch.transactions) {
    for (auto& c : t.changes) {
      if (ChangePool::heap_bytes(c) > ChangePoolLimits{}.max_change_bytes) c = Change{};
    }
  }
  if (std::unique_lock lock{spent_mu_, std::try_to_lock}; lock && spent_.empty()) {
    spent_.swap(batch.transactions);
  }
  batch.transactions.clear();
}

void Pipeline::release_budget(std::size_t bytes) {
  if (options_.budget == nullptr || bytes == 0) return;
  bytes = std::min(bytes, budgeted_.load());
  budgeted_ -= bytes;
  options_.budget->release(bytes);
}

void Pipeline::sync_unflushed() {
  if (!unflushed_) return;
  const auto durable = sink_.sync();
  unflushed_ = false;
  last_flush_ = Clock::now();
  if (durable) made_durable(*durable);
}

void Pipeline::made_durable(Lsn lsn) {
  last_flush_ = Clock::now();
  if (lsn > status_.durable_lsn.load()) status_.durable_lsn = lsn;
  unflushed_ = status_.durable_lsn.load() < applied_lsn_;
  // The keeper mirrors it to the checkpoint store on its own thread (a newer post replaces an older one not
  // yet mirrored), so handing over every durable position costs the applier a lock and a wake-up.
  keeper_->post(status_.durable_lsn.load());
}

}  // namespace cdcsync
