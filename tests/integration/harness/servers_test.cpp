// The harness itself: two separate PostgreSQL 15 servers with the demo schema and roles, and a Redis.
#include "tests/harness/servers.h"

#include <gtest/gtest.h>

namespace cdcsync::test {
namespace {

TEST(Harness, CustomerServerDecodesLogically) {
  const auto& s = TestServers::get();
  EXPECT_EQ(query_value(s.source_conninfo(), "SHOW wal_level"), "logical");
  EXPECT_EQ(query_value(s.source_conninfo(), "SELECT rolreplication::text FROM pg_roles WHERE rolname = current_user"),
            "true");
  EXPECT_EQ(query_value(s.source_conninfo(), "SELECT string_agg(tablename, ',' ORDER BY tablename) "
                                             "FROM pg_publication_tables WHERE pubname = 'cdcsync_customers'"),
            "customers,loyalty_accounts");
}

TEST(Harness, OrderServerIsADifferentServer) {
  const auto& s = TestServers::get();
  EXPECT_NE(s.port(Server::Customer), s.port(Server::Order));
  const auto customer_id = query_value(s.admin_conninfo(Server::Customer, "postgres"),
                                       "SELECT system_identifier::text FROM pg_control_system()");
  const auto order_id = query_value(s.admin_conninfo(Server::Order, "postgres"),
                                    "SELECT system_identifier::text FROM pg_control_system()");
  ASSERT_TRUE(customer_id && order_id);
  EXPECT_NE(*customer_id, *order_id);
  EXPECT_EQ(query_value(s.target_conninfo(), "SELECT count(*)::text FROM ref.customer"), "0");
}

TEST(Harness, RolesAreLeastPrivilege) {
  const auto& s = TestServers::get();
  EXPECT_THROW(exec_sql(s.source_conninfo(), "SELECT card_token FROM public.payment_methods"), PgError);
  EXPECT_THROW(exec_sql(s.source_conninfo(), "SELECT email FROM public.customers"), PgError);
  EXPECT_NO_THROW(exec_sql(s.source_conninfo(), "SELECT id, full_name, status, tier FROM public.customers"));
  EXPECT_THROW(exec_sql(s.target_conninfo(), "SELECT * FROM public.orders"), PgError);
  EXPECT_THROW(exec_sql(s.target_conninfo(), "CREATE TABLE ref.sneaky (id int)"), PgError);
  EXPECT_NO_THROW(exec_sql(s.target_conninfo(), "SELECT * FROM ref.customer"));
}

TEST(Harness, RedisAnswersRoundTrip) {
  EXPECT_EQ(redis_command({"SET", "cdcsync:test:harness", "ok"}), "OK");
  EXPECT_EQ(redis_command({"GET", "cdcsync:test:harness"}), "ok");
  EXPECT_EQ(redis_command({"DEL", "cdcsync:test:harness"}), "1");
}

}  // namespace
}  // namespace cdcsync::test
