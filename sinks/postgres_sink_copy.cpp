// PostgresSink's set-based path: a batch folded per table and key, COPYed into the staging table (or straight
// into the target), then applied by one DELETE and a few INSERT … ON CONFLICT statements; and which tables
// copy in COPY's binary format (plan_copy).
#include <algorithm>
#include <limits>

#include "sinks/copy_binary.h"
#include "sinks/copy_text.h"
#include "sinks/postgres_sink.h"
#include "sinks/postgres_sink_table.h"

namespace cdcsync {
namespace {

constexpr std::size_t kNoColumn = std::numeric_limits<std::size_t>::max();

// Lsn::str() without the allocation: "H/L" in uppercase hex.
void append_lsn(std::string& out, Lsn lsn) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const auto hex = [&](std::uint32_t v) {
    char buf[8];
    int n = 0;
    do {
      buf[n++] = kHex[v & 0xF];
      v >>= 4;
    } while (v != 0);
    while (n > 0) out.push_back(buf[--n]);
  };
  hex(static_cast<std::uint32_t>(lsn.value() >> 32));
  out.push_back('/');
  hex(static_cast<std::uint32_t>(lsn.value()));
}

// The id of the unchanged-TOAST mask of an upsert that leaves columns out (0: none left out): rows with the
// same mask share a statement, whose SET list leaves those columns alone.
int mask_of(const TableFold& fold, const FoldedRow& row, std::string& scratch,
            std::map<std::string, int>& masks) {
  if (row.action != RowAction::Upsert || !row.has_absent) return 0;
  const std::size_t ncols = fold.columns();
  scratch.assign(ncols, '1');
  for (std::size_t c = 0; c < ncols; ++c) {
    if (fold.value(row, c).state == ValueState::Absent) scratch[c] = '0';
  }
  return masks.try_emplace(scratch, static_cast<int>(masks.size()) + 1).first->second;
}

// A value wider than a COPY piece whose bytes go out as they are: text in the text format (escaped a piece
// at a time), a text-like column in the binary format (after its length). Written through `out` and `wide`
// (which sends what is buffered, then its argument), never copied whole.
bool wide_text(const BinaryEncoder* type, std::string_view v) {
  return v.size() > kCopyPiece &&
         (type == nullptr || (type->type == BinaryType::Text && type->array_of == 0));
}

// A folded row's mapped columns, LSN and tombstone in COPY's binary format; the column whose encoder refused
// its value, or kNoColumn.
template <class Wide>
std::size_t append_binary_row(std::string& out, const TableFold& fold,
                              const std::vector<BinaryEncoder>& types, bool tombstone, const FoldedRow& row,
                              std::size_t fields, Wide&& wide) {
  append_copy_binary_row(out, fields);
  for (std::size_t c = 0; c < fold.columns(); ++c) {
    const auto& v = fold.value(row, c);
    if (v.state != ValueState::Value) {
      append_copy_binary_null(out);
    } else if (const std::string_view text = fold.text(v); wide_text(&types[c], text)) {
      append_be32(out, static_cast<std::uint32_t>(text.size()));
      wide(text);
    } else if (!append_copy_binary(out, types[c], text)) {
      return c;
    }
  }
  append_copy_binary_lsn(out, row.lsn.value());
  if (tombstone) append_copy_binary_bool(out, row.tombstone);
  return kNoColumn;
}

// The same in the text format, without the line's end; `flush` sends what is buffered.
template <class Flush>
void append_text_row(std::string& out, const TableFold& fold, bool tombstone, const FoldedRow& row,
                     Flush&& flush) {
  for (std::size_t c = 0; c < fold.columns(); ++c) {
    const auto& v = fold.value(row, c);
    if (v.state != ValueState::Value) {
      out += "\\N";
    } else if (const std::string_view text = fold.text(v); wide_text(nullptr, text)) {
      // Escaping is byte by byte: a value may be cut anywhere.
      for (std::size_t at = 0; at < text.size(); at += kCopyPiece) {
        append_copy_text(out, text.substr(at, kCopyPiece));
        flush();
      }
    } else {
      append_copy_text(out, text);
    }
    out.push_back('\t');
  }
  append_lsn(out, row.lsn);
  if (tombstone) out += row.tombstone ? "\tt" : "\tf";
}

}  // namespace

