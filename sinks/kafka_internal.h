// What the Kafka sink's files share (kafka_sink.cpp, kafka_progress.cpp): RAII owners of librdkafka handles,
// setting a property, topic names, and the progress record's JSON.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sinks/sink.h"

namespace cdcsync::kafka {

struct RdKafkaDestroy {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafka = std::unique_ptr<rd_kafka_t, RdKafkaDestroy>;
struct RdConfDestroy {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using RdConf = std::unique_ptr<rd_kafka_conf_t, RdConfDestroy>;
struct RdErrorDestroy {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using RdError = std::unique_ptr<rd_kafka_error_t, RdErrorDestroy>;
struct RdMessageDestroy {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using RdMessage = std::unique_ptr<rd_kafka_message_t, RdMessageDestroy>;
struct RdTopicDestroy {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
using RdTopic = std::unique_ptr<rd_kafka_topic_t, RdTopicDestroy>;
struct RdPartitionsDestroy {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using RdPartitions = std::unique_ptr<rd_kafka_topic_partition_list_t, RdPartitionsDestroy>;
struct RdMetadataDestroy {
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};
using RdMetadata = std::unique_ptr<const rd_kafka_metadata_t, RdMetadataDestroy>;
struct RdQueueDestroy {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using RdQueue = std::unique_ptr<rd_kafka_queue_t, RdQueueDestroy>;
struct RdEventDestroy {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using RdEvent = std::unique_ptr<rd_kafka_event_t, RdEventDestroy>;
struct RdNewTopicDestroy {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
using RdNewTopic = std::unique_ptr<rd_kafka_NewTopic_t, RdNewTopicDestroy>;

// Sets one librdkafka property; std::invalid_argument names it (and, unless `secret`, librdkafka's reason).
void set_conf(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, bool secret = false);

// Kafka topic names allow [a-zA-Z0-9._-]; Debezium replaces anything else with '_'.
void sanitize_topic(std::string& topic);

// The progress record's value: pipeline, end_lsn, xid, commit_time_us, acked_lsn, transactional_id.
std::string progress_json(const std::string& pipeline, const std::string& transactional_id,
                          const Progress& p);
// nullopt when `json` is not a progress record.
std::optional<Progress> parse_progress(std::string_view json);

// Creates the progress topic, compacted (one record per pipeline survives), unless it exists. A refusal
// (ACLs, a policy) is logged: an operator then creates it; auto-creation would give it the default, deleting,
// policy.
void ensure_progress_topic(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout);

}  // namespace cdcsync::kafka
