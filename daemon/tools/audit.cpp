#include "daemon/tools/audit.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>

#include "daemon/core/runner.h"
#include "decoders/pg.h"

namespace cdcsync::audit {
namespace {

const std::set<std::string> kRowPrivileges = {"SELECT", "INSERT", "UPDATE", "DELETE"};
const std::vector<std::string> kTablePrivileges = {"SELECT",   "INSERT",     "UPDATE", "DELETE",
                                                   "TRUNCATE", "REFERENCES", "TRIGGER"};
const std::vector<std::string> kColumnPrivileges = {"SELECT", "INSERT", "UPDATE", "REFERENCES"};
// Predefined roles that bypass table grants or reach the server's files and processes.
const std::set<std::string> kBroadRoles = {"pg_read_all_data",          "pg_write_all_data",
                                           "pg_read_server_files",      "pg_write_server_files",
                                           "pg_execute_server_program", "pg_signal_backend"};
constexpr std::string_view kInheritedNote =
    " (a privilege granted to PUBLIC or to a role it belongs to is revoked there)";

// An identifier as SQL needs it: bare when lowercase-plain, quoted otherwise.
std::string ident(const std::string& name) {
  const bool plain = !name.empty() && ((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_') &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
                     });
  return plain ? name : quote_ident(name);
}

std::string column_of(const QualifiedName& t, const std::string& column) {
  return t.str() + "." + ident(column);
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
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

template <class Set>
std::vector<std::string> ordered(const Set& s) {
  return {s.begin(), s.end()};
}

void add(Report& r, Severity s, std::string area, std::string object, std::string problem, std::string fix) {
  r.findings.push_back({s, std::move(area), std::move(object), std::move(problem), std::move(fix)});
}

std::set<QualifiedName> written_tables(const config::Config& c) {
  std::set<QualifiedName> out;
  for (const auto& t : c.tables) out.insert(t.target);
  out.insert(c.target.progress_table);
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

void audit_database_rights(const RoleFacts& role, Report& r, const std::string& area) {
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

bool is_local_host(const std::string& h) {
  if (h.empty() || h.front() == '/' || h.front() == '@') return true;
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

std::string option(const ConnectionFacts& c, const std::string& key) {
  const auto it = c.options.find(key);
  return it == c.options.end() ? std::string() : it->second;
}

std::string mode_text(const SecretFacts& s) {
  std::string out;
  if (s.mode) out += fmt::format("mode {:04o}", *s.mode);
  if (s.uid) out += fmt::format("{}uid {}", out.empty() ? "" : ", ", *s.uid);
  return out;
}

void stat_into(const std::string& path, SecretFacts& s) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    s.mode = st.st_mode & 07777;
    s.uid = st.st_uid;
  }
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

PgResult query(PGconn* conn, const char* sql, std::vector<std::string> params, std::string_view doing) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PgResult res{
      PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0)};
  if (!res || PQresultStatus(res.get()) != PGRES_TUPLES_OK) throw pg_error(conn, res.get(), doing);
  return res;
}

bool is_true(const PGresult* res, int row, int col) {
  return std::string_view(PQgetvalue(res, row, col)) == "t";
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
  audit_database_rights(target, report, area);
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
    if (t.owned) {
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
        if (t.privileges.contains(p)) extra.push_back(p);
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

void audit_connection(const ConnectionFacts& c, Report& report) {
  ConnectionReport out;
  out.name = c.name;
  const std::string hostaddr = option(c, "hostaddr");
  const std::string host_list = hostaddr.empty() ? option(c, "host") : hostaddr;
  const std::string port = option(c, "port");
  std::vector<std::string> endpoints;
  std::vector<std::string> remote;
  bool tcp_local = false;
  for (const auto& h : split(host_list, ',')) {
    if (h.empty() || h.front() == '/' || h.front() == '@') {
      endpoints.push_back("unix socket " + (h.empty() ? std::string("(libpq's default directory)") : h));
    } else {
      endpoints.push_back(h + ":" + (port.empty() ? "5432" : port));
      if (is_local_host(h)) {
        tcp_local = true;
      } else {
        remote.push_back(h);
      }
    }
  }
  out.endpoint = join(endpoints);
  out.transport = !remote.empty() ? "TCP" : tcp_local ? "loopback TCP" : "unix socket";
  const std::string sslmode = option(c, "sslmode").empty() ? "prefer" : option(c, "sslmode");
  std::string tls;
  if (c.connected && c.ssl_in_use) {
    tls = "TLS " + (c.ssl_protocol.empty() ? std::string("(protocol unknown)") : c.ssl_protocol) +
          ", sslmode=" + sslmode;
    if (sslmode == "verify-full") {
      tls += ", server certificate and host name verified";
      const auto root = option(c, "sslrootcert");
      if (!root.empty()) tls += " against " + root;
    } else if (sslmode == "verify-ca") {
      tls += ", CA verified but not the host name";
    } else {
      tls += ", server not verified";
    }
  } else {
    tls = std::string(c.connected ? "no TLS" : "not connected") + " (sslmode=" + sslmode + ")";
  }
  out.verified = remote.empty() || sslmode == "verify-full";
  if (remote.empty()) tls += "; the connection does not leave this host";
  out.tls = tls;
  if (!remote.empty() && sslmode != "verify-full") {
    add(report, Severity::Violation, "tls", c.name + " connection",
        "sslmode=" + sslmode + " to " + join(remote) +
            " does not verify the server: whoever sits on the path can read the rows and the login" +
            (c.allow_insecure_tls ? " (allowed by " + c.name + ".allow_insecure_tls)" : std::string()),
        "use sslmode=verify-full sslrootcert=<the CA's certificate> in " + c.name + ".conninfo" +
            (c.allow_insecure_tls ? " and remove " + c.name + ".allow_insecure_tls" : std::string()));
  }
  report.connections.push_back(std::move(out));
}

void audit_redis(const config::CheckpointConfig& checkpoint, Report& report) {
  ConnectionReport out;
  out.name = "checkpoint";
  const auto& e = checkpoint.endpoint;
  if (!e.unix_socket.empty()) {
    out.endpoint = "unix socket " + e.unix_socket;
    out.transport = "unix socket";
  } else {
    out.endpoint = e.host + ":" + std::to_string(e.port);
    out.transport = is_local_host(e.host) ? "loopback TCP" : "TCP";
  }
  out.verified = out.transport != "TCP";
  out.tls = out.verified ? "no TLS; the connection does not leave this host"
                         : "no TLS (this build has no TLS for Redis)";
  if (!out.verified) {
    add(report, Severity::Violation, "tls", "checkpoint connection",
        "Redis at " + out.endpoint +
            " is reached over plain TCP: the AUTH password and the checkpoint cross "
            "the network in clear",
        "run Redis on the daemon's host (loopback or unix socket), or reach it through a TLS tunnel "
        "(stunnel, "
        "WireGuard) that ends on this host");
  }
  report.connections.push_back(std::move(out));
}

SecretFacts describe_secret(const std::string& what, const config::SecretFile& secret) {
  SecretFacts s;
  s.what = what;
  constexpr std::string_view kCredential = "credential:";
  if (secret.spec.starts_with(kCredential)) {
    s.kind = "systemd credential";
    s.location = secret.spec.substr(kCredential.size()) + " (" + secret.path.string() + ")";
  } else {
    s.kind = "file";
    s.location = secret.path.string();
  }
  stat_into(secret.path.string(), s);
  return s;
}

void audit_secrets(const config::Config& config, const std::vector<ConnectionFacts>& connections,
                   const std::optional<std::string>& pgpassword, Report& report) {
  const auto check_mode = [&](const SecretFacts& s) {
    if (s.mode && (*s.mode & 0037) != 0) {
      add(report, Severity::Violation, "secrets", s.what,
          fmt::format("{} has mode {:04o}, wider than 0640", s.location, *s.mode),
          "chmod 0600 " + s.location);
    }
  };
  for (const auto& c : connections) {
    const config::SecretFile& file =
        c.name == "source" ? config.source.password_file : config.target.password_file;
    const std::string what = c.name + " password";
    SecretFacts s;
    if (file.configured()) {
      s = describe_secret(what, file);
      if (pgpassword) {
        add(report, Severity::Warning, "secrets", "PGPASSWORD",
            "is set in this environment (unused here: " + c.name +
                ".password_file wins); a variable is "
                "readable in /proc/PID/environ and inherited by every child",
            "unset PGPASSWORD (and never set it in the unit)");
      }
    } else if (pgpassword) {
      s = SecretFacts{what, "environment", "PGPASSWORD", std::nullopt, std::nullopt};
      add(report, Severity::Violation, "secrets", what,
          "comes from PGPASSWORD: readable in /proc/PID/environ, inherited by every child, easily logged",
          "put it in a file (mode 0600) or a systemd credential and set " + c.name +
              ".password_file; unset PGPASSWORD");
    } else if (!option(c, "sslcert").empty() && !c.used_password && c.connected) {
      s = SecretFacts{what, "client certificate", option(c, "sslcert"), std::nullopt, std::nullopt};
      stat_into(option(c, "sslkey"), s);
    } else if (c.connected && !c.used_password) {
      s = SecretFacts{what, "none", "", std::nullopt, std::nullopt};
      add(report, Severity::Warning, "secrets", what,
          "the server asked for no password (trust or peer authentication)",
          "use scram-sha-256 in pg_hba.conf for this role, with " + c.name + ".password_file");
    } else {
      s = SecretFacts{what, "pgpass", option(c, "passfile"), std::nullopt, std::nullopt};
      stat_into(s.location, s);
      if (!s.mode) s = SecretFacts{what, "none", "", std::nullopt, std::nullopt};
    }
    check_mode(s);
    report.secrets.push_back(std::move(s));
  }
  if (config.checkpoint.password_file.configured()) {
    auto s = describe_secret("Redis password", config.checkpoint.password_file);
    check_mode(s);
    report.secrets.push_back(std::move(s));
  } else {
    report.secrets.push_back({"Redis password", "none", "", std::nullopt, std::nullopt});
    add(report, Severity::Warning, "secrets", "Redis password",
        "the checkpoint Redis is used without AUTH: any process that reaches it can move the checkpoint",
        "create the ACL user of SECURITY.md and set checkpoint.password_file (and the user in "
        "checkpoint.redis)");
  }
  for (const auto& t : config.tables) {
    for (const auto& c : t.columns) {
      if (!c.transform) continue;
      if (const auto* h = std::get_if<config::HmacSha256>(&*c.transform)) {
        auto s = describe_secret("HMAC key of " + column_of(t.source, c.source), h->key_file);
        check_mode(s);
        report.secrets.push_back(std::move(s));
      }
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

RoleFacts read_role_facts(PGconn* conn) {
  RoleFacts f;
  {
    auto r = query(conn,
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
    auto r = query(conn,
                   "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname <> current_user AND "
                   "pg_catalog.pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1",
                   {}, "reading the role's memberships");
    for (int i = 0; i < PQntuples(r.get()); ++i) f.member_of.emplace_back(PQgetvalue(r.get(), i, 0));
  }
  {
    auto r = query(conn,
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
    auto r = query(conn, sql.c_str(), {}, "reading table privileges");
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
    auto r = query(conn, sql.c_str(), {}, "reading column privileges");
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
  auto r = query(conn, "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1", {name},
                 "reading publication " + name);
  if (PQntuples(r.get()) == 0) return p;
  p.exists = true;
  p.all_tables = is_true(r.get(), 0, 0);
  auto cols = query(
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

std::string render_text(const Report& r) {
  std::ostringstream o;
  o << "cdcsync audit: pipeline " << r.pipeline << " (" << r.config_file << ")\n\n";
  o << "Columns that cross to the order DB (source -> target, transform):\n";
  std::size_t width = 0;
  for (const auto& f : r.flows) width = std::max(width, f.source.size());
  for (const auto& f : r.flows) {
    o << "  " << f.source << std::string(width - f.source.size(), ' ') << "  ->  " << f.target << "  ("
      << f.transform << ")\n";
  }
  o << "\nColumns of the mapped source tables that stay at the source:\n  "
    << (r.kept_at_source.empty() ? std::string("(none)") : join(r.kept_at_source)) << "\n";
  o << "\nConnections:\n";
  for (const auto& c : r.connections) {
    o << "  " << c.name << ": " << c.endpoint << ", " << c.transport << ", " << c.tls << " -> "
      << (c.verified ? "ok" : "NOT VERIFIED") << "\n";
  }
  o << "\nSecrets:\n";
  for (const auto& s : r.secrets) {
    o << "  " << s.what << ": " << s.kind;
    if (!s.location.empty()) o << " " << s.location;
    if (const auto m = mode_text(s); !m.empty()) o << " (" << m << ")";
    o << "\n";
  }
  o << "\nRoles (what each role can actually do, read as that role):\n";
  for (const auto& role : r.roles) {
    o << "  " << role.server << ": " << role.role << " on database " << role.database << ": "
      << (role.attributes.empty() ? std::string("(no attributes)") : join(role.attributes, " ")) << "\n";
    if (!role.member_of.empty()) o << "    member of " << join(role.member_of) << "\n";
    for (const auto& g : role.grants) o << "    " << g << "\n";
  }
  o << "\nFindings:\n";
  if (r.findings.empty()) o << "  (none)\n";
  for (const auto& f : r.findings) {
    o << "  " << (f.severity == Severity::Violation ? "VIOLATION" : "WARNING") << " [" << f.area << "] "
      << f.object << ": " << f.problem << "\n      fix: " << f.fix << "\n";
  }
  const auto violations = r.count(Severity::Violation);
  const auto warnings = r.count(Severity::Warning);
  o << "\n"
    << violations << " violation(s), " << warnings
    << " warning(s): " << (violations == 0 ? "compliant" : "NOT compliant") << "\n";
  return o.str();
}

std::string render_json(const Report& r) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  const auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  const auto strings = [&](const char* key, const std::vector<std::string>& values) {
    w.Key(key);
    w.StartArray();
    for (const auto& v : values) w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    w.EndArray();
  };
  w.StartObject();
  str("pipeline", r.pipeline);
  str("config", r.config_file);
  w.Key("compliant");
  w.Bool(r.clean());
  w.Key("violations");
  w.Uint64(r.count(Severity::Violation));
  w.Key("warnings");
  w.Uint64(r.count(Severity::Warning));
  w.Key("columns");
  w.StartArray();
  for (const auto& f : r.flows) {
    w.StartObject();
    str("source", f.source);
    str("target", f.target);
    str("transform", f.transform);
    w.EndObject();
  }
  w.EndArray();
  strings("kept_at_source", r.kept_at_source);
  w.Key("connections");
  w.StartArray();
  for (const auto& c : r.connections) {
    w.StartObject();
    str("name", c.name);
    str("endpoint", c.endpoint);
    str("transport", c.transport);
    str("tls", c.tls);
    w.Key("verified");
    w.Bool(c.verified);
    w.EndObject();
  }
  w.EndArray();
  w.Key("secrets");
  w.StartArray();
  for (const auto& s : r.secrets) {
    w.StartObject();
    str("what", s.what);
    str("kind", s.kind);
    str("location", s.location);
    if (s.mode) str("mode", fmt::format("{:04o}", *s.mode));
    if (s.uid) {
      w.Key("uid");
      w.Uint(*s.uid);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("roles");
  w.StartArray();
  for (const auto& role : r.roles) {
    w.StartObject();
    str("server", role.server);
    str("role", role.role);
    str("database", role.database);
    strings("attributes", role.attributes);
    strings("member_of", role.member_of);
    strings("grants", role.grants);
    w.EndObject();
  }
  w.EndArray();
  w.Key("findings");
  w.StartArray();
  for (const auto& f : r.findings) {
    w.StartObject();
    str("severity", std::string(name_of(f.severity)));
    str("area", f.area);
    str("object", f.object);
    str("problem", f.problem);
    str("fix", f.fix);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace cdcsync::audit
