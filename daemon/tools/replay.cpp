// Replay: archived transactions back into the order DB through the LSN guard, or a preview of what would
// change (see replay.h).
#include "daemon/tools/replay.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <deque>
#include <map>
#include <memory>
#include <sstream>

#include "daemon/core/runner.h"
#include "decoders/pg.h"
#include "sinks/archive_codec.h"
#include "sinks/fold.h"
#include "sinks/postgres_sink.h"

namespace cdcsync::replay {
namespace {

constexpr std::size_t kPage = 1000;
constexpr std::size_t kBatchChanges = 5000;
constexpr std::size_t kChunkChanges = 10000;

// Calls `f` for every entry from `start` to `end` (XRANGE bounds), a page at a time.
template <class F>
void walk(RedisArchive& a, std::string start, const std::string& end, F&& f) {
  for (;;) {
    const auto page = a.range(start, end, kPage);
    for (const auto& e : page) f(e);
    if (page.size() < kPage) return;
    start = "(" + page.back().id;
  }
}

std::string describe(const ArchiveEntry& e) {
  const std::string* lsn = e.field("lsn");
  return e.id + " (commit LSN " + (lsn ? *lsn : std::string("?")) + ")";
}

TransactionInfo info_of(const ArchiveEntry& e) {
  TransactionInfo info;
  const std::string* lsn = e.field("lsn");
  const auto parsed = lsn ? Lsn::parse(*lsn) : std::nullopt;
  if (!parsed) throw ArchiveFormatError(e.id, "field lsn is missing or not an LSN");
  info.final_lsn = *parsed;
  if (const std::string* x = e.field("xid")) info.xid = Xid{static_cast<std::uint32_t>(std::stoull(*x))};
  if (const std::string* ts = e.field("ts"))
    info.commit_time_us = std::stoll(*ts) * 1000 - kPgEpochUnixMicros;
  return info;
}

// The checks before anything is read for real: the archive exists, reaches back to `from`, and its chain
// over the range is intact. Returns the number of entries in the range.
std::uint64_t check_range(RedisArchive& a, const std::string& start, const std::string& end,
                          const Request& r) {
  const auto oldest = a.range("-", "+", 1);
  if (oldest.empty())
    throw ReplayError("the archive stream " + a.stream_key() + " is empty: nothing to replay");
  const auto oldest_id = parse_archive_entry_id(oldest[0].id);
  const std::string* oldest_prev = oldest[0].field("prev");
  const bool trimmed =
      oldest_id && (oldest_id->second != 0 || oldest_prev == nullptr || *oldest_prev != kArchiveGenesisHash);
  const auto from_id = parse_archive_entry_id(start);
  if (oldest_id && from_id && *oldest_id > *from_id) {
    if (trimmed) {
      throw ReplayError(
          "--from-lsn " + r.from.str() + " is older than the oldest entry the archive still holds, " +
          describe(oldest[0]) +
          ": older entries were trimmed (archive.stream_maxlen / archive.max_age_hours); replay "
          "from that LSN or later, or restore a newer dump");
    }
    if (r.note) r.note("the archive begins at " + describe(oldest[0]) + "; nothing older was ever archived");
  }
  const auto before = a.range_reverse("(" + start, "-", 1);
  ArchiveChainChecker checker(before.empty() ? std::nullopt
                                             : std::optional<std::string>(*before[0].field("hash")));
  walk(a, start, end, [&](const ArchiveEntry& e) {
    if (auto problem = checker.check(e)) {
      throw ReplayError("the archive chain is broken at entry " + describe(e) + ": " + *problem +
                        "; nothing was replayed (cdcsync audit verify-archive shows the details)");
    }
  });
  return checker.entries();
}

// ---- dry run ----

// The target table's column types by name, so values compare as the target's types (not as text spellings).
std::map<std::string, std::string> column_types(PGconn* target, const TableMapping& m) {
  PgResult types =
      pg_exec_params(target,
                     "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid "
                     "= $1::regclass AND attnum > 0 AND NOT attisdropped",
                     {m.target.quoted()}, "reading " + m.target.str());
  std::map<std::string, std::string> type_of;
  for (int r = 0; r < PQntuples(types.get()); ++r)
    type_of[PQgetvalue(types.get(), r, 0)] = PQgetvalue(types.get(), r, 1);
  return type_of;
}

// The target's guard LSN, tombstone, and per column its text and whether it equals the new value ($n).
std::string current_row_query(const TableMapping& m, std::map<std::string, std::string>& type_of) {
  const auto type = [&](const std::string& column) {
    return type_of.contains(column) ? type_of[column] : "text";
  };
  const bool soft = m.deletes == DeletePolicy::Soft;
  std::string sql = "SELECT t." + quote_ident(m.lsn_column) + "::text, " +
                    (soft ? "t." + quote_ident(m.tombstone_column) + "::text" : std::string("NULL"));
  for (std::size_t c = 0; c < m.columns.size(); ++c) {
    const std::string col = "t." + quote_ident(m.columns[c].target);
    sql += ", " + col + "::text, " + col + " IS NOT DISTINCT FROM $" + std::to_string(c + 1) +
           "::" + type(m.columns[c].target);
  }
  sql += " FROM " + m.target.quoted() + " AS t WHERE ";
  const auto key = m.key_indexes();
  for (std::size_t i = 0; i < key.size(); ++i) {
    sql += (i ? " AND t." : "t.") + quote_ident(m.columns[key[i]].target) + " = $" +
           std::to_string(key[i] + 1) + "::" + type(m.columns[key[i]].target);
  }
  return sql;
}

// What replaying one folded row would change in the target; nullopt when nothing visible changes.
std::optional<PreviewRow> preview_row(const TableMapping& m, const TableFold& fold, const FoldedRow& row,
                                      PGconn* target, const std::string& sql, const std::string& table) {
  std::vector<PgParam> values;
  for (std::size_t c = 0; c < m.columns.size(); ++c) {
    const auto& v = fold.value(row, c);
    values.push_back(v.state == ValueState::Value ? PgParam(std::string(fold.text(v))) : std::nullopt);
  }
  PgResult cur = pg_exec_params(target, sql, values, "reading " + table);
  const bool exists = PQntuples(cur.get()) > 0;
  PreviewRow pr;
  for (std::size_t k : m.key_indexes()) pr.key.emplace_back(m.columns[k].target, values[k].value_or(""));
  pr.archive_lsn = row.lsn;
  if (exists) {
    pr.target_lsn = Lsn::parse(PQgetvalue(cur.get(), 0, 0));
    if (pr.target_lsn && *pr.target_lsn > row.lsn) return std::nullopt;  // the guard keeps the newer row
  }
  const auto current = [&](std::size_t c) -> std::optional<std::string> {
    if (!exists || PQgetisnull(cur.get(), 0, static_cast<int>(2 + 2 * c))) return std::nullopt;
    return std::string(PQgetvalue(cur.get(), 0, static_cast<int>(2 + 2 * c)));
  };
  const bool soft = m.deletes == DeletePolicy::Soft;
  const bool current_tomb = exists && soft && std::string_view(PQgetvalue(cur.get(), 0, 1)) == "true";
  if (row.action == RowAction::Delete) {
    if (!exists) return std::nullopt;
    pr.action = "delete";
    for (std::size_t c = 0; c < m.columns.size(); ++c)
      pr.columns.emplace_back(m.columns[c].target, current(c), std::nullopt);
    return pr;
  }
  for (std::size_t c = 0; c < m.columns.size(); ++c) {
    if (fold.value(row, c).state == ValueState::Absent) continue;
    const bool same =
        exists && std::string_view(PQgetvalue(cur.get(), 0, static_cast<int>(3 + 2 * c))) == "t";
    if (!same) pr.columns.emplace_back(m.columns[c].target, current(c), values[c]);
  }
  if (row.tombstone && (!exists || !current_tomb)) {
    pr.action = exists ? "tombstone" : "insert tombstoned";
  } else if (!row.tombstone && current_tomb) {
    pr.action = "revive";
  } else if (!exists) {
    pr.action = "insert";
  } else if (!pr.columns.empty()) {
    pr.action = "update";
  } else {
    return std::nullopt;  // same values: nothing visible changes
  }
  return pr;
}

std::vector<PreviewTable> preview(const ArchiveReplayMapping& replay, std::map<std::size_t, TableFold>& folds,
                                  const std::map<std::size_t, std::vector<Lsn>>& truncates, PGconn* target) {
  std::vector<PreviewTable> out;
  const auto& tables = replay.mapping().tables();
  for (std::size_t ti = 0; ti < tables.size(); ++ti) {
    const TableMapping& m = tables[ti];
    const auto fit = folds.find(ti);
    const auto tit = truncates.find(ti);
    if ((fit == folds.end() || fit->second.empty()) && tit == truncates.end()) continue;
    PreviewTable pt;
    pt.table = m.target.str();
    if (tit != truncates.end()) pt.truncates = tit->second;
    if (fit != folds.end() && !fit->second.empty()) {
      const TableFold& fold = fit->second;
      auto type_of = column_types(target, m);
      const std::string sql = current_row_query(m, type_of);
      for (std::size_t r : fold.apply_order()) {
        if (auto row = preview_row(m, fold, fold.rows()[r], target, sql, pt.table))
          pt.rows.push_back(std::move(*row));
      }
    }
    out.push_back(std::move(pt));
  }
  return out;
}

// ---- the replay ----

class Replayer {
 public:
  Replayer(const config::Config& cfg, RedisArchive& archive, const Request& request)
      : cfg_(cfg),
        archive_(archive),
        request_(request),
        mapping_(mapping_from_config(cfg)),
        replay_mapping_(mapping_),
        binder_(replay_mapping_.mapping()) {}

