// `cdcsync run` to Kafka, end to end: the real binary, the test PostgreSQL servers, librdkafka's mock cluster
// in this process (loopback), and kcat reading Debezium-shaped records back with
// isolation.level=read_committed.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sinks/kafka_sink.h"
#include "tests/e2e/sync/sync_fixture.h"
#include "tests/harness/eventually.h"
#include "tests/unit/kafka/kafka_test_util.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

struct KcatRecord {
  std::string key;
  std::optional<std::string> payload;  // nullopt: tombstone
  int partition = 0;
};

// `kcat -C -b BOOTSTRAP -t TOPIC -e -J`: every record, one JSON object per line.
std::vector<KcatRecord> kcat(const std::string& bootstrap, const std::string& topic) {
  const std::string cmd = "kcat -C -b " + bootstrap + " -t " + topic +
                          " -e -J -q -X isolation.level=read_committed -X log_level=0 2>/dev/null";
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(cmd.c_str(), "r"), &pclose);
  if (!pipe) throw std::runtime_error("cannot run kcat");
  std::string out;
  std::array<char, 4096> buf;
  while (std::size_t n = fread(buf.data(), 1, buf.size(), pipe.get())) out.append(buf.data(), n);
  std::vector<KcatRecord> records;
  std::size_t start = 0;
  while (start < out.size()) {
    std::size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    const std::string line = out.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("payload")) continue;
    KcatRecord r;
    r.key = d["key"].IsString() ? d["key"].GetString() : "";
    if (d["payload"].IsString()) r.payload = d["payload"].GetString();
    r.partition = d["partition"].GetInt();
    records.push_back(std::move(r));
  }
  return records;
}

std::string field(const std::string& json, const char* object, const char* name) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  if (d.HasParseError() || !d.HasMember(object) || !d[object].IsObject()) return "(none)";
  const auto& o = d[object];
  if (!o.HasMember(name)) return "(missing)";
  if (o[name].IsString()) return o[name].GetString();
  if (o[name].IsInt64()) return std::to_string(o[name].GetInt64());
  return "(other)";
}

std::string op(const KcatRecord& r) {
  return r.payload ? field("{\"x\":" + *r.payload + "}", "x", "op") : "tombstone";
}

class KafkaPipeline : public ::testing::Test {
 protected:
  std::string config(const SyncPipeline& p, bool kafka_only) {
    ConfigOptions o;
    o.extra = "\n[kafka]\nenabled = true\nbrokers = \"" + kafka_.bootstrap() + "\"\ntopic_prefix = \"" +
              prefix_ + "\"\ntimeout_ms = 20000\n";
    // [kafka] after [[tables]] would belong to the table: put it before the first [[tables]].
    std::string c = p.config(ConfigOptions{});
    const auto tables = c.find("[[tables]]");
    c.insert(tables, o.extra.substr(1) + "\n");
    if (kafka_only) c.replace(c.find("[target]\n"), 9, "[target]\nenabled = false\n");
    return c;
  }

  TestKafka kafka_{1};
  std::string prefix_ = "e2e";
};

