// KafkaSink against librdkafka's mock cluster (in-process, loopback): Debezium-shaped records on source-named
// topics, only mapped columns, each change once and in order per key, tombstones, progress kept in Kafka so a
// restart skips what was committed, chunks in one Kafka transaction, refused records and properties.
#include "sinks/kafka_sink.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <map>
#include <random>
#include <set>

#include "tests/unit/kafka/kafka_test_util.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

using test::KafkaRecord;
using test::TestKafka;

constexpr int16_t kProduceApiKey = 0;  // the Kafka protocol's Produce request

// Topics are unique per test so the same tests can run against one real cluster.
std::string unique_prefix() {
  static std::mt19937_64 rng{std::random_device{}()};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return fmt::format("t{}-{:x}", info->name(), rng() & 0xffffff);
}

Mapping customer_mapping() {
  TableMapping t;
  t.source = QualifiedName{"public", "customers"};
  t.target = QualifiedName{"ref", "customer"};
  t.key = {"id"};
  t.columns = {{"id", "customer_id", Transform::copy()},
               {"full_name", "display_name", Transform::copy()},
               {"phone", "phone_tail", Transform::mask(4)}};
  t.truncates = TruncatePolicy::Apply;
  return Mapping{{t}};
}

// id, full_name, email (unmapped PII), phone
RelationPtr customers() {
  return test::relation("public", "customers", {"id", "full_name", "email", "phone"});
}

Tuple row(const std::string& id, const std::string& name) {
  return test::tuple({id, name, "secret-" + id + "@example.com", "+41 79 555 12 34"});
}

Batch batch(std::vector<Transaction> txns) {
  return Batch{std::move(txns)};
}

KafkaSinkOptions options(TestKafka& kafka, const std::string& prefix) {
  KafkaSinkOptions o;
  o.pipeline = prefix;
  o.brokers = kafka.bootstrap();
  o.topic_prefix = prefix;
  o.database = "customers";
  o.timeout = std::chrono::seconds(20);
  // librdkafka 2.0's mock broker has no CreateTopics; a real cluster gets it created by the sink (compacted).
  kafka.create_topic(kafka_progress_topic(prefix), 1);
  return o;
}

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

std::string op_of(const KafkaRecord& r) {
  if (!r.value) return "tombstone";
  const auto d = parse(*r.value);
  return d["op"].GetString();
}

std::string after_name(const KafkaRecord& r) {
  const auto d = parse(*r.value);
  return d["after"].IsNull() ? std::string("null") : d["after"]["full_name"].GetString();
}

TEST(KafkaSink, PublishesDebeziumRecordsOfMappedColumnsOnSourceNamedTopics) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  KafkaSink sink{customer_mapping(), options(kafka, prefix)};
  sink.connect();
  const auto rel = customers();
  const auto done = sink.apply(batch(
      {test::txn(7, 1000,
                 {test::insert(rel, 900, row("1", "Ada")), test::update(rel, 910, row("1", "Ada L.")),
                  test::remove(rel, 920, test::tuple({"1", std::nullopt, std::nullopt, std::nullopt}))})}));
  ASSERT_EQ(done, Lsn{1000});

  const auto records = kafka.read_topic(prefix + ".public.customers");
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(op_of(records[0]), "c");
  EXPECT_EQ(op_of(records[1]), "u");
  EXPECT_EQ(op_of(records[2]), "d");
  EXPECT_EQ(op_of(records[3]), "tombstone");
  for (const auto& r : records) {
    ASSERT_TRUE(r.key);
    EXPECT_EQ(parse(*r.key)["id"].GetString(), std::string("1"));
    if (r.value) {
      EXPECT_EQ(r.value->find("secret-"), std::string::npos) << "unmapped email leaked: " << *r.value;
      EXPECT_EQ(r.value->find("email"), std::string::npos);
    }
  }
  const auto created = parse(*records[0].value);
  EXPECT_EQ(std::string(created["after"]["full_name"].GetString()), "Ada");
  EXPECT_EQ(std::string(created["after"]["phone"].GetString()), "************2 34");  // mask(4)
  EXPECT_EQ(std::string(created["source"]["db"].GetString()), "customers");
  EXPECT_EQ(std::string(created["source"]["schema"].GetString()), "public");
  EXPECT_EQ(std::string(created["source"]["table"].GetString()), "customers");
  EXPECT_EQ(std::string(created["source"]["name"].GetString()), prefix);
  const auto deleted = parse(*records[2].value);
  EXPECT_EQ(std::string(deleted["before"]["id"].GetString()), "1");
  EXPECT_TRUE(deleted["after"].IsNull());
  EXPECT_EQ(sink.stats().transactions_committed, 1u);
}

