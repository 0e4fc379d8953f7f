// `cdcsync check` and `cdcsync target-ddl` against a real order database.
#include <gtest/gtest.h>

#include "sinks/target_ddl.h"
#include "tests/integration/sinks/sink_fixture.h"

namespace cdcsync::test {
namespace {

const SourceTypes kTypes = {
    {QualifiedName{"public", "customers"},
     {{"id", "bigint"}, {"full_name", "text"}, {"status", "text"}, {"tier", "text"}}}};

std::vector<TargetProblem> check(const std::string& conninfo, const Mapping& m) {
  auto conn = pg_connect(conninfo, "order database");
  return check_target(conn.get(), m, {"ref", "cdc_progress"}, &kTypes);
}

std::string describe(const std::vector<TargetProblem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.table + ": " + p.problem + " -> " + p.fix + "\n";
  return out;
}

bool mentions(const std::vector<TargetProblem>& problems, const std::string& text) {
  return describe(problems).find(text) != std::string::npos;
}

TEST(SinkTargetCheck, FindsNothingWrongWithTheDemoSchema) {
  SinkDatabase db("sink_check_demo");
  const auto problems = check(db.target(), Mapping({customer_mapping()}));
  EXPECT_TRUE(problems.empty()) << describe(problems);
}

TEST(SinkTargetCheck, ReportsEachProblemWithItsFix) {
  SinkDatabase db("sink_check_broken");
  exec_sql(
      db.admin(),
      "ALTER TABLE ref.customer DROP COLUMN tier; ALTER TABLE ref.customer DROP COLUMN _cdc_deleted; "
      "ALTER TABLE ref.customer DROP CONSTRAINT customer_pkey; ALTER TABLE ref.customer ALTER COLUMN status "
      "TYPE integer USING 0; REVOKE DELETE ON ref.customer FROM cdcsync_target");
  auto m = customer_mapping(DeletePolicy::Soft);
  auto missing = customer_mapping();
  missing.source = {"public", "others"};
  missing.target = {"ref", "others"};
  const auto problems = check(db.target(), Mapping({m, missing}));
  const auto text = describe(problems);
  EXPECT_TRUE(mentions(problems, "column tier missing")) << text;
  EXPECT_TRUE(mentions(problems, "ADD COLUMN \"tier\" text")) << text;
  EXPECT_TRUE(mentions(problems, "tombstone column _cdc_deleted missing")) << text;
  EXPECT_TRUE(mentions(problems, "no unique index")) << text;
  EXPECT_TRUE(mentions(problems, "status has type integer")) << text;
  EXPECT_TRUE(mentions(problems, "lacks DELETE")) << text;
  EXPECT_TRUE(mentions(problems, "GRANT DELETE ON \"ref\".\"customer\" TO \"cdcsync_target\"")) << text;
  EXPECT_TRUE(mentions(problems, "ref.others: table missing")) << text;
}

TEST(SinkTargetCheck, GeneratedDdlCreatesAndCompletesTablesIdempotently) {
  SinkDatabase db("sink_check_ddl");
  auto m = customer_mapping(DeletePolicy::Soft);
  m.target = {"Ref Two", "Customer"};
  exec_sql(db.admin(),
           "CREATE SCHEMA \"Ref Two\"; CREATE TABLE \"Ref Two\".\"Customer\" (customer_id bigint)");
  const Mapping mapping({m});
  const auto ddl = target_ddl(mapping, kTypes, {"Ref Two", "progress"});
  exec_sql(db.admin(), ddl);
  exec_sql(db.admin(), ddl);  // idempotent
  exec_sql(db.admin(),
           "GRANT USAGE ON SCHEMA \"Ref Two\" TO cdcsync_target; GRANT SELECT, INSERT, UPDATE, DELETE "
           "ON ALL TABLES IN SCHEMA \"Ref Two\" TO cdcsync_target");
  auto conn = pg_connect(db.target(), "order database");
  const auto problems = check_target(conn.get(), mapping, {"Ref Two", "progress"}, &kTypes);
  EXPECT_TRUE(problems.empty()) << describe(problems);
  EXPECT_EQ(
      db.value("SELECT count(*) FROM pg_index WHERE indrelid = '\"Ref Two\".\"Customer\"'::regclass AND "
               "indisunique"),
      "1");
  // And the sink works on it.
  PostgresSinkOptions o{
      .conninfo = db.target(), .pipeline = "ddl", .progress_table = {"Ref Two", "progress"}};
  PostgresSink sink(mapping, o);
  const auto rel = customers_relation();
  EXPECT_EQ(sink.apply(batch_of({txn(1, 0x100, {insert(rel, 0x10, tuple({"1", "Ann", "a", "g", "e"}))})})),
            Lsn{0x100});
  EXPECT_EQ(db.value("SELECT display_name FROM \"Ref Two\".\"Customer\""), "Ann");
}

}  // namespace
}  // namespace cdcsync::test