TargetColumnTypes read_target_column_types(PGresult* res) {
  TargetColumnTypes types;
  const auto oid = [&](int r, int c) {
    return static_cast<std::uint32_t>(std::stoul(PQgetvalue(res, r, c)));
  };
  for (int r = 0; r < PQntuples(res); ++r) {
    types[PQgetvalue(res, r, 0)] = {.oid = oid(r, 1),
                                    .shown = PQgetvalue(res, r, 2),
                                    .base = oid(r, 3),
                                    .base_kind = PQgetvalue(res, r, 4)[0],
                                    .element = oid(r, 5),
                                    .element_base = oid(r, 6),
                                    .element_kind = PQgetvalue(res, r, 7)[0]};
  }
  return types;
}

CopyPlan plan_copy(const TableMapping& table, const TargetColumnTypes& types) {
  CopyPlan plan;
  const auto need = [&](const std::string& column, const char* what) {
    const auto it = types.find(column);
    if (it == types.end()) {
      if (plan.text_because.empty()) plan.text_because = std::string(what) + " \"" + column + "\" is missing";
      return BinaryEncoder{};
    }
    const BinaryEncoder b = binary_encoder_of(it->second);
    if (!b.supported() && plan.text_because.empty())
      plan.text_because = std::string(what) + " \"" + column + "\" is " + it->second.shown;
    return b;
  };
  for (const auto& c : table.columns) plan.columns.push_back(need(c.target, "column"));
  // The sink writes the LSN and the tombstone itself, as a pg_lsn and a boolean.
  if (need(table.lsn_column, "LSN column") != BinaryEncoder{BinaryType::PgLsn} && plan.text_because.empty())
    plan.text_because = "LSN column \"" + table.lsn_column + "\" is not pg_lsn";
  if (table.deletes == DeletePolicy::Soft &&
      need(table.tombstone_column, "tombstone column") != BinaryEncoder{BinaryType::Bool} &&
      plan.text_because.empty())
    plan.text_because = "tombstone column \"" + table.tombstone_column + "\" is not boolean";
  return plan;
}

void PostgresSink::apply_set_based(const std::vector<const Transaction*>& txns) {
  for (auto& t : tables_) t->plain_used = false;
  for (const Transaction* txn : txns) {
    // The commit LSN: the rows' version, and what names the source transaction in errors.
    const Lsn lsn = txn->info.final_lsn;
    error_lsn_ = lsn;
    for (const Change& c : txn->changes) {
      switch (c.op) {
        case ChangeOp::Insert:
        case ChangeOp::Update:
        case ChangeOp::Delete:
          if (const BoundTable* b = bind(c.relation, lsn); b != nullptr && !below_floor(b->table, lsn))
            tables_[b->table]->fold.add(*b, c, lsn, txn->info.snapshot);
          break;
        case ChangeOp::Truncate:
          flush_all();
          apply_truncate(c, lsn, false);
          break;
        case ChangeOp::Message:
          break;
      }
    }
  }
  error_lsn_ = Lsn{};
  flush_all();
}

void PostgresSink::flush_all() {
  for (std::size_t i = 0; i < tables_.size(); ++i) flush_table(i);
}

void PostgresSink::flush_table(std::size_t index) {
  TableState& t = *tables_[index];
  if (t.fold.empty()) return;
  error_table_ = t.mapping->target.str();
  const bool plain_ok = t.upsert_only == 0;
  if (t.upsert_only > 0) --t.upsert_only;
  // When every row is a key new to the source with all its columns (a bulk load, new rows with large
  // values), the rows are copied straight into the target: no stage to write, read back and (for TOASTed
  // values) store twice. An existing key fails the COPY like the plain INSERT below (unique violation),
  // and the call is applied again with upserts.
  const bool direct =
      plain_ok && t.copy_into && std::all_of(t.fold.rows().begin(), t.fold.rows().end(), [](const auto& row) {
        return row.action == RowAction::Upsert && row.fresh && !row.has_absent;
      });
  if (direct) t.plain_used = true;
  if (!direct && t.stage_used) exec("TRUNCATE " + t.stage, "emptying the staging table");

  const StagedRows staged = copy_rows(index, direct, plain_ok);
  if (staged.binary) ++stats_.binary_copies;
  if (direct) {
    ++stats_.direct_copies;
    stats_.rows_written += t.fold.size();
    stats_.rows_inserted_as_new += staged.plain;
    t.fold.clear();
    return;
  }
  t.stage_used = true;
  apply_staged(t, staged);
  stats_.rows_written += t.fold.size();
  stats_.rows_inserted_as_new += staged.plain;
  t.fold.clear();
}

