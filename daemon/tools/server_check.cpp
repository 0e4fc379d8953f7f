// Server checks: the source's and the target's live state against the config, told through a Listener.
#include "daemon/tools/server_check.h"

#include "daemon/core/runner.h"
#include "daemon/tools/source_check.h"
#include "decoders/pg.h"
#include "sinks/load_state.h"
#include "sinks/postgres_sink.h"

namespace cdcsync::check {
namespace {

// How large values will be compressed: the session's default_toast_compression.
void check_toast_compression(PGconn* target, const config::Config& cfg, const Listener& l) {
  PgResult toast{PQexec(target, kToastCompressionSettingsQuery)};
  if (!toast || PQresultStatus(toast.get()) != PGRES_TUPLES_OK || PQntuples(toast.get()) != 1) return;
  const auto choice = choose_toast_compression(cfg.target.toast_compression, PQgetvalue(toast.get(), 0, 0),
                                               PQgetvalue(toast.get(), 0, 1),
                                               std::string_view(PQgetvalue(toast.get(), 0, 2)) == "t");
  if (choice.lz4_missing) {
    l.problem("target.toast_compression", "\"lz4\", but the order server was built without lz4",
              "set it to \"auto\" (lz4 where the server has it) or \"pglz\"");
  }
  l.note("large values compressed with " + choice.method + " (target.toast_compression = \"" +
         std::string(config::name_of(cfg.target.toast_compression)) + "\")");
}

// Whether a commit waits for the WAL flush (what the pipeline confirms must be on disk).
void check_durability(PGconn* target, const Listener& l) {
  PgResult durability{PQexec(target,
                             "SELECT pg_catalog.current_setting('synchronous_commit'), "
                             "pg_catalog.current_setting('fsync')")};
  if (!durability || PQresultStatus(durability.get()) != PGRES_TUPLES_OK || PQntuples(durability.get()) != 1)
    return;
  const std::string setting = PQgetvalue(durability.get(), 0, 0);
  const std::string session = session_synchronous_commit(setting);
  std::string line = "commits wait for the WAL flush (synchronous_commit = " + session;
  if (session != setting) line += "; the role or database has " + setting;
  l.note(line + ")");
  if (std::string_view(PQgetvalue(durability.get(), 0, 1)) == "off") {
    l.note("note: fsync = off on the order server: a crash of its host can lose what cdcsync confirmed");
  }
}

// How each table's rows will be copied (the set-based apply; sinks/copy_binary.h).
void check_copy_formats(PGconn* target, const config::Config& cfg, const Mapping& mapping,
                        const Listener& l) {
  for (const auto& t : mapping.tables()) {
    const std::string rows = t.target.str() + ": rows copied ";
    if (cfg.target.copy_format == CopyFormat::Text) {
      l.note(rows + "as text (target.copy_format = \"text\")");
      continue;
    }
    PgResult columns;
    try {
      columns =
          pg_exec_params(target, kTargetColumnTypesQuery, {t.target.quoted()}, "reading " + t.target.str());
    } catch (const PgError&) {
      l.note(rows + "as text (the table cannot be read)");
      continue;
    }
    const CopyPlan plan = plan_copy(t, read_target_column_types(columns.get()));
    l.note(rows +
           (plan.binary() ? std::string("in COPY's binary format") : "as text (" + plan.text_because + ")"));
  }
}

// snapshot.rebuild_indexes: the target role owns each mapped table (to drop and build its indexes), and the
// load state has the column that keeps them meanwhile.
void check_rebuild_indexes(PGconn* target, const config::Config& cfg, const Mapping& mapping,
                           const Listener& l) {
  if (!cfg.snapshot.rebuild_indexes) return;
  const QualifiedName state =
      load_state_table(QualifiedName{cfg.target.progress_table.schema, cfg.target.progress_table.name});
  try {
    auto r =
        pg_exec_params(target,
                       "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = "
                       "pg_catalog.to_regclass($1) AND attname = 'deferred_indexes' AND NOT attisdropped)",
                       {state.quoted()}, "reading the columns of " + state.str());
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
      l.problem(
          "snapshot.rebuild_indexes",
          "true, but " + state.str() + " has no column deferred_indexes to keep the dropped indexes in",
          "ALTER TABLE " + state.quoted() + " ADD COLUMN deferred_indexes text[]; (cdcsync target-ddl)");
    }
  } catch (const PgError&) {
  }
  for (const auto& t : mapping.tables()) {
    PgResult r;
    try {
      r = pg_exec_params(target,
                         "SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
                         "WHERE c.oid = $1::regclass",
                         {t.target.quoted()}, "reading the owner of " + t.target.str());
    } catch (const PgError&) {
      continue;  // a missing table is reported by the target's own checks
    }
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) == "t") {
      l.note(t.target.str() +
             ": owned by the target role for snapshot.rebuild_indexes = true, more than the least privilege "
             "(cdcsync audit reports it); the initial snapshot builds its indexes after the data");
    } else {
      l.problem(
          "snapshot.rebuild_indexes",
          "true, but the role does not own " + t.target.str() +
              " (an opt-in beyond the least privilege): the initial snapshot copies it with its indexes",
          "ALTER TABLE " + t.target.quoted() +
              " OWNER TO <the target role>; or set snapshot.rebuild_indexes = false");
    }
  }
}