  Result run() {
    const std::string start = archive_entry_id(request_.from, 0);
    const std::string end =
        request_.to ? std::to_string(request_.to->value()) + "-18446744073709551615" : std::string("+");
    result_.entries_in_range = check_range(archive_, start, end, request_);
    open_sinks();
    walk(archive_, start, end, [&](const ArchiveEntry& e) { take(e); });
    // An unfinished transaction at the head (the daemon stopped inside it) is not replayed; chunks of it
    // already sent are rolled back.
    result_.incomplete_head = cur_.has_value();
    if (result_.incomplete_head && cur_chunked_ && sink_) sink_->abort();
    flush();
    if (request_.dry_run) {
      result_.preview = preview(replay_mapping_, folds_, truncates_, target_.get());
      return result_;
    }
    if (main_sink_ && last_whole_) result_.progress = move_progress();
    result_.rows_written = sink_->stats().rows_written;
    if (last_whole_) result_.last_end_lsn = last_whole_->end_lsn;
    return result_;
  }

 private:
  void open_sinks() {
    // The pipeline's own sink, only to move its progress afterwards; its writer lock keeps the daemon away.
    if (!request_.dry_run && !request_.only) {
      main_sink_ = std::make_unique<PostgresSink>(mapping_, target_sink_options(cfg_));
      try {
        main_sink_->connect();
        main_progress_ = main_sink_->load_progress();
      } catch (const WriterLockHeld&) {
        main_sink_.reset();
        if (request_.note) {
          request_.note(
              "the daemon of pipeline " + cfg_.pipeline +
              " is running: rows are replayed through the guard, its progress row is left as it is");
        }
      }
    }
    if (request_.dry_run) {
      target_ = pg_connect(target_conninfo(cfg_), "the order database");
      return;
    }
    PostgresSinkOptions so = target_sink_options(cfg_);
    so.pipeline = cfg_.pipeline + ".replay";
    {
      // A fresh replay row: transactions at or below an earlier replay are applied again.
      PgConn c = pg_connect(so.conninfo, "the order database");
      pg_exec_params(c.get(),
                     "UPDATE " + so.progress_table.quoted() +
                         " SET end_lsn = '0/0', acked_lsn = '0/0' WHERE pipeline = $1",
                     {so.pipeline}, "resetting the replay row", PGRES_COMMAND_OK);
    }
    sink_ = std::make_unique<PostgresSink>(replay_mapping_.mapping(), so);
    sink_->connect();
  }