// COPYs the table's folded rows into the target (`direct`) or the stage, each staged row with its op: 'i', a
// key new to the source, inserted without ON CONFLICT (no arbiter probe, no speculative insertion) unless
// !plain_ok; 'u', upserted under the LSN guard; 'd', deleted under it. COPY streams: the rows go out in
// pieces of about kCopyPiece bytes while they are written, so the buffer stays small and no value is copied
// more than once on its way out.
PostgresSink::StagedRows PostgresSink::copy_rows(std::size_t index, bool direct, bool plain_ok) {
  TableState& t = *tables_[index];
  const char* const what = direct ? "copying new rows into the target" : "staging rows";
  StagedRows staged;
  staged.binary = t.binary;
  const bool binary = staged.binary;
  const std::string copy_sql =
      (direct ? "COPY " + t.target + " (" + t.row_columns() + ") FROM STDIN"
              : "COPY " + t.stage + " (" + t.row_columns() + ", _cdc_stage_op, _cdc_stage_mask) FROM STDIN") +
      (binary ? " (FORMAT binary)" : "");
  PgResult res{PQexec(conn_.get(), copy_sql.c_str())};
  if (!res || PQresultStatus(res.get()) != PGRES_COPY_IN) throw sink_error(conn_.get(), res.get(), what);

  copy_buffer_.clear();
  const bool tombstone = !t.tomb_col.empty();
  const std::size_t fields = t.fold.columns() + 1 + (tombstone ? 1 : 0) + (direct ? 0 : 2);
  if (binary) append_copy_binary_header(copy_buffer_);
  for (std::size_t r : t.fold.apply_order()) {
    const FoldedRow& row = t.fold.rows()[r];
    const int mask_id = mask_of(t.fold, row, t.mask_scratch, staged.masks);
    if (binary) {
      const std::size_t refused = append_binary_row(copy_buffer_, t.fold, t.col_types, tombstone, row, fields,
                                                    [&](std::string_view wide) {
                                                      put_copy_data(what);
                                                      put_copy_bytes(wide, what);
                                                    });
      if (refused != kNoColumn) refuse_copy(index, refused, row.lsn, what);
    } else {
      append_text_row(copy_buffer_, t.fold, tombstone, row, [&] { put_copy_data(what); });
    }
    copy_account_.set(copy_buffer_.capacity());
    if (direct) {
      if (!binary) copy_buffer_.push_back('\n');
      ++staged.plain;
      if (copy_buffer_.size() >= kCopyPiece) put_copy_data(what);
      continue;
    }
    const bool as_new = plain_ok && row.action == RowAction::Upsert && row.fresh && mask_id == 0;
    const char op = row.action == RowAction::Delete ? 'd' : as_new ? 'i' : 'u';
    if (binary) {
      append_copy_binary_char(copy_buffer_, op);
      append_copy_binary_int4(copy_buffer_, mask_id);
    } else {
      const char text[] = {'\t', op, '\t'};
      copy_buffer_.append(text, 3);
      copy_buffer_ += std::to_string(mask_id);
      copy_buffer_.push_back('\n');
    }
    staged.any_delete = staged.any_delete || row.action == RowAction::Delete;
    staged.any_upsert = staged.any_upsert || (row.action == RowAction::Upsert && !as_new);
    staged.plain += as_new ? 1 : 0;
    if (copy_buffer_.size() >= kCopyPiece) put_copy_data(what);
  }
  if (binary) append_copy_binary_trailer(copy_buffer_);
  if (!copy_buffer_.empty()) put_copy_data(what);
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) throw sink_error(conn_.get(), nullptr, what);
  res.reset(PQgetResult(conn_.get()));
  if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) throw sink_error(conn_.get(), res.get(), what);
  while (PgResult extra{PQgetResult(conn_.get())}) {
  }
  // A piece that grew past a wide row's size is not kept for the next batch.
  if (copy_buffer_.capacity() > 4 * kCopyPiece) std::string().swap(copy_buffer_);
  copy_account_.set(copy_buffer_.capacity());
  return staged;
}

