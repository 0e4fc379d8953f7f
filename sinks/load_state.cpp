// The per-table load state beside the progress row: its DDL, reads and writes.
#include "sinks/load_state.h"

#include "decoders/type_catalog.h"

namespace cdcsync {
namespace {

// The column deferred_indexes as text (a text[] literal) or NULL, also from a state table created before the
// column existed (its rows have no such key).
const std::string kDeferred =
    "(CASE WHEN pg_catalog.jsonb_typeof(pg_catalog.to_jsonb(s) -> 'deferred_indexes') = 'array' THEN "
    "ARRAY(SELECT pg_catalog.jsonb_array_elements_text(pg_catalog.to_jsonb(s) -> 'deferred_indexes'))::text "
    "END)";

// A text[] literal of `items`.
std::string text_array(const std::vector<std::string>& items) {
  std::string list = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    list += i ? ",\"" : "\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') list += '\\';
      list += c;
    }
    list += '"';
  }
  list += "}";
  return list;
}

}  // namespace

std::string_view name_of(TablePhase p) {
  return p == TablePhase::Streaming ? "streaming" : "copying";
}

QualifiedName load_state_table(const QualifiedName& progress_table) {
  return QualifiedName{progress_table.schema, "cdc_table_state"};
}

std::string load_state_table_ddl(const QualifiedName& t) {
  return "-- Where each table's copy from the source stands (cdcsync's bulk loader; see "
         "sinks/load_state.h).\n"
         "CREATE TABLE IF NOT EXISTS " +
         t.quoted() +
         " (\n"
         "    pipeline      text        NOT NULL,\n"
         "    target_table  text        NOT NULL,\n"
         "    phase         text        NOT NULL CHECK (phase IN ('copying', 'streaming')),\n"
         "    snapshot_lsn  pg_lsn      NOT NULL,\n"
         "    started_empty boolean     NOT NULL,\n"
         "    rows          bigint,\n"
         "    deferred_indexes text[],\n"
         "    updated_at    timestamptz NOT NULL DEFAULT now(),\n"
         "    PRIMARY KEY (pipeline, target_table)\n"
         ");\n";
}

bool LoadStateStore::exists(PGconn* conn) const {
  auto res = pg_exec_params(conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", {table_.quoted()},
                            "looking for " + table_.str());
  return std::string_view(PQgetvalue(res.get(), 0, 0)) == "t";
}

TableLoadStates LoadStateStore::read(PGconn* conn) const {
  TableLoadStates out;
  if (!exists(conn)) return out;
  auto res = pg_exec_params(conn,
                            "SELECT target_table, phase, snapshot_lsn::text, started_empty, rows::text, " +
                                kDeferred + " FROM " + table_.quoted() + " AS s WHERE pipeline = $1",
                            {pipeline_}, "reading " + table_.str());
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    TableLoadState s;
    s.phase = std::string_view(PQgetvalue(res.get(), r, 1)) == "streaming" ? TablePhase::Streaming
                                                                           : TablePhase::Copying;
    s.snapshot_lsn = Lsn::parse(PQgetvalue(res.get(), r, 2)).value_or(Lsn{});
    s.started_empty = std::string_view(PQgetvalue(res.get(), r, 3)) == "t";
    if (!PQgetisnull(res.get(), r, 4)) s.rows = std::stoull(PQgetvalue(res.get(), r, 4));
    if (!PQgetisnull(res.get(), r, 5) &&
        !ArrayTextParser::strings(PQgetvalue(res.get(), r, 5), s.deferred_indexes))
      throw PgError{"XX000", table_.str() + ": deferred_indexes is not a text array"};
    out[PQgetvalue(res.get(), r, 0)] = s;
  }
  return out;
}

void LoadStateStore::write(PGconn* conn, const std::string& target_table, const TableLoadState& s) const {
  pg_exec_params(
      conn,
      "INSERT INTO " + table_.quoted() +
          " (pipeline, target_table, phase, snapshot_lsn, started_empty, rows) VALUES ($1, $2, $3, "
          "$4::pg_lsn, $5::boolean, $6::bigint) ON CONFLICT (pipeline, target_table) DO UPDATE SET "
          "phase = EXCLUDED.phase, snapshot_lsn = EXCLUDED.snapshot_lsn, started_empty = "
          "EXCLUDED.started_empty, rows = EXCLUDED.rows, updated_at = now()",
      {pipeline_, target_table, std::string(name_of(s.phase)), s.snapshot_lsn.str(),
       s.started_empty ? "true" : "false", s.rows ? PgParam{std::to_string(*s.rows)} : PgParam{}},
      "writing the load state of " + target_table, PGRES_COMMAND_OK);
}

void LoadStateStore::forget_others(PGconn* conn, const std::vector<std::string>& keep) const {
  pg_exec_params(conn,
                 "DELETE FROM " + table_.quoted() +
                     " AS s WHERE pipeline = $1 AND NOT target_table = ANY($2::text[]) " + "AND " +
                     kDeferred + " IS NULL",
                 {pipeline_, text_array(keep)}, "cleaning the load state", PGRES_COMMAND_OK);
}

void LoadStateStore::defer_indexes(PGconn* conn, const std::string& target_table,
                                   const std::vector<std::string>& statements) const {
  pg_exec_params(
      conn,
      "UPDATE " + table_.quoted() +
          " SET deferred_indexes = $3::text[], updated_at = now() WHERE pipeline = $1 AND target_table = $2",
      {pipeline_, target_table, text_array(statements)},
      "keeping the indexes of " + target_table + " to build after the copy in " + table_.str() +
          " (snapshot.rebuild_indexes; a state table created before has no column deferred_indexes: "
          "ALTER TABLE " +
          table_.quoted() + " ADD COLUMN deferred_indexes text[])",
      PGRES_COMMAND_OK);
}

void LoadStateStore::indexes_built(PGconn* conn, const std::string& target_table) const {
  pg_exec_params(
      conn,
      "UPDATE " + table_.quoted() +
          " SET deferred_indexes = NULL, updated_at = now() WHERE pipeline = $1 AND target_table = $2",
      {pipeline_, target_table}, "clearing the built indexes of " + target_table, PGRES_COMMAND_OK);
}

}  // namespace cdcsync
