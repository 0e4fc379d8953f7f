// DeadLetterSink: a transaction the target refuses goes to the dead-letter store; the pipeline goes on.
#include "sinks/dead_letter_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace cdcsync {
namespace {

PermanentError not_dead_lettered(const PermanentError& e, const std::string& why) {
  return PermanentError(e.table(), e.lsn(), e.sqlstate(),
                        std::string(e.what()) + "; not dead-lettered: " + why);
}

// What a refused transaction leaves in the target: its place in the progress row, nothing else.
Transaction stand_in(const Transaction& t) {
  Transaction s;
  s.info = t.info;
  return s;
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string dead_letter_id(Lsn commit_lsn) {
  return fmt::format("{}-0", commit_lsn.value());
}

DeadLetterSink::DeadLetterSink(Sink& inner, DeadLetterStore& store, DeadLetterSinkOptions options)
    : inner_(inner), store_(store), options_(std::move(options)) {
  if (!options_.encode_rows) throw std::invalid_argument("DeadLetterSink needs encode_rows");
  if (options_.max_transactions == 0)
    throw std::invalid_argument("dead_letter.max_transactions must be >= 1");
}

std::optional<Lsn> DeadLetterSink::apply(const Batch& batch) {
  refresh_size();
  try {
    return inner_.apply(batch);
  } catch (const PermanentError& e) {
    inner_.abort();
    if (batch.empty()) throw;
    if (!batch.transactions.front().first_chunk) {
      throw not_dead_lettered(e,
                              "the batch continues a source transaction applied in chunks (too large for one "
                              "batch), whose earlier chunks cannot be isolated");
    }
    return isolate(batch, e);
  }
}

std::optional<Lsn> DeadLetterSink::isolate(const Batch& batch, const PermanentError& first) {
  spdlog::warn(
      "the target refused a batch of {} source transactions ({} on {}, SQLSTATE {}); applying them one "
      "at a time to dead-letter the refused ones",
      batch.transactions.size(), first.lsn().str(), first.table(), first.sqlstate());
  // Stand-ins of dead-lettered transactions not yet committed: they ride with the next apply.
  std::vector<Transaction> stand_ins;
  std::optional<Lsn> durable;
  const auto apply_with_stand_ins = [&](const Transaction* t) {
    Batch b;
    b.transactions = stand_ins;
    if (t != nullptr) b.transactions.push_back(*t);
    durable = inner_.apply(b);
    stand_ins.clear();
  };
  // A batch of one transaction was refused already: no need to ask again.
  std::optional<PermanentError> known;
  if (batch.transactions.size() == 1) known = first;

  for (const Transaction& t : batch.transactions) {
    for (;;) {
      std::optional<PermanentError> refusal = std::exchange(known, std::nullopt);
      if (!refusal) {
        try {
          apply_with_stand_ins(&t);
          break;
        } catch (const PermanentError& e) {
          inner_.abort();
          refusal = e;
        }
        if (!stand_ins.empty()) {
          // Refused together with stand-ins: commit those alone (a refusal there is not this transaction's),
          // then ask again about this one.
          apply_with_stand_ins(nullptr);
          continue;
        }
      }
      if (t.info.snapshot)
        throw not_dead_lettered(*refusal, "rows of the initial snapshot are never dead-lettered");
      if (!t.whole()) {
        throw not_dead_lettered(
            *refusal,
            "the source transaction is applied in chunks (too large for one batch), and a "
            "refused chunk cannot be isolated from the others");
      }
      dead_letter(t, *refusal);
      stand_ins.push_back(stand_in(t));
      break;
    }
  }
  if (!stand_ins.empty()) apply_with_stand_ins(nullptr);
  return durable;
}

void DeadLetterSink::dead_letter(const Transaction& txn, const PermanentError& refusal) {
  const TransactionInfo& info = txn.info;
  if (store_.contains(info.final_lsn)) {
    // Stored before a crash or a transient failure that kept the progress row from passing it.
    spdlog::info("source transaction {} (commit LSN {}) is already in the {}", info.xid.value,
                 info.final_lsn.str(), options_.store_name);
    return;
  }
  const std::size_t held = store_.size();
  if (options_.store_size) options_.store_size(held);
  if (held >= options_.max_transactions) {
    throw not_dead_lettered(refusal,
                            fmt::format("the {} already holds {} transactions (dead_letter.max_transactions "
                                        "= {}); replay or drop them with `cdcsync dlq`",
                                        options_.store_name, held, options_.max_transactions));
  }
  DeadLetter d;
  d.id = dead_letter_id(info.final_lsn);
  d.lsn = info.final_lsn;
  d.end_lsn = info.end_lsn;
  d.xid = info.xid;
  d.commit_time_us = info.commit_time_us;
  d.table = refusal.table();
  d.sqlstate = refusal.sqlstate();
  d.error = refusal.what();
  d.unix_ms = now_unix_ms();
  d.rows = options_.encode_rows(txn, d.changes);
  store_.add(d);
  ++dead_lettered_;
  spdlog::warn(
      "dead-lettered source transaction {} (commit LSN {}): the target refused it on {} with SQLSTATE {}; "
      "its {} row changes are in the {}; the pipeline goes on",
      info.xid.value, info.final_lsn.str(), d.table.empty() ? std::string("(no table)") : d.table,
      d.sqlstate.empty() ? std::string("(none)") : d.sqlstate, d.changes, options_.store_name);
  if (options_.dead_lettered) options_.dead_lettered(d);
  if (options_.store_size) options_.store_size(held + 1);
  size_read_at_ = std::chrono::steady_clock::now();
}

void DeadLetterSink::record_ack(Lsn lsn) {
  refresh_size();
  inner_.record_ack(lsn);
}

void DeadLetterSink::refresh_size() {
  if (!options_.store_size) return;
  const auto t = std::chrono::steady_clock::now();
  if (size_read_at_ && t - *size_read_at_ < options_.size_refresh) return;
  size_read_at_ = t;
  try {
    options_.store_size(store_.size());
  } catch (const std::exception& e) {
    // Only a gauge: dead-lettering itself reads the size again and fails loudly.
    spdlog::debug("could not read the size of the {}: {}", options_.store_name, e.what());
  }
}

}  // namespace cdcsync
