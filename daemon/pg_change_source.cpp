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
            t.info.sent_time_us = sent_time_us_;
            out_changes_ += t.changes.size();
            out_->push_back(std::move(t));
          }),
      max_changes_per_poll_(max_changes_per_poll),
      receive_timeout_(receive_timeout) {}

Polled PgChangeSource::poll(std::chrono::milliseconds timeout, std::vector<Transaction>& out) {
  using Clock = std::chrono::steady_clock;
  Polled polled;
  out_ = &out;
  out_changes_ = 0;
  bool heard = false;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    // A transaction replayed from its spool comes out a chunk at a time, before anything newer is read.
    if (assembler_.replaying()) {
      assembler_.resume_replay();
      polled.idle_lsn.reset();
      if (out_changes_ >= max_changes_per_poll_) break;
      continue;
    }
    // Once something is ready, drain only what has already arrived, then hand it out.
    const StreamEvent ev = stream_.next_until(out.empty() ? deadline : Clock::time_point::min());
    if (ev.kind == StreamEvent::Kind::Timeout) {
      if (heard) break;  // the end of what had arrived
      const auto now = Clock::now();
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
    heard = true;
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
    sent_time_us_ = ev.server_time_us;
    assembler_.feed(ev.payload, ev.wal_start);
    polled.idle_lsn.reset();
    if (out_changes_ >= max_changes_per_poll_) break;
  }
  if (heard) {
    last_heard_ = Clock::now();
    pinged_ = false;
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
