// The audit's rules on hand-made facts: what crosses, what must not be in the order DB, what each role may
// hold, TLS and secrets. The same facts as read from live servers are exercised in tests/e2e/security.
#include "daemon/tools/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace cdcsync::audit {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kConfig = R"(
pipeline = "audit-test"
[source]
conninfo = "host=127.0.0.1 dbname=customers user=cdcsync_source"
publication = "cdcsync_customers"
slot = "s"
[target]
conninfo = "host=127.0.0.1 dbname=orders user=cdcsync_target"
[checkpoint]
redis = "redis://127.0.0.1:6379/0"
[[tables]]
source  = "public.customers"
target  = "ref.customer"
key     = ["id"]
columns = { id = "customer_id", full_name = "display_name", status = "status", phone = "phone_tail" }
transforms = { phone = { mask = { keep_last = 2 } } }
deletes = "soft"
)";

config::Config test_config() {
  return config::load_config_from_string(kConfig, "audit.toml");
}

TablePrivileges table(std::string schema, std::string name, std::vector<std::string> columns,
                      std::set<std::string> privileges = {}) {
  TablePrivileges t;
  t.table = {std::move(schema), std::move(name)};
  t.columns = std::move(columns);
  t.privileges = std::move(privileges);
  for (const auto& c : t.columns) {
    for (const auto& p : {"SELECT", "INSERT", "UPDATE", "REFERENCES"}) {
      if (t.privileges.contains(p)) t.column_privileges[c].insert(p);
    }
  }
  return t;
}

void grant_columns(TablePrivileges& t, const std::string& privilege,
                   const std::vector<std::string>& columns) {
  for (const auto& c : columns) t.column_privileges[c].insert(privilege);
}

// The least-privilege plan of deploy/sql, as the roles would read it.
RoleFacts clean_source() {
  RoleFacts f;
  f.role = "cdcsync_source";
  f.database = "customers";
  f.attributes.login = true;
  f.attributes.replication = true;
  f.database_temp = true;
  auto customers =
      table("public", "customers", {"id", "full_name", "email", "phone", "status", "tier", "updated_at"});
  grant_columns(customers, "SELECT", {"id", "full_name", "phone", "status", "tier", "updated_at"});
  f.tables.push_back(customers);
  f.tables.push_back(table("public", "payment_methods", {"id", "customer_id", "card_token"}));
  return f;
}

Publication clean_publication() {
  Publication p;
  p.name = "cdcsync_customers";
  p.exists = true;
  p.columns[{"public", "customers"}] = {"id", "full_name", "phone", "status", "tier", "updated_at"};
  return p;
}

RoleFacts clean_target() {
  RoleFacts f;
  f.role = "cdcsync_target";
  f.database = "orders";
  f.attributes.login = true;
  f.database_temp = true;
  const std::set<std::string> rw = {"SELECT", "INSERT", "UPDATE", "DELETE"};
  f.tables.push_back(
      table("ref", "customer",
            {"customer_id", "display_name", "status", "phone_tail", "_cdc_lsn", "_cdc_deleted"}, rw));
  f.tables.push_back(table("ref", "cdc_progress", {"pipeline", "end_lsn", "xid", "acked_lsn"}, rw));
  f.tables.push_back(table("public", "orders", {"id", "customer_id", "placed_at", "status", "total"}));
  return f;
}

Report audit_all(const config::Config& c, const RoleFacts& source, const Publication& pub,
                 const RoleFacts& target) {
  Report r;
  audit_publication(c, pub, source, r);
  audit_source_role(c, pub, source, r);
  audit_target_columns(c, target, r);
  audit_copies(c, source, target, r);
  audit_target_role(c, target, r);
  return r;
}

std::vector<std::string> violations(const Report& r) {
  std::vector<std::string> out;
  for (const auto& f : r.findings) {
    if (f.severity == Severity::Violation) out.push_back(f.area + " " + f.object + ": " + f.problem);
  }
  return out;
}

const Finding* finding_on(const Report& r, const std::string& object) {
  for (const auto& f : r.findings) {
    if (f.object == object) return &f;
  }
  return nullptr;
}

const Finding* violation_on(const Report& r, const std::string& object) {
  for (const auto& f : r.findings) {
    if (f.object == object && f.severity == Severity::Violation) return &f;
  }
  return nullptr;
}

TEST(AuditColumns, ListsEveryMappedColumnWithItsTransform) {
  const auto flows = column_flows(test_config());
  ASSERT_EQ(flows.size(), 4u);
  EXPECT_EQ(flows[0].source, "public.customers.id");
  EXPECT_EQ(flows[0].target, "ref.customer.customer_id");
  EXPECT_EQ(flows[0].transform, "copy");
  EXPECT_EQ(flows[3].source, "public.customers.phone");
  EXPECT_EQ(flows[3].target, "ref.customer.phone_tail");
  EXPECT_EQ(flows[3].transform, "mask");
}

