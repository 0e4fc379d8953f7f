// KafkaSink: Debezium-compatible change events to Kafka, one Kafka transaction per batch.
//
// Records: topic `<prefix>.<schema>.<table>` (the SOURCE names, as Debezium names them, so existing Debezium
// consumers route by them), key = the Debezium key JSON, value = the Debezium envelope, a tombstone (null
// value) after each delete when enabled. With the source's catalog (source_conninfo) the key is Debezium's:
// the source table's primary key (else its first unique index; none: a null key) under every replica
// identity, so an update under REPLICA IDENTITY FULL is op "u" keyed by the primary key unless that changed;
// NOT NULL, defaults and user types come from there too, one query per Relation message. Every column of that
// key must be mapped (a PermanentError names the one that is not). Without it the key is the mapping's key.
// Only mapped columns, with their transforms applied, are in the events (the order DB's rule: a column
// outside the mapping never leaves the customer DB); a transformed column is a string. Field names are the
// source column names. Deletes are always published (the `deletes` policy is the order DB's); a TRUNCATE
// follows the table's `truncate` policy (apply: an op "t" event, ignore: nothing, fail: PermanentError);
// logical messages (heartbeats) are not published.
//
// Partitioning: by key with the murmur2 partitioner, the Java client's default, so a key lands in the same
// partition as Kafka Connect would put it and per-key order holds (a null key: a random partition).
//
// Exactly once: the producer is idempotent and transactional (`transactional.id`, default
// `cdcsync-<pipeline>`); connect() calls init_transactions, which fences a zombie producer with the same id
// and aborts its open transaction. Each batch is one Kafka transaction holding its events AND the progress
// record (topic `<prefix>.cdcsync.progress`, key = pipeline, value = JSON with end_lsn, xid, commit time,
// acked_lsn); apply() returns only after the commit. load_progress() reads the progress topic back with
// isolation.level=read_committed, so after a crash anywhere the sink resumes exactly after the last
// committed batch: re-streamed transactions at or below it are skipped, never produced twice. Chunks of a
// huge source transaction stay in one Kafka transaction across apply() calls (bounded by
// transaction.timeout.ms). Any failure drops the producer; the next call reconnects (init_transactions
// settles an in-doubt commit) and rereads the progress: never a blind re-produce.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "decoders/memory_budget.h"
#include "decoders/relation_facts.h"
#include "decoders/type_catalog.h"
#include "sinks/kafka_properties.h"
#include "sinks/mapping.h"
#include "sinks/sink.h"
#include "sinks/skip_applied.h"

namespace cdcsync {

// A transient Kafka failure (broker unreachable, timed out, fenced, a commit that failed): the batch is
// retried after reconnecting; nothing of the open Kafka transaction is kept.
class KafkaUnavailable : public TransientError {
 public:
  using TransientError::TransientError;
};

// Metrics hooks; each optional. Called on the thread that calls apply() (delivery reports are served there).
struct KafkaSinkObserver {
  std::function<void(std::chrono::microseconds)> record_delivered;  // produce() to broker acknowledgement
  std::function<void(std::int64_t)> in_flight_changed;              // +n produced, -n acknowledged/purged
  std::function<void(std::string_view kind)> error;                 // Kafka error name, e.g. "_MSG_TIMED_OUT"
  std::function<void(bool committed)> transaction_ended;            // committed or aborted
};

struct KafkaSinkOptions {
  std::string pipeline;
  std::string brokers;                // bootstrap.servers
  std::string topic_prefix;           // empty: the pipeline name
  std::string transactional_id;       // empty: "cdcsync-<pipeline>"
  std::string database = "postgres";  // source.db of the envelope
  bool tombstones = true;             // a null-value record after each delete (log compaction)
  // Extra librdkafka properties (security.protocol, sasl.*, ssl.*, compression.type, linger.ms, ...).
  // Properties the sink controls are refused (kafka_properties.h).
  std::map<std::string, std::string> properties;
  std::chrono::milliseconds timeout{30000};  // init, commit, abort, progress read
  const TypeCatalog* catalog = nullptr;      // null: the built-in types only (or the source's, below)
  // memory.limit_bytes: records produced and not yet acknowledged count against it, and librdkafka's queue
  // holds at most max_buffered_bytes of them (queue.buffering.max.kbytes, unless set in properties).
  MemoryBudget* memory = nullptr;
  std::size_t max_buffered_bytes = 0;  // 0: librdkafka's default
  // The source's catalog: keys by primary key, NOT NULL, defaults and user types (empty: keyed by the
  // mapping, built-in types only). Read over a connection of the sink's own, opened at the first change.
  std::string source_conninfo;
  // Tests: the catalog's facts instead of a source connection (source_conninfo is then unused).
  std::shared_ptr<CatalogFacts> catalog_facts;
  // Tests: called after the batch's records and its progress record were produced and flushed, just
  // before the commit; throwing from it simulates a crash mid-transaction.
  std::function<void()> before_commit;
};

std::string kafka_progress_topic(std::string_view topic_prefix);

class KafkaSink final : public Sink {
 public:
  KafkaSink(Mapping mapping, KafkaSinkOptions options, KafkaSinkObserver observer = {});
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  // Creates the producer, init_transactions (fences a zombie with the same transactional.id), ensures the
  // progress topic exists (compacted) and reads the progress. Throws TransientError (broker unreachable,
  // fenced) or std::invalid_argument (a property librdkafka refuses, naming it).
  void connect();

  std::optional<Lsn> apply(const Batch& batch) override;
  void abort() override;
  std::optional<Progress> load_progress() override;
  void record_ack(Lsn lsn) override;

  // Records produced and not yet acknowledged by the broker.
  std::int64_t in_flight() const { return in_flight_.load(); }
  const std::string& transactional_id() const { return transactional_id_; }
  const std::string& topic_prefix() const { return topic_prefix_; }

  struct Stats {
    std::uint64_t records = 0;  // data records and tombstones produced in committed transactions
    std::uint64_t transactions_committed = 0;
    std::uint64_t source_transactions_skipped = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Impl;
  std::optional<Lsn> apply_inner(const Batch& batch);
  void ensure_connected();
  void drop_producer();
  std::optional<Progress> read_progress();
  void produce_transaction(const Transaction& txn);
  void produce_progress(const Progress& p);
  void commit(Lsn lsn);
  [[noreturn]] void fail(const std::string& what, Lsn lsn);

  Mapping mapping_;
  KafkaSinkOptions options_;
  KafkaSinkObserver observer_;
  std::string topic_prefix_;
  std::string transactional_id_;
  std::string progress_topic_;
  std::unique_ptr<Impl> impl_;
  std::optional<Progress> progress_;
  bool in_txn_ = false;
  SkipApplied skip_;
  std::atomic<std::int64_t> in_flight_{0};
  // Bytes of the records in flight, counted in options_.memory; what is left when the producer goes is
  // given back then.
  std::atomic<std::size_t> in_flight_bytes_{0};
  void count_in_flight(std::size_t bytes);
  void uncount_in_flight(std::size_t bytes);
  Stats stats_;
  std::uint64_t produced_in_txn_ = 0;
};

}  // namespace cdcsync
