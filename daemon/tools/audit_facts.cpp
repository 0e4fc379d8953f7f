// The audit's facts, read from live connections as the daemon's own roles, and the whole audit run.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>

#include "daemon/core/runner.h"
#include "daemon/tools/audit.h"
#include "daemon/tools/audit_internal.h"
#include "decoders/pg.h"

namespace cdcsync::audit {
namespace {

using namespace detail;

bool is_true(const PGresult* res, int row, int col) {
  return std::string_view(PQgetvalue(res, row, col)) == "t";
}

}  // namespace

RoleFacts read_role_facts(PGconn* conn) {
  RoleFacts f;
  {
    auto r =
        pg_exec_params(conn,
                       "SELECT current_user::text, current_database()::text, r.rolsuper, r.rolbypassrls, "
                       "r.rolreplication, r.rolcreatedb, r.rolcreaterole, r.rolcanlogin, "
                       "pg_catalog.has_database_privilege(current_database(), 'CREATE'), "
                       "pg_catalog.has_database_privilege(current_database(), 'TEMP'), "
                       "pg_catalog.pg_has_role(d.datdba, 'USAGE') "
                       "FROM pg_catalog.pg_roles r, pg_catalog.pg_database d "
                       "WHERE r.rolname = current_user AND d.datname = current_database()",
                       {}, "reading the role's attributes");
    if (PQntuples(r.get()) != 1) throw PgError{"", "reading the role's attributes: no row for current_user"};
    f.role = PQgetvalue(r.get(), 0, 0);
    f.database = PQgetvalue(r.get(), 0, 1);
    f.attributes = {is_true(r.get(), 0, 2), is_true(r.get(), 0, 3), is_true(r.get(), 0, 4),
                    is_true(r.get(), 0, 5), is_true(r.get(), 0, 6), is_true(r.get(), 0, 7)};
    f.database_create = is_true(r.get(), 0, 8);
    f.database_temp = is_true(r.get(), 0, 9);
    f.database_owner = is_true(r.get(), 0, 10);
  }
  {
    auto r = pg_exec_params(conn,
                            "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname <> current_user AND "
                            "pg_catalog.pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1",
                            {}, "reading the role's memberships");
    for (int i = 0; i < PQntuples(r.get()); ++i) f.member_of.emplace_back(PQgetvalue(r.get(), i, 0));
  }
  {
    auto r = pg_exec_params(conn,
                            "SELECT nspname::text, pg_catalog.has_schema_privilege(oid, 'CREATE'), "
                            "pg_catalog.pg_has_role(nspowner, 'USAGE') FROM pg_catalog.pg_namespace "
                            "WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%' ORDER BY 1",
                            {}, "reading schema privileges");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      if (is_true(r.get(), i, 1)) f.create_schemas.emplace_back(PQgetvalue(r.get(), i, 0));
      if (is_true(r.get(), i, 2)) f.owned_schemas.emplace_back(PQgetvalue(r.get(), i, 0));
    }
  }
  constexpr const char* kRelations =
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> 'information_schema' "
      "AND n.nspname NOT LIKE 'pg\\_%' ";
  std::map<QualifiedName, std::size_t> index;
  {
    std::string sql = "SELECT n.nspname::text, c.relname::text, pg_catalog.pg_has_role(c.relowner, 'USAGE')";
    for (const auto& p : kTablePrivileges) sql += ", pg_catalog.has_table_privilege(c.oid, '" + p + "')";
    sql += std::string(" ") + kRelations + "ORDER BY 1, 2";
    auto r = pg_exec_params(conn, sql.c_str(), {}, "reading table privileges");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      TablePrivileges t;
      t.table = {PQgetvalue(r.get(), i, 0), PQgetvalue(r.get(), i, 1)};
      t.owned = is_true(r.get(), i, 2);
      for (std::size_t p = 0; p < kTablePrivileges.size(); ++p) {
        if (is_true(r.get(), i, static_cast<int>(3 + p))) t.privileges.insert(kTablePrivileges[p]);
      }
      index[t.table] = f.tables.size();
      f.tables.push_back(std::move(t));
    }
  }
  {
    std::string sql = "SELECT n.nspname::text, c.relname::text, a.attname::text";
    for (const auto& p : kColumnPrivileges)
      sql += ", pg_catalog.has_column_privilege(c.oid, a.attnum, '" + p + "')";
    sql +=
        " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2, a.attnum";
    auto r = pg_exec_params(conn, sql.c_str(), {}, "reading column privileges");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const auto it = index.find({PQgetvalue(r.get(), i, 0), PQgetvalue(r.get(), i, 1)});
      if (it == index.end()) continue;  // created between the two queries
      auto& t = f.tables[it->second];
      const std::string column = PQgetvalue(r.get(), i, 2);
      t.columns.push_back(column);
      for (std::size_t p = 0; p < kColumnPrivileges.size(); ++p) {
        if (is_true(r.get(), i, static_cast<int>(3 + p)))
          t.column_privileges[column].insert(kColumnPrivileges[p]);
      }
    }
  }
  return f;
}

