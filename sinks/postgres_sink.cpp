// PostgresSink: a batch as one target transaction (savepoint, the set-based path with its fallbacks or the
// in-order path, the progress row, commit).
#include "sinks/postgres_sink.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <utility>

#include "sinks/postgres_sink_table.h"

namespace cdcsync {
namespace {

std::string default_applied_by() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string("cdcsync@") + host + ":" + std::to_string(getpid());
}

}  // namespace

PostgresSink::PostgresSink(Mapping mapping, PostgresSinkOptions options)
    : mapping_(std::move(mapping)),
      options_(std::move(options)),
      binder_(mapping_),
      copy_account_(options_.memory) {
  if (options_.pipeline.empty()) throw std::invalid_argument("the sink needs a pipeline name");
  if (options_.applied_by.empty()) options_.applied_by = default_applied_by();
  for (std::size_t i = 0; i < mapping_.tables().size(); ++i) {
    const TableMapping& m = mapping_.tables()[i];
    for (const auto& c : m.columns) {
      if (c.target == "_cdc_stage_op" || c.target == "_cdc_stage_mask") {
        throw std::invalid_argument("target column name " + c.target + " is reserved for the sink's staging");
      }
    }
    auto t = std::make_unique<TableState>();
    t->index = i;
    t->mapping = &m;
    t->target = m.target.quoted();
    t->stage = "pg_temp." + quote_ident("cdcsync_stage_" + std::to_string(i));
    for (const auto& c : m.columns) t->cols.push_back(quote_ident(c.target));
    t->key = m.key_indexes();
    t->lsn_col = quote_ident(m.lsn_column);
    if (m.deletes == DeletePolicy::Soft) t->tomb_col = quote_ident(m.tombstone_column);
    t->fold = TableFold(m);
    tables_.push_back(std::move(t));
  }
}

PostgresSink::~PostgresSink() = default;

std::optional<Lsn> PostgresSink::apply(const Batch& batch) {
  timings_ = ApplyTimings{};
  try {
    return apply_inner(batch, false);
  } catch (const PgError& e) {
    raise(e);
  } catch (const PermanentError&) {
    rollback_quietly();
    throw;
  } catch (const TransientError&) {
    drop_connection();
    throw;
  } catch (const WriterLockHeld&) {
    throw;
  } catch (...) {
    rollback_quietly();
    throw;
  }
}

std::optional<Lsn> PostgresSink::apply_inner(const Batch& batch, bool reconnected) {
  const auto started = std::chrono::steady_clock::now();
  ensure_connected();
  skip_.check_continuation(batch, in_txn_);
  const SkipApplied::Selection todo = skip_.select(batch, progress_);
  stats_.transactions_skipped += todo.skipped;

  if (!todo.apply.empty() && !in_txn_ && fits_one_trip(batch, todo.apply)) {
    bool done = false;
    try {
      done = apply_in_one_trip(batch, todo.apply, *todo.last_whole);
    } catch (const PgError& e) {
      // The session died while idle (target restart, idle timeout) or during the trip: reconnect once, reread
      // the progress (it says whether the COMMIT got through) and start over.
      if (!e.transient() || reconnected) throw;
      spdlog::info("order database session lost; reconnecting");
      drop_connection();
      return apply_inner(batch, true);
    }
    if (done) {
      for (const auto* t : todo.apply) {
        stats_.changes_applied += t->changes.size();
        ++stats_.transactions_applied;
      }
      return committed(*todo.last_whole);
    }
  }

  if (!todo.apply.empty()) {
    if (!open_savepoint(batch, reconnected)) return apply_inner(batch, true);
    if (options_.method == ApplyMethod::Copy) {
      apply_set_based_or_fall_back(todo.apply);
    } else {
      apply_in_order(todo.apply);
    }
    // Inside a chunked source transaction, merge this call's savepoint into the transaction.
    if (!batch.ends_whole()) exec("RELEASE SAVEPOINT cdcsync_apply", "releasing the savepoint");
    for (const auto* t : todo.apply) {
      stats_.changes_applied += t->changes.size();
      if (t->last_chunk) ++stats_.transactions_applied;
    }
  }

  if (!batch.ends_whole()) return std::nullopt;
  if (in_txn_) {
    if (todo.last_whole == nullptr)
      throw std::logic_error("open transaction without a finished source transaction");
    timings_.statements = std::chrono::steady_clock::now() - started;
    commit(batch, *todo.last_whole);
    return committed(*todo.last_whole);
  } else if (batch.durable && unflushed_) {
    // Nothing left to commit (every transaction was applied before), but the caller wants what was
    // committed durable.
    read_progress();
    ++stats_.syncs;
  }
  if (unflushed_) return std::exchange(newly_flushed_, std::nullopt);
  newly_flushed_.reset();
  return progress_ ? progress_->end_lsn : Lsn{};
}