TEST(KafkaSink, TombstonesCanBeTurnedOff) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  auto o = options(kafka, prefix);
  o.tombstones = false;
  KafkaSink sink{customer_mapping(), o};
  const auto rel = customers();
  sink.apply(batch(
      {test::txn(7, 1000,
                 {test::insert(rel, 900, row("1", "Ada")),
                  test::remove(rel, 920, test::tuple({"1", std::nullopt, std::nullopt, std::nullopt}))})}));
  const auto records = kafka.read_topic(prefix + ".public.customers");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(op_of(records[1]), "d");
}

TEST(KafkaSink, EachChangeArrivesOnceAndInOrderPerKeyAcrossPartitions) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  kafka.create_topic(prefix + ".public.customers", 4);
  KafkaSink sink{customer_mapping(), options(kafka, prefix)};
  const auto rel = customers();
  constexpr int kKeys = 24;
  constexpr int kRounds = 5;
  std::uint64_t lsn = 1000;
  std::uint32_t xid = 1;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Transaction> txns;
    for (int k = 0; k < kKeys; k += 6) {
      std::vector<Change> changes;
      for (int j = k; j < k + 6; ++j) {
        const std::string name = fmt::format("v{}", round);
        changes.push_back(round == 0 ? test::insert(rel, lsn, row(std::to_string(j), name))
                                     : test::update(rel, lsn, row(std::to_string(j), name)));
        lsn += 10;
      }
      txns.push_back(test::txn(xid++, lsn += 100, std::move(changes)));
    }
    ASSERT_EQ(sink.apply(batch(std::move(txns))), Lsn{lsn});
  }

  const auto records = kafka.read_topic(prefix + ".public.customers");
  ASSERT_EQ(records.size(), static_cast<std::size_t>(kKeys * kRounds));
  std::map<std::string, std::vector<std::string>> per_key;
  std::map<std::string, std::set<std::int32_t>> partitions_of;
  std::set<std::int32_t> partitions;
  for (const auto& r : records) {  // partition then offset order
    const std::string id = parse(*r.key)["id"].GetString();
    per_key[id].push_back(after_name(r));
    partitions_of[id].insert(r.partition);
    partitions.insert(r.partition);
  }
  EXPECT_GT(partitions.size(), 1u) << "keys should spread over the partitions";
  ASSERT_EQ(per_key.size(), static_cast<std::size_t>(kKeys));
  for (const auto& [id, names] : per_key) {
    EXPECT_EQ(partitions_of[id].size(), 1u) << "key " << id << " is in more than one partition";
    EXPECT_EQ(names, (std::vector<std::string>{"v0", "v1", "v2", "v3", "v4"})) << "key " << id;
  }
}

TEST(KafkaSink, RestartSkipsWhatWasCommittedAndPublishesTheRestOnce) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  const auto rel = customers();
  const auto a = test::txn(1, 1000, {test::insert(rel, 900, row("1", "a"))});
  const auto b = test::txn(2, 2000, {test::insert(rel, 1900, row("2", "b"))});
  const auto c = test::txn(3, 3000, {test::insert(rel, 2900, row("3", "c"))});
  {
    KafkaSink first{customer_mapping(), options(kafka, prefix)};
    EXPECT_EQ(first.load_progress(), std::nullopt);
    EXPECT_EQ(first.apply(batch({a, b})), Lsn{2000});
  }
  KafkaSink second{customer_mapping(), options(kafka, prefix)};
  const auto progress = second.load_progress();
  ASSERT_TRUE(progress);
  EXPECT_EQ(progress->end_lsn, Lsn{2000});
  EXPECT_EQ(progress->xid, Xid{2});
  EXPECT_EQ(second.apply(batch({a, b, c})), Lsn{3000});  // re-streamed from before the progress
  EXPECT_EQ(second.stats().source_transactions_skipped, 2u);

  const auto records = kafka.read_topic(prefix + ".public.customers");
  std::vector<std::string> names;
  for (const auto& r : records) names.push_back(after_name(r));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(KafkaSink, ChunksOfOneSourceTransactionShareOneKafkaTransaction) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  KafkaSink sink{customer_mapping(), options(kafka, prefix)};
  const auto rel = customers();
  auto first =
      test::txn(9, 5000, {test::insert(rel, 100, row("1", "a")), test::insert(rel, 110, row("2", "b"))});
  first.info.end_lsn = Lsn{};  // known on the last chunk only
  first.last_chunk = false;
  auto last = test::txn(9, 5000, {test::insert(rel, 120, row("3", "c"))});
  last.first_chunk = false;
  EXPECT_EQ(sink.apply(batch({first})), std::nullopt);
  EXPECT_EQ(sink.stats().transactions_committed, 0u);
  EXPECT_EQ(sink.apply(batch({last})), Lsn{5000});
  EXPECT_EQ(sink.stats().transactions_committed, 1u);
  EXPECT_EQ(kafka.read_topic(prefix + ".public.customers").size(), 3u);

  // The first chunk of a transaction at or below the progress is skipped with all its chunks.
  KafkaSink again{customer_mapping(), options(kafka, prefix)};
  first.info.final_lsn = Lsn{4992};
  EXPECT_EQ(again.apply(batch({first})), std::nullopt);
  EXPECT_EQ(again.apply(batch({last})), Lsn{5000});
  EXPECT_EQ(again.stats().transactions_committed, 0u);
  EXPECT_EQ(kafka.read_topic(prefix + ".public.customers").size(), 3u);
}

