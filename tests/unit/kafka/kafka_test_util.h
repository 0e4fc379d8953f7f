// A Kafka cluster for tests: librdkafka's mock cluster in-process on loopback, or the real cluster named by
// CDCSYNC_TEST_KAFKA_BROKERS; and a read_committed reader of whole topics.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cdcsync::test {

struct KafkaRecord {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;  // nullopt: a tombstone
};

class TestKafka {
 public:
  explicit TestKafka(int brokers = 3) {
    if (const char* real = std::getenv("CDCSYNC_TEST_KAFKA_BROKERS"); real != nullptr && *real != '\0') {
      bootstrap_ = real;
      return;
    }
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (handle_ == nullptr) throw std::runtime_error(err);
    mock_ = rd_kafka_mock_cluster_new(handle_, brokers);
    if (mock_ == nullptr) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(mock_);
  }
  ~TestKafka() {
    if (mock_ != nullptr) rd_kafka_mock_cluster_destroy(mock_);
    if (handle_ != nullptr) rd_kafka_destroy(handle_);
  }
  TestKafka(const TestKafka&) = delete;
  TestKafka& operator=(const TestKafka&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  rd_kafka_mock_cluster_t* mock() const { return mock_; }

  void create_topic(const std::string& topic, int partitions) {
    if (mock_ != nullptr) rd_kafka_mock_topic_create(mock_, topic.c_str(), partitions, 1);
  }

  // Whether a read_committed consumer is kept from records of an aborted transaction. librdkafka 2.0's mock
  // broker does not implement transaction isolation (its last stable offset is the high watermark and it
  // lists no aborted transactions), so tests of that broker behaviour skip there.
  bool hides_aborted_records() {
    if (hides_aborted_) return *hides_aborted_;
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "transactional.id", "cdcsync-test-isolation-probe", err, sizeof err);
    rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    const std::string topic = "cdcsync-test-isolation-probe";
    bool ok = !rd_kafka_init_transactions(p, 10000) && !rd_kafka_begin_transaction(p);
    ok = ok &&
         rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_VALUE(const_cast<char*>("x"), 1),
                           RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_flush(p, 10000);
    ok = ok && !rd_kafka_abort_transaction(p, 10000);
    rd_kafka_destroy(p);
    if (!ok) throw std::runtime_error("isolation probe: the transactional producer failed");
    hides_aborted_ = read_topic(topic).empty();
    return *hides_aborted_;
  }

  // Every record of `topic` visible to a read_committed consumer, in partition then offset order.
  std::vector<KafkaRecord> read_topic(const std::string& topic,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "cdcsync-test-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> c{
        rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err), &rd_kafka_destroy};
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* t = rd_kafka_topic_new(c.get(), topic.c_str(), nullptr);
    std::vector<KafkaRecord> out;
    int partitions = 0;
    if (rd_kafka_metadata(c.get(), 0, t, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
        md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      partitions = md->topics[0].partition_cnt;
    }
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    if (partitions == 0) return out;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(c.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    int at_end = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (at_end < partitions && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c.get(), 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        ++at_end;
      } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        KafkaRecord r;
        r.partition = m->partition;
        r.offset = m->offset;
        if (m->key != nullptr) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
        if (m->payload != nullptr) r.value = std::string(static_cast<const char*>(m->payload), m->len);
        out.push_back(std::move(r));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c.get());
    if (at_end < partitions) throw std::runtime_error("reading " + topic + ": end not reached in time");
    return out;
  }

 private:
  std::string bootstrap_;
  rd_kafka_t* handle_ = nullptr;
  rd_kafka_mock_cluster_t* mock_ = nullptr;
  std::optional<bool> hides_aborted_;
};

}  // namespace cdcsync::test
