// The initial snapshot through the bulk loader: several tables over several sessions (cut by ctid, or by key
// where the role cannot read ctid) equal the source, the metrics count them, and a kill -9 in the middle of a
// parallel load followed by a restart resumes it and ends equal to the source, with rows deleted, updated and
// added on the source between the two attempts.
#include <gtest/gtest.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "tests/e2e/sync/sync_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Enough rows for more than one part per table (a table is cut from 16 MB on).
constexpr long long kCustomers = 300'000;

constexpr const char* kLoyaltyMapping =
    "\n[[tables]]\nsource  = \"public.loyalty_accounts\"\ntarget  = \"ref.loyalty_account\"\n"
    "key     = [\"customer_id\"]\ncolumns = { customer_id = \"customer_id\", points = \"points\", "
    "level = \"level\" }\ndeletes = \"hard\"\n";

void seed(const SyncPipeline& p, long long customers) {
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (id, full_name, email, phone, address, status, tier, balance) "
      "SELECT g, 'Customer ' || g, 'customer' || g || '@example.test', '+1555' || g, g || ' Main Street', "
      "(ARRAY['active', 'suspended', 'closed'])[1 + g % 3], (ARRAY['standard', 'silver', 'gold'])[1 + g % "
      "3], "
      "g % 1000 FROM generate_series(1, " +
          std::to_string(customers) +
          ") g; SELECT setval(pg_get_serial_sequence('public.customers', 'id'), " +
          std::to_string(customers) +
          "); INSERT INTO public.loyalty_accounts (customer_id, points, level) SELECT g, g % 5000, "
          "(ARRAY['bronze', 'silver', 'gold'])[1 + g % 3] FROM generate_series(1, " +
          std::to_string(customers) + ", 3) g; ANALYZE public.customers, public.loyalty_accounts");
}

std::optional<std::string> loyalty_digest(const std::string& conninfo, const std::string& table) {
  return query_value(conninfo,
                     "SELECT count(*) || ' ' || coalesce(md5(string_agg(customer_id || ',' || "
                     "points || ',' || level, E'\\n' ORDER BY customer_id)), '-') FROM " +
                         table);
}

void expect_loyalty_equal(const SyncPipeline& p) {
  EXPECT_EQ(loyalty_digest(p.customer_admin(), "public.loyalty_accounts"),
            loyalty_digest(p.order_admin(), "ref.loyalty_account"))
      << "ref.loyalty_account is not the projection of public.loyalty_accounts";
}

