// cdcsync replay --config FILE --from-lsn LSN [--to-lsn LSN] [--table T] [--dry-run] [--json]: re-applies
// archived changes (sinks/redis_archive_sink.h) to the order DB through the PostgresSink's LSN guard, so a
// row already newer in the target is left alone and replaying twice changes nothing.
//
// Which transactions: every archived one whose commit LSN is at or after --from-lsn (the progress LSN an
// order-DB dump holds: the transaction that ended there committed before it) and at or below --to-lsn. The
// chain over that range is checked before anything is written (a gap or an altered entry stops the replay).
//
// Progress: the replay writes through its own progress row ("<pipeline>.replay", reset first) so that
// transactions at or below the pipeline's progress are re-applied too, not skipped. Without --table, and when
// --from-lsn is at or below the pipeline's progress row, the pipeline's progress moves to the last replayed
// transaction afterwards: after an order DB restored from a dump, the daemon then starts again (instead of
// exiting 3, "target behind the checkpoint"). That needs the pipeline's writer lock, i.e. the daemon
// stopped; with the daemon running the rows are still replayed (the guard keeps them safe) but its progress
// is left as it is.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/tools/verify.h"
#include "decoders/pg.h"
#include "sinks/archive_codec.h"
#include "sinks/fold.h"
#include "sinks/postgres_sink.h"
#include "sinks/redis_archive_sink.h"

