// End to end: a table added to a streaming pipeline is copied online (daemon/core/online_copy.h), under load,
// through a kill during the copy, and ends equal to the source projection.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "tests/e2e/sync/sync_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

constexpr long long kCustomers = 300'000;

constexpr const char* kLoyaltyMapping =
    "\n[[tables]]\nsource  = \"public.loyalty_accounts\"\ntarget  = \"ref.loyalty_account\"\n"
    "key     = [\"customer_id\"]\ncolumns = { customer_id = \"customer_id\", points = \"points\", "
    "level = \"level\" }\ndeletes = \"hard\"\n";

void seed(const SyncPipeline& p) {
  const std::string n = std::to_string(kCustomers);
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (id, full_name, email, tier) SELECT g, 'Customer ' || g, 'customer' || g "
      "|| '@example.test', (ARRAY['standard', 'silver', 'gold'])[1 + g % 3] FROM generate_series(1, " +
          n + ") g; SELECT setval(pg_get_serial_sequence('public.customers', 'id'), " + n +
          "); INSERT INTO public.loyalty_accounts (customer_id, points, level) SELECT g, g % 5000, "
          "(ARRAY['bronze', 'silver', 'gold'])[1 + g % 3] FROM generate_series(1, " +
          n + ") g; ANALYZE public.customers, public.loyalty_accounts");
}

std::optional<std::string> loyalty_digest(const std::string& conninfo, const std::string& table) {
  return query_value(
      conninfo,
      "SELECT count(*) || ' ' || coalesce(md5(string_agg(customer_id || ',' || points || ',' || "
      "level, E'\\n' ORDER BY customer_id)), '-') FROM " +
          table);
}

std::optional<std::string> loyalty_phase(const SyncPipeline& p) {
  return query_value(p.order_admin(), "SELECT phase FROM ref.cdc_table_state WHERE pipeline = '" +
                                          p.pipeline() + "' AND target_table = 'ref.loyalty_account'");
}

