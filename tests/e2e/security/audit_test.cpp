// `cdcsync audit` against the test servers with the deploy/sql roles: the plan is compliant; a grant on an
// orders table or an unmapped column in a reference table makes it exit 1 naming the object.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/e2e/security/security_fixture.h"

namespace cdcsync::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Audit, TheDeployRolesAreCompliantAndAGrantOnOrdersOrAnUnmappedColumnIsNot) {
  SecurityPipeline p("audit");
  const auto config = p.write_config("audit");

  const auto clean = p.cdcsync({"audit", "--config", config});
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_THAT(clean.out,
              ::testing::ContainsRegex(
                  "public\\.customers\\.full_name +->  ref\\.customer\\.display_name  \\(copy\\)"));
  EXPECT_THAT(clean.out, HasSubstr("0 violation(s)"));
  EXPECT_THAT(clean.out, HasSubstr("public.customers.email"));  // stays at the source
  // What the roles hold, read as the roles themselves.
  EXPECT_THAT(clean.out,
              HasSubstr("source: cdcsync_source on database " + p.customers_db() + ": LOGIN REPLICATION"));
  EXPECT_THAT(clean.out,
              HasSubstr("SELECT (id, full_name, status, tier, balance, updated_at) ON public.customers"));
  EXPECT_THAT(clean.out, HasSubstr("SELECT, INSERT, UPDATE, DELETE ON ref.customer"));
  EXPECT_THAT(clean.out, Not(HasSubstr("ON public.orders")));
  EXPECT_THAT(clean.out, HasSubstr("source: 127.0.0.1:"));
  EXPECT_THAT(clean.out, HasSubstr("loopback TCP"));
  EXPECT_THAT(clean.out,
              HasSubstr("source password: pgpass " + TestServers::get().passfile() + " (mode 0600"));

  const auto json = p.cdcsync({"audit", "--config", config, "--json"});
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_THAT(json.out, HasSubstr("\"compliant\":true,\"violations\":0"));
  EXPECT_THAT(
      json.out,
      HasSubstr("{\"source\":\"public.loyalty_accounts.points\",\"target\":\"ref.loyalty_account.points\","
                "\"transform\":\"copy\"}"));

  exec_sql(p.order_admin(), "GRANT SELECT ON public.orders TO cdcsync_target");
  const auto granted = p.cdcsync({"audit", "--config", config});
  EXPECT_EQ(granted.exit_code, 1);
  EXPECT_THAT(granted.out, HasSubstr("VIOLATION [target role] public.orders: cdcsync_target holds SELECT"));
  EXPECT_THAT(granted.out, HasSubstr("fix: REVOKE ALL ON public.orders FROM cdcsync_target;"));
  const auto granted_json = p.cdcsync({"audit", "--config", config, "--json"});
  EXPECT_EQ(granted_json.exit_code, 1);
  EXPECT_THAT(granted_json.out,
              HasSubstr("\"severity\":\"violation\",\"area\":\"target role\",\"object\":\"public.orders\""));
  exec_sql(p.order_admin(), "REVOKE SELECT ON public.orders FROM cdcsync_target");
  EXPECT_EQ(p.cdcsync({"audit", "--config", config}).exit_code, 0);

  exec_sql(p.order_admin(), "ALTER TABLE ref.customer ADD COLUMN email text");
  const auto unmapped = p.cdcsync({"audit", "--config", config});
  EXPECT_EQ(unmapped.exit_code, 1);
  EXPECT_THAT(unmapped.out,
              HasSubstr("VIOLATION [target columns] ref.customer.email: is not in the mapping"));
  EXPECT_THAT(unmapped.out, HasSubstr("fix: ALTER TABLE ref.customer DROP COLUMN email;"));
  exec_sql(p.order_admin(), "ALTER TABLE ref.customer DROP COLUMN email");

  // The source role reading a column the publication keeps back.
  exec_sql(p.customer_admin(), "GRANT SELECT (email) ON public.customers TO cdcsync_source");
  const auto reads_pii = p.cdcsync({"audit", "--config", config});
  EXPECT_EQ(reads_pii.exit_code, 1);
  EXPECT_THAT(reads_pii.out,
              HasSubstr("VIOLATION [source role] public.customers: cdcsync_source can read email, which the "
                        "publication does not publish"));
}

TEST(Audit, AnUnreachableServerFailsTheAudit) {
  SecurityPipeline p("auditdown");
  PipelineOptions o;
  o.target_conninfo =
      "host=127.0.0.1 port=" + std::to_string(free_port()) + " dbname=orders user=cdcsync_target";
  const auto r = p.cdcsync({"audit", "--config", p.write_config("down", o)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("VIOLATION [audit] target database: could not be audited: cannot connect"));
}

TEST(Audit, WithoutConfigItIsAUsageError) {
  SecurityPipeline p("auditusage");
  const auto r = p.cdcsync({"audit"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--config is required"));
}

}  // namespace
}  // namespace cdcsync::test