namespace cdcsync::commands {
namespace {

constexpr std::size_t kPage = 1000;
constexpr std::size_t kBatchChanges = 5000;
constexpr std::size_t kChunkChanges = 10000;

struct ReplayOptions {
  std::string config;
  std::string from;
  std::string to;
  std::string table;
  bool dry_run = false;
  bool json = false;
};

class ReplayError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::unique_ptr<RedisArchive> open_archive(const config::Config& cfg) {
  ArchiveConnectionOptions o;
  o.url = RedisUrl::parse(cfg.checkpoint.redis);
  if (cfg.checkpoint.password_file.configured())
    o.url.password = config::read_secret(cfg.checkpoint.password_file);
  o.pipeline = cfg.pipeline;
  return std::make_unique<RedisArchive>(std::move(o));
}

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
std::uint64_t check_range(RedisArchive& a, const std::string& start, const std::string& end, Lsn from) {
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
          "--from-lsn " + from.str() + " is older than the oldest entry the archive still holds, " +
          describe(oldest[0]) +
          ": older entries were trimmed (archive.stream_maxlen / archive.max_age_hours); replay "
          "from that LSN or later, or restore a newer dump");
    }
    std::cerr << "cdcsync: replay: note: the archive begins at " << describe(oldest[0])
              << "; nothing older was ever archived\n";
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

struct PreviewRow {
  std::string action;  // insert, update, delete, tombstone
  std::vector<std::pair<std::string, std::string>> key;
  std::vector<std::tuple<std::string, std::optional<std::string>, std::optional<std::string>>>
      columns;  // name,
                // current, new
  std::string target_lsn;
  std::string archive_lsn;
};

struct PreviewTable {
  std::string table;
  std::vector<std::string> truncates;  // LSNs
  std::vector<PreviewRow> rows;
};

std::vector<PreviewTable> preview(const ArchiveReplayMapping& replay, std::map<std::size_t, TableFold>& folds,
                                  const std::map<std::size_t, std::vector<std::string>>& truncates,
                                  PGconn* target) {
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
      TableFold& fold = fit->second;
      // Column types, so values compare as the target's types (not as text spellings).
      const std::string regclass = m.target.quoted();
      const char* p1[] = {regclass.c_str()};
      PgResult types{
          PQexecParams(target,
                       "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid "
                       "= $1::regclass AND attnum > 0 AND NOT attisdropped",
                       1, nullptr, p1, nullptr, nullptr, 0)};
      if (PQresultStatus(types.get()) != PGRES_TUPLES_OK)
        throw pg_error(target, types.get(), "reading " + pt.table);
      std::map<std::string, std::string> type_of;
      for (int r = 0; r < PQntuples(types.get()); ++r)
        type_of[PQgetvalue(types.get(), r, 0)] = PQgetvalue(types.get(), r, 1);
      const bool soft = m.deletes == DeletePolicy::Soft;
      std::string sql = "SELECT t." + quote_ident(m.lsn_column) + "::text, " +
                        (soft ? "t." + quote_ident(m.tombstone_column) + "::text" : std::string("NULL"));
      for (std::size_t c = 0; c < m.columns.size(); ++c) {
        const std::string col = "t." + quote_ident(m.columns[c].target);
        const std::string type =
            type_of.contains(m.columns[c].target) ? type_of[m.columns[c].target] : "text";
        sql +=
            ", " + col + "::text, " + col + " IS NOT DISTINCT FROM $" + std::to_string(c + 1) + "::" + type;
      }
      sql += " FROM " + m.target.quoted() + " AS t WHERE ";
      const auto key = m.key_indexes();
      for (std::size_t i = 0; i < key.size(); ++i) {
        const std::string type =
            type_of.contains(m.columns[key[i]].target) ? type_of[m.columns[key[i]].target] : "text";
        sql += (i ? " AND t." : "t.") + quote_ident(m.columns[key[i]].target) + " = $" +
               std::to_string(key[i] + 1) + "::" + type;
      }
      for (std::size_t r : fold.apply_order()) {
        const FoldedRow& row = fold.rows()[r];
        std::vector<std::optional<std::string>> values;
        for (std::size_t c = 0; c < m.columns.size(); ++c) {
          const auto& v = fold.value(row, c);
          values.push_back(v.state == ValueState::Value ? std::optional<std::string>(fold.text(v))
                                                        : std::nullopt);
        }
        std::vector<const char*> params;
        for (const auto& v : values) params.push_back(v ? v->c_str() : nullptr);
        PgResult cur{PQexecParams(target, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                  params.data(), nullptr, nullptr, 0)};
        if (PQresultStatus(cur.get()) != PGRES_TUPLES_OK)
          throw pg_error(target, cur.get(), "reading " + pt.table);
        const bool exists = PQntuples(cur.get()) > 0;
        PreviewRow pr;
        for (std::size_t k : key) pr.key.emplace_back(m.columns[k].target, values[k].value_or(""));
        pr.archive_lsn = row.lsn.str();
        if (exists) {
          pr.target_lsn = PQgetvalue(cur.get(), 0, 0);
          const auto target_lsn = Lsn::parse(pr.target_lsn);
          if (target_lsn && *target_lsn > row.lsn) continue;  // the guard keeps the newer row
        }
        const auto current = [&](std::size_t c) -> std::optional<std::string> {
          if (!exists || PQgetisnull(cur.get(), 0, static_cast<int>(2 + 2 * c))) return std::nullopt;
          return std::string(PQgetvalue(cur.get(), 0, static_cast<int>(2 + 2 * c)));
        };
        const bool current_tomb = exists && soft && std::string_view(PQgetvalue(cur.get(), 0, 1)) == "true";
        if (row.action == RowAction::Delete) {
          if (!exists) continue;
          pr.action = "delete";
          for (std::size_t c = 0; c < m.columns.size(); ++c)
            pr.columns.emplace_back(m.columns[c].target, current(c), std::nullopt);
        } else {
          for (std::size_t c = 0; c < m.columns.size(); ++c) {
            const auto& v = fold.value(row, c);
            if (v.state == ValueState::Absent) continue;
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
            continue;  // same values: nothing visible changes
          }
        }
        pt.rows.push_back(std::move(pr));
      }
    }
    out.push_back(std::move(pt));
  }
  return out;
}

