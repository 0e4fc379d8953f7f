// `cdcsync check`, source side: what the customer DB must offer a pipeline, asked of the live server.
#include "daemon/tools/source_check.h"

#include <algorithm>
#include <set>

#include "sinks/target_ddl.h"

namespace cdcsync {
namespace {

// Parses a text[] value of simple identifiers as PostgreSQL prints it: {a,b,"c d"}.
std::set<std::string> parse_name_array(std::string_view text) {
  std::set<std::string> out;
  if (text.size() < 2) return out;
  text = text.substr(1, text.size() - 2);
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '\\' && i + 1 < text.size())
        cur.push_back(text[++i]);
      else if (c == '"')
        quoted = false;
      else
        cur.push_back(c);
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.insert(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty() || !text.empty()) out.insert(cur);
  return out;
}

void add_problem(std::vector<SourceProblem>& problems, std::string subject, std::string problem,
                 std::string fix) {
  problems.push_back({std::move(subject), std::move(problem), std::move(fix)});
}

// The key must be what the server sends as the old key of updates and deletes.
void check_replica_identity(PGconn* source, const TableMapping& t, const std::string& oid, char identity,
                            std::vector<SourceProblem>& problems) {
  const std::string name = t.source.str();
  const auto add = [&](std::string subject, std::string problem, std::string fix) {
    add_problem(problems, std::move(subject), std::move(problem), std::move(fix));
  };
  std::set<std::string> identity_columns;
  if (identity == 'n') {
    add(name, "has REPLICA IDENTITY NOTHING: updates and deletes cannot be replicated",
        "ALTER TABLE " + t.source.quoted() + " REPLICA IDENTITY DEFAULT (with a primary key)");
  } else if (identity != 'f') {
    auto idx = pg_exec_params(
        source,
        "SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON "
        "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::oid AND " +
            std::string(identity == 'i' ? "i.indisreplident" : "i.indisprimary"),
        {oid}, "reading the replica identity");
    for (int r = 0; r < PQntuples(idx.get()); ++r) identity_columns.insert(PQgetvalue(idx.get(), r, 0));
    if (identity_columns.empty()) {
      add(name, "has no primary key for REPLICA IDENTITY DEFAULT: updates and deletes carry no key",
          "add a primary key, or ALTER TABLE " + t.source.quoted() + " REPLICA IDENTITY FULL");
    }
    for (const auto& k : t.key) {
      if (!identity_columns.empty() && !identity_columns.contains(k)) {
        add(name, "key column " + k + " is not part of the replica identity",
            "make the key the primary key (or a REPLICA IDENTITY USING INDEX), or use REPLICA IDENTITY "
            "FULL");
      }
    }
  }
}

}  // namespace

