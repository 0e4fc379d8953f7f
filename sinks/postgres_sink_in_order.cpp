// PostgresSink's in-order path: every change as its own prepared statement, in source order, in libpq's
// pipeline mode. The fallback of the set-based path and the ground truth: its error names the exact source
// transaction.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "sinks/postgres_sink.h"
#include "sinks/postgres_sink_table.h"

namespace cdcsync {

void PostgresSink::apply_truncate(const Change& change, Lsn txn_lsn, bool pipelined) {
  for (const auto& rel : change.truncated) {
    const BoundTable* b = bind(rel, txn_lsn);
    if (b == nullptr || below_floor(b->table, txn_lsn)) continue;
    const TableMapping& m = *b->mapping;
    TableState& t = *tables_[b->table];
    error_table_ = m.target.str();
    error_lsn_ = txn_lsn;
    if (m.truncates == TruncatePolicy::Ignore) continue;
    if (m.truncates == TruncatePolicy::Fail) {
      throw PermanentError(m.source.str(), txn_lsn, "",
                           "TRUNCATE of source table " + m.source.str() + " (truncate = fail)");
    }
    // DELETE, not TRUNCATE: the target role has no TRUNCATE privilege. Guarded like every write.
    const std::string sql = t.tomb_col.empty()
                                ? "DELETE FROM " + t.target + " AS t WHERE t." + t.lsn_col + " <= $1::pg_lsn"
                                : "UPDATE " + t.target + " AS t SET " + t.tomb_col + " = true, " + t.lsn_col +
                                      " = $1::pg_lsn WHERE t." + t.lsn_col + " <= $1::pg_lsn";
    const std::string lsn = txn_lsn.str();
    if (pipelined) {
      // Pipeline mode only queues the statement (its result is read by sync_and_drain), which
      // pg_exec_params cannot do.
      const char* params[] = {lsn.c_str()};
      if (PQsendQueryParams(conn_.get(), sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0) != 1) {
        throw sink_error(conn_.get(), nullptr, "sending a truncate");
      }
      pending_.push_back({b->table, txn_lsn});
    } else {
      exec_params(sql, {lsn}, "applying a truncate", PGRES_COMMAND_OK);
    }
    ++stats_.truncates_applied;
  }
}

void PostgresSink::send_row(TableState& t, const FoldedRow& row, Lsn txn_lsn) {
  const std::size_t ncols = t.fold.columns();
  params_.clear();
  t.offsets.clear();
  auto add_param = [&](std::optional<std::string_view> v) {
    if (!v) {
      t.offsets.push_back(SIZE_MAX);
      return;
    }
    t.offsets.push_back(params_.size());
    params_.append(*v);
    params_.push_back('\0');
  };
  std::string name = "cdcsync_" + std::to_string(t.index);
  if (row.action == RowAction::Delete) {
    name += "_d";
    for (std::size_t k : t.key) add_param(t.fold.text(t.fold.value(row, k)));
  } else {
    t.mask_scratch.assign(ncols, '1');
    for (std::size_t c = 0; c < ncols; ++c) {
      const auto& v = t.fold.value(row, c);
      if (v.state == ValueState::Absent) t.mask_scratch[c] = '0';
      add_param(v.state == ValueState::Value ? std::optional<std::string_view>(t.fold.text(v))
                                             : std::nullopt);
    }
    name += "_u";
    if (row.has_absent) name += "_" + t.mask_scratch;
  }
  const std::string lsn = row.lsn.str();
  add_param(lsn);
  if (row.action == RowAction::Upsert && !t.tomb_col.empty()) add_param(row.tombstone ? "t" : "f");
  const int n = static_cast<int>(t.offsets.size());

  // The hot path of the in-order method: a prepared statement per table and shape, its parameters packed in
  // params_ without a string per value, queued in pipeline mode (not pg_exec_params, which runs one
  // statement and waits for its result).
  if (!t.prepared.contains(name)) {
    std::string sql;
    if (row.action == RowAction::Delete) {
      sql = "DELETE FROM " + t.target + " AS t WHERE ";
      int i = 1;
      for (std::size_t k : t.key) sql += "t." + t.cols[k] + " = $" + std::to_string(i++) + " AND ";
      sql += "t." + t.lsn_col + " <= $" + std::to_string(i);
    } else {
      sql = "INSERT INTO " + t.target + " AS t (" + t.row_columns() + ") OVERRIDING SYSTEM VALUE VALUES (";
      for (int i = 1; i <= n; ++i) sql += (i > 1 ? ", $" : "$") + std::to_string(i);
      sql += ")" + t.conflict_clause(row.has_absent ? t.mask_scratch : std::string());
    }
    if (PQsendPrepare(conn_.get(), name.c_str(), sql.c_str(), n, nullptr) != 1) {
      throw sink_error(conn_.get(), nullptr, "preparing a statement");
    }
    pending_.push_back({t.index, txn_lsn});
    t.prepared.insert(name);
  }
  param_ptrs_.clear();
  for (std::size_t off : t.offsets) param_ptrs_.push_back(off == SIZE_MAX ? nullptr : params_.data() + off);
  if (PQsendQueryPrepared(conn_.get(), name.c_str(), n, param_ptrs_.data(), nullptr, nullptr, 0) != 1) {
    throw sink_error(conn_.get(), nullptr, "sending a row");
  }
  pending_.push_back({t.index, txn_lsn});
  if (pending_.size() >= kPipelineDepth) sync_and_drain();
}

void PostgresSink::sync_and_drain() {
  if (pending_.empty()) return;
  if (PQpipelineSync(conn_.get()) != 1) throw sink_error(conn_.get(), nullptr, "syncing the pipeline");
  std::optional<PgError> first;
  for (const Pending& p : pending_) {
    PgResult r{PQgetResult(conn_.get())};
    if (!r) throw sink_error(conn_.get(), nullptr, "reading pipelined results");
    if (PQresultStatus(r.get()) == PGRES_FATAL_ERROR && !first) {
      error_table_ = tables_[p.table]->mapping->target.str();
      error_lsn_ = p.lsn;
      first = sink_error(conn_.get(), r.get(), "applying a change to " + error_table_);
    }
    PgResult end{PQgetResult(conn_.get())};  // each queued query's results end with a null
  }
  PgResult sync{PQgetResult(conn_.get())};
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
    throw sink_error(conn_.get(), sync.get(), "reading the pipeline sync");
  }
  pending_.clear();
  if (first) {
    if (first->transient()) throw *first;
    // Leave pipeline mode (the connection is idle now) so the caller can roll back.
    PQexitPipelineMode(conn_.get());
    throw *first;
  }
}

