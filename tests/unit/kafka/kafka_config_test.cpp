// [kafka] and target.enabled in the config: Kafka-only pipelines, pass-through properties (quoted or dotted
// keys), refused properties named with file, line and key, and what a pipeline without the order DB needs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/config/config.h"

namespace cdcsync::config {
namespace {

constexpr std::string_view kHead = R"(pipeline = "customers-to-kafka"

[source]
conninfo    = "host=127.0.0.1 port=5432 dbname=customers user=cdcsync_source"
publication = "cdcsync_customers"
slot        = "cdcsync_customers_kafka"

[checkpoint]
redis = "redis://127.0.0.1:6379/0"
)";

constexpr std::string_view kTables = R"(
[[tables]]
source  = "public.customers"
target  = "ref.customer"
key     = ["id"]
columns = { id = "customer_id", full_name = "display_name" }
)";

std::string file(std::string_view middle) {
  return std::string(kHead) + std::string(middle) + std::string(kTables);
}

std::vector<ConfigIssue> issues_of(const std::string& text) {
  try {
    load_config_from_string(text, "k.toml");
  } catch (const ConfigError& e) {
    return e.issues();
  }
  return {};
}

TEST(KafkaConfig, LoadsAKafkaOnlyPipelineWithPassThroughProperties) {
  const Config c = load_config_from_string(file(R"(
[target]
enabled = false

[kafka]
enabled = true
brokers = "k1:9093,k2:9093"
topic_prefix = "shop"
tombstones = false
properties = { "security.protocol" = "SASL_SSL", sasl.mechanism = "SCRAM-SHA-512", "linger.ms" = 20, "enable.ssl.certificate.verification" = true }
)"),
                                           "k.toml");
  EXPECT_FALSE(c.target.enabled);
  EXPECT_TRUE(c.kafka.enabled);
  EXPECT_EQ(c.kafka.brokers, "k1:9093,k2:9093");
  EXPECT_EQ(c.kafka.topic_prefix, "shop");
  EXPECT_FALSE(c.kafka.tombstones);
  // By name (TOML tables have no order).
  const std::vector<std::pair<std::string, std::string>> expected{
      {"enable.ssl.certificate.verification", "true"},
      {"linger.ms", "20"},
      {"sasl.mechanism", "SCRAM-SHA-512"},
      {"security.protocol", "SASL_SSL"}};
  EXPECT_EQ(c.kafka.properties, expected);

  // config show renders them, and the rendering loads back to the same values.
  const std::string shown = render_effective_config(c);
  EXPECT_NE(shown.find("\"security.protocol\" = \"SASL_SSL\""), std::string::npos) << shown;
  EXPECT_EQ(load_config_from_string(shown, "shown.toml").kafka.properties, expected);
}

TEST(KafkaConfig, RefusesPropertiesTheSinkControlsNamingLineAndKey) {
  const auto issues = issues_of(file(R"(
[target]
conninfo = "host=127.0.0.1 dbname=orders"

[kafka]
enabled = true
brokers = "k1:9093"
properties = { "enable.idempotence" = false, "sasl.password" = "hunter2" }
)"));
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].key, "kafka.properties.enable.idempotence");
  EXPECT_NE(issues[0].message.find("controlled by cdcsync"), std::string::npos) << issues[0].str();
  EXPECT_EQ(issues[1].key, "kafka.properties.sasl.password");
  EXPECT_NE(issues[1].message.find("kafka.password_file"), std::string::npos) << issues[1].str();
  EXPECT_EQ(issues[1].message.find("hunter2"), std::string::npos);
  EXPECT_EQ(issues[0].line, 17);
}

TEST(KafkaConfig, APipelineWithoutTheOrderDbNeedsKafkaAndKafkaNeedsBrokers) {
  auto issues = issues_of(file("\n[target]\nenabled = false\n"));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].key, "target.enabled");

  issues = issues_of(file("\n[target]\nenabled = false\n\n[kafka]\nenabled = true\n"));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].key, "kafka.brokers");

  issues = issues_of(file("\n[kafka]\nenabled = true\nbrokers = \"k:9092\"\n"));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].key, "target.conninfo");
  EXPECT_NE(issues[0].message.find("target.enabled = false"), std::string::npos);
}

TEST(KafkaConfig, AnUnknownKafkaKeyIsRefusedButPropertiesIsKnown) {
  const auto issues = issues_of(
      file("\n[target]\nenabled = false\n\n[kafka]\nenabled = true\nbrokers = \"k:1\"\nbroker = \"x\"\n"));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].key, "kafka.broker");
  EXPECT_NE(issues[0].message.find("brokers"), std::string::npos) << issues[0].str();
}

}  // namespace
}  // namespace cdcsync::config