std::vector<SourceProblem> check_source(PGconn* source, const Mapping& mapping,
                                        const std::string& publication, const std::string& slot,
                                        bool create_slot) {
  std::vector<SourceProblem> problems;
  const auto add = [&](std::string subject, std::string problem, std::string fix) {
    add_problem(problems, std::move(subject), std::move(problem), std::move(fix));
  };

  auto wal = pg_exec_params(source, "SELECT current_setting('wal_level')", {}, "reading wal_level");
  if (std::string(PQgetvalue(wal.get(), 0, 0)) != "logical") {
    add("wal_level", "is " + std::string(PQgetvalue(wal.get(), 0, 0)) + ", logical decoding needs logical",
        "ALTER SYSTEM SET wal_level = logical; then restart the server");
  }
  auto role = pg_exec_params(
      source, "SELECT rolreplication, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", {},
      "reading the role");
  if (PQntuples(role.get()) == 1 && std::string(PQgetvalue(role.get(), 0, 0)) != "t") {
    add("role", "the connecting role has no REPLICATION attribute", "ALTER ROLE <role> REPLICATION");
  }
  if (PQntuples(role.get()) == 1 && std::string(PQgetvalue(role.get(), 0, 1)) == "t") {
    add("role",
        "the connecting role is a superuser: use a role with only LOGIN REPLICATION and SELECT on the "
        "published columns",
        "see deploy/sql/customer_roles.sql");
  }

  auto pub = pg_exec_params(source, "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1",
                            {publication}, "reading the publication");
  if (PQntuples(pub.get()) == 0) {
    add("publication " + publication, "does not exist",
        "CREATE PUBLICATION " + quote_ident(publication) + " FOR TABLE <mapped tables> (<mapped columns>)");
  } else if (std::string(PQgetvalue(pub.get(), 0, 0)) == "t") {
    add("publication " + publication, "is FOR ALL TABLES: every table's changes leave the server",
        "publish only the mapped tables and columns (FOR TABLE t (col, ...))");
  }

  for (const auto& t : mapping.tables()) {
    const std::string name = t.source.str();
    auto rel = pg_exec_params(
        source,
        "SELECT c.oid, c.relreplident FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
        {t.source.schema, t.source.name}, "reading the source table");
    if (PQntuples(rel.get()) == 0) {
      add(name, "does not exist on the source", "check [[tables]].source in the config");
      continue;
    }
    const std::string oid = PQgetvalue(rel.get(), 0, 0);
    const char identity = PQgetvalue(rel.get(), 0, 1)[0];

    const auto stream_problems = source_stream_problems(source, t, publication);
    bool routed_elsewhere = false;
    for (const auto& p : stream_problems) {
      add(name, p.problem, p.fix);
      routed_elsewhere = routed_elsewhere || p.kind == SourceStreamProblem::Kind::Routing;
    }
    if (PQntuples(pub.get()) != 0 && !routed_elsewhere) {
      auto pt = pg_exec_params(
          source,
          "SELECT attnames FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname = $2 "
          "AND tablename = $3",
          {publication, t.source.schema, t.source.name}, "reading the publication's tables");
      if (PQntuples(pt.get()) == 0) {
        // The mapped columns only (PostgreSQL 15 column lists): nothing else of the table leaves the server.
        std::string columns;
        for (const auto& c : t.columns) columns += (columns.empty() ? "" : ", ") + sql_name(c.source);
        add(name, "is not in publication " + publication,
            "ALTER PUBLICATION " + sql_name(publication) + " ADD TABLE " + t.source.str() + " (" + columns +
                "); then `systemctl reload` (or restart) copies its rows online");
      } else {
        const auto published = parse_name_array(PQgetvalue(pt.get(), 0, 0));
        for (const auto& c : t.columns) {
          if (!published.contains(c.source)) {
            add(name, "mapped column " + c.source + " is not published (publication column list)",
                "add it to the publication's column list, or remove it from the mapping");
          }
        }
      }
    }

    check_replica_identity(source, t, oid, identity, problems);

    for (const auto& c : t.columns) {
      auto priv = pg_exec_params(source, "SELECT has_column_privilege($1::oid, $2, 'SELECT')",
                                 {oid, c.source}, "reading column privileges");
      if (PQntuples(priv.get()) == 1 && std::string(PQgetvalue(priv.get(), 0, 0)) != "t") {
        add(name,
            "no SELECT on mapped column " + c.source + " (needed by the initial snapshot, resync, verify)",
            "GRANT SELECT (" + quote_ident(c.source) + ", ...) ON " + t.source.quoted() + " TO <role>");
      }
    }
  }

  auto s = pg_exec_params(source,
                          "SELECT plugin, coalesce(wal_status, ''), database = current_database() "
                          "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                          {slot}, "reading the slot");
  if (PQntuples(s.get()) == 0) {
    if (!create_slot)
      add("slot " + slot, "does not exist and source.create_slot is false", "set create_slot = true");
  } else {
    if (std::string(PQgetvalue(s.get(), 0, 0)) != "pgoutput") {
      add("slot " + slot, "uses plugin " + std::string(PQgetvalue(s.get(), 0, 0)),
          "drop it, or name another slot");
    }
    if (std::string(PQgetvalue(s.get(), 0, 1)) == "lost") {
      add("slot " + slot, "was invalidated (wal_status = lost)", "drop it and resync every table");
    }
    if (std::string(PQgetvalue(s.get(), 0, 2)) != "t") {
      add("slot " + slot, "belongs to another database", "name another slot");
    }
  }
  return problems;
}

}  // namespace cdcsync