void print_preview(const std::vector<PreviewTable>& tables, std::uint64_t txns, std::uint64_t entries,
                   bool json) {
  if (json) {
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
    w.Uint64(txns);
    w.Key("entries");
    w.Uint64(entries);
    w.Key("tables");
    w.StartArray();
    for (const auto& t : tables) {
      w.StartObject();
      w.Key("table");
      w.String(t.table);
      w.Key("truncates");
      w.StartArray();
      for (const auto& l : t.truncates) w.String(l);
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
        w.String(r.archive_lsn);
        w.Key("target_lsn");
        if (r.target_lsn.empty())
          w.Null();
        else
          w.String(r.target_lsn);
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
    std::cout << buf.GetString() << "\n";
    return;
  }
  const auto show = [](const std::optional<std::string>& v) {
    return v ? "\"" + *v + "\"" : std::string("NULL");
  };
  std::size_t total = 0;
  for (const auto& t : tables) {
    std::cout << t.table << ": " << t.rows.size() << " row(s) would change\n";
    for (const auto& l : t.truncates)
      std::cout << "  truncate at " << l << " (rows written before it are removed)\n";
    for (const auto& r : t.rows) {
      std::cout << "  " << r.action;
      for (const auto& [k, v] : r.key) std::cout << " " << k << "=" << v;
      std::cout << " (archive " << r.archive_lsn << ", target " << (r.target_lsn.empty() ? "-" : r.target_lsn)
                << ")\n";
      for (const auto& [name, cur, next] : r.columns) {
        std::cout << "    " << name << ": " << show(cur) << " -> "
                  << (r.action == "delete" ? "(deleted)" : show(next)) << "\n";
      }
    }
    total += t.rows.size();
  }
  std::cout << "dry run: " << txns << " transaction(s), " << entries << " archived change(s); " << total
            << " row(s) would change; nothing was written\n";
}

int replay(const ReplayOptions& o) {
  const config::Config cfg = config::load_config(o.config);
  if (!cfg.archive.enabled) {
    std::cerr << "cdcsync: replay: the event archive is disabled in " << o.config
              << " (archive.enabled = false): there is nothing to replay from\n";
    return exit_code::kError;
  }
  const auto from = Lsn::parse(o.from);
  if (!from) {
    std::cerr << "cdcsync: replay: --from-lsn " << o.from << ": not an LSN like 16/B374D848\n";
    return exit_code::kUsage;
  }
  std::optional<Lsn> to;
  if (!o.to.empty()) {
    to = Lsn::parse(o.to);
    if (!to || *to < *from) {
      std::cerr << "cdcsync: replay: --to-lsn " << o.to << ": not an LSN at or after --from-lsn\n";
      return exit_code::kUsage;
    }
  }
  const Mapping mapping = mapping_from_config(cfg);
  const ArchiveReplayMapping replay_mapping(mapping);
  std::optional<QualifiedName> only;
  if (!o.table.empty()) {
    for (const auto& t : mapping.tables()) {
      if (o.table == t.source.str() || o.table == t.target.str()) only = t.target;
    }
    if (!only) {
      std::cerr << "cdcsync: replay: --table " << o.table << ": not a mapped source or target table of "
                << o.config << "\n";
      return exit_code::kUsage;
    }
  }

  auto archive = open_archive(cfg);
  const std::string start = archive_entry_id(*from, 0);
  const std::string end = to ? std::to_string(to->value()) + "-18446744073709551615" : std::string("+");
  const std::uint64_t in_range = check_range(*archive, start, end, *from);

  // The pipeline's own sink, only to move its progress afterwards; its writer lock keeps the daemon away.
  std::unique_ptr<PostgresSink> main_sink;
  std::optional<Progress> main_progress;
  if (!o.dry_run && !only) {
    PostgresSinkOptions so = target_sink_options(cfg);
    main_sink = std::make_unique<PostgresSink>(mapping, so);
    try {
      main_sink->connect();
      main_progress = main_sink->load_progress();
    } catch (const WriterLockHeld&) {
      main_sink.reset();
      std::cerr << "cdcsync: replay: note: the daemon of pipeline " << cfg.pipeline
                << " is running: rows are replayed through the guard, its progress row is left as it is\n";
    }
  }

  std::unique_ptr<PostgresSink> sink;
  PgConn target;
  if (o.dry_run) {
    target = pg_connect(target_conninfo(cfg), "the order database");
  } else {
    PostgresSinkOptions so = target_sink_options(cfg);
    so.pipeline = cfg.pipeline + ".replay";
    {
      // A fresh replay row: transactions at or below an earlier replay are applied again.
      PgConn c = pg_connect(so.conninfo, "the order database");
      const char* params[] = {so.pipeline.c_str()};
      PgResult r{PQexecParams(c.get(),
                              ("UPDATE " + so.progress_table.quoted() +
                               " SET end_lsn = '0/0', acked_lsn = '0/0' WHERE pipeline = $1")
                                  .c_str(),
                              1, nullptr, params, nullptr, nullptr, 0)};
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
        throw pg_error(c.get(), r.get(), "resetting the replay row");
    }
    sink = std::make_unique<PostgresSink>(replay_mapping.mapping(), so);
    sink->connect();
  }

  RelationBinder binder(replay_mapping.mapping());
  std::map<std::size_t, TableFold> folds;
  std::map<std::size_t, std::vector<std::string>> truncates;

  std::uint64_t txns = 0, changes = 0, skipped_unmapped = 0, filtered = 0;
  Batch batch;
  std::size_t batch_changes = 0;
  std::optional<Transaction> cur;
  std::optional<TransactionInfo> last_whole;
  std::uint64_t cur_lsn = 0;
  bool cur_chunked = false;

  const auto flush = [&] {
    if (batch.empty()) return;
    if (sink) sink->apply(batch);
    batch.transactions.clear();
    batch_changes = 0;
  };
  // The fold refers to the changes' values instead of copying them: they stay alive for the whole preview.
  std::deque<Change> kept;
  const auto add_to_dry_run = [&](Change&& change, Lsn lsn) {
    const Change& c = kept.emplace_back(std::move(change));
    if (c.op == ChangeOp::Truncate) {
      const auto idx = replay_mapping.mapping().index_of({c.truncated[0]->schema, c.truncated[0]->name});
      if (idx) {
        truncates[*idx].push_back(lsn.str());
        folds.erase(*idx);
      }
      return;
    }
    const BoundTable* b = binder.bind(c.relation, lsn);
    if (b == nullptr) return;
    auto [it, added] = folds.try_emplace(b->table, TableFold(*b->mapping));
    it->second.add(*b, c, lsn);
  };

  walk(*archive, start, end, [&](const ArchiveEntry& e) {
    const auto id = parse_archive_entry_id(e.id);
    if (!cur || id->first != cur_lsn) {
      // The previous transaction had no end: only the head's last one can be like that (checked above).
      cur.emplace();
      cur->info = info_of(e);
      cur_lsn = id->first;
      cur_chunked = false;
    }
    const std::string* row_json = e.field("row");
    const ArchivedChange row = decode_archived_change(row_json ? *row_json : std::string_view{}, e.id);
    if (row.op == ArchivedOp::Read) cur->info.snapshot = true;
    if (only && row.table != *only) {
      ++filtered;
    } else if (auto change = replay_mapping.to_change(row, e.id)) {
      change->lsn = cur->info.final_lsn;
      if (o.dry_run) {
        add_to_dry_run(std::move(*change), cur->info.final_lsn);
      } else {
        cur->changes.push_back(std::move(*change));
      }
      ++changes;
    } else {
      ++skipped_unmapped;
    }
    if (const std::string* endf = e.field("end")) {
      const auto end_lsn = Lsn::parse(*endf);
      if (!end_lsn) throw ArchiveFormatError(e.id, "field end is not an LSN");
      cur->info.end_lsn = *end_lsn;
      cur->last_chunk = true;
      batch_changes += cur->changes.size();
      last_whole = cur->info;
      batch.transactions.push_back(std::move(*cur));
      cur.reset();
      ++txns;
      if (batch_changes >= kBatchChanges) flush();
    } else if (!o.dry_run && cur->changes.size() >= kChunkChanges) {
      // A huge transaction goes in chunks of one target transaction (the sink keeps it open).
      flush();
      Transaction chunk = std::move(*cur);
      chunk.last_chunk = false;
      chunk.first_chunk = !cur_chunked;
      cur.emplace();
      cur->info = chunk.info;
      cur->first_chunk = false;
      cur_chunked = true;
      Batch b;
      b.transactions.push_back(std::move(chunk));
      sink->apply(b);
    }
  });
  // An unfinished transaction at the head (the daemon stopped inside it) is not replayed; chunks of it
  // already sent are rolled back.
  const bool incomplete_head = cur.has_value();
  if (incomplete_head && cur_chunked && sink) sink->abort();
  flush();

  if (o.dry_run) {
    print_preview(preview(replay_mapping, folds, truncates, target.get()), txns, changes, o.json);
    return exit_code::kOk;
  }

  std::string progress_note;
  if (main_sink && last_whole) {
    if (main_progress && main_progress->end_lsn.valid() && *from <= main_progress->end_lsn &&
        last_whole->end_lsn > main_progress->end_lsn) {
      Batch move;
      Transaction marker;
      marker.info = *last_whole;
      move.transactions.push_back(std::move(marker));
      main_sink->apply(move);
      progress_note = "progress of pipeline " + cfg.pipeline + " moved from " + main_progress->end_lsn.str() +
                      " to " + last_whole->end_lsn.str();
    } else if (main_progress && main_progress->end_lsn.valid() && *from > main_progress->end_lsn) {
      progress_note = "progress of pipeline " + cfg.pipeline + " left at " + main_progress->end_lsn.str() +
                      ": --from-lsn is after it, so transactions between them were not replayed";
    } else {
      progress_note = "progress of pipeline " + cfg.pipeline + " left as it is";
    }
  }
  const PostgresSinkStats& st = sink->stats();
  if (o.json) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("transactions");
    w.Uint64(txns);
    w.Key("changes");
    w.Uint64(changes);
    w.Key("entries_in_range");
    w.Uint64(in_range);
    w.Key("rows_written");
    w.Uint64(st.rows_written);
    w.Key("skipped_unmapped");
    w.Uint64(skipped_unmapped);
    w.Key("skipped_other_tables");
    w.Uint64(filtered);
    w.Key("incomplete_head_transaction");
    w.Bool(incomplete_head);
    w.Key("last_end_lsn");
    if (last_whole)
      w.String(last_whole->end_lsn.str());
    else
      w.Null();
    w.Key("progress");
    w.String(progress_note);
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  } else {
    std::cout << "replay: " << txns << " transaction(s), " << changes << " change(s) from " << from->str()
              << (last_whole ? " to " + last_whole->end_lsn.str() : std::string())
              << " re-applied through the guard (" << st.rows_written
              << " row(s) sent; rows already newer in the target were left alone)";
    if (skipped_unmapped)
      std::cout << "; " << skipped_unmapped << " change(s) of tables no longer mapped skipped";
    if (filtered) std::cout << "; " << filtered << " change(s) of other tables skipped (--table)";
    if (incomplete_head) std::cout << "; the unfinished transaction at the head was not replayed";
    std::cout << "\n";
    if (!progress_note.empty()) std::cout << progress_note << "\n";
  }
  return exit_code::kOk;
}

}  // namespace