  // One archive entry: a change of the current transaction, maybe its end.
  void take(const ArchiveEntry& e) {
    const auto id = parse_archive_entry_id(e.id);
    if (!cur_ || Lsn{id->first} != cur_lsn_) {
      // The previous transaction had no end: only the head's last one can be like that (checked above).
      cur_.emplace();
      cur_->info = info_of(e);
      cur_lsn_ = Lsn{id->first};
      cur_chunked_ = false;
    }
    const std::string* row_json = e.field("row");
    const ArchivedChange row = decode_archived_change(row_json ? *row_json : std::string_view{}, e.id);
    if (row.op == ArchivedOp::Read) cur_->info.snapshot = true;
    if (request_.only && row.table != *request_.only) {
      ++result_.skipped_other_tables;
    } else if (auto change = replay_mapping_.to_change(row, e.id)) {
      change->lsn = cur_->info.final_lsn;
      if (request_.dry_run) {
        add_to_dry_run(std::move(*change), cur_->info.final_lsn);
      } else {
        cur_->changes.push_back(std::move(*change));
      }
      ++result_.changes;
    } else {
      ++result_.skipped_unmapped;
    }
    if (const std::string* endf = e.field("end")) {
      const auto end_lsn = Lsn::parse(*endf);
      if (!end_lsn) throw ArchiveFormatError(e.id, "field end is not an LSN");
      end_transaction(*end_lsn);
    } else if (!request_.dry_run && cur_->changes.size() >= kChunkChanges) {
      apply_chunk();
    }
  }