std::optional<Lsn> PostgresSink::committed(const TransactionInfo& last) {
  if (!options_.track_progress) return last.end_lsn;
  const Lsn acked = progress_ ? std::max(progress_->acked_lsn, last.end_lsn) : last.end_lsn;
  progress_ = Progress{last.end_lsn, last.xid, last.commit_time_us, acked};
  if (unflushed_) return std::exchange(newly_flushed_, std::nullopt);
  newly_flushed_.reset();
  return progress_->end_lsn;
}

void PostgresSink::committed_at(const PGresult* positions, Lsn end_lsn) {
  in_txn_ = false;
  if (positions == nullptr) {
    all_flushed();
    return;
  }
  unflushed_ = true;
  ++stats_.commits_unflushed;
  unflushed_commits_.push_back({Lsn::parse(PQgetvalue(positions, 0, 0)).value_or(Lsn{}), end_lsn});
  learn_flushed(Lsn::parse(PQgetvalue(positions, 0, 1)).value_or(Lsn{}));
}

void PostgresSink::learn_flushed(Lsn flush) {
  while (!unflushed_commits_.empty() && unflushed_commits_.front().target_wal <= flush) {
    newly_flushed_ = unflushed_commits_.front().end_lsn;
    unflushed_commits_.pop_front();
  }
  if (unflushed_commits_.empty()) all_flushed();
}

void PostgresSink::all_flushed() {
  unflushed_ = false;
  unflushed_commits_.clear();
}

// BEGIN (or, inside a chunked source transaction, only) a savepoint for this call. false: the session was
// found dead while idle and was dropped; the caller starts the batch over on a new one.
bool PostgresSink::open_savepoint(const Batch& batch, bool reconnected) {
  error_lsn_ = Lsn{};
  error_table_.clear();
  if (in_txn_) {
    exec(kSavepoint, "opening a savepoint");
  } else {
    try {
      exec(std::string("BEGIN; ") + kSavepoint, "opening the transaction");
    } catch (const PgError& e) {
      // The session died while idle (target restart, idle timeout): nothing was open, so reconnect
      // once, reread the progress and start over.
      if (!e.transient() || reconnected || !batch.transactions.front().first_chunk) throw;
      spdlog::info("order database session lost while idle; reconnecting");
      drop_connection();
      return false;
    }
  }
  in_txn_ = true;
  for (auto& t : tables_) t->without_toast_at_savepoint = t->without_toast;
  return true;
}

// The set-based path, applied again after what it can recover from: a value a binary encoder refused (the
// table goes to text), a key inserted as new that existed (upserts), a COPY into the target refused (the
// stage). Anything else non-transient replays the changes in source order.
void PostgresSink::apply_set_based_or_fall_back(const std::vector<const Transaction*>& txns) {
  while (true) {
    try {
      apply_set_based(txns);
      return;
    } catch (const BinaryRefused& r) {
      roll_back_to_savepoint();
      for (auto& t : tables_) t->plain_used = false;
      TableState& t = *tables_[r.table];
      t.binary = false;
      t.binary_refused = true;
      ++stats_.binary_refusals;
      spdlog::warn(
          "{}: a value of column {} (source transaction at LSN {}) is not in the form the {} encoder of "
          "COPY's binary format reads; the table is copied as text from now on",
          t.mapping->target.str(), t.cols[r.column], r.lsn.str(), name_of(t.col_types[r.column]));
    } catch (const PgError& e) {
      if (e.transient()) throw;
      roll_back_to_savepoint();
      if (retry_after_failure(e)) continue;
      // The folded order tripped a constraint (or two texts of one key value met): replay change by
      // change in source order, which also names the exact source transaction if it fails again.
      spdlog::warn("set-based apply failed on {} (SQLSTATE {}); replaying the batch in source order",
                   error_table_, e.sqlstate());
      ++stats_.replays_in_order;
      if (options_.observer.apply_fallback) options_.observer.apply_fallback(error_table_, "replay_in_order");
      apply_in_order(txns);
      return;
    }
  }
}

void PostgresSink::roll_back_to_savepoint() {
  exec("ROLLBACK TO SAVEPOINT cdcsync_apply", "rolling back to the savepoint");
  for (auto& t : tables_) t->rolled_back_to_savepoint();
}

// After the set-based path failed with `e` and was rolled back: true when applying it again can succeed
// (with upserts for a table whose key inserted as new existed, through the stage for one whose COPY was
// refused).
bool PostgresSink::retry_after_failure(const PgError& e) {
  const bool conflict = e.sqlstate() == "23505" && std::any_of(tables_.begin(), tables_.end(),
                                                               [](const auto& t) { return t->plain_used; });
  // COPY FROM refused (row-level security enabled since the session began): stage from now on.
  const bool copy_refused =
      e.sqlstate() == "0A000" && std::any_of(tables_.begin(), tables_.end(),
                                             [](const auto& t) { return t->plain_used && t->copy_into; });
  for (auto& t : tables_) {
    if (conflict && t->plain_used) t->upsert_only = kUpsertOnlyFlushes;
    if (copy_refused && t->plain_used) t->copy_into = false;
    t->plain_used = false;
  }
  if (copy_refused) {
    spdlog::info("COPY into {} refused; its rows go through the staging table from now on", error_table_);
    return true;
  }
  if (conflict) {
    // A row inserted as new already existed (its first change in the batch was an insert): apply the batch
    // again with upserts, which the LSN guard makes exact.
    spdlog::info("a key inserted in the batch already existed in {}; applying the batch again with upserts",
                 error_table_);
    ++stats_.plain_insert_conflicts;
    if (options_.observer.apply_fallback) options_.observer.apply_fallback(error_table_, "existing_key");
    return true;
  }
  return false;
}