void add_replay(CLI::App& app, Registry& registry) {
  auto* cmd = app.add_subcommand(
      "replay",
      "Re-apply archived changes (the Redis stream cdcsync:{pipeline}:archive, archive.enabled) to the order "
      "DB "
      "through the LSN guard: rows already newer in the target are left alone, replaying twice changes "
      "nothing. "
      "After an order DB restored from a dump, replay --from-lsn <the dump's progress LSN> with the daemon "
      "stopped: the pipeline's progress then moves to the last replayed transaction and the daemon starts "
      "again. "
      "The hash chain over the range is checked first. Exit 0 done, 1 archive disabled/empty/trimmed/broken, "
      "2 "
      "usage");
  auto o = std::make_shared<ReplayOptions>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_option(
         "--from-lsn", o->from,
         "Replay transactions committed at or after this LSN (e.g. the end_lsn of ref.cdc_progress in a "
         "restored dump)")
      ->required();
  cmd->add_option("--to-lsn", o->to, "Replay transactions committed at or before this LSN (default: all)");
  cmd->add_option(
      "--table", o->table,
      "Only this mapped table (source or target name, schema.table); the progress row is not moved");
  cmd->add_flag("--dry-run", o->dry_run,
                "Print, per target table, each row the replay would change with its current value in the "
                "target and the new one; write nothing");
  cmd->add_flag("--json", o->json, "Print a JSON report instead of text");
  registry.add(cmd, [o](const std::atomic<bool>&) {
    try {
      return replay(*o);
    } catch (const ReplayError& e) {
      std::cerr << "cdcsync: replay: " << e.what() << "\n";
      return exit_code::kError;
    } catch (const ArchiveFormatError& e) {
      std::cerr << "cdcsync: replay: " << e.what() << "\n";
      return exit_code::kError;
    }
  });
}

}  // namespace cdcsync::commands
