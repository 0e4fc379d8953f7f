// cdcsync verify: equal tables, each kind of divergence named by key, transforms, --repair, a target behind.
#include <gtest/gtest.h>

#include <fstream>

#include "sinks/mapping.h"
#include "tests/e2e/recovery/recovery_fixture.h"

namespace cdcsync::test {
namespace {

void seed(const RecoveryPipeline& p, int customers) {
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (id, full_name, email, phone, status, tier) SELECT g, 'Name ' || g, "
      "'c' || g || '@example.com', '+4930' || g, CASE WHEN g % 7 = 0 THEN 'suspended' ELSE 'active' END, "
      "CASE WHEN g % 3 = 0 THEN 'std' ELSE 'gold' END FROM generate_series(1, " +
          std::to_string(customers) +
          ") g; INSERT INTO public.loyalty_accounts (customer_id, points, level) SELECT g, g * 10, 'silver' "
          "FROM generate_series(1, " +
          std::to_string(customers / 2) + ") g; ANALYZE public.customers");
}

std::string verify_hash(const RecoveryPipeline& p, const std::string& field) {
  return redis_command({"HGET", "cdcsync:{" + p.pipeline() + "}:verify", field});
}

TEST(Verify, ReportsEqualTablesAcrossManyBucketsAndExitsZero) {
  RecoveryPipeline p{"verify_equal"};
  seed(p, 3000);
  copy_projection(p);
  p.mark_target_caught_up();
  const auto r = p.cdcsync({"verify", "--config", "CONFIG", "--rows-per-bucket", "100"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ref.customer <- public.customers: 3000 source rows, 3000 target rows, 30 bucket(s)"),
            std::string::npos);
  EXPECT_NE(r.out.find("EQUAL"), std::string::npos);
  EXPECT_EQ(verify_hash(p, "mismatched_rows"), "0");
  EXPECT_EQ(verify_hash(p, "status"), "equal");
}

TEST(Verify, NamesMissingExtraAndDifferentKeysButNoOtherValuesAndExitsOne) {
  RecoveryPipeline p{"verify_diff"};
  seed(p, 500);
  copy_projection(p);
  p.mark_target_caught_up();
  exec_sql(
      p.order_admin(),
      "DELETE FROM ref.customer WHERE customer_id = 5; "
      "UPDATE ref.customer SET _cdc_deleted = true WHERE customer_id = 6; "
      "UPDATE ref.customer SET display_name = 'Wrong Name' WHERE customer_id = 7; "
      "UPDATE ref.customer SET tier = NULL WHERE customer_id = 8; "
      "INSERT INTO ref.customer (customer_id, display_name, status, tier, _cdc_lsn) VALUES (9001, 'Ghost', "
      "'active', 'gold', '0/1'); "
      "DELETE FROM ref.loyalty_account WHERE customer_id = 3");
  const auto r = p.cdcsync({"verify", "--config", "CONFIG"});
  EXPECT_EQ(r.exit_code, 1);
  for (const auto* line :
       {"missing   customer_id=5", "missing   customer_id=6", "different customer_id=7",
        "different customer_id=8", "extra     customer_id=9001", "missing   customer_id=3"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line;
  }
  EXPECT_NE(r.out.find("6 mismatched row(s)"), std::string::npos);
  for (const auto* value : {"Name 7", "Wrong Name", "Ghost", "example.com"}) {
    EXPECT_EQ(r.out.find(value), std::string::npos) << "a row value in the report: " << value;
    EXPECT_EQ(r.err.find(value), std::string::npos) << "a row value in the log: " << value;
  }
  EXPECT_EQ(verify_hash(p, "mismatched_rows"), "6");
  EXPECT_EQ(verify_hash(p, "table:ref.customer"), "5");
  EXPECT_EQ(verify_hash(p, "table:ref.loyalty_account"), "1");

  exec_sql(p.order_admin(), "DELETE FROM ref.customer WHERE customer_id = 9001");
  const auto j = p.cdcsync({"verify", "--config", "CONFIG", "--table", "ref.customer", "--json"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_NE(j.out.find("\"missing\":[\"customer_id=5\",\"customer_id=6\"]"), std::string::npos);
  EXPECT_NE(j.out.find("\"extra\":[]"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"mismatched_rows\":4"), std::string::npos);
  EXPECT_EQ(j.out.find("loyalty"), std::string::npos) << "--table limits the comparison";
  // The run over one table records that table's count and keeps the other table's from the full run.
  EXPECT_EQ(verify_hash(p, "mismatched_rows"), "4");
  EXPECT_EQ(verify_hash(p, "table:ref.customer"), "4");
  EXPECT_EQ(verify_hash(p, "table:ref.loyalty_account"), "1");
}

TEST(Verify, AppliesTheMappingsTransformsToTheSourceBeforeHashing) {
  RecoveryPipeline p{"verify_transforms", RecoveryConfig{.customers_extra = "", .with_loyalty = false}};
  // Rewrite the config's customers entry with transforms (the key file is the fixture's).
  {
    std::ifstream in(p.config_path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text += "transforms = { full_name = { hmac_sha256 = { key_file = \"" + p.dir() +
            "/hmac.key\" } }, tier = { mask = { keep_last = 2 } } }\n";
    std::ofstream(p.config_path()) << text;
  }
  seed(p, 200);
  const auto hmac = Transform::hmac_sha256("test-hmac-key");
  const auto mask = Transform::mask(2);
  std::string sql;
  for (const auto& r :
       query_rows(p.customer_admin(), "SELECT id::text, full_name, status, tier FROM public.customers")) {
    std::string name;
    hmac.apply(*r[1], name);
    std::string tier;
    const bool has_tier = mask.apply(r[3] ? std::optional<std::string_view>(*r[3]) : std::nullopt, tier);
    sql += "INSERT INTO ref.customer (customer_id, display_name, status, tier, _cdc_lsn) VALUES (" + *r[0] +
           ", '" + name + "', '" + *r[2] + "', " + (has_tier ? "'" + tier + "'" : "NULL") + ", '0/1');";
  }
  exec_sql(p.order_admin(), sql);
  p.mark_target_caught_up();
  const auto equal = p.cdcsync({"verify", "--config", "CONFIG", "--rows-per-bucket", "10"});
  EXPECT_EQ(equal.exit_code, 0) << equal.err;

  exec_sql(p.order_admin(), "UPDATE ref.customer SET tier = 'gold' WHERE customer_id = 11");
  const auto diverged = p.cdcsync({"verify", "--config", "CONFIG", "--rows-per-bucket", "10"});
  EXPECT_EQ(diverged.exit_code, 1);
  EXPECT_NE(diverged.out.find("different customer_id=11"), std::string::npos);
  EXPECT_NE(diverged.out.find("1 mismatched row(s)"), std::string::npos);
}

TEST(Verify, RepairRecopiesOnlyTheMismatchedRowsAndVerifiesAgain) {
  RecoveryPipeline p{"verify_repair"};
  seed(p, 300);
  copy_projection(p);
  p.mark_target_caught_up();
  exec_sql(
      p.order_admin(),
      "DELETE FROM ref.customer WHERE customer_id = 5; "
      "UPDATE ref.customer SET display_name = 'Wrong' WHERE customer_id = 7; "
      "INSERT INTO ref.customer (customer_id, display_name, status, tier, _cdc_lsn) VALUES (9001, 'Ghost', "
      "'active', 'gold', '0/1'); "
      "INSERT INTO ref.loyalty_account (customer_id, points, level, _cdc_lsn) VALUES (9002, 1, 'x', '0/1'); "
      "UPDATE ref.loyalty_account SET points = -1 WHERE customer_id = 4");
  const auto r = p.cdcsync({"verify", "--config", "CONFIG", "--repair"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("repair ref.customer: 2 row(s) written, 1 removed"), std::string::npos);
  EXPECT_NE(r.out.find("repair ref.loyalty_account: 1 row(s) written, 1 removed"), std::string::npos);
  EXPECT_EQ(source_customers(p), target_customers(p));
  EXPECT_EQ(source_loyalty(p), target_loyalty(p));
  // The extra row of a soft-delete table is tombstoned, the hard-delete table's is gone.
  EXPECT_EQ(
      query_value(p.order_admin(), "SELECT _cdc_deleted::text FROM ref.customer WHERE customer_id = 9001"),
      "true");
  // Only the mismatched rows were written: the others keep their LSN.
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*)::text FROM ref.customer WHERE _cdc_lsn <> '0/1'"),
            "3");
}

TEST(Verify, RepairNeverOverwritesARowNewerThanItsSnapshot) {
  RecoveryPipeline p{"verify_newer"};
  seed(p, 50);
  copy_projection(p);
  p.mark_target_caught_up();
  exec_sql(p.order_admin(),
           "UPDATE ref.customer SET display_name = 'From the future', _cdc_lsn = 'FFFFFFFF/0' WHERE "
           "customer_id = 7");
  const auto r = p.cdcsync({"verify", "--config", "CONFIG", "--repair"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("repair ref.customer: 0 row(s) written"), std::string::npos);
  EXPECT_EQ(query_value(p.order_admin(), "SELECT display_name FROM ref.customer WHERE customer_id = 7"),
            "From the future");
}

TEST(Verify, ExitsSevenCouldNotCheckNamingTheLagWhenTheTargetNeverReachesTheSnapshot) {
  RecoveryPipeline p{"verify_behind"};
  seed(p, 10);
  copy_projection(p);
  exec_sql(p.order_admin(), "INSERT INTO ref.cdc_progress (pipeline, end_lsn, xid, acked_lsn) VALUES ('" +
                                p.pipeline() + "', '0/10', 0, '0/10')");
  const auto r = p.cdcsync({"verify", "--config", "CONFIG", "--wait-timeout-ms", "300"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("target is behind; is the daemon running?"), std::string::npos);
  EXPECT_NE(r.err.find("0/10"), std::string::npos);
}

TEST(Verify, RefusesATableThatIsNotMapped) {
  RecoveryPipeline p{"verify_table"};
  const auto r = p.cdcsync({"verify", "--config", "CONFIG", "--table", "public.payment_methods"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--table public.payment_methods: not a mapped source or target table"),
            std::string::npos);
}

}  // namespace
}  // namespace cdcsync::test
