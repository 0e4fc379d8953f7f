// The audit's rules about data: which columns cross, what the publication and the target hold beyond the
// mapping, and what the source and target roles may do (pure functions of facts; see audit.h).
#include "daemon/tools/audit.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "daemon/tools/audit_internal.h"

namespace cdcsync::audit {
namespace detail {

std::string ident(const std::string& name) {
  return config::sql_name(name);
}

std::string column_of(const QualifiedName& t, const std::string& column) {
  return t.str() + "." + ident(column);
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

std::string join_idents(const std::vector<std::string>& names) {
  std::vector<std::string> q;
  for (const auto& n : names) q.push_back(ident(n));
  return join(q);
}

void add(Report& r, Severity s, std::string area, std::string object, std::string problem, std::string fix) {
  r.findings.push_back({s, std::move(area), std::move(object), std::move(problem), std::move(fix)});
}

}  // namespace detail

namespace {

using namespace detail;

const std::set<std::string> kRowPrivileges = {"SELECT", "INSERT", "UPDATE", "DELETE"};
// Predefined roles that bypass table grants or reach the server's files and processes.
const std::set<std::string> kBroadRoles = {"pg_read_all_data",          "pg_write_all_data",
                                           "pg_read_server_files",      "pg_write_server_files",
                                           "pg_execute_server_program", "pg_signal_backend"};
constexpr std::string_view kInheritedNote =
    " (a privilege granted to PUBLIC or to a role it belongs to is revoked there)";

template <class Set>
std::vector<std::string> ordered(const Set& s) {
  return {s.begin(), s.end()};
}

std::set<QualifiedName> written_tables(const config::Config& c) {
  std::set<QualifiedName> out;
  for (const auto& t : c.tables) out.insert(t.target);
  out.insert(c.target.progress_table);
  out.insert({c.target.progress_table.schema, "cdc_table_state"});  // the load state (sinks/load_state.h)
  return out;
}

std::set<std::string> mapped_source_columns(const config::TableMapping& t) {
  std::set<std::string> out;
  for (const auto& c : t.columns) out.insert(c.source);
  return out;
}

// ALTER PUBLICATION ... SET TABLE with exactly the mapped columns of every mapped table.
std::string publication_fix(const config::Config& c, const std::string& publication) {
  std::vector<std::string> tables;
  for (const auto& t : c.tables) {
    std::vector<std::string> cols;
    for (const auto& col : t.columns) cols.push_back(col.source);
    tables.push_back(t.source.str() + " (" + join_idents(cols) + ")");
  }
  return "ALTER PUBLICATION " + ident(publication) + " SET TABLE " + join(tables) + ";";
}

void audit_attributes(const RoleFacts& role, bool replication_allowed, Report& r, const std::string& area) {
  const auto& a = role.attributes;
  const auto bad = [&](bool held, const std::string& attribute, const std::string& why) {
    if (!held) return;
    add(r, Severity::Violation, area, "role " + role.role, "has " + attribute + ": " + why,
        "ALTER ROLE " + ident(role.role) + " NO" + attribute + ";");
  };
  bad(a.superuser, "SUPERUSER", "it bypasses every privilege check");
  bad(a.bypassrls, "BYPASSRLS", "row-level security policies do not apply to it");
  bad(a.createdb, "CREATEDB", "cdcsync never creates databases");
  bad(a.createrole, "CREATEROLE", "cdcsync never creates roles");
  if (!replication_allowed) {
    bad(a.replication, "REPLICATION", "it could stream the whole cluster; only the source role streams");
  } else if (!a.replication) {
    add(r, Severity::Warning, area, "role " + role.role, "lacks REPLICATION: the pipeline cannot stream",
        "ALTER ROLE " + ident(role.role) + " REPLICATION;");
  }
  for (const auto& m : role.member_of) {
    if (kBroadRoles.contains(m)) {
      add(r, Severity::Violation, area, "role " + role.role,
          "is a member of " + m + ", which reaches data or the server beyond the grants of this plan",
          "REVOKE " + ident(m) + " FROM " + ident(role.role) + ";");
    }
  }
}

// `create_chosen`: schemas the configuration asks CREATE in (snapshot.rebuild_indexes), said but not refused.
void audit_database_rights(const RoleFacts& role, Report& r, const std::string& area,
                           const std::set<std::string>& create_chosen = {}) {
  if (role.database_owner) {
    add(r, Severity::Violation, area, "database " + role.database,
        "is owned by " + role.role + " (an owner may grant itself anything in it)",
        "ALTER DATABASE " + ident(role.database) + " OWNER TO <the DBA's role>;");
  }
  if (role.database_create) {
    add(r, Severity::Violation, area, "database " + role.database,
        role.role + " may CREATE schemas in it" + std::string(kInheritedNote),
        "REVOKE CREATE ON DATABASE " + ident(role.database) + " FROM " + ident(role.role) + ";");
  }
  for (const auto& s : role.owned_schemas) {
    add(r, Severity::Violation, area, "schema " + s, "is owned by " + role.role,
        "ALTER SCHEMA " + ident(s) + " OWNER TO <the owning application's role>;");
  }
  for (const auto& s : role.create_schemas) {
    if (std::find(role.owned_schemas.begin(), role.owned_schemas.end(), s) != role.owned_schemas.end())
      continue;
    if (create_chosen.contains(s)) {
      add(r, Severity::Warning, area, "schema " + s,
          role.role +
              " may CREATE objects in it for snapshot.rebuild_indexes = true (more than the least privilege: "
              "the "
              "initial snapshot builds the mapped tables' indexes there after the data)",
          "set snapshot.rebuild_indexes = false and REVOKE CREATE ON SCHEMA " + ident(s) + " FROM " +
              ident(role.role) + ";");
      continue;
    }
    add(r, Severity::Violation, area, "schema " + s,
        role.role + " may CREATE objects in it" + std::string(kInheritedNote),
        "REVOKE CREATE ON SCHEMA " + ident(s) + " FROM " + ident(role.role) + ";");
  }
}

// Column privileges beyond the table-level ones, grouped by privilege: {"SELECT": [a, b]}.
std::map<std::string, std::vector<std::string>> column_only(const TablePrivileges& t) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& column : t.columns) {
    const auto it = t.column_privileges.find(column);
    if (it == t.column_privileges.end()) continue;
    for (const auto& p : it->second) {
      if (!t.privileges.contains(p)) out[p].push_back(column);
    }
  }
  return out;
}

std::vector<std::string> columns_with(const TablePrivileges& t, const std::string& privilege) {
  std::vector<std::string> out;
  for (const auto& column : t.columns) {
    const auto it = t.column_privileges.find(column);
    if (it != t.column_privileges.end() && it->second.contains(privilege)) out.push_back(column);
  }
  return out;
}

// Everything the role may do with one table, as "SELECT, INSERT" / "UPDATE (a, b)"; empty when nothing.
std::vector<std::string> held(const TablePrivileges& t) {
  std::vector<std::string> out;
  for (const auto& p : kTablePrivileges) {
    if (t.privileges.contains(p)) out.push_back(p);
  }
  for (const auto& [p, cols] : column_only(t)) out.push_back(p + " (" + join_idents(cols) + ")");
  return out;
}

std::vector<std::string> attribute_names(const RoleAttributes& a) {
  std::vector<std::string> out;
  if (a.login) out.push_back("LOGIN");
  if (a.superuser) out.push_back("SUPERUSER");
  if (a.replication) out.push_back("REPLICATION");
  if (a.bypassrls) out.push_back("BYPASSRLS");
  if (a.createdb) out.push_back("CREATEDB");
  if (a.createrole) out.push_back("CREATEROLE");
  return out;
}

}  // namespace

