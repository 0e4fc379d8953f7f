// Secondary sinks: the Kafka producer and the event archive, made from the config.
#include "daemon/core/secondary_sinks.h"

#include <libpq-fe.h>

#include "daemon/core/runner.h"
#include "sinks/redis_archive_sink.h"

namespace cdcsync {

namespace {

// source.db of the Debezium envelope: the dbname of the source conninfo (libpq's default: the user name).
std::string source_database(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  std::string db, user;
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::string_view(o->keyword) == "dbname") db = o->val;
    if (std::string_view(o->keyword) == "user") user = o->val;
  }
  if (options != nullptr) PQconninfoFree(options);
  return !db.empty() ? db : !user.empty() ? user : "postgres";
}

}  // namespace

std::unique_ptr<KafkaSink> make_kafka_sink(const Config& config, const Mapping& mapping,
                                           KafkaSinkObserver observer, MemoryBudget* memory) {
  KafkaSinkOptions o;
  o.pipeline = config.pipeline;
  o.brokers = config.kafka.brokers;
  o.topic_prefix = config.kafka.topic_prefix;
  o.transactional_id = config.kafka.transactional_id;
  o.tombstones = config.kafka.tombstones;
  o.timeout = config.kafka.timeout;
  o.database = source_database(config.source.conninfo);
  o.memory = memory;
  o.max_buffered_bytes = MemoryShares::of(static_cast<std::size_t>(config.memory.limit_bytes)).encoders;
  o.source_conninfo = source_conninfo(config);  // Debezium's keys, NOT NULL, defaults, user types
  for (const auto& [name, value] : config.kafka.properties) o.properties[name] = value;
  if (config.kafka.password_file.configured())
    o.properties["sasl.password"] = config::read_secret(config.kafka.password_file);
  return std::make_unique<KafkaSink>(mapping, std::move(o), std::move(observer));
}

std::unique_ptr<Sink> make_archive_sink(const Config& config, const Mapping& mapping,
                                        ArchiveSinkObserver observer, MemoryBudget* memory) {
  ArchiveSinkOptions o;
  o.connection.url = RedisUrl::parse(config.checkpoint.redis);
  if (config.checkpoint.password_file.configured()) {
    o.connection.url.password = config::read_secret(config.checkpoint.password_file);
  }
  o.connection.pipeline = config.pipeline;
  o.topic_prefix = config.archive.topic_prefix;
  o.database = source_database(config.source.conninfo);
  o.max_len = config.archive.stream_maxlen;
  o.max_age = std::chrono::hours(config.archive.max_age_hours);
  o.observer = std::move(observer);
  o.memory = memory;
  return std::make_unique<RedisArchiveSink>(mapping, std::move(o));
}

std::vector<std::unique_ptr<Sink>> make_secondary_sinks(const Config& config, const Mapping& mapping,
                                                        const KafkaSinkObserver& kafka,
                                                        const ArchiveSinkObserver& archive,
                                                        MemoryBudget* memory) {
  std::vector<std::unique_ptr<Sink>> sinks;
  if (config.kafka.enabled && config.target.enabled)
    sinks.push_back(make_kafka_sink(config, mapping, kafka, memory));
  if (config.archive.enabled) sinks.push_back(make_archive_sink(config, mapping, archive, memory));
  return sinks;
}

}  // namespace cdcsync