void PostgresSink::apply_in_order(const std::vector<const Transaction*>& txns) {
  if (PQenterPipelineMode(conn_.get()) != 1) throw sink_error(conn_.get(), nullptr, "entering pipeline mode");
  send_in_order(txns);
  sync_and_drain();
  if (PQexitPipelineMode(conn_.get()) != 1) throw sink_error(conn_.get(), nullptr, "leaving pipeline mode");
}

void PostgresSink::send_in_order(const std::vector<const Transaction*>& txns) {
  for (const Transaction* txn : txns) {
    // The commit LSN: the rows' version, and what names the source transaction in errors.
    const Lsn lsn = txn->info.final_lsn;
    for (const Change& c : txn->changes) {
      switch (c.op) {
        case ChangeOp::Insert:
        case ChangeOp::Update:
        case ChangeOp::Delete: {
          const BoundTable* b = bind(c.relation, lsn);
          if (b == nullptr || below_floor(b->table, lsn)) break;
          TableState& t = *tables_[b->table];
          t.fold.clear();
          t.fold.add(*b, c, lsn);
          for (std::size_t r : t.fold.apply_order()) send_row(t, t.fold.rows()[r], lsn);
          stats_.rows_written += t.fold.size();
          t.fold.clear();
          break;
        }
        case ChangeOp::Truncate:
          apply_truncate(c, lsn, true);
          if (pending_.size() >= kPipelineDepth) sync_and_drain();
          break;
        case ChangeOp::Message:
          break;
      }
    }
  }
}

bool PostgresSink::fits_one_trip(const Batch& batch, const std::vector<const Transaction*>& txns) const {
  if (options_.one_trip_max_changes == 0 || !options_.track_progress || !batch.ends_whole()) return false;
  std::size_t changes = 0;
  for (const Transaction* t : txns) {
    if (!t->whole()) return false;
    changes += t->changes.size();
    if (changes > options_.one_trip_max_changes) return false;
    for (const Change& c : t->changes) {
      if (c.op == ChangeOp::Truncate) return false;
      // The set-based path counts a row an update inserts without its unchanged TOAST values.
      for (std::size_t i = 0; i < c.after.size(); ++i) {
        if (c.after.is_unchanged_toast(i)) return false;
      }
    }
  }
  return true;
}

namespace {
constexpr std::size_t kControl = static_cast<std::size_t>(-1);  // Pending::table of BEGIN, COMMIT, ...
// The one trip's statements, prepared once per session.
constexpr const char* kTripBegin = "cdcsync_trip_begin";
constexpr const char* kTripProgress = "cdcsync_trip_progress";
constexpr const char* kTripAsync = "cdcsync_trip_async";
constexpr const char* kTripCommit = "cdcsync_trip_commit";
constexpr const char* kTripPositions = "cdcsync_trip_positions";
}  // namespace