std::string_view name_of(Severity s) {
  return s == Severity::Violation ? "violation" : "warning";
}

std::size_t Report::count(Severity s) const {
  return static_cast<std::size_t>(
      std::count_if(findings.begin(), findings.end(), [&](const Finding& f) { return f.severity == s; }));
}

const TablePrivileges* RoleFacts::find(const QualifiedName& t) const {
  for (const auto& table : tables) {
    if (table.table == t) return &table;
  }
  return nullptr;
}

std::vector<ColumnFlow> column_flows(const config::Config& config) {
  std::vector<ColumnFlow> out;
  for (const auto& t : config.tables) {
    for (const auto& c : t.columns) {
      out.push_back({column_of(t.source, c.source), column_of(t.target, c.target),
                     c.transform ? std::string(config::name_of(*c.transform)) : "copy"});
    }
  }
  return out;
}

void audit_publication(const config::Config& config, const Publication& publication, const RoleFacts& source,
                       Report& report) {
  const std::string area = "columns";
  const std::string pub = "publication " + publication.name;
  if (!publication.exists) {
    add(report, Severity::Warning, area, pub, "does not exist on the source: nothing can cross",
        "create it as deploy/sql/customer_schema.sql does: " + publication_fix(config, publication.name));
    return;
  }
  if (publication.all_tables) {
    add(report, Severity::Violation, area, pub,
        "is FOR ALL TABLES: every table, today's and tomorrow's, streams to the cdcsync host",
        "DROP PUBLICATION " + ident(publication.name) + "; CREATE PUBLICATION " + ident(publication.name) +
            " FOR TABLE <the mapped tables with column lists> (or, if it may change: " +
            publication_fix(config, publication.name) + ")");
  }
  std::set<QualifiedName> mapped;
  for (const auto& t : config.tables) {
    mapped.insert(t.source);
    const auto columns = mapped_source_columns(t);
    const auto pit = publication.columns.find(t.source);
    if (pit == publication.columns.end()) {
      add(report, Severity::Warning, area, t.source.str(), "is mapped but not in " + pub,
          publication_fix(config, publication.name));
    }
    const TablePrivileges* facts = source.find(t.source);
    if (facts == nullptr) continue;
    std::vector<std::string> published_unmapped;
    for (const auto& c : facts->columns) {
      if (columns.contains(c)) continue;
      report.kept_at_source.push_back(column_of(t.source, c));
      if (pit != publication.columns.end() &&
          std::find(pit->second.begin(), pit->second.end(), c) != pit->second.end()) {
        published_unmapped.push_back(c);
      }
    }
    if (!published_unmapped.empty()) {
      add(report, Severity::Warning, area, t.source.str(),
          "columns " + join_idents(published_unmapped) + " are published but not mapped: they reach the " +
              "cdcsync host, which drops them",
          publication_fix(config, publication.name));
    }
  }
  for (const auto& [table, columns] : publication.columns) {
    if (mapped.contains(table)) continue;
    add(report, Severity::Warning, area, table.str(),
        "is published in " + pub + " but not mapped: its changes reach the cdcsync host, which drops them",
        publication_fix(config, publication.name));
  }
}

