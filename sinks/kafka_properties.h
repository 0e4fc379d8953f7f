// The librdkafka properties KafkaSink controls itself: refused in [kafka] properties (by the config loader,
// and again by the sink), each with the reason. Header-only, so the config library needs no librdkafka.
#pragma once

#include <fmt/format.h>

#include <array>
#include <string>
#include <string_view>

namespace cdcsync {

struct RefusedKafkaProperty {
  std::string_view name;
  std::string_view why;
};

inline constexpr std::array kRefusedKafkaProperties{
    RefusedKafkaProperty{"bootstrap.servers", "set kafka.brokers instead"},
    RefusedKafkaProperty{"metadata.broker.list", "set kafka.brokers instead"},
    RefusedKafkaProperty{"transactional.id", "set kafka.transactional_id instead"},
    RefusedKafkaProperty{"enable.idempotence", "the sink always uses the idempotent producer"},
    RefusedKafkaProperty{"acks", "the transactional producer needs acks=all"},
    RefusedKafkaProperty{"request.required.acks", "the transactional producer needs acks=all"},
    RefusedKafkaProperty{"partitioner",
                         "records are partitioned by key with murmur2 (per-key order, Java-compatible)"},
    RefusedKafkaProperty{"partitioner_cb", "records are partitioned by key with murmur2"},
    RefusedKafkaProperty{"isolation.level", "the progress topic is always read with read_committed"},
    RefusedKafkaProperty{"enable.gapless.guarantee", "set by the transactional producer"},
    RefusedKafkaProperty{"max.in.flight.requests.per.connection", "bounded by the idempotent producer"},
    RefusedKafkaProperty{"sasl.password", "secrets never go in the config file: use kafka.password_file"},
    RefusedKafkaProperty{"ssl.key.password", "secrets never go in the config file"},
    RefusedKafkaProperty{"ssl.keystore.password", "secrets never go in the config file"},
    RefusedKafkaProperty{"ssl.key.pem", "secrets never go in the config file: use ssl.key.location"},
    RefusedKafkaProperty{"sasl.oauthbearer.client.secret", "secrets never go in the config file"},
    RefusedKafkaProperty{"group.id", "the sink consumes nothing but its own progress, without a group"},
};

// What is wrong with passing `name` through to librdkafka; empty when it may be passed.
inline std::string check_kafka_property(std::string_view name, std::string_view value) {
  for (const auto& r : kRefusedKafkaProperties) {
    if (name == r.name) return fmt::format("\"{}\" is controlled by cdcsync: {}", name, r.why);
  }
  if (name.empty()) return "the property name is empty";
  if (value.empty()) return "the value is empty";
  return {};
}

}  // namespace cdcsync