TEST(AuditRules, TheLeastPrivilegePlanHasNoViolation) {
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), clean_target());
  EXPECT_THAT(violations(r), ::testing::IsEmpty());
  EXPECT_THAT(r.kept_at_source, ::testing::ElementsAre("public.customers.email", "public.customers.tier",
                                                       "public.customers.updated_at"));
  // tier and updated_at are published without being mapped: reported, not failed.
  const auto* w = finding_on(r, "public.customers");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->severity, Severity::Warning);
  EXPECT_THAT(w->problem, HasSubstr("tier, updated_at are published but not mapped"));
  EXPECT_THAT(w->fix,
              HasSubstr("ALTER PUBLICATION cdcsync_customers SET TABLE public.customers (id, full_name, "
                        "status, phone)"));
}

TEST(AuditRules, AnUnmappedTargetColumnIsAViolationNamingIt) {
  auto target = clean_target();
  target.tables[0].columns.push_back("email");
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  const auto* f = finding_on(r, "ref.customer.email");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::Violation);
  EXPECT_EQ(
      f->fix,
      "ALTER TABLE ref.customer DROP COLUMN email; (or map a source column to it in tables[0].columns)");
}

TEST(AuditRules, TheGuardAndTombstoneColumnsAreExpected) {
  auto target = clean_target();
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  EXPECT_EQ(finding_on(r, "ref.customer._cdc_lsn"), nullptr);
  EXPECT_EQ(finding_on(r, "ref.customer._cdc_deleted"), nullptr);
}

TEST(AuditRules, AnyPrivilegeOnAnOrdersTableIsAViolation) {
  auto target = clean_target();
  target.tables[2].privileges.insert("SELECT");
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  const auto* f = finding_on(r, "public.orders");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::Violation);
  EXPECT_THAT(f->problem, HasSubstr("cdcsync_target holds SELECT"));
  EXPECT_EQ(f->fix.substr(0, 47), "REVOKE ALL ON public.orders FROM cdcsync_target");
}

TEST(AuditRules, AColumnPrivilegeOnAnOrdersTableCountsToo) {
  auto target = clean_target();
  grant_columns(target.tables[2], "UPDATE", {"status"});
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  const auto* f = finding_on(r, "public.orders");
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(f->problem, HasSubstr("UPDATE (status)"));
}

TEST(AuditRules, AnUnwrittenTableInTheReferenceSchemaIsAWarning) {
  auto target = clean_target();
  target.tables.push_back(table("ref", "loyalty_account", {"customer_id", "points"}, {"SELECT", "INSERT"}));
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  const auto* f = finding_on(r, "ref.loyalty_account");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::Warning);
}

TEST(AuditRules, TruncateOnAWrittenTableAndCreateAnywhereAreViolations) {
  auto target = clean_target();
  target.tables[0].privileges.insert("TRUNCATE");
  target.create_schemas = {"ref"};
  target.database_create = true;
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  EXPECT_EQ(finding_on(r, "ref.customer")->severity, Severity::Violation);
  EXPECT_THAT(finding_on(r, "schema ref")->fix, HasSubstr("REVOKE CREATE ON SCHEMA ref FROM cdcsync_target"));
  EXPECT_THAT(finding_on(r, "database orders")->fix, HasSubstr("REVOKE CREATE ON DATABASE orders"));
}

TEST(AuditRules, MissingPrivilegesTheSinkNeedsAreWarnings) {
  auto target = clean_target();
  target.tables[0].privileges.erase("DELETE");
  target.database_temp = false;
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  EXPECT_THAT(violations(r), ::testing::IsEmpty());
  EXPECT_EQ(finding_on(r, "ref.customer")->fix, "GRANT DELETE ON ref.customer TO cdcsync_target;");
  EXPECT_THAT(finding_on(r, "database orders")->problem, HasSubstr("lacks TEMP"));
}

TEST(AuditRules, RoleAttributesBeyondThePlanAreViolations) {
  auto source = clean_source();
  source.attributes.bypassrls = true;
  auto target = clean_target();
  target.attributes.replication = true;
  target.attributes.superuser = true;
  target.member_of = {"pg_read_all_data"};
  const auto r = audit_all(test_config(), source, clean_publication(), target);
  std::vector<std::string> fixes;
  for (const auto& f : r.findings) fixes.push_back(f.fix);
  EXPECT_THAT(
      fixes, ::testing::IsSupersetOf(
                 {"ALTER ROLE cdcsync_source NOBYPASSRLS;", "ALTER ROLE cdcsync_target NOREPLICATION;",
                  "ALTER ROLE cdcsync_target NOSUPERUSER;", "REVOKE pg_read_all_data FROM cdcsync_target;"}));
  EXPECT_EQ(violations(r).size(), 4u);
}