TEST(KafkaSink, ABatchKilledBeforeItsCommitIsNeitherConfirmedNorVisibleAndIsPublishedOnceAfterRestart) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  const auto rel = customers();
  const auto committed = test::txn(1, 1000, {test::insert(rel, 900, row("1", "kept"))});
  const auto killed = test::txn(
      2, 2000, {test::insert(rel, 1900, row("2", "killed")), test::update(rel, 1910, row("1", "killed"))});
  {
    auto o = options(kafka, prefix);
    int commits = 0;
    o.before_commit = [&] {
      if (++commits == 2) throw std::runtime_error("killed before commit");
    };
    KafkaSink sink{customer_mapping(), o};
    ASSERT_EQ(sink.apply(batch({committed})), Lsn{1000});
    EXPECT_THROW(sink.apply(batch({killed})), TransientError);  // never reported durable
  }
  if (!kafka.hides_aborted_records()) {
    GTEST_SKIP() << "this broker (librdkafka's mock) shows aborted records to read_committed consumers; set "
                    "CDCSYNC_TEST_KAFKA_BROKERS to run this against a real cluster";
  }
  auto visible = kafka.read_topic(prefix + ".public.customers");
  ASSERT_EQ(visible.size(), 1u);
  EXPECT_EQ(after_name(visible[0]), "kept");

  KafkaSink restarted{customer_mapping(), options(kafka, prefix)};
  EXPECT_EQ(restarted.load_progress()->end_lsn, Lsn{1000});
  EXPECT_EQ(restarted.apply(batch({committed, killed})), Lsn{2000});
  visible = kafka.read_topic(prefix + ".public.customers");
  EXPECT_EQ(visible.size(), 3u);
}

TEST(KafkaSink, ARecordTheBrokerRefusesStopsWithPermanentErrorNamingTheTopic) {
  TestKafka kafka;
  if (kafka.mock() == nullptr) GTEST_SKIP() << "needs the mock cluster's error injection";
  const std::string prefix = unique_prefix();
  KafkaSink sink{customer_mapping(), options(kafka, prefix)};
  sink.connect();
  rd_kafka_mock_push_request_errors(kafka.mock(), kProduceApiKey, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  const auto rel = customers();
  try {
    sink.apply(batch({test::txn(1, 1000, {test::insert(rel, 900, row("1", "a"))})}));
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    // The first refused produce request names its topic: the table's, or the progress topic.
    EXPECT_TRUE(e.table() == prefix + ".public.customers" || e.table() == kafka_progress_topic(prefix))
        << e.table();
    EXPECT_EQ(e.lsn(), Lsn{1000});
    EXPECT_EQ(e.sqlstate(), "MSG_SIZE_TOO_LARGE");
  }
}

TEST(KafkaSink, AnUnreachableClusterIsTransient) {
  KafkaSinkOptions o;
  o.pipeline = "p";
  o.brokers = "127.0.0.1:1";
  o.timeout = std::chrono::milliseconds(1500);
  KafkaSink sink{customer_mapping(), o};
  EXPECT_THROW(sink.connect(), TransientError);
}

TEST(KafkaSink, AcknowledgedPositionsAreKeptInKafkaWithoutBeingProgress) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  {
    KafkaSink sink{customer_mapping(), options(kafka, prefix)};
    sink.record_ack(Lsn{700});
  }
  KafkaSink sink{customer_mapping(), options(kafka, prefix)};
  const auto p = sink.load_progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->acked_lsn, Lsn{700});
  EXPECT_FALSE(p->end_lsn.valid());
}