TEST_F(KafkaPipeline, KafkaOnlyPipelinePublishesSnapshotAndChangesOnceWithoutTouchingTheOrderDb) {
  SyncPipeline p("kafka_only");
  kafka_.create_topic(kafka_progress_topic(prefix_), 1);
  const std::string topic = prefix_ + ".public.customers";
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email, phone) VALUES "
           "(1, 'Ada', 'ada@secret.example', '+41 1'), (2, 'Bob', 'bob@secret.example', '+41 2')");
  auto d = std::make_unique<DaemonProcess>(p.dir(), "kafka-only", config(p, true));
  d->start();
  ASSERT_TRUE(wait_for_log(*d, "state: streaming", 60s, 1)) << d->log_tail();
  exec_sql(p.customer_admin(), "UPDATE public.customers SET full_name = 'Ada L.' WHERE id = 1");
  exec_sql(p.customer_admin(), "DELETE FROM public.customers WHERE id = 2");
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (id, full_name, email) VALUES (3, 'Cy', 'cy@secret.example')");

  std::vector<KcatRecord> records;
  ASSERT_TRUE(eventually([&] { return (records = kcat(kafka_.bootstrap(), topic)).size() >= 6; }, 60s, 200ms))
      << records.size() << " records\n"
      << d->log_tail();
  // 2 snapshot rows, u, d, tombstone, c — each exactly once.
  std::map<std::string, int> ops;
  for (const auto& r : records) {
    ++ops[op(r)];
    if (r.payload) {
      EXPECT_EQ(r.payload->find("secret.example"), std::string::npos)
          << "unmapped email left the source: " << *r.payload;
    }
  }
  // The initial snapshot's rows come as op "c": the runner's snapshot transaction is not marked as a
  // snapshot (TransactionInfo::snapshot), so the encoder does not write "r" for them yet.
  EXPECT_EQ(ops["r"] + ops["c"], 3);
  EXPECT_EQ(ops["u"], 1);
  EXPECT_EQ(ops["d"], 1);
  EXPECT_EQ(ops["tombstone"], 1);
  EXPECT_EQ(records.size(), 6u);
  for (const auto& r : records) {
    if (op(r) == "u") {
      EXPECT_EQ(field(*r.payload, "after", "full_name"), "Ada L.");
      EXPECT_EQ(field(*r.payload, "source", "table"), "customers");
      EXPECT_EQ(field(*r.payload, "source", "name"), prefix_);
    }
  }
  // The order DB was never written: no rows, no progress row.
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*)::text FROM ref.customer"), "0");
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*)::text FROM ref.cdc_progress"), "0");

  // A restart resumes after the last committed Kafka transaction: one new change, one new record.
  d->terminate();
  ASSERT_EQ(d->wait_exit(30s), 0) << d->log_tail();
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'gold' WHERE id = 3");
  const Lsn written = p.source_wal_lsn();
  d->start();
  // Confirmed to the slot only after its Kafka transaction committed: any duplicate would be there by now.
  ASSERT_TRUE(eventually([&] { return p.slot_confirmed().value_or(Lsn{}) >= written; }, 60s, 200ms))
      << d->log_tail();
  records = kcat(kafka_.bootstrap(), topic);
  EXPECT_EQ(records.size(), 7u) << d->log_tail();
  EXPECT_EQ(d->log_count("kafka: producer cdcsync-" + p.pipeline() + " ready"), 2u);
  d->terminate();
  EXPECT_EQ(d->wait_exit(30s), 0);
}

TEST_F(KafkaPipeline, OrderDbAndKafkaTogetherBothReceiveEveryChange) {
  SyncPipeline p("kafka_both");
  kafka_.create_topic(kafka_progress_topic(prefix_), 1);
  const std::string topic = prefix_ + ".public.customers";
  auto d = std::make_unique<DaemonProcess>(p.dir(), "both", config(p, false));
  d->start();
  ASSERT_TRUE(wait_for_log(*d, "state: streaming", 60s, 1)) << d->log_tail();
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (full_name, email) SELECT 'n' || g, 'e' || g || '@secret.example' "
           "FROM generate_series(1, 50) g");
  exec_sql(p.customer_admin(), "UPDATE public.customers SET status = 'suspended' WHERE id % 5 = 0");
  std::vector<KcatRecord> records;
  ASSERT_TRUE(
      eventually([&] { return (records = kcat(kafka_.bootstrap(), topic)).size() >= 60; }, 60s, 200ms))
      << records.size() << "\n"
      << d->log_tail();
  EXPECT_TRUE(eventually(
      [&] {
        return query_value(p.order_admin(),
                           "SELECT count(*)::text FROM ref.customer WHERE status = 'suspended'") == "10";
      },
      30s, 200ms));
  // Per key: the create comes before the update, in one partition.
  std::map<std::string, std::vector<std::string>> per_key;
  std::map<std::string, int> partition_of;
  for (const auto& r : records) {
    per_key[r.key].push_back(op(r));
    if (partition_of.contains(r.key)) {
      EXPECT_EQ(partition_of[r.key], r.partition) << r.key;
    }
    partition_of[r.key] = r.partition;
  }
  EXPECT_EQ(records.size(), 60u);
  EXPECT_EQ(per_key.size(), 50u);
  for (const auto& [key, ops] : per_key) {
    ASSERT_FALSE(ops.empty());
    EXPECT_EQ(ops.front(), "c") << key;
    if (ops.size() == 2) {
      EXPECT_EQ(ops[1], "u") << key;
    }
  }
  d->terminate();
  EXPECT_EQ(d->wait_exit(30s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