TEST(AuditRules, TheSourceRoleReadingAnUnpublishedTableOrColumnIsAViolation) {
  auto source = clean_source();
  grant_columns(source.tables[0], "SELECT", {"email"});
  source.tables[1].privileges.insert("SELECT");
  grant_columns(source.tables[1], "SELECT", {"id", "customer_id", "card_token"});
  const auto r = audit_all(test_config(), source, clean_publication(), clean_target());
  const auto* column = violation_on(r, "public.customers");
  ASSERT_NE(column, nullptr);
  EXPECT_THAT(column->problem, HasSubstr("can read email, which the publication does not publish"));
  const auto* unpublished = finding_on(r, "public.payment_methods");
  ASSERT_NE(unpublished, nullptr);
  EXPECT_THAT(unpublished->problem, HasSubstr("card_token"));
  EXPECT_THAT(unpublished->fix, HasSubstr("REVOKE SELECT ON public.payment_methods FROM cdcsync_source;"));
}

TEST(AuditRules, TheSourceRoleWritingIsAViolation) {
  auto source = clean_source();
  source.tables[0].privileges.insert("UPDATE");
  const auto r = audit_all(test_config(), source, clean_publication(), clean_target());
  ASSERT_EQ(violations(r).size(), 1u);
  EXPECT_THAT(violations(r)[0], HasSubstr("holds UPDATE on it"));
}

TEST(AuditRules, APublicationForAllTablesIsAViolation) {
  auto pub = clean_publication();
  pub.all_tables = true;
  pub.columns[{"public", "payment_methods"}] = {"id", "customer_id", "card_token"};
  const auto r = audit_all(test_config(), clean_source(), pub, clean_target());
  EXPECT_EQ(finding_on(r, "publication cdcsync_customers")->severity, Severity::Violation);
  EXPECT_EQ(finding_on(r, "public.payment_methods")->severity, Severity::Warning);  // published, unmapped
}

TEST(AuditRules, ATargetTableThatLooksLikeACopyOfTheSourceIsReported) {
  auto target = clean_target();
  target.tables.push_back(table("public", "customer_export", {"id", "full_name", "email", "status"}));
  const auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  const auto* f = finding_on(r, "public.customer_export");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->area, "copies");
  EXPECT_THAT(f->problem, HasSubstr("among them email"));
  // orders shares id and status with customers, but no column that stays at the source.
  EXPECT_EQ(finding_on(r, "public.orders"), nullptr);
}

ConnectionFacts connection(std::map<std::string, std::string> options, bool ssl = false) {
  ConnectionFacts c;
  c.name = "source";
  c.options = std::move(options);
  c.connected = true;
  c.ssl_in_use = ssl;
  c.ssl_protocol = ssl ? "TLSv1.3" : "";
  c.used_password = true;
  return c;
}

TEST(AuditTls, VerifyFullToARemoteHostIsVerified) {
  Report r;
  audit_connection(
      connection({{"host", "db.example.com"}, {"sslmode", "verify-full"}, {"sslrootcert", "/ca.crt"}}, true),
      r);
  ASSERT_EQ(r.connections.size(), 1u);
  EXPECT_TRUE(r.connections[0].verified);
  EXPECT_EQ(r.connections[0].transport, "TCP");
  EXPECT_THAT(r.connections[0].tls,
              HasSubstr("TLSv1.3, sslmode=verify-full, server certificate and host name verified"));
  EXPECT_TRUE(r.findings.empty());
}

TEST(AuditTls, AnUnverifiedRemoteConnectionIsAViolationEvenWhenAllowed) {
  for (const char* mode : {"require", "verify-ca", "prefer"}) {
    Report r;
    auto c = connection({{"host", "10.1.2.3"}, {"sslmode", mode}}, true);
    c.allow_insecure_tls = true;
    audit_connection(c, r);
    ASSERT_EQ(r.findings.size(), 1u) << mode;
    EXPECT_EQ(r.findings[0].object, "source connection");
    EXPECT_THAT(r.findings[0].problem, HasSubstr(std::string("sslmode=") + mode + " to 10.1.2.3"));
    EXPECT_THAT(r.findings[0].fix, HasSubstr("remove source.allow_insecure_tls"));
  }
}