// Writes both tables until stopped: loyalty points updated, customers (and their loyalty rows, by cascade)
// deleted, customers with a loyalty row inserted. Remembers the deleted customer ids.
class Writers {
 public:
  explicit Writers(const std::string& conninfo) {
    thread_ = std::thread([this, conninfo] {
      std::mt19937_64 rng{test_seed("online copy writers")};
      std::uniform_int_distribution<long long> id(1, kCustomers);
      PgConn conn = pg_connect(conninfo, "the customer database");
      for (std::uint64_t i = 0; !stop_; ++i) {
        const long long k = id(rng);
        if (i % 10 == 3) {
          pg_exec(conn.get(), ("DELETE FROM public.customers WHERE id = " + std::to_string(k)).c_str(),
                  "delete", PGRES_COMMAND_OK);
          const std::lock_guard lock(mu_);
          deleted_.insert(k);
        } else if (i % 10 == 7) {
          pg_exec(conn.get(),
                  "WITH c AS (INSERT INTO public.customers (full_name, email) VALUES ('new', 'n' || "
                  "gen_random_uuid() || '@example.test') RETURNING id) INSERT INTO public.loyalty_accounts "
                  "(customer_id, points, level) SELECT id, 1, 'new' FROM c",
                  "insert", PGRES_COMMAND_OK);
        } else {
          pg_exec(conn.get(),
                  ("UPDATE public.loyalty_accounts SET points = points + 1 WHERE customer_id = " +
                   std::to_string(k))
                      .c_str(),
                  "update", PGRES_COMMAND_OK);
        }
        ++writes_;
      }
    });
  }
  ~Writers() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t writes() const { return writes_.load(); }
  std::set<long long> deleted() const {
    const std::lock_guard lock(mu_);
    return deleted_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> writes_{0};
  mutable std::mutex mu_;
  std::set<long long> deleted_;
  std::thread thread_;
};

TEST(SyncOnlineCopy, ATableAddedUnderLoadIsCopiedOnlineThroughAKillMidCopyAndEqualsTheSourceProjection) {
  SyncPipeline p{"online_copy"};
  seed(p);
  exec_sql(p.customer_admin(), "ALTER PUBLICATION cdcsync_customers DROP TABLE public.loyalty_accounts");
  ConfigOptions co;
  co.metrics_port = free_port();
  co.extra = "\n[snapshot]\nparallel = 1\n";
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 120s)) << d->log_tail();

  Writers writers{p.customer_admin()};
  ASSERT_TRUE(eventually([&] { return writers.writes() > 50; }, 30s, 50ms));

  // The table added by a reload while the publication lacks it: the log says the exact statement to run.
  ConfigOptions with_loyalty = co;
  with_loyalty.extra += kLoyaltyMapping;
  d->rewrite_config(p.config(with_loyalty));
  const std::string alter =
      "ALTER PUBLICATION cdcsync_customers ADD TABLE public.loyalty_accounts (customer_id, points, level)";
  const CliRun check = run_cli("check --config " + d->config_path());
  EXPECT_NE(check.code, 0) << check.out;
  EXPECT_NE(check.out.find(alter), std::string::npos) << "check prints the exact statement:\n" << check.out;
  d->hangup();
  ASSERT_TRUE(wait_for_log(*d, "is not in publication cdcsync_customers", 60s)) << d->log_tail();
  std::smatch m;
  const std::string log = d->log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("run: (ALTER PUBLICATION [^;]+);"))) << d->log_tail();
  EXPECT_EQ(
      m[1].str(),
      "ALTER PUBLICATION cdcsync_customers ADD TABLE public.loyalty_accounts (customer_id, points, level)");
  EXPECT_NE(loyalty_phase(p), "streaming") << "copied before it was published";
  exec_sql(p.customer_admin(), m[1].str());

  // Killed while the copy is under way: the state says copying.
  ASSERT_TRUE(eventually([&] { return loyalty_phase(p) == "copying"; }, 60s, 10ms)) << d->log_tail();
  d->kill();
  ASSERT_TRUE(d->wait_exit(10s).has_value());
  ASSERT_EQ(loyalty_phase(p), "copying") << "the kill came after the copy:\n" << d->log_tail();

  // Restarted: the copy starts again at a new snapshot and ends; streaming went on throughout.
  d->start();
  ASSERT_TRUE(wait_for_log(*d, "online copy: ref.loyalty_account copied at", 180s)) << d->log_tail();
  EXPECT_EQ(loyalty_phase(p), "streaming");
  const std::uint64_t after_copy = writers.writes();
  ASSERT_TRUE(eventually([&] { return writers.writes() > after_copy + 50; }, 30s, 50ms));
  writers.stop();
  p.expect_oracle(writers.deleted(), 120s, d.get());
  EXPECT_EQ(loyalty_digest(p.customer_admin(), "public.loyalty_accounts"),
            loyalty_digest(p.order_admin(), "ref.loyalty_account"))
      << "ref.loyalty_account is not the projection of public.loyalty_accounts";

  // `cdcsync status --json`: the daemon streaming, the positions with their lag, the table streaming.
  const CliRun status = run_cli("status --json --config " + d->config_path());
  EXPECT_EQ(status.code, 0) << status.out;
  rapidjson::Document doc;
  doc.Parse(status.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << status.out;
  EXPECT_TRUE(doc["daemon"]["running"].GetBool()) << status.out;
  EXPECT_STREQ(doc["daemon"]["state"].GetString(), "streaming") << status.out;
  EXPECT_TRUE(doc["positions"]["target"]["lag_bytes"].IsUint64()) << status.out;
  EXPECT_TRUE(doc["positions"]["slot"]["lag_bytes"].IsUint64()) << status.out;
  EXPECT_TRUE(doc["positions"]["redis"]["lag_bytes"].IsUint64()) << status.out;
  EXPECT_TRUE(doc["slot"]["exists"].GetBool()) << status.out;
  EXPECT_TRUE(doc["slot"]["retained_wal_bytes"].IsUint64()) << status.out;
  bool found = false;
  for (const auto& t : doc["tables"].GetArray()) {
    if (std::string(t["target"].GetString()) != "ref.loyalty_account") continue;
    found = true;
    EXPECT_STREQ(t["state"].GetString(), "streaming") << status.out;
    EXPECT_EQ(t["target_rows"].GetUint64(), t["source_rows"].GetUint64()) << status.out;
  }
  EXPECT_TRUE(found) << status.out;
  d->terminate();
  EXPECT_EQ(d->wait_exit(20s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
