// PgCatalogFacts: one query per relation for NOT NULL, defaults and the message key (see relation_facts.h).
#include "decoders/relation_facts.h"

#include <algorithm>
#include <charconv>
#include <thread>
#include <utility>

namespace cdcsync {
namespace {

// Per attribute: name, NOT NULL, the default expression as pg_get_expr prints it (what pgjdbc's getColumns
// returns as COLUMN_DEF), and the key's columns as an array (the same on every row).
//
// The key is Debezium's (PgOutputMessageDecoder.handleRelationMessage): readPrimaryKeyNames, which is
// pgjdbc's getPrimaryKeys (every indkey entry, in key order), and without a primary key
// readTableUniqueIndices: the first unique index in pgjdbc's getIndexInfo order (clustered, then hash, then
// the others; by index name) whose columns are all plain columns
// (PostgresConnection.isTableUniqueIndexIncluded excludes an index on an expression).
constexpr const char* kFactsSql =
    "WITH k AS ("
    " SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(attnum, n)"
    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum ORDER BY u.n) AS "
    "cols"
    " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
    " JOIN pg_catalog.pg_am am ON am.oid = c.relam"
    " WHERE i.indrelid = $1::oid AND (i.indisprimary OR (i.indisunique AND NOT 0 = ANY (i.indkey::int2[])))"
    " ORDER BY i.indisprimary DESC,"
    "  CASE WHEN i.indisclustered THEN 1 WHEN am.amname = 'hash' THEN 2 ELSE 3 END, c.relname COLLATE \"C\""
    " LIMIT 1), "
    "col AS ("
    " SELECT a.attnum, a.attname, a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS def"
    " FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d"
    "  ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    " WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped) "
    "SELECT col.attname, col.attnotnull, col.def, (SELECT cols FROM k), "
    "pg_catalog.pg_current_snapshot()::text "
    "FROM (SELECT 1) one LEFT JOIN col ON true ORDER BY col.attnum";

bool connection_lost(PGconn* conn, const PgError& e) {
  return conn == nullptr || PQstatus(conn) != CONNECTION_OK || e.sqlstate().starts_with("08") ||
         e.sqlstate().empty();
}

}  // namespace

bool transaction_visible(std::string_view snapshot, Xid xid) {
  auto field = [&](std::uint64_t& out) {
    const auto r = std::from_chars(snapshot.data(), snapshot.data() + snapshot.size(), out);
    if (r.ec != std::errc{}) return false;
    snapshot.remove_prefix(static_cast<std::size_t>(r.ptr - snapshot.data()));
    if (!snapshot.empty()) snapshot.remove_prefix(1);  // ':' or ','
    return true;
  };
  std::uint64_t xmin = 0;
  std::uint64_t xmax = 0;
  if (!field(xmin) || !field(xmax)) return true;  // not a snapshot: do not wait
  // The 64-bit id of `xid`: the one below xmax in xmax's epoch, or the epoch before.
  std::uint64_t full = (xmax & ~std::uint64_t{0xFFFFFFFF}) | xid.value;
  if (full >= xmax) {
    if (full < (std::uint64_t{1} << 32)) return false;
    full -= std::uint64_t{1} << 32;
  }
  while (!snapshot.empty()) {
    std::uint64_t in_progress = 0;
    if (!field(in_progress)) break;
    if (in_progress == full) return false;
  }
  return true;
}

PgCatalogFacts::PgCatalogFacts(std::string conninfo, TypeCatalog& catalog,
                               std::chrono::milliseconds visibility_wait)
    : conninfo_(std::move(conninfo)), catalog_(catalog), visibility_wait_(visibility_wait) {}

void PgCatalogFacts::connect() {
  conn_ = pg_connect(conninfo_, "the source (catalog)", {.after = {{"application_name", "cdcsync catalog"}}});
}

// Runs `query(conn)` on the connection, connecting first when there is none, and once more on a new
// connection when the first attempt lost it. Errors become CatalogError("<what>: <libpq's message>").
template <class Query>
auto PgCatalogFacts::with_connection(const std::string& what, Query&& query) {
  for (int attempt = 0;; ++attempt) {
    try {
      if (!conn_) connect();
      ++queries_;
      return query(conn_.get());
    } catch (const PgError& e) {
      const bool lost = connection_lost(conn_.get(), e);
      if (lost) conn_.reset();
      if (!lost || attempt > 0) throw CatalogError(what + ": " + e.what());
    }
  }
}

RelationFacts PgCatalogFacts::relation_facts(const RelationDef& relation, Xid xid) {
  const std::string oid = std::to_string(relation.id.value);
  const std::string what =
      "reading the catalog of table " + relation.qualified_name() + " (relation " + oid + ")";
  const auto deadline = std::chrono::steady_clock::now() + visibility_wait_;
  for (auto pause = std::chrono::milliseconds(1);;
       pause = std::min(pause * 2, std::chrono::milliseconds(100))) {
    RelationFacts facts;
    const bool visible = with_connection(what, [&](PGconn* conn) {
      PgResult res = pg_exec_params(conn, kFactsSql, {oid}, what);
      const int rows = PQntuples(res.get());
      for (int r = 0; r < rows; ++r) {
        if (PQgetisnull(res.get(), r, 0)) continue;  // the one row of a relation without columns
        facts.columns.push_back({.name = PQgetvalue(res.get(), r, 0),
                                 .not_null = PQgetvalue(res.get(), r, 1)[0] == 't',
                                 .default_expression = pg_value(res.get(), r, 2)});
      }
      if (rows > 0 && !PQgetisnull(res.get(), 0, 3)) {
        if (!ArrayTextParser::strings(PQgetvalue(res.get(), 0, 3), facts.key)) facts.key.clear();
      }
      return xid.value == 0 || rows == 0 || transaction_visible(PQgetvalue(res.get(), 0, 4), xid);
    });
    if (visible || std::chrono::steady_clock::now() >= deadline) return facts;
    std::this_thread::sleep_for(pause);
  }
}

bool PgCatalogFacts::reload_types() {
  return with_connection("reading the source's type catalog", [&](PGconn* conn) {
    catalog_.load(conn);
    return true;
  });
}

}  // namespace cdcsync