TEST(AuditTls, LoopbackAndUnixSocketsAreReportedAsSuch) {
  Report r;
  audit_connection(connection({{"host", "127.0.0.1"}, {"port", "5433"}}), r);
  audit_connection(connection({{"host", "/run/postgresql"}}), r);
  audit_connection(connection({}), r);
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.connections[0].transport, "loopback TCP");
  EXPECT_EQ(r.connections[0].endpoint, "127.0.0.1:5433");
  EXPECT_EQ(r.connections[1].transport, "unix socket");
  EXPECT_EQ(r.connections[2].transport, "unix socket");
  for (const auto& c : r.connections) {
    EXPECT_TRUE(c.verified);
    EXPECT_THAT(c.tls, HasSubstr("does not leave this host"));
  }
}

TEST(AuditTls, RedisOffThisHostIsAViolation) {
  auto c = test_config();
  Report r;
  audit_redis(c.checkpoint, r);
  EXPECT_TRUE(r.findings.empty());
  c.checkpoint.endpoint.host = "redis.example.com";
  audit_redis(c.checkpoint, r);
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_THAT(r.findings[0].problem, HasSubstr("plain TCP"));
}

std::string temp_file(const std::string& name, mode_t mode) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << "x\n";
  chmod(path.c_str(), mode);
  return path;
}

TEST(AuditSecrets, NamesWhereEachSecretComesFrom) {
  auto c = test_config();
  c.source.password_file = {temp_file("audit_src_pw", 0600), temp_file("audit_src_pw", 0600)};
  c.checkpoint.password_file = {"credential:redis", temp_file("audit_redis_pw", 0640)};
  auto target = connection({{"passfile", temp_file("audit_pgpass", 0600)}});
  target.name = "target";
  Report r;
  audit_secrets(c, {connection({}), target}, std::nullopt, r);
  ASSERT_EQ(r.secrets.size(), 3u);
  EXPECT_EQ(r.secrets[0].kind, "file");
  EXPECT_EQ(r.secrets[0].mode, 0600u);
  EXPECT_EQ(r.secrets[1].kind, "pgpass");
  EXPECT_EQ(r.secrets[2].kind, "systemd credential");
  EXPECT_THAT(r.secrets[2].location, HasSubstr("redis ("));
  EXPECT_EQ(r.secrets[2].mode, 0640u);
  EXPECT_TRUE(r.findings.empty());
}

TEST(AuditSecrets, PgpasswordAndWideFilesAreViolations) {
  auto c = test_config();
  auto source = connection({{"passfile", temp_file("audit_pgpass_wide", 0644)}});
  auto target = connection({});
  target.name = "target";
  Report r;
  audit_secrets(c, {source, target}, std::string("hunter2"), r);
  ASSERT_EQ(violations(r).size(), 2u);
  EXPECT_EQ(r.secrets[0].kind, "environment");
  EXPECT_EQ(r.secrets[0].location, "PGPASSWORD");
  for (const auto& f : r.findings) EXPECT_THAT(f.problem + f.fix, ::testing::Not(HasSubstr("hunter2")));
  // The Redis checkpoint without AUTH is a warning.
  EXPECT_EQ(finding_on(r, "Redis password")->severity, Severity::Warning);

  Report wide;
  c.source.password_file = {temp_file("audit_wide_pw", 0644), temp_file("audit_wide_pw", 0644)};
  audit_secrets(c, {source, target}, std::nullopt, wide);
  ASSERT_NE(finding_on(wide, "source password"), nullptr);
  EXPECT_THAT(finding_on(wide, "source password")->problem, HasSubstr("mode 0644, wider than 0640"));
}

TEST(AuditReport, RendersTextAndJsonWithTheVerdict) {
  auto target = clean_target();
  target.tables[2].privileges.insert("SELECT");
  auto r = audit_all(test_config(), clean_source(), clean_publication(), target);
  r.pipeline = "audit-test";
  r.flows = column_flows(test_config());
  const auto text = render_text(r);
  EXPECT_THAT(text, HasSubstr("public.customers.phone      ->  ref.customer.phone_tail  (mask)"));
  EXPECT_THAT(text, HasSubstr("VIOLATION [target role] public.orders:"));
  EXPECT_THAT(text, HasSubstr("1 violation(s)"));
  EXPECT_THAT(text, HasSubstr("NOT compliant"));
  const auto json = render_json(r);
  EXPECT_THAT(json, HasSubstr("\"compliant\":false,\"violations\":1"));
  EXPECT_THAT(json, HasSubstr("{\"source\":\"public.customers.id\",\"target\":\"ref.customer.customer_id\","
                              "\"transform\":\"copy\"}"));
  EXPECT_THAT(json,
              HasSubstr("\"severity\":\"violation\",\"area\":\"target role\",\"object\":\"public.orders\""));
}

}  // namespace
}  // namespace cdcsync::audit