  void end_transaction(Lsn end_lsn) {
    cur_->info.end_lsn = end_lsn;
    cur_->last_chunk = true;
    batch_changes_ += cur_->changes.size();
    last_whole_ = cur_->info;
    batch_.transactions.push_back(std::move(*cur_));
    cur_.reset();
    ++result_.transactions;
    if (batch_changes_ >= kBatchChanges) flush();
  }

  // A huge transaction goes in chunks of one target transaction (the sink keeps it open).
  void apply_chunk() {
    flush();
    Transaction chunk = std::move(*cur_);
    chunk.last_chunk = false;
    chunk.first_chunk = !cur_chunked_;
    cur_.emplace();
    cur_->info = chunk.info;
    cur_->first_chunk = false;
    cur_chunked_ = true;
    Batch b;
    b.transactions.push_back(std::move(chunk));
    sink_->apply(b);
  }

  void flush() {
    if (batch_.empty()) return;
    if (sink_) sink_->apply(batch_);
    batch_.transactions.clear();
    batch_changes_ = 0;
  }

  // The fold refers to the changes' values instead of copying them: they stay alive for the whole preview.
  void add_to_dry_run(Change&& change, Lsn lsn) {
    const Change& c = kept_.emplace_back(std::move(change));
    if (c.op == ChangeOp::Truncate) {
      const auto idx = replay_mapping_.mapping().index_of({c.truncated[0]->schema, c.truncated[0]->name});
      if (idx) {
        truncates_[*idx].push_back(lsn);
        folds_.erase(*idx);
      }
      return;
    }
    const BoundTable* b = binder_.bind(c.relation, lsn);
    if (b == nullptr) return;
    auto [it, added] = folds_.try_emplace(b->table, TableFold(*b->mapping));
    it->second.add(*b, c, lsn);
  }

  // Moves the pipeline's progress to the last replayed transaction when the replay covered it; says what
  // happened to it.
  std::string move_progress() {
    const std::string pipeline = "progress of pipeline " + cfg_.pipeline;
    if (main_progress_ && main_progress_->end_lsn.valid() && request_.from <= main_progress_->end_lsn &&
        last_whole_->end_lsn > main_progress_->end_lsn) {
      Batch move;
      Transaction marker;
      marker.info = *last_whole_;
      move.transactions.push_back(std::move(marker));
      main_sink_->apply(move);
      return pipeline + " moved from " + main_progress_->end_lsn.str() + " to " + last_whole_->end_lsn.str();
    }
    if (main_progress_ && main_progress_->end_lsn.valid() && request_.from > main_progress_->end_lsn) {
      return pipeline + " left at " + main_progress_->end_lsn.str() +
             ": --from-lsn is after it, so transactions between them were not replayed";
    }
    return pipeline + " left as it is";
  }

  const config::Config& cfg_;
  RedisArchive& archive_;
  const Request& request_;
  const Mapping mapping_;
  const ArchiveReplayMapping replay_mapping_;
  RelationBinder binder_;
  Result result_;

  std::unique_ptr<PostgresSink> main_sink_;  // the pipeline's, to move its progress
  std::optional<Progress> main_progress_;
  std::unique_ptr<PostgresSink> sink_;  // the replay's own progress row
  PgConn target_;                       // dry run: read only

  Batch batch_;
  std::size_t batch_changes_ = 0;
  std::optional<Transaction> cur_;  // the transaction being read
  Lsn cur_lsn_;                     // its commit LSN, as the entry ids carry it
  bool cur_chunked_ = false;        // chunks of it were applied already
  std::optional<TransactionInfo> last_whole_;