void audit_target_columns(const config::Config& config, const RoleFacts& target, Report& report) {
  for (std::size_t i = 0; i < config.tables.size(); ++i) {
    const auto& t = config.tables[i];
    const TablePrivileges* facts = target.find(t.target);
    if (facts == nullptr) {
      add(report, Severity::Warning, "target columns", t.target.str(), "does not exist in the order DB",
          "cdcsync target-ddl --config " + config.file.string() + " | psql <order DB>");
      continue;
    }
    std::set<std::string> expected{t.lsn_column, t.tombstone_column};
    for (const auto& c : t.columns) expected.insert(c.target);
    for (const auto& c : facts->columns) {
      if (expected.contains(c)) continue;
      add(report, Severity::Violation, "target columns", column_of(t.target, c),
          "is not in the mapping: cdcsync never writes it, so what it holds came by other means (PII that "
          "should not be there?)",
          fmt::format("ALTER TABLE {} DROP COLUMN {}; (or map a source column to it in tables[{}].columns)",
                      t.target.str(), ident(c), i));
    }
  }
}

void audit_copies(const config::Config& config, const RoleFacts& source, const RoleFacts& target,
                  Report& report) {
  const auto written = written_tables(config);
  for (const auto& tt : target.tables) {
    if (written.contains(tt.table)) continue;
    const std::set<std::string> target_columns(tt.columns.begin(), tt.columns.end());
    for (const auto& t : config.tables) {
      const TablePrivileges* st = source.find(t.source);
      if (st == nullptr) continue;
      const auto mapped = mapped_source_columns(t);
      std::vector<std::string> shared;
      std::vector<std::string> kept;
      for (const auto& c : st->columns) {
        if (!target_columns.contains(c)) continue;
        shared.push_back(c);
        if (!mapped.contains(c)) kept.push_back(c);
      }
      if (kept.empty() || (shared.size() < 3 && tt.table.name != t.source.name)) continue;
      add(report, Severity::Warning, "copies", tt.table.str(),
          "looks like a copy of source table " + t.source.str() + ": shares columns " + join_idents(shared) +
              ", among them " + join_idents(kept) + ", which the mapping keeps at the source",
          "find out how its rows got there; drop it, or move it out of the order DB");
    }
  }
}

