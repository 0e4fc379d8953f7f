// PgChangeSource: the replication stream decoded into whole transactions for the pipeline.
#include "daemon/core/pg_change_source.h"

#include "daemon/core/errors.h"
#include "decoders/byte_reader.h"
#include "decoders/pgoutput.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "daemon/core/errors.h"

namespace cdcsync {
namespace {
// How long after its commit the source sent a transaction for the stream to count as catching up.
constexpr std::chrono::milliseconds kThrottleBehind{20};
}  // namespace

PgChangeSource::PgChangeSource(ReplicationStream& stream, AssemblerOptions options,
                               std::chrono::milliseconds receive_timeout, std::size_t max_changes_per_poll,
                               std::size_t max_bytes_per_poll, MemoryBudget* budget)
    : stream_(stream),
      assembler_(
          [&] {
            options.replay_in_steps = true;  // a committed stream or prepared transaction a chunk per step
            return std::move(options);
          }(),
          [this](Transaction&& t) {
            // absorb() feeds only what emits nothing; anything else would have nowhere to go.
            if (out_ == nullptr) throw std::logic_error("a transaction was assembled outside poll()");
            t.info.sent_time_us = sent_time_us_;
            // Reads are gathered (source.min_read_interval_us) only while the source sends transactions well
            // after their commit (a backlog): caught up, a millisecond there is a millisecond of lag.
            if (t.last_chunk && t.info.commit_time_us != 0 && sent_time_us_ != 0) {
              stream_.set_read_throttle(std::chrono::microseconds(sent_time_us_ - t.info.commit_time_us) >=
                                        kThrottleBehind);
            }
            out_changes_ += t.changes.size();
            out_bytes_ += approximate_bytes(t);
            out_->push_back(std::move(t));
          }),
      max_changes_per_poll_(max_changes_per_poll),
      max_bytes_per_poll_(max_bytes_per_poll),
      budget_(budget),
      receive_timeout_(receive_timeout) {}

namespace {
// Messages absorb() takes per call at most, so that the pipeline looks at its queue again in between.
constexpr int kAbsorbMessages = 4096;
// How often a poll waiting for room in the memory budget reads on into spools (absorb).
constexpr std::chrono::milliseconds kRoomWait{2};

// The stream's next event; a malformed frame of the replication protocol itself (CopyData, XLogData, a
// keepalive) throws SourceStreamError, placed after `after`, the last position seen.
template <class Read>
StreamEvent framed(const ReplicationStream& stream, Lsn after, Read&& read) {
  try {
    return read();
  } catch (const DecodeError& e) {
    throw SourceStreamError("malformed_message", after, std::string(stream.last_message()), e.what());
  }
}
}  // namespace

void PgChangeSource::feed(std::string_view payload, Lsn wal_start, std::int64_t server_time_us) {
  ++messages_;
  bytes_ += payload.size();
  sent_time_us_ = server_time_us;
  try {
    assembler_.feed(payload, wal_start);
  } catch (const SpoolLimitExceeded& e) {
    // Retrying would fill the spool the same way: stop until the limit is raised.
    throw FatalError("spool_limit", exit_code::kError, e.what());
  } catch (const DecodeError& e) {
    throw SourceStreamError("malformed_message", wal_start, std::string(payload), e.what());
  } catch (const ProtocolError& e) {
    throw SourceStreamError("protocol_violation", wal_start, std::string(payload), e.what());
  }
  stream_.release_message();  // decoded: a wide row's copy is not kept while the pipeline waits for room
}

bool PgChangeSource::room_for_more(std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  if (budget_ == nullptr) return true;
  const auto started = Clock::now();
  while (budget_->full(out_bytes_ + assembler_.open_bytes())) {
    if (!out_->empty() || Clock::now() >= deadline) break;
    absorb();
    budget_->wait_for_room(out_bytes_ + assembler_.open_bytes(), kRoomWait);
  }
  // Time spent not reading is not the server's silence.
  const auto now = Clock::now();
  last_heard_ = std::min(last_heard_ + (now - started), now);
  return !budget_->full(out_bytes_ + assembler_.open_bytes());
}

bool PgChangeSource::absorb() {
  if (!assembler_.replaying() || held_ || ended_) return false;
  bool heard = false;
  bool more = true;
  for (int taken = 0; taken < kAbsorbMessages; ++taken) {
    const StreamEvent ev = framed(stream_, received_, [&] { return stream_.next_arrived(); });
    if (ev.kind == StreamEvent::Kind::Timeout) break;
    heard = true;
    if (ev.kind == StreamEvent::Kind::Ended) {
      ended_ = true;
      more = false;
      break;
    }
    received_ = std::max(received_, ev.wal_end);
    if (ev.kind == StreamEvent::Kind::Keepalive) {
      reply_requested_ = reply_requested_ || ev.reply_requested;
      continue;
    }
    if (!assembler_.can_feed(ev.payload)) {
      // The next transaction to hand out, or something that must follow the replay: after it.
      held_ = Held{std::string(ev.payload), ev.wal_start, ev.server_time_us};
      more = false;
      break;
    }
    feed(ev.payload, ev.wal_start, ev.server_time_us);
    ++absorbed_;
  }
  if (heard) {
    last_heard_ = std::chrono::steady_clock::now();
    pinged_ = false;
  }
  return more;
}

Polled PgChangeSource::poll(std::chrono::milliseconds timeout, std::vector<Transaction>& out) {
  using Clock = std::chrono::steady_clock;
  Polled polled;
  out_ = &out;
  out_changes_ = 0;
  out_bytes_ = 0;
  bool heard = false;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (ended_) {
      polled.ended = true;
      break;
    }
    // A transaction replayed from its spool comes out a chunk at a time, before anything newer is handed
    // out; meanwhile the blocks of other streamed transactions are read on into their spools.
    if (!room_for_more(deadline)) break;
    if (assembler_.replaying()) {
      if (!assembler_.resume_replay()) {
        spdlog::debug("replayed a committed streamed transaction; {} messages of later ones read meanwhile",
                      absorbed_ - absorbed_before_replay_);
        absorbed_before_replay_ = absorbed_;
      }
      absorb();
      polled.idle_lsn.reset();
      if (poll_full()) break;
      continue;
    }
    if (held_) {
      const Held held = std::move(*held_);
      held_.reset();
      feed(held.payload, held.wal_start, held.server_time_us);
      polled.idle_lsn.reset();
      if (poll_full()) break;
      continue;
    }
    // Once something is ready, drain only what has already arrived, then hand it out.
    const auto until = out.empty() ? deadline : Clock::time_point::min();
    const StreamEvent ev = framed(stream_, received_, [&] { return stream_.next_until(until); });
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
    feed(ev.payload, ev.wal_start, ev.server_time_us);
    polled.idle_lsn.reset();
    if (poll_full()) break;
  }
  if (heard) {
    last_heard_ = Clock::now();
    pinged_ = false;
  }
  polled.reply_requested = polled.reply_requested || reply_requested_;
  reply_requested_ = false;
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
