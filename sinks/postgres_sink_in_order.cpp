// PostgresSink's in-order path: every change as its own prepared statement, in source order, in libpq's
// pipeline mode. The fallback of the set-based path and the ground truth: its error names the exact source
// transaction.
#include <cstdint>

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
      sql = "INSERT INTO " + t.target + " AS t (" + t.row_columns() + ") VALUES (";
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
  sync_and_drain();
  if (PQexitPipelineMode(conn_.get()) != 1) throw sink_error(conn_.get(), nullptr, "leaving pipeline mode");
}

}  // namespace cdcsync
