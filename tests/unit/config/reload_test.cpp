// A reload's plan: which changed keys apply live and which wait for a restart.
#include "daemon/config/reload.h"

#include <gtest/gtest.h>

#include <string>

namespace cdcsync::config {
namespace {

constexpr std::string_view kBase = R"(pipeline = "p"

[source]
conninfo    = "host=127.0.0.1 dbname=customers user=cdcsync_source"
publication = "pub"
slot        = "slot_a"

[target]
conninfo = "host=127.0.0.1 dbname=orders user=cdcsync_target"

[checkpoint]
redis = "redis://127.0.0.1:6379/0"

[[tables]]
source  = "public.customers"
target  = "ref.customer"
key     = ["id"]
columns = { id = "customer_id", tier = "tier" }
)";

constexpr std::string_view kLoyalty = R"(
[[tables]]
source  = "public.loyalty_accounts"
target  = "ref.loyalty_account"
key     = ["customer_id"]
columns = { customer_id = "customer_id", points = "points" }
)";

Config load(const std::string& text) {
  return load_config_from_string(text, "cdcsync.toml");
}

std::string with(std::string text, std::string_view from, std::string_view to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(ReloadPlan, TheSameFileChangesNothing) {
  const auto plan = plan_reload(load(std::string(kBase)), load(std::string(kBase)));
  EXPECT_TRUE(plan.live.empty());
  EXPECT_TRUE(plan.restart.empty());
  EXPECT_FALSE(plan.changes_pipeline());
}

TEST(ReloadPlan, LogAndBatchKeysApplyLiveAndOnlyBatchRestartsTheSession) {
  const Config running = load(std::string(kBase));
  const auto log_only = plan_reload(running, load(std::string(kBase) + "\n[log]\nlevel = \"debug\"\n"));
  EXPECT_EQ(log_only.live, std::vector<std::string>{"log.level"});
  EXPECT_FALSE(log_only.changes_pipeline());
  EXPECT_EQ(log_only.next.log.level, LogLevel::Debug);

  const auto batch = plan_reload(running, load(std::string(kBase) + "\n[batch]\nmax_rows = 77\n"));
  EXPECT_EQ(batch.live, std::vector<std::string>{"batch.max_rows"});
  EXPECT_TRUE(batch.changes_pipeline());
  EXPECT_EQ(batch.next.batch.max_rows, 77);
}

TEST(ReloadPlan, ConninfoSlotAndPipelineNeedARestartAndKeepTheirRunningValues) {
  const Config running = load(std::string(kBase));
  std::string text = with(std::string(kBase), "slot_a", "slot_b");
  text = with(text, "pipeline = \"p\"", "pipeline = \"q\"");
  text = with(text, "dbname=orders", "dbname=orders2");
  const auto plan = plan_reload(running, load(text + "\n[batch]\nmax_rows = 77\n"));
  EXPECT_EQ(plan.restart, (std::vector<std::string>{"pipeline", "source.slot", "target.conninfo"}));
  EXPECT_EQ(plan.next.source.slot, "slot_a");
  EXPECT_EQ(plan.next.pipeline, "p");
  EXPECT_EQ(plan.next.target.conninfo, running.target.conninfo);
  EXPECT_EQ(plan.next.batch.max_rows, 77) << "the live part is still taken";
}

TEST(ReloadPlan, TablesAddedRemovedAndTransformedApplyLive) {
  const Config running = load(std::string(kBase));
  const auto added = plan_reload(running, load(std::string(kBase) + std::string(kLoyalty)));
  EXPECT_EQ(added.added, std::vector<std::string>{"ref.loyalty_account"});
  EXPECT_TRUE(added.removed.empty());
  EXPECT_EQ(added.next.tables.size(), 2u);
  EXPECT_TRUE(added.restart.empty());

  const auto removed = plan_reload(added.next, running);
  EXPECT_EQ(removed.removed, std::vector<std::string>{"ref.loyalty_account"});

  const auto masked = plan_reload(
      running, load(std::string(kBase) + "transforms = { tier = { mask = { keep_last = 1 } } }\n"));
  EXPECT_EQ(masked.live, std::vector<std::string>{"tables.ref.customer"});
  EXPECT_TRUE(masked.added.empty());
  EXPECT_TRUE(masked.changes_pipeline());
}

}  // namespace
}  // namespace cdcsync::config