bool PostgresSink::apply_in_one_trip(const Batch& batch, const std::vector<const Transaction*>& txns,
                                     const TransactionInfo& last_whole) {
  const auto t0 = std::chrono::steady_clock::now();
  PGconn* const c = conn_.get();
  const bool wait_for_flush = batch.durable;
  const auto queued = [&](int sent, const char* what) {
    if (sent != 1) throw sink_error(c, nullptr, what);
    pending_.push_back({kControl, last_whole.final_lsn});
  };
  error_lsn_ = last_whole.final_lsn;
  error_table_ = options_.progress_table.str();
  if (PQenterPipelineMode(c) != 1) throw sink_error(c, nullptr, "entering pipeline mode");
  // The trip's own statements are prepared once per session: parsing them for every batch cost the order
  // server's backend more than the rows.
  if (!trip_prepared_) {
    const std::string progress = progress_upsert(
        "$1, $2::pg_lsn, $3::bigint, '2000-01-01 00:00:00+00'::timestamptz + $4::bigint * interval "
        "'1 microsecond', $2::pg_lsn, $5");
    const std::pair<const char*, std::string> statements[] = {
        {kTripBegin, "BEGIN"},
        {kTripProgress, progress},
        {kTripAsync, "SET LOCAL synchronous_commit = off"},
        {kTripCommit, "COMMIT"},
        {kTripPositions,
         "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, pg_catalog.pg_current_wal_flush_lsn()::text"}};
    for (const auto& [name, sql] : statements) {
      queued(PQsendPrepare(c, name, sql.c_str(), 0, nullptr), "preparing the statements of a batch");
    }
    trip_prepared_ = true;
  }
  const auto run = [&](const char* name, const std::vector<const char*>& params, const char* what) {
    queued(PQsendQueryPrepared(c, name, static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0),
           what);
  };
  run(kTripBegin, {}, "opening the transaction");
  in_txn_ = true;
  send_in_order(txns);
  const std::string end_lsn = last_whole.end_lsn.str();
  const std::string xid = std::to_string(last_whole.xid.value);
  const std::string commit_time = std::to_string(last_whole.commit_time_us);
  run(kTripProgress,
      {options_.pipeline.c_str(), end_lsn.c_str(), xid.c_str(), commit_time.c_str(),
       options_.applied_by.c_str()},
      "writing the progress row");
  if (!wait_for_flush) run(kTripAsync, {}, "committing");
  run(kTripCommit, {}, "committing");
  // As in commit(): where the server's WAL is after the commit record, and how far it is flushed.
  if (!wait_for_flush) run(kTripPositions, {}, "committing");
  if (PQpipelineSync(c) != 1) throw sink_error(c, nullptr, "syncing the pipeline");

  std::optional<PgError> first;
  PgResult positions;
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    PgResult r{PQgetResult(c)};
    if (!r) throw sink_error(c, nullptr, "reading pipelined results");
    const auto status = PQresultStatus(r.get());
    if (status == PGRES_FATAL_ERROR && !first) {
      const Pending& p = pending_[i];
      if (p.table != kControl) error_table_ = tables_[p.table]->mapping->target.str();
      error_lsn_ = p.lsn;
      first = sink_error(c, r.get(), "applying a change to " + error_table_);
    }
    if (status == PGRES_TUPLES_OK && i + 1 == pending_.size()) positions = std::move(r);
    PgResult end{PQgetResult(c)};  // each queued query's results end with a null
  }
  PgResult sync{PQgetResult(c)};
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC)
    throw sink_error(c, sync.get(), "reading the pipeline sync");
  pending_.clear();
  if (first && first->transient()) throw *first;
  if (PQexitPipelineMode(c) != 1) throw sink_error(c, nullptr, "leaving pipeline mode");
  if (first) {
    // Rolled back whole; the usual path applies the batch again and, if the change fails there too, names
    // it. A statement prepared in the queue may have been skipped: forget them all.
    ++stats_.one_trip_fallbacks;
    spdlog::debug("a batch sent in one round trip failed ({}); applying it again the usual way",
                  first->what());
    if (PQtransactionStatus(c) != PQTRANS_IDLE) exec("ROLLBACK", "rolling back");
    exec("DEALLOCATE ALL", "forgetting prepared statements");
    trip_prepared_ = false;
    in_txn_ = false;
    for (auto& t : tables_) {
      t->prepared.clear();
      t->fold.clear();
    }
    return false;
  }

  if (!wait_for_flush && !positions) throw std::logic_error("the commit's WAL positions did not come back");
  ++stats_.one_trip_batches;
  committed_at(wait_for_flush ? nullptr : positions.get(), last_whole.end_lsn);
  // One round trip: its statements and COMMIT are not told apart.
  timings_.statements = std::chrono::steady_clock::now() - t0;
  timings_.commit = {};
  timings_.committed = true;
  timings_.waited_for_flush = wait_for_flush;
  return true;
}

}  // namespace cdcsync