long long target_rows(const SyncPipeline& p) {
  return std::stoll(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer").value_or("0"));
}

// The value of `series` (its name and labels as exposed) in a scrape; -1 when absent.
double metric(const std::string& scrape, const std::string& series) {
  const auto at = scrape.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(scrape.substr(at + series.size() + 2));
}

TEST(InitialSnapshot, AParallelLoadOfSeveralTablesEqualsTheSourceAndIsCountedInTheMetrics) {
  SyncPipeline p{"snap_parallel"};
  seed(p, kCustomers);
  // A role granted before ctid was: the large table is cut by key ranges from its statistics instead.
  exec_sql(p.customer_admin(), "REVOKE SELECT (ctid) ON public.customers FROM cdcsync_source");
  ConfigOptions co;
  co.metrics_port = free_port();
  co.extra = std::string(kLoyaltyMapping) + "\n[snapshot]\nparallel = 3\n";
  auto daemon = p.daemon("cdcsync", co);
  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, "snapshot complete", 120s)) << daemon->log_tail();
  EXPECT_EQ(
      daemon->log_count("part(s) by key range (ctid is not readable), binary, straight into the empty table"),
      1u)
      << daemon->log_tail();
  EXPECT_EQ(daemon->log_count("part(s), binary, straight into the empty table"), 1u) << daemon->log_tail();
  EXPECT_EQ(daemon->log_count("ref.customer <- public.customers: " + std::to_string(kCustomers) +
                              " rows in 1 part"),
            0u)
      << "the large table was not split:\n"
      << daemon->log_tail();
  ASSERT_TRUE(wait_for_log(*daemon, std::string(kStreaming), 30s)) << daemon->log_tail();

  // Changes after the snapshot stream on top of it.
  exec_sql(
      p.customer_admin(),
      "UPDATE public.customers SET tier = 'gold' WHERE id % 1000 = 7; DELETE FROM public.customers WHERE id "
      "% 1000 = 9; UPDATE public.loyalty_accounts SET points = points + 1 WHERE customer_id % 100 = 1");
  std::set<long long> deleted;
  for (long long id = 9; id <= kCustomers; id += 1000) deleted.insert(id);
  p.expect_oracle(deleted, 120s, daemon.get());
  expect_loyalty_equal(p);

  const std::string scrape = http_get(co.metrics_port, "/metrics");
  const std::string labels = "{pipeline=\"" + p.pipeline() + "\",table=\"ref.customer\"}";
  EXPECT_EQ(metric(scrape, "cdcsync_snapshot_rows_total" + labels), static_cast<double>(kCustomers))
      << scrape;
  EXPECT_EQ(metric(scrape, "cdcsync_snapshot_rows_estimate" + labels), static_cast<double>(kCustomers))
      << scrape;
  EXPECT_GT(metric(scrape, "cdcsync_snapshot_rows_total{pipeline=\"" + p.pipeline() +
                               "\",table=\"ref.loyalty_account\"}"),
            0)
      << scrape;
  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(15s), 0) << daemon->log_tail();
}

TEST(InitialSnapshot, AKillDuringAParallelLoadThenARestartResumesItAndEndsEqualToTheSource) {
  SyncPipeline p{"snap_kill"};
  seed(p, kCustomers);
  ConfigOptions co;
  co.lease_ttl_ms = 1000;  // the killed daemon's lease lapses quickly
  co.renew_ms = 300;
  co.extra = std::string(kLoyaltyMapping) + "\n[snapshot]\nparallel = 2\n";
  auto daemon = p.daemon("cdcsync", co);
  ConfirmedNeverAheadSampler sampler{p};
  daemon->start();
  // Killed once some parts of the large table have committed and before the load is over.
  ASSERT_TRUE(eventually([&] { return target_rows(p) > 0 || daemon->log_count("snapshot complete") > 0; },
                         120s, milliseconds(20)))
      << daemon->log_tail();
  daemon->kill();
  ASSERT_EQ(daemon->wait_exit(10s), 128 + SIGKILL);
  ASSERT_EQ(daemon->log_count("snapshot complete"), 0u) << "the load was over before the kill";
  const long long left = target_rows(p);
  std::cout << "[ e2e      ] killed with " << left << " of " << kCustomers << " customers copied"
            << std::endl;
  EXPECT_LT(left, kCustomers);

  // Between the attempts: rows the first attempt copied are deleted and updated on the source, others added.
  exec_sql(
      p.customer_admin(),
      "DELETE FROM public.loyalty_accounts WHERE customer_id <= 3000; "
      "DELETE FROM public.customers WHERE id <= 2000 OR id % 997 = 0; "
      "UPDATE public.customers SET full_name = 'renamed ' || id, tier = 'gold' WHERE id BETWEEN 2001 AND "
      "4000 "
      "OR id % 991 = 0; "
      "INSERT INTO public.customers (full_name, email) SELECT 'late ' || g, 'late' || g || '@example.test' "
      "FROM generate_series(1, 500) g; "
      "UPDATE public.loyalty_accounts SET points = -1 WHERE customer_id BETWEEN 3001 AND 6000");

  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, "snapshot complete", 120s)) << daemon->log_tail();
  EXPECT_EQ(daemon->log_count("resuming it"), 1u) << daemon->log_tail();
  // And changes while it streams again.
  exec_sql(p.customer_admin(),
           "UPDATE public.customers SET status = 'closed' WHERE id BETWEEN 4001 AND 4100");
  p.expect_oracle({}, 120s, daemon.get());
  expect_loyalty_equal(p);
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer WHERE customer_id <= 2000"), "0")
      << "rows deleted on the source between the attempts survived in the target";
  EXPECT_EQ(query_value(p.order_admin(),
                        "SELECT string_agg(DISTINCT phase, ',') FROM ref.cdc_table_state WHERE "
                        "pipeline = '" +
                            p.pipeline() + "'"),
            "streaming");
  sampler.stop();
  EXPECT_TRUE(sampler.violations().empty()) << sampler.violations().front();
  EXPECT_EQ(daemon->log_count("critical"), 0u) << daemon->log_tail();
  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(15s), 0) << daemon->log_tail();
}