// The progress row and COMMIT in one round trip, after which the open transaction's counts are reported.
void PostgresSink::commit(const Batch& batch, const TransactionInfo& last_whole) {
  const auto t0 = std::chrono::steady_clock::now();
  error_table_ = options_.progress_table.str();
  error_lsn_ = last_whole.end_lsn;
  // A commit that does not wait for its flush (Batch::durable false) reads, in the same round trip, where the
  // server's WAL is after its commit record and how far it is flushed (which may cover earlier commits):
  // nothing past the last flushed commit is returned (so confirmed) before it.
  const bool wait_for_flush = batch.durable || !options_.track_progress;
  std::string sql = progress_statement(last_whole);
  sql += wait_for_flush
             ? "COMMIT"
             : "SET LOCAL synchronous_commit = off; COMMIT; SELECT "
               "pg_catalog.pg_current_wal_insert_lsn()::text, pg_catalog.pg_current_wal_flush_lsn()::text";
  auto res = exec(sql, "committing");
  committed_at(wait_for_flush ? nullptr : res.get(), last_whole.end_lsn);
  timings_.commit = std::chrono::steady_clock::now() - t0;
  timings_.committed = true;
  timings_.waited_for_flush = wait_for_flush;
  for (auto& t : tables_) {
    t->stage_used = false;
    if (t->without_toast > 0 && options_.observer.inserted_without_toast) {
      options_.observer.inserted_without_toast(t->mapping->target.str(), t->without_toast);
    }
    t->without_toast = 0;
  }
}

// The progress row's upsert with its values written in (it rides in COMMIT's round trip, which takes no
// parameters), followed by "; "; empty without progress tracking.
std::string PostgresSink::progress_statement(const TransactionInfo& info) {
  if (!options_.track_progress) return {};
  if (quoted_pipeline_.empty()) {
    quoted_pipeline_ = pg_quote_literal(conn_.get(), options_.pipeline);
    quoted_applied_by_ = pg_quote_literal(conn_.get(), options_.applied_by);
  }
  const std::string lsn = "'" + info.end_lsn.str() + "'::pg_lsn";
  return progress_upsert(quoted_pipeline_ + ", " + lsn + ", " + std::to_string(info.xid.value) +
                         "::bigint, '2000-01-01 00:00:00+00'::timestamptz + " +
                         std::to_string(info.commit_time_us) + "::bigint * interval '1 microsecond', " + lsn +
                         ", " + quoted_applied_by_) +
         "; ";
}

std::string PostgresSink::progress_upsert(const std::string& values) const {
  return "INSERT INTO " + options_.progress_table.quoted() +
         " AS p (pipeline, end_lsn, xid, commit_time, acked_lsn, applied_by, updated_at) VALUES (" + values +
         ", now()) ON CONFLICT (pipeline) DO UPDATE SET end_lsn = EXCLUDED.end_lsn, xid = EXCLUDED.xid, "
         "commit_time = EXCLUDED.commit_time, acked_lsn = greatest(p.acked_lsn, EXCLUDED.end_lsn), "
         "applied_by = EXCLUDED.applied_by, updated_at = now()";
}

const BoundTable* PostgresSink::bind(const RelationPtr& relation, Lsn txn_lsn) {
  const BoundTable* b = binder_.bind(relation, txn_lsn);
  if (!binder_.has_news()) return b;
  for (const auto& table : binder_.take_new_unmapped()) {
    // The publication sends a table no [[tables]] entry names (a partition of a mapped table among them).
    spdlog::info("changes of source table {} arrive, and no [[tables]] entry maps it: they are not forwarded",
                 table);
  }
  for (const auto& [configured, arriving] : binder_.take_new_renames()) {
    spdlog::warn(
        "source table {} arrives as {} (the same table, renamed): applied through its [[tables]] entry; "
        "set [[tables]].source = '{}'",  // a TOML literal string: a quoted name keeps its double quotes
        configured, arriving, arriving);
  }
  for (const auto& d : binder_.take_new_drift()) {
    spdlog::warn("source table {} has column {} that is not mapped: it is not forwarded", d.table, d.column);
    if (options_.on_drift) options_.on_drift(d.table, d.column);
  }
  return b;
}

}  // namespace cdcsync