  std::map<std::size_t, TableFold> folds_;
  std::map<std::size_t, std::vector<Lsn>> truncates_;
  std::deque<Change> kept_;
};

}  // namespace

std::string render_preview_json(const Result& result) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto opt = [&](const std::optional<std::string>& v) {
    if (v)
      w.String(*v);
    else
      w.Null();
  };
  w.StartObject();
  w.Key("dry_run");
  w.Bool(true);
  w.Key("transactions");
  w.Uint64(result.transactions);
  w.Key("entries");
  w.Uint64(result.changes);
  w.Key("tables");
  w.StartArray();
  for (const auto& t : result.preview) {
    w.StartObject();
    w.Key("table");
    w.String(t.table);
    w.Key("truncates");
    w.StartArray();
    for (const auto& l : t.truncates) w.String(l.str());
    w.EndArray();
    w.Key("rows");
    w.StartArray();
    for (const auto& r : t.rows) {
      w.StartObject();
      w.Key("action");
      w.String(r.action);
      w.Key("key");
      w.StartObject();
      for (const auto& [k, v] : r.key) {
        w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
        w.String(v);
      }
      w.EndObject();
      w.Key("archive_lsn");
      w.String(r.archive_lsn.str());
      w.Key("target_lsn");
      if (!r.target_lsn)
        w.Null();
      else
        w.String(r.target_lsn->str());
      w.Key("columns");
      w.StartArray();
      for (const auto& [name, cur, next] : r.columns) {
        w.StartObject();
        w.Key("column");
        w.String(name);
        w.Key("current");
        opt(cur);
        w.Key("new");
        opt(next);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

std::string render_preview_text(const Result& result) {
  const auto show = [](const std::optional<std::string>& v) {
    return v ? "\"" + *v + "\"" : std::string("NULL");
  };
  std::ostringstream out;
  std::size_t total = 0;
  for (const auto& t : result.preview) {
    out << t.table << ": " << t.rows.size() << " row(s) would change\n";
    for (const auto& l : t.truncates)
      out << "  truncate at " << l.str() << " (rows written before it are removed)\n";
    for (const auto& r : t.rows) {
      out << "  " << r.action;
      for (const auto& [k, v] : r.key) out << " " << k << "=" << v;
      out << " (archive " << r.archive_lsn.str() << ", target " << (r.target_lsn ? r.target_lsn->str() : "-")
          << ")\n";
      for (const auto& [name, cur, next] : r.columns) {
        out << "    " << name << ": " << show(cur) << " -> "
            << (r.action == "delete" ? "(deleted)" : show(next)) << "\n";
      }
    }
    total += t.rows.size();
  }
  out << "dry run: " << result.transactions << " transaction(s), " << result.changes
      << " archived change(s); " << total << " row(s) would change; nothing was written\n";
  return out.str();
}

std::string render_json(const Result& result) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto count = [&](const char* key, std::uint64_t value) {
    w.Key(key);
    w.Uint64(value);
  };
  w.StartObject();
  count("transactions", result.transactions);
  count("changes", result.changes);
  count("entries_in_range", result.entries_in_range);
  count("rows_written", result.rows_written);
  count("skipped_unmapped", result.skipped_unmapped);
  count("skipped_other_tables", result.skipped_other_tables);
  w.Key("incomplete_head_transaction");
  w.Bool(result.incomplete_head);
  w.Key("last_end_lsn");
  if (result.last_end_lsn) {
    w.String(result.last_end_lsn->str());
  } else {
    w.Null();
  }
  w.Key("progress");
  w.String(result.progress);
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

std::string render_text(const Result& result, Lsn from) {
  std::ostringstream out;
  out << "replay: " << result.transactions << " transaction(s), " << result.changes << " change(s) from "
      << from.str() << (result.last_end_lsn ? " to " + result.last_end_lsn->str() : std::string())
      << " re-applied through the guard (" << result.rows_written
      << " row(s) sent; rows already newer in the target were left alone)";
  if (result.skipped_unmapped)
    out << "; " << result.skipped_unmapped << " change(s) of tables no longer mapped skipped";
  if (result.skipped_other_tables)
    out << "; " << result.skipped_other_tables << " change(s) of other tables skipped (--table)";
  if (result.incomplete_head) out << "; the unfinished transaction at the head was not replayed";
  out << "\n";
  if (!result.progress.empty()) out << result.progress << "\n";
  return out.str();
}

std::optional<QualifiedName> table_named(const Mapping& mapping, std::string_view name) {
  std::optional<QualifiedName> only;
  for (const auto& t : mapping.tables()) {
    if (name == t.source.str() || name == t.target.str()) only = t.target;
  }
  return only;
}

Result run(const config::Config& config, RedisArchive& archive, const Request& request) {
  return Replayer{config, archive, request}.run();
}

}  // namespace cdcsync::replay
