#include "daemon/pg_change_source.h"

#include <algorithm>

namespace cdcsync {

PgChangeSource::PgChangeSource(ReplicationStream& stream, AssemblerOptions options,
                               std::chrono::milliseconds receive_timeout, std::size_t max_changes_per_poll)
    : stream_(stream),
      assembler_(
          [&] {
            options.replay_in_steps = true;  // a committed stream or prepared transaction a chunk per step
            return std::move(options);
          }(),
          [this](Transaction&& t) {
            out_changes_ += t.changes.size();
            out_->push_back(std::move(t));
          }),
      max_changes_per_poll_(max_changes_per_poll),
      receive_timeout_(receive_timeout) {}

Polled PgChangeSource::poll(std::chrono::milliseconds timeout, std::vector<Transaction>& out) {
  Polled polled;
  out_ = &out;
  out_changes_ = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // A transaction replayed from its spool comes out a chunk at a time, before anything newer is read.
    if (assembler_.replaying()) {
      assembler_.resume_replay();
      polled.idle_lsn.reset();
      if (out_changes_ >= max_changes_per_poll_) break;
      continue;
    }
    // Once something is ready, drain only what has already arrived, then hand it out.
    auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!out.empty() || wait.count() < 0) wait = std::chrono::milliseconds(0);
    const StreamEvent ev = stream_.next(wait);
    const auto now = std::chrono::steady_clock::now();
    if (ev.kind == StreamEvent::Kind::Timeout) {
      if (now - last_heard_ > receive_timeout_) {
        throw PgError("08006", "nothing heard from the source for " +
                                   std::to_string(receive_timeout_.count()) +
                                   " ms (source.receive_timeout_ms): taking the connection for dead");
      }
      if (!pinged_ && now - last_heard_ > receive_timeout_ / 2) {
        stream_.send_status(reported_written_, reported_flushed_, reported_flushed_,
                            /*reply_requested=*/true);
        pinged_ = true;
      }
      break;
    }
    last_heard_ = now;
    pinged_ = false;
    if (ev.kind == StreamEvent::Kind::Ended) {
      polled.ended = true;
      break;
    }
    received_ = std::max(received_, ev.wal_end);
    if (ev.kind == StreamEvent::Kind::Keepalive) {
      polled.reply_requested = polled.reply_requested || ev.reply_requested;
      // Everything before a keepalive's position has been sent and read: with nothing held, every
      // transaction committing later comes after it.
      if (!assembler_.in_transaction() && assembler_.streamed_in_progress() == 0 &&
          assembler_.prepared_held() == 0) {
        polled.idle_lsn = ev.wal_end;
      } else {
        polled.idle_lsn.reset();
      }
      continue;
    }
    ++messages_;
    bytes_ += ev.payload.size();
    assembler_.feed(ev.payload, ev.wal_start);
    polled.idle_lsn.reset();
    if (out_changes_ >= max_changes_per_poll_) break;
  }
  polled.received = received_;
  out_ = nullptr;
  return polled;
}

void PgChangeSource::report(Lsn written, Lsn flushed) {
  stream_.send_status(written, flushed, flushed);
  reported_written_ = written;
  reported_flushed_ = flushed;
}

}  // namespace cdcsync