TEST(InitialSnapshot, RebuildIndexesBuildsThemAfterTheDataAndAKillInBetweenLosesNone) {
  SyncPipeline p{"snap_idx"};
  seed(p, kCustomers);
  // The opt-in: the target role owns the table and may create in its schema (more than the least
  // privilege); a second index besides the primary key.
  exec_sql(p.order_admin(),
           "ALTER TABLE ref.customer OWNER TO cdcsync_target; GRANT CREATE ON SCHEMA ref TO cdcsync_target; "
           "CREATE INDEX customer_tier ON ref.customer (tier)");
  const std::string indexes =
      "SELECT string_agg(pg_get_indexdef(indexrelid), '; ' ORDER BY indexrelid::regclass::text) FROM "
      "pg_index "
      "WHERE indrelid = 'ref.customer'::regclass";
  const std::string deferred =
      "SELECT coalesce(cardinality(deferred_indexes), 0) FROM ref.cdc_table_state WHERE target_table = "
      "'ref.customer'";
  const auto before = query_value(p.order_admin(), indexes);
  ASSERT_TRUE(before);
  ConfigOptions co;
  co.lease_ttl_ms = 1000;
  co.renew_ms = 300;
  co.extra = "\n[snapshot]\nparallel = 2\nrebuild_indexes = true\n";
  auto daemon = p.daemon("cdcsync", co);
  daemon->start();
  ASSERT_TRUE(eventually([&] { return target_rows(p) > 0 || daemon->log_count("snapshot complete") > 0; },
                         120s, milliseconds(20)))
      << daemon->log_tail();
  daemon->kill();
  ASSERT_EQ(daemon->wait_exit(10s), 128 + SIGKILL);
  ASSERT_EQ(daemon->log_count("snapshot complete"), 0u) << "the load was over before the kill";
  EXPECT_EQ(daemon->log_count("2 index(es) built after the data"), 1u) << daemon->log_tail();
  if (target_rows(p) < kCustomers) {
    // Killed mid-copy: the indexes are gone, and the statements that build them are kept.
    EXPECT_EQ(query_value(p.order_admin(), indexes), std::nullopt);
    EXPECT_EQ(query_value(p.order_admin(), deferred), "2");
  }
  exec_sql(p.customer_admin(),
           "DELETE FROM public.customers WHERE id <= 1000; "
           "UPDATE public.customers SET full_name = 'renamed ' || id WHERE id BETWEEN 1001 AND 2000");

  daemon->start();
  ASSERT_TRUE(wait_for_log(*daemon, "snapshot complete", 120s)) << daemon->log_tail();
  EXPECT_EQ(daemon->log_count("index(es) built in"), 1u) << daemon->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), indexes), before) << "the indexes came back different";
  EXPECT_EQ(query_value(p.order_admin(), deferred), "0");
  // Streaming upserts under the key the primary key built again enforces.
  exec_sql(p.customer_admin(),
           "UPDATE public.customers SET status = 'closed' WHERE id BETWEEN 2001 AND 2100");
  p.expect_oracle({}, 120s, daemon.get());
  EXPECT_EQ(daemon->log_count("critical"), 0u) << daemon->log_tail();
  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(15s), 0) << daemon->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