TEST(KafkaSink, UnmappedTablesPublishNothingButProgressMoves) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  KafkaSink sink{customer_mapping(), options(kafka, prefix)};
  const auto payments = test::relation("public", "payment_methods", {"id", "iban"}, 16400);
  EXPECT_EQ(
      sink.apply(batch({test::txn(1, 1000, {test::insert(payments, 900, test::tuple({"1", "CH93"}))})})),
      Lsn{1000});
  EXPECT_TRUE(kafka.read_topic(prefix + ".public.payment_methods").empty());
  KafkaSink restarted{customer_mapping(), options(kafka, prefix)};
  EXPECT_EQ(restarted.load_progress()->end_lsn, Lsn{1000});
}

// Kafka's Utils.murmur2, which the Java client's default partitioner (and librdkafka's murmur2_random)
// applies to a record's key bytes: partition = (murmur2(key) & 0x7fffffff) % partitions.
std::int32_t murmur2(std::string_view data) {
  const std::uint32_t m = 0x5bd1e995;
  const auto length = static_cast<std::uint32_t>(data.size());
  std::uint32_t h = 0x9747b28c ^ length;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  for (std::uint32_t i = 0; i + 4 <= length; i += 4) {
    std::uint32_t k =
        p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (static_cast<std::uint32_t>(p[i + 3]) << 24);
    k *= m;
    k ^= k >> 24;
    k *= m;
    h *= m;
    h ^= k;
  }
  const std::uint32_t tail = length & ~3u;
  switch (length % 4) {
    case 3:
      h ^= p[tail + 2] << 16;
      [[fallthrough]];
    case 2:
      h ^= p[tail + 1] << 8;
      [[fallthrough]];
    case 1:
      h ^= p[tail];
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);
}

// The source's catalog as the sink would read it: accounts has the primary key (id).
class AccountFacts final : public CatalogFacts {
 public:
  RelationFacts relation_facts(const RelationDef& relation, Xid) override {
    ++queries;
    if (relation.name != "accounts") return {};
    return {.columns = {{"id", true, std::nullopt}, {"region", true, std::nullopt}}, .key = {"id"}};
  }
  bool reload_types() override { return false; }
  int queries = 0;
};

// accounts(id, region, name, email) under REPLICA IDENTITY FULL: every column flagged as identity.
RelationPtr accounts_full() {
  auto r = test::relation("public", "accounts", {"id", "region", "name", "email"});
  auto def = std::const_pointer_cast<RelationDef>(r);
  def->replica_identity = 'f';
  for (auto& c : def->columns) c.part_of_key = true;
  return r;
}

// The target keys accounts by (region, id); Debezium, and so the sink, by the source's primary key (id).
Mapping accounts_mapping() {
  TableMapping t;
  t.source = QualifiedName{"public", "accounts"};
  t.target = QualifiedName{"ref", "account"};
  t.key = {"region", "id"};
  t.columns = {{"id", "account_id", Transform::copy()},
               {"region", "region", Transform::copy()},
               {"name", "name", Transform::copy()}};
  return Mapping{{t}};
}

Tuple account(const std::string& id, const std::string& name) {
  return test::tuple({id, "eu", name, "secret-" + id + "@example.com"});
}