void PostgresSink::put_copy_data(const char* what) {
  put_copy_bytes(copy_buffer_, what);
  copy_buffer_.clear();
}

void PostgresSink::put_copy_bytes(std::string_view bytes, const char* what) {
  // COPY data may be cut anywhere between CopyData messages.
  for (std::size_t at = 0; at < bytes.size(); at += kCopyPiece) {
    const std::string_view piece = bytes.substr(at, kCopyPiece);
    if (PQputCopyData(conn_.get(), piece.data(), static_cast<int>(piece.size())) != 1)
      throw sink_error(conn_.get(), nullptr, what);
  }
}

// A value its column's binary encoder refused: end the COPY with an error; the caller applies the call again
// with the table in text.
void PostgresSink::refuse_copy(std::size_t table, std::size_t column, Lsn lsn, const char* what) {
  copy_buffer_.clear();
  if (PQputCopyEnd(conn_.get(), "cdcsync: a value not in the form its binary encoder reads") != 1)
    throw sink_error(conn_.get(), nullptr, what);
  while (PgResult ended{PQgetResult(conn_.get())}) {
  }
  throw BinaryRefused{table, column, lsn};
}

// The staged rows into the target: deletes, plain inserts and upserts in one round trip, then one upsert per
// unchanged-TOAST mask, counting the rows it inserted without their TOAST values.
void PostgresSink::apply_staged(TableState& t, const StagedRows& staged) {
  std::string sql;
  if (staged.any_delete) {
    sql += "DELETE FROM " + t.target + " AS t USING " + t.stage + " AS s WHERE s._cdc_stage_op = 'd'";
    for (std::size_t k : t.key) sql += " AND t." + t.cols[k] + " = s." + t.cols[k];
    sql += " AND t." + t.lsn_col + " <= s." + t.lsn_col + "; ";
  }
  if (staged.plain > 0) {
    sql += "INSERT INTO " + t.target + " (" + t.row_columns() + ") OVERRIDING SYSTEM VALUE SELECT " +
           t.row_columns() + " FROM " + t.stage + " WHERE _cdc_stage_op = 'i'; ";
    t.plain_used = true;
  }
  if (staged.any_upsert) {
    sql += "INSERT INTO " + t.target + " AS t (" + t.row_columns() + ") OVERRIDING SYSTEM VALUE SELECT " +
           t.row_columns() + " FROM " + t.stage +
           " WHERE _cdc_stage_op = 'u' AND _cdc_stage_mask = 0 ORDER BY " + t.lsn_col + t.conflict_clause("");
  }
  exec(sql, "applying rows");
  for (const auto& [mask, id] : staged.masks) {
    std::string counted =
        "WITH w AS (INSERT INTO " + t.target + " AS t (" + t.row_columns() +
        ") OVERRIDING SYSTEM VALUE SELECT " + t.row_columns() + " FROM " + t.stage +
        " WHERE _cdc_stage_op = 'u' AND _cdc_stage_mask = " + std::to_string(id) + " ORDER BY " + t.lsn_col +
        t.conflict_clause(mask) + " RETURNING (t.xmax = 0) AS ins" +
        (t.tomb_col.empty() ? std::string(", false AS tomb") : ", t." + t.tomb_col + " AS tomb") +
        ") SELECT count(*) FILTER (WHERE ins AND NOT tomb) FROM w";
    auto r = exec(counted, "applying rows with unchanged TOAST columns");
    const std::uint64_t without_toast = std::stoull(PQgetvalue(r.get(), 0, 0));
    stats_.inserted_without_toast += without_toast;
    t.without_toast += without_toast;
  }
}

}  // namespace cdcsync
