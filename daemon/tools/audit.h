// `cdcsync audit`: the compliance check the data segregation decision asks for ("database audits to ensure
// customer and order data are independently managed and access controls are in place").
//
// The report says which source columns cross to which target columns (and through which transform), which
// target columns and tables hold data the mapping does not put there, what the source and target roles can
// actually do (read by each role itself through pg_roles and has_*_privilege, so no admin login is needed)
// against the least-privilege plan of deploy/sql, whether each connection verifies its server (TLS
// verify-full, or a loopback/unix-socket connection), and where each secret comes from.
//
// The rules are pure functions of facts (RoleFacts, Publication, ConnectionFacts, SecretFacts), so they are
// unit-tested without servers; read_*() gathers the facts from a live connection and run() does everything.
// A Violation makes `cdcsync audit` exit 1; a Warning is reported but does not fail the audit.
#pragma once

#include <libpq-fe.h>

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/config/config.h"

namespace cdcsync::audit {

using config::QualifiedName;

enum class Severity { Violation, Warning };
std::string_view name_of(Severity s);  // "violation" | "warning"

struct Finding {
  Severity severity = Severity::Violation;
  std::string area;     // columns, copies, source role, target role, tls, secrets, audit
  std::string object;   // what it is about: ref.customer.email, public.orders, role cdcsync_target, ...
  std::string problem;  // names only, never values
  std::string fix;      // the SQL or the step that removes it
};

// One source column that reaches the order DB.
struct ColumnFlow {
  std::string source;     // public.customers.full_name
  std::string target;     // ref.customer.display_name
  std::string transform;  // copy | hmac_sha256 | mask | constant
};

struct RoleAttributes {
  bool superuser = false;
  bool bypassrls = false;
  bool replication = false;
  bool createdb = false;
  bool createrole = false;
  bool login = false;
};

// One relation of the database and what the role may do with it.
struct TablePrivileges {
  QualifiedName table;
  bool owned = false;                // the role owns it (or is a member of its owner)
  std::set<std::string> privileges;  // table-level: SELECT INSERT UPDATE DELETE TRUNCATE REFERENCES TRIGGER
  std::vector<std::string> columns;  // every live column, in order
  // Column -> the column privileges (SELECT INSERT UPDATE REFERENCES) the role holds on it, table-level
  // ones included; columns with none are absent.
  std::map<std::string, std::set<std::string>> column_privileges;
};

// What one role holds in one database.
struct RoleFacts {
  std::string role;
  std::string database;
  RoleAttributes attributes;
  std::vector<std::string> member_of;       // roles whose privileges it has
  std::vector<TablePrivileges> tables;      // every relation outside the system schemas
  std::vector<std::string> create_schemas;  // schemas where it may CREATE
  std::vector<std::string> owned_schemas;
  bool database_create = false;
  bool database_temp = false;
  bool database_owner = false;
  const TablePrivileges* find(const QualifiedName& t) const;
};

struct Publication {
  std::string name;
  bool exists = false;
  bool all_tables = false;
  std::map<QualifiedName, std::vector<std::string>> columns;  // published table -> published columns
};

// A PostgreSQL connection as libpq uses it (effective options, environment included) and what it got.
struct ConnectionFacts {
  std::string name;                            // source | target
  std::map<std::string, std::string> options;  // host, hostaddr, port, sslmode, sslrootcert, sslcert, ...
  bool allow_insecure_tls = false;
  bool connected = false;
  bool ssl_in_use = false;
  std::string ssl_protocol;  // TLSv1.3
  bool used_password = false;
};

// Where one secret comes from.
struct SecretFacts {
  std::string what;      // "source password", "HMAC key of public.customers.email"
  std::string kind;      // file | systemd credential | pgpass | environment | client certificate | none
  std::string location;  // path, credential name, variable; empty for none
  std::optional<unsigned> mode;
  std::optional<unsigned> uid;
};

struct ConnectionReport {
  std::string name;       // source | target | checkpoint
  std::string endpoint;   // 127.0.0.1:5432, unix socket /run/postgresql, ...
  std::string transport;  // unix socket | loopback TCP | TCP
  std::string tls;        // what protects it
  bool verified = false;  // sslmode=verify-full, or nothing leaves the host
};

struct RoleReport {
  std::string server;  // source | target
  std::string role;
  std::string database;
  std::vector<std::string> attributes;  // LOGIN, REPLICATION, ...
  std::vector<std::string> member_of;
  std::vector<std::string> grants;  // "SELECT (id, full_name) ON public.customers", "TEMP ON DATABASE orders"
};

struct Report {
  std::string pipeline;
  std::string config_file;
  std::vector<ColumnFlow> flows;
  std::vector<std::string> kept_at_source;  // columns of the mapped source tables that never cross
  std::vector<ConnectionReport> connections;
  std::vector<SecretFacts> secrets;
  std::vector<RoleReport> roles;
  std::vector<Finding> findings;

  std::size_t count(Severity s) const;
  bool clean() const { return count(Severity::Violation) == 0; }
};

// Rules (pure).
std::vector<ColumnFlow> column_flows(const config::Config& config);
// Published and mapped columns: what stays at the source, what is published without being mapped.
void audit_publication(const config::Config& config, const Publication& publication, const RoleFacts& source,
                       Report& report);
// Columns of the mapped target tables that the mapping does not write.
void audit_target_columns(const config::Config& config, const RoleFacts& target, Report& report);
// Target tables the pipeline does not write that share columns with a mapped source table, among them
// columns that must not cross (a copy of the PII made by other means).
void audit_copies(const config::Config& config, const RoleFacts& source, const RoleFacts& target,
                  Report& report);
void audit_source_role(const config::Config& config, const Publication& publication, const RoleFacts& source,
                       Report& report);
void audit_target_role(const config::Config& config, const RoleFacts& target, Report& report);
void audit_connection(const ConnectionFacts& connection, Report& report);
void audit_redis(const config::CheckpointConfig& checkpoint, Report& report);
// `pgpassword` is $PGPASSWORD when set (libpq prefers it to a pgpass file).
void audit_secrets(const config::Config& config, const std::vector<ConnectionFacts>& connections,
                   const std::optional<std::string>& pgpassword, Report& report);
RoleReport summarize(const std::string& server, const RoleFacts& role);

// Where a configured secret file lives, with its mode and owner (stat only; never read).
SecretFacts describe_secret(const std::string& what, const config::SecretFile& secret);

// Facts from a live connection (throw PgError).
RoleFacts read_role_facts(PGconn* conn);
Publication read_publication(PGconn* conn, const std::string& name);
ConnectionFacts read_connection(const std::string& name, PGconn* conn, bool allow_insecure_tls);
// The effective options of a conninfo that could not connect (libpq's defaults and environment filled in).
ConnectionFacts parse_connection(const std::string& name, const std::string& conninfo,
                                 bool allow_insecure_tls);

// The whole audit against the live servers; a server that cannot be reached is a violation.
Report run(const config::Config& config);

std::string render_text(const Report& report);
std::string render_json(const Report& report);

}  // namespace cdcsync::audit