void audit_source_role(const config::Config& config, const Publication& publication, const RoleFacts& source,
                       Report& report) {
  const std::string area = "source role";
  const std::string role = ident(source.role);
  audit_attributes(source, /*replication_allowed=*/true, report, area);
  audit_database_rights(source, report, area);
  for (const auto& t : source.tables) {
    const std::string name = t.table.str();
    if (t.owned) {
      add(report, Severity::Violation, area, name,
          "is owned by " + source.role + " (an owner may do anything with it)",
          "ALTER TABLE " + name + " OWNER TO <the customer service's role>;");
    }
    std::vector<std::string> writes;
    for (const auto& p : kTablePrivileges) {
      if (p != "SELECT" && t.privileges.contains(p)) writes.push_back(p);
    }
    for (const auto& [p, cols] : column_only(t)) {
      if (p != "SELECT") writes.push_back(p + " (" + join_idents(cols) + ")");
    }
    if (!writes.empty()) {
      add(report, Severity::Violation, area, name,
          source.role + " holds " + join(writes) + " on it; the source role only reads",
          "REVOKE ALL ON " + name + " FROM " + role + "; then GRANT SELECT (<published columns>) again" +
              std::string(kInheritedNote));
    }
    const auto readable = columns_with(t, "SELECT");
    if (readable.empty()) continue;
    const auto pit = publication.columns.find(t.table);
    if (pit == publication.columns.end()) {
      add(report, Severity::Violation, area, name,
          source.role + " can read " + join_idents(readable) + " of this table, which is not published",
          "REVOKE SELECT ON " + name + " FROM " + role + ";" + std::string(kInheritedNote));
      continue;
    }
    std::vector<std::string> extra;
    for (const auto& c : readable) {
      if (std::find(pit->second.begin(), pit->second.end(), c) == pit->second.end()) extra.push_back(c);
    }
    if (!extra.empty()) {
      add(report, Severity::Violation, area, name,
          source.role + " can read " + join_idents(extra) + ", which the publication does not publish",
          "REVOKE SELECT ON " + name + " FROM " + role + "; GRANT SELECT (" + join_idents(pit->second) +
              ") ON " + name + " TO " + role + ";" + std::string(kInheritedNote));
    }
  }
  for (const auto& t : config.tables) {
    const TablePrivileges* facts = source.find(t.source);
    if (facts == nullptr) continue;
    std::vector<std::string> unreadable;
    for (const auto& c : t.columns) {
      const auto it = facts->column_privileges.find(c.source);
      if (it == facts->column_privileges.end() || !it->second.contains("SELECT"))
        unreadable.push_back(c.source);
    }
    if (!unreadable.empty()) {
      add(report, Severity::Warning, area, t.source.str(),
          source.role + " cannot read mapped columns " + join_idents(unreadable) +
              " (the initial snapshot, resync and verify need SELECT on them)",
          "GRANT SELECT (" + join_idents(unreadable) + ") ON " + t.source.str() + " TO " + role + ";");
    }
  }
}