// Under REPLICA IDENTITY FULL every update carries the whole old row: the records stay op "u" keyed by the
// primary key alone, land in the partition murmur2 gives that key, and only a change of the primary key
// itself is a delete, its tombstone and a create.
TEST(KafkaSink, KeysAndPartitionsFollowTheSourcePrimaryKeyUnderFullIdentity) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  const std::string topic = prefix + ".public.accounts";
  constexpr int kPartitions = 6;
  kafka.create_topic(topic, kPartitions);
  auto facts = std::make_shared<AccountFacts>();
  KafkaSinkOptions o = options(kafka, prefix);
  o.catalog_facts = facts;
  KafkaSink sink{accounts_mapping(), o};
  sink.connect();
  const auto rel = accounts_full();
  std::vector<Change> changes;
  std::uint64_t lsn = 1000;
  for (int id = 1; id <= 12; ++id) {
    changes.push_back(test::insert(rel, lsn += 10, account(std::to_string(id), "a")));
  }
  for (int id = 1; id <= 12; ++id) {
    changes.push_back(test::update(rel, lsn += 10, account(std::to_string(id), "b"),
                                   account(std::to_string(id), "a"), 'O'));
  }
  changes.push_back(test::update(rel, lsn += 10, account("99", "b"), account("3", "b"), 'O'));
  ASSERT_EQ(sink.apply(batch({test::txn(7, 5000, std::move(changes))})), Lsn{5000});
  EXPECT_EQ(facts->queries, 1) << "one catalog query per Relation message";

  const auto records = kafka.read_topic(topic);
  ASSERT_EQ(records.size(), 12u + 12u + 3u);
  std::map<std::string, std::vector<std::string>> ops_of;
  std::set<std::int32_t> partitions;
  for (const auto& r : records) {
    ASSERT_TRUE(r.key);
    const auto key = parse(*r.key);
    ASSERT_EQ(key.MemberCount(), 1u) << *r.key;
    const std::string id = key["id"].GetString();
    EXPECT_EQ(r.partition, (murmur2(*r.key) & 0x7fffffff) % kPartitions) << *r.key;
    ops_of[id].push_back(op_of(r));
    partitions.insert(r.partition);
  }
  EXPECT_GT(partitions.size(), 1u);
  for (int id = 1; id <= 12; ++id) {
    const auto& ops = ops_of[std::to_string(id)];
    if (id == 3) {
      EXPECT_EQ(ops, (std::vector<std::string>{"c", "u", "d", "tombstone"}));
    } else {
      EXPECT_EQ(ops, (std::vector<std::string>{"c", "u"})) << "id " << id;
    }
  }
  EXPECT_EQ(ops_of["99"], (std::vector<std::string>{"c"}));
}

// A source table without primary key or unique index has a null key (Debezium's), and a primary key column
// the mapping leaves out stops the sink, naming it: the key would publish it.
TEST(KafkaSink, ATableWithoutPrimaryKeyHasNullKeysAndAnUnmappedKeyColumnStops) {
  TestKafka kafka;
  const std::string prefix = unique_prefix();
  auto facts = std::make_shared<AccountFacts>();
  KafkaSinkOptions o = options(kafka, prefix);
  o.catalog_facts = facts;
  {
    KafkaSink sink{customer_mapping(), o};  // customers: no facts, no key
    sink.connect();
    const auto rel = customers();
    ASSERT_EQ(sink.apply(batch({test::txn(1, 1000, {test::insert(rel, 900, row("1", "Ada"))})})), Lsn{1000});
    const auto records = kafka.read_topic(prefix + ".public.customers");
    ASSERT_EQ(records.size(), 1u);
    EXPECT_FALSE(records[0].key);
  }
  TableMapping t = accounts_mapping().tables()[0];
  t.key = {"region"};
  t.columns.erase(t.columns.begin());  // id, the primary key, not mapped
  KafkaSink sink{Mapping{{t}}, o};
  sink.connect();
  try {
    sink.apply(batch({test::txn(2, 2000, {test::insert(accounts_full(), 1900, account("1", "a"))})}));
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_NE(std::string(e.what()).find("key column id of public.accounts is not mapped"), std::string::npos)
        << e.what();
  }
}

TEST(KafkaSink, PropertiesTheSinkControlsAreRefusedByName) {
  KafkaSinkOptions o;
  o.pipeline = "p";
  o.properties = {{"enable.idempotence", "false"}};
  try {
    KafkaSink sink{customer_mapping(), o};
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("kafka.properties.enable.idempotence"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(check_kafka_property("transactional.id", "x").empty());
  EXPECT_FALSE(check_kafka_property("sasl.password", "x").empty());
  EXPECT_TRUE(check_kafka_property("security.protocol", "SASL_SSL").empty());
  EXPECT_TRUE(check_kafka_property("compression.type", "zstd").empty());
}

TEST(KafkaSink, ProgressTopicAndTransactionalIdDeriveFromPrefixAndPipeline) {
  KafkaSinkOptions o;
  o.pipeline = "customers-to-orders";
  KafkaSink sink{customer_mapping(), o};
  EXPECT_EQ(sink.transactional_id(), "cdcsync-customers-to-orders");
  EXPECT_EQ(sink.topic_prefix(), "customers-to-orders");
  EXPECT_EQ(kafka_progress_topic("shop"), "shop.cdcsync.progress");
}

}  // namespace
}  // namespace cdcsync