// How the initial snapshot, resync and verify --repair copy (daemon/core/bulk_load.h), and whether
// snapshot.truncate has the privilege it asks for beyond the least-privilege role.
void check_snapshot(PGconn* target, const config::Config& cfg, const Mapping& mapping, const Listener& l) {
  l.note("copies (initial snapshot, resync, verify --repair) run " + std::to_string(cfg.snapshot.parallel) +
         " session(s) at once (snapshot.parallel), each with a source and a target connection");
  check_rebuild_indexes(target, cfg, mapping, l);
  if (!cfg.snapshot.truncate) {
    l.note(
        "snapshot.truncate = false: the least-privilege role suffices (a half-copied table is emptied with "
        "DELETE; no COPY FREEZE)");
    return;
  }
  for (const auto& t : mapping.tables()) {
    PgResult r;
    try {
      r = pg_exec_params(target, "SELECT pg_catalog.has_table_privilege($1, 'TRUNCATE')", {t.target.quoted()},
                         "checking TRUNCATE on " + t.target.str());
    } catch (const PgError&) {
      continue;  // a missing table is reported by the target's own checks
    }
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) == "t") {
      l.note(t.target.str() +
             ": TRUNCATE granted for snapshot.truncate = true, more than the least privilege "
             "(cdcsync audit reports it)");
    } else {
      l.problem("snapshot.truncate",
                "true, but the role lacks TRUNCATE on " + t.target.str() +
                    " (an opt-in beyond the least privilege)",
                "GRANT TRUNCATE ON " + t.target.quoted() +
                    " TO <the target role>; or set snapshot.truncate = false");
    }
  }
}

}  // namespace

void check_source_server(const config::Config& cfg, const Mapping& mapping, SourceTypes& types,
                         const Listener& l) {
  try {
    PgConn source = pg_connect(source_conninfo(cfg), "the source");
    for (const auto& p : check_source(source.get(), mapping, cfg.source.publication, cfg.source.slot,
                                      cfg.source.create_slot)) {
      l.problem(p.subject, p.problem, p.fix);
    }
    for (const auto& t : mapping.tables()) {
      try {
        types[t.source] = read_source_types(source.get(), t.source);
      } catch (const std::exception&) {
        // reported above as a missing table
      }
    }
    l.note("checked");
  } catch (const std::exception& e) {
    l.problem("connection", e.what(), "check source.conninfo and the password file");
  }
}

void check_target_server(const config::Config& cfg, const Mapping& mapping, const SourceTypes& types,
                         const Listener& l) {
  try {
    PgConn target = pg_connect(target_conninfo(cfg), "the target");
    const QualifiedName progress{cfg.target.progress_table.schema, cfg.target.progress_table.name};
    for (const auto& p : check_target(target.get(), mapping, progress, types.empty() ? nullptr : &types)) {
      l.problem(p.table, p.problem, p.fix);
    }
    check_toast_compression(target.get(), cfg, l);
    check_durability(target.get(), l);
    check_copy_formats(target.get(), cfg, mapping, l);
    check_snapshot(target.get(), cfg, mapping, l);
    l.note("checked");
  } catch (const std::exception& e) {
    l.problem("connection", e.what(), "check target.conninfo and the password file");
  }
}

std::string target_ddl_for(const config::Config& cfg) {
  const Mapping mapping = mapping_from_config(cfg);
  PgConn source = pg_connect(source_conninfo(cfg), "the source");
  SourceTypes types;
  for (const auto& t : mapping.tables()) types[t.source] = read_source_types(source.get(), t.source);
  return target_ddl(mapping, types,
                    QualifiedName{cfg.target.progress_table.schema, cfg.target.progress_table.name});
}

}  // namespace cdcsync::check