void audit_target_role(const config::Config& config, const RoleFacts& target, Report& report) {
  const std::string area = "target role";
  const std::string role = ident(target.role);
  audit_attributes(target, /*replication_allowed=*/false, report, area);
  std::set<std::string> create_chosen;
  if (config.snapshot.rebuild_indexes) {
    for (const auto& t : written_tables(config)) {
      if (t != config.target.progress_table) create_chosen.insert(t.schema);
    }
  }
  audit_database_rights(target, report, area, create_chosen);
  if (!target.database_temp) {
    add(report, Severity::Warning, area, "database " + target.database,
        target.role + " lacks TEMP: the sink stages each batch in temporary tables",
        "GRANT TEMP ON DATABASE " + ident(target.database) + " TO " + role + ";");
  }
  const auto written = written_tables(config);
  std::set<std::string> written_schemas;
  for (const auto& t : written) written_schemas.insert(t.schema);
  for (const auto& t : target.tables) {
    const std::string name = t.table.str();
    if (t.owned && config.snapshot.rebuild_indexes && written.contains(t.table) &&
        t.table != config.target.progress_table) {
      // snapshot.rebuild_indexes asks for ownership of the mapped tables: chosen, said but not refused.
      add(report, Severity::Warning, area, name,
          "is owned by " + target.role +
              " for snapshot.rebuild_indexes = true (more than the least privilege: the initial snapshot "
              "drops "
              "the table's indexes and builds them after the data; an owner may also alter, drop and grant "
              "it)",
          "set snapshot.rebuild_indexes = false and ALTER TABLE " + name +
              " OWNER TO <the order service's role>;");
    } else if (t.owned) {
      add(report, Severity::Violation, area, name,
          "is owned by " + target.role + " (an owner may alter, drop and grant it)",
          "ALTER TABLE " + name + " OWNER TO <the order service's role>;");
    }
    if (written.contains(t.table)) {
      const bool progress = t.table == config.target.progress_table;
      std::vector<std::string> missing;
      for (const auto& p : {"SELECT", "INSERT", "UPDATE", "DELETE"}) {
        if (progress && std::string_view(p) == "DELETE") continue;
        if (!t.privileges.contains(p)) missing.push_back(p);
      }
      if (!missing.empty()) {
        add(report, Severity::Warning, area, name,
            target.role + " lacks " + join(missing) + " (the sink needs it)",
            "GRANT " + join(missing) + " ON " + name + " TO " + role + ";");
      }
      std::vector<std::string> extra;
      for (const auto& p : {"TRUNCATE", "REFERENCES", "TRIGGER"}) {
        // snapshot.truncate asks for TRUNCATE on the mapped tables: granted by choice, said but not refused.
        const bool chosen = std::string_view(p) == "TRUNCATE" && config.snapshot.truncate && !progress;
        if (t.privileges.contains(p) && !chosen) extra.push_back(p);
      }
      if (config.snapshot.truncate && !progress && t.privileges.contains("TRUNCATE")) {
        add(report, Severity::Warning, area, name,
            target.role +
                " holds TRUNCATE for snapshot.truncate = true (more than the least privilege: the "
                "initial snapshot may empty the table with TRUNCATE and load it with COPY FREEZE)",
            "set snapshot.truncate = false and REVOKE TRUNCATE ON " + name + " FROM " + role + ";");
      }
      if (!extra.empty()) {
        add(report, Severity::Violation, area, name,
            target.role + " holds " + join(extra) + ", beyond SELECT/INSERT/UPDATE/DELETE the sink needs",
            "REVOKE " + join(extra) + " ON " + name + " FROM " + role + ";" + std::string(kInheritedNote));
      }
      continue;
    }
    const auto privileges = held(t);
    if (privileges.empty()) continue;
    if (written_schemas.contains(t.table.schema)) {
      add(report, Severity::Warning, area, name,
          target.role + " holds " + join(privileges) + " on a table this pipeline does not write",
          "REVOKE ALL ON " + name + " FROM " + role + "; (unless another pipeline writes it)");
    } else {
      add(report, Severity::Violation, area, name,
          target.role + " holds " + join(privileges) +
              " on a table outside the reference data (the order service's own data)",
          "REVOKE ALL ON " + name + " FROM " + role + ";" + std::string(kInheritedNote));
    }
  }
}

RoleReport summarize(const std::string& server, const RoleFacts& role) {
  RoleReport out{server, role.role, role.database, attribute_names(role.attributes), role.member_of, {}};
  if (role.database_owner) out.grants.push_back("OWNER OF DATABASE " + ident(role.database));
  if (role.database_create) out.grants.push_back("CREATE ON DATABASE " + ident(role.database));
  if (role.database_temp) out.grants.push_back("TEMP ON DATABASE " + ident(role.database));
  for (const auto& s : role.owned_schemas) out.grants.push_back("OWNER OF SCHEMA " + ident(s));
  for (const auto& s : role.create_schemas) out.grants.push_back("CREATE ON SCHEMA " + ident(s));
  for (const auto& t : role.tables) {
    if (t.owned) out.grants.push_back("OWNER OF " + t.table.str());
    const auto privileges = held(t);
    if (!privileges.empty()) out.grants.push_back(join(privileges) + " ON " + t.table.str());
  }
  return out;
}

}  // namespace cdcsync::audit
