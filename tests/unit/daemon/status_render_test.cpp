// `cdcsync status`'s renderings of what it gathered: positions with their lag, the slot, each table.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "daemon/tools/status.h"

namespace cdcsync::status {
namespace {

Report a_report() {
  Report r;
  r.pipeline = "orders";
  r.daemon.answers = true;
  r.daemon.state = "streaming";
  r.daemon.last_error = "at 2026-12-07T10:00:00Z: source failed: connection refused";
  r.daemon.lag_seconds = 1.5;
  r.source_wal = Lsn{1000};
  r.slot.exists = true;
  r.slot.active = true;
  r.slot.active_pid = "4242";
  r.slot.confirmed_flush = Lsn{900};
  r.slot.restart = Lsn{400};
  r.slot.wal_status = "reserved";
  r.target_progress = Lsn{950};
  r.redis_checkpoint = Lsn{900};
  r.tables.push_back({.target = "ref.customer",
                      .source = "public.customers",
                      .state = "streaming",
                      .snapshot_lsn = Lsn{100},
                      .rows_copied = 10,
                      .target_rows = 12,
                      .source_rows = 12});
  r.tables.push_back({.target = "ref.old", .state = "removed", .snapshot_lsn = Lsn{950}, .target_rows = 3});
  return r;
}

TEST(StatusRender, TextShowsStateLastErrorPositionsWithLagSlotAndEachTable) {
  const std::string text = render_text(a_report());
  EXPECT_NE(text.find("state             streaming"), std::string::npos) << text;
  EXPECT_NE(text.find("source failed: connection refused"), std::string::npos) << text;
  EXPECT_NE(text.find("lag 50 bytes, 1.5 s"), std::string::npos) << "target progress:\n" << text;
  EXPECT_NE(text.find("lag 100 bytes"), std::string::npos) << "slot and Redis:\n" << text;
  EXPECT_NE(text.find("WAL retained      600 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("safe_wal_size     unlimited"), std::string::npos) << text;
  EXPECT_NE(text.find("rows: target 12, source 12"), std::string::npos) << text;
  EXPECT_NE(text.find("no longer mapped"), std::string::npos) << text;
}

TEST(StatusRender, JsonCarriesTheSameFactsAsNumbersAndNulls) {
  const std::string json = render_json(a_report());
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json;
  EXPECT_STREQ(doc["daemon"]["state"].GetString(), "streaming");
  EXPECT_EQ(doc["positions"]["target"]["lag_bytes"].GetUint64(), 50u);
  EXPECT_DOUBLE_EQ(doc["positions"]["target"]["lag_seconds"].GetDouble(), 1.5);
  EXPECT_EQ(doc["positions"]["slot"]["lag_bytes"].GetUint64(), 100u);
  EXPECT_TRUE(doc["positions"]["slot"]["lag_seconds"].IsNull());
  EXPECT_EQ(doc["slot"]["retained_wal_bytes"].GetUint64(), 600u);
  EXPECT_TRUE(doc["slot"]["safe_wal_size"].IsNull()) << "unlimited";
  ASSERT_EQ(doc["tables"].Size(), 2u);
  EXPECT_STREQ(doc["tables"][1]["state"].GetString(), "removed");
  EXPECT_TRUE(doc["tables"][1]["source_rows"].IsNull());
}

}  // namespace
}  // namespace cdcsync::status