Publication read_publication(PGconn* conn, const std::string& name) {
  Publication p;
  p.name = name;
  auto r = pg_exec_params(conn, "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1",
                          {name}, "reading publication " + name);
  if (PQntuples(r.get()) == 0) return p;
  p.exists = true;
  p.all_tables = is_true(r.get(), 0, 0);
  auto cols = pg_exec_params(
      conn,
      "SELECT t.schemaname::text, t.tablename::text, u.a::text FROM pg_catalog.pg_publication_tables t, "
      "unnest(t.attnames) WITH ORDINALITY AS u(a, n) WHERE t.pubname = $1 ORDER BY 1, 2, u.n",
      {name}, "reading the columns of publication " + name);
  for (int i = 0; i < PQntuples(cols.get()); ++i) {
    p.columns[{PQgetvalue(cols.get(), i, 0), PQgetvalue(cols.get(), i, 1)}].emplace_back(
        PQgetvalue(cols.get(), i, 2));
  }
  return p;
}

ConnectionFacts read_connection(const std::string& name, PGconn* conn, bool allow_insecure_tls) {
  ConnectionFacts c;
  c.name = name;
  c.allow_insecure_tls = allow_insecure_tls;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfo(conn), &PQconninfoFree);
  for (const PQconninfoOption* o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val != nullptr && std::string_view(o->keyword) != "password") c.options[o->keyword] = o->val;
  }
  c.connected = PQstatus(conn) == CONNECTION_OK;
  c.ssl_in_use = PQsslInUse(conn) == 1;
  if (const char* protocol = PQsslAttribute(conn, "protocol")) c.ssl_protocol = protocol;
  c.used_password = PQconnectionUsedPassword(conn) == 1;
  return c;
}

ConnectionFacts parse_connection(const std::string& name, const std::string& conninfo,
                                 bool allow_insecure_tls) {
  ConnectionFacts c;
  c.name = name;
  c.allow_insecure_tls = allow_insecure_tls;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> defaults(PQconndefaults(), &PQconninfoFree);
  for (const PQconninfoOption* o = defaults.get(); o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val != nullptr && std::string_view(o->keyword) != "password") c.options[o->keyword] = o->val;
  }
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> given(
      PQconninfoParse(conninfo.c_str(), &raw_error), &PQconninfoFree);
  if (raw_error != nullptr) PQfreemem(raw_error);
  for (const PQconninfoOption* o = given.get(); o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val != nullptr && std::string_view(o->keyword) != "password") c.options[o->keyword] = o->val;
  }
  if (!c.options.contains("passfile")) {
    if (const char* home = std::getenv("HOME")) c.options["passfile"] = std::string(home) + "/.pgpass";
  }
  return c;
}

Report run(const config::Config& config) {
  Report report;
  report.pipeline = config.pipeline;
  report.config_file = config.file.string();
  report.flows = column_flows(config);

  std::optional<RoleFacts> source;
  std::optional<RoleFacts> target;
  Publication publication;
  publication.name = config.source.publication;
  std::vector<ConnectionFacts> connections;
  const auto visit = [&](const std::string& name, const std::string& conninfo_as_written, bool allow_insecure,
                         const std::function<std::string()>& conninfo, std::optional<RoleFacts>& facts,
                         bool read_pub) {
    try {
      PgConn conn = pg_connect(conninfo(), "the " + name);
      connections.push_back(read_connection(name, conn.get(), allow_insecure));
      facts = read_role_facts(conn.get());
      if (read_pub) publication = read_publication(conn.get(), config.source.publication);
    } catch (const std::exception& e) {
      if (connections.empty() || connections.back().name != name)
        connections.push_back(parse_connection(name, conninfo_as_written, allow_insecure));
      add(report, Severity::Violation, "audit", name + " database",
          std::string("could not be audited: ") + e.what(),
          "check " + name + ".conninfo and " + name + ".password_file: the audit logs in as the daemon does");
    }
  };
  visit(
      "source", config.source.conninfo, config.source.allow_insecure_tls,
      [&] { return source_conninfo(config); }, source, true);
  visit(
      "target", config.target.conninfo, config.target.allow_insecure_tls,
      [&] { return target_conninfo(config); }, target, false);

  if (source) {
    audit_publication(config, publication, *source, report);
    audit_source_role(config, publication, *source, report);
    report.roles.push_back(summarize("source", *source));
  }
  if (target) {
    audit_target_columns(config, *target, report);
    if (source) audit_copies(config, *source, *target, report);
    audit_target_role(config, *target, report);
    report.roles.push_back(summarize("target", *target));
  }
  for (const auto& c : connections) audit_connection(c, report);
  audit_redis(config.checkpoint, report);
  std::optional<std::string> pgpassword;
  if (const char* v = std::getenv("PGPASSWORD"); v != nullptr && *v != '\0') pgpassword = v;
  audit_secrets(config, connections, pgpassword, report);
  // Violations first, each group in the order found.
  std::stable_sort(report.findings.begin(), report.findings.end(),
                   [](const Finding& a, const Finding& b) { return a.severity < b.severity; });
  return report;
}

}  // namespace cdcsync::audit
