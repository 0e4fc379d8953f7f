// DebeziumEncoder: whole transactions -> Debezium-compatible JSON events (the PostgreSQL connector's
// envelope, value encodings and transaction metadata), optionally with the schema part exactly as Kafka
// Connect's JsonConverter writes it with schemas.enable=true.
//
// One encoder per thread. Events are views into the encoder's reusable buffers and stay valid until the
// next encode call; on the hot path (no schema) encoding a change allocates nothing once buffers have grown.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "decoders/change.h"
#include "decoders/type_catalog.h"

namespace cdcsync {

// decimal.handling.mode
enum class DecimalHandling : std::uint8_t { Precise, Double, String };
// time.precision.mode
enum class TimePrecision : std::uint8_t { Adaptive, AdaptiveTimeMicroseconds, Connect };
// binary.handling.mode: Bytes is the Connect BYTES type, which JsonConverter writes as base64.
enum class BinaryHandling : std::uint8_t { Bytes, Base64, Base64UrlSafe, Hex };
// interval.handling.mode (only numeric so far)
enum class IntervalHandling : std::uint8_t { Numeric };
// hstore.handling.mode (only json so far)
enum class HstoreHandling : std::uint8_t { Json };

struct DebeziumOptions {
  std::string topic_prefix = "cdcsync";           // topic.prefix: source.name, topic and schema names
  std::string database = "postgres";              // source.db
  std::string connector_version = "2.7.3.Final";  // source.version: the Debezium release we follow
  bool include_schema = false;                    // JsonConverter schemas.enable: {"schema":..,"payload":..}
  bool transaction_metadata = false;              // provide.transaction.metadata
  bool tombstones_on_delete = true;               // tombstones.on.delete
  DecimalHandling decimal = DecimalHandling::Precise;
  TimePrecision time = TimePrecision::Adaptive;
  BinaryHandling binary = BinaryHandling::Bytes;
  IntervalHandling interval = IntervalHandling::Numeric;
  HstoreHandling hstore = HstoreHandling::Json;
  int money_fraction_digits = 2;  // money.fraction.digits
  std::string unavailable_value_placeholder = "__debezium_unavailable_value";
  // Processing time ("ts_ms" of the envelope) in microseconds since the Unix epoch; system clock if empty.
  std::function<std::int64_t()> clock_us;
};

enum class EventKind : std::uint8_t { Change, Tombstone, TransactionBegin, TransactionEnd };

// One Kafka-style record. A null key or value (Debezium's null) is has_key/has_value == false.
struct DebeziumEvent {
  EventKind kind = EventKind::Change;
  std::string_view topic;
  std::string_view key;
  std::string_view value;
  bool has_key = false;
  bool has_value = false;
};

// What one change's event needs to know about its place in the stream.
struct EventPosition {
  Lsn last_commit_lsn;            // commit LSN of the previous transaction: first element of source.sequence
  std::uint64_t total_order = 0;  // transaction.total_order (1-based)
  std::uint64_t collection_order = 0;  // transaction.data_collection_order (1-based)
  bool snapshot = false;               // op "r" and source.snapshot "true"
};

class DebeziumEncoder {
 public:
  DebeziumEncoder(DebeziumOptions options, const TypeCatalog& catalog);
  ~DebeziumEncoder();
  DebeziumEncoder(const DebeziumEncoder&) = delete;
  DebeziumEncoder& operator=(const DebeziumEncoder&) = delete;

  // Every event of a transaction (or chunk) in Debezium's order: BEGIN (first chunk, metadata enabled), per
  // change its event (an update of the key becomes delete + tombstone + create), a tombstone after each
  // delete (when enabled), END (last chunk). `emit(const DebeziumEvent&)` is called synchronously.
  template <class Emit>
  void encode(const Transaction& txn, Emit&& emit);

  // The building blocks of encode(), for callers that drive the order themselves.
  DebeziumEvent encode_change(const TransactionInfo& info, const Change& change, const EventPosition& pos);
  DebeziumEvent encode_tombstone(const Change& change);
  DebeziumEvent encode_begin(const TransactionInfo& info);
  // `data_collections`: (schema.table, event count) in first-seen order.
  DebeziumEvent encode_end(const TransactionInfo& info,
                           const std::vector<std::pair<std::string, std::uint64_t>>& data_collections,
                           std::size_t collection_count);

  // Values whose type the catalog does not know (or binary values of types without a binary decoder): sent
  // as text / base64 of raw bytes, never dropped.
  std::uint64_t unknown_type_values() const { return unknown_type_values_; }
  // Values that could not be parsed in their type's text form: sent as the text string.
  std::uint64_t malformed_values() const { return malformed_values_; }
  // NaN/Infinity numerics in precise mode, which Debezium cannot represent: sent as null.
  std::uint64_t special_numeric_values() const { return special_numeric_values_; }
  // Unchanged TOAST values sent as the placeholder.
  std::uint64_t unavailable_values() const { return unavailable_values_; }

  const DebeziumOptions& options() const { return options_; }

 private:
  struct ColumnPlan;
  struct RelationPlan;
  using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

  const RelationPlan& plan_for(const RelationPtr& relation);
  void write_value(Writer& w, const ColumnPlan& col, const Tuple& tuple, std::size_t index);
  void write_text_value(Writer& w, TypeKind kind, std::int32_t typmod, const ColumnPlan& col,
                        std::string_view text);
  void write_binary_value(Writer& w, TypeKind kind, const ColumnPlan& col, std::string_view bytes);
  void write_placeholder(Writer& w, const ColumnPlan& col);
  void write_array(Writer& w, const ColumnPlan& col, std::string_view text);
  void write_row(Writer& w, const RelationPlan& plan, const Tuple* tuple);
  void write_key_payload(Writer& w, const RelationPlan& plan, const Tuple& tuple);
  void write_source(Writer& w, const TransactionInfo* info, const Change& change, const RelationDef* relation,
                    const EventPosition& pos);
  void write_envelope_tail(Writer& w, char op, const TransactionInfo* info, const EventPosition& pos);
  void write_quoted_base64(Writer& w, std::string_view bytes, bool url_safe = false);
  void write_binary(Writer& w, std::string_view bytes);
  bool write_decimal(Writer& w, std::string_view text, int scale, bool variable_scale);
  std::string_view topic_for(const RelationDef& relation);

  DebeziumEvent encode_truncate(const TransactionInfo& info, const Change& change,
                                const RelationPtr& relation, const EventPosition& pos);
  DebeziumEvent encode_boundary(const TransactionInfo& info,
                                const std::vector<std::pair<std::string, std::uint64_t>>* collections,
                                std::size_t collection_count);
  DebeziumEvent encode_message(const TransactionInfo& info, const Change& change, const EventPosition& pos);
  DebeziumEvent encode_split_update(const TransactionInfo& info, const Change& change,
                                    const EventPosition& pos, char as_op);
  bool key_changed(const RelationPlan& plan, const Change& change) const;

  // Transaction bookkeeping for encode(): orders and per-table counts across chunks.
  void start_transaction();
  std::uint64_t count_collection(const RelationDef& relation);
  void finish_transaction(const TransactionInfo& info);

  std::int64_t now_us() const;

  DebeziumOptions options_;
  const TypeCatalog& catalog_;

  rapidjson::StringBuffer key_buf_;
  rapidjson::StringBuffer value_buf_;
  Writer key_writer_;
  Writer value_writer_;
  std::string topic_;
  std::string scratch_;        // base64 / hex output
  std::string digits_;         // decimal digits and byte conversion
  std::string array_scratch_;  // unescaped array elements
  // money digits, hstore keys and values: apart from array_scratch_, which holds the element being encoded
  std::string element_scratch_;
  std::string text_scratch_;  // hstore json, zoned times

  std::unordered_map<const RelationDef*, std::unique_ptr<RelationPlan>> plans_;

  // encode() state
  Lsn last_commit_lsn_;
  std::uint64_t total_order_ = 0;
  std::vector<std::pair<std::string, std::uint64_t>> collections_;
  std::size_t collection_count_ = 0;

  std::uint64_t unknown_type_values_ = 0;
  std::uint64_t malformed_values_ = 0;
  std::uint64_t special_numeric_values_ = 0;
  std::uint64_t unavailable_values_ = 0;
};

template <class Emit>
void DebeziumEncoder::encode(const Transaction& txn, Emit&& emit) {
  if (txn.first_chunk) {
    start_transaction();
    if (options_.transaction_metadata) emit(encode_begin(txn.info));
  }
  for (const Change& change : txn.changes) {
    EventPosition pos{.last_commit_lsn = last_commit_lsn_, .snapshot = txn.info.snapshot};
    switch (change.op) {
      case ChangeOp::Truncate:
        for (const RelationPtr& rel : change.truncated) {
          if (!rel) continue;
          pos.total_order = ++total_order_;
          pos.collection_order = count_collection(*rel);
          emit(encode_truncate(txn.info, change, rel, pos));
        }
        break;
      case ChangeOp::Message:
        emit(encode_message(txn.info, change, pos));
        break;
      default: {
        if (!change.relation) break;
        if (change.op == ChangeOp::Update && key_changed(plan_for(change.relation), change)) {
          // Debezium's "primary key update": a delete of the old key, its tombstone, a create of the new.
          pos.total_order = ++total_order_;
          pos.collection_order = count_collection(*change.relation);
          emit(encode_split_update(txn.info, change, pos, 'd'));
          if (options_.tombstones_on_delete) emit(encode_tombstone(change));
          pos.total_order = ++total_order_;
          pos.collection_order = count_collection(*change.relation);
          emit(encode_split_update(txn.info, change, pos, 'c'));
          break;
        }
        pos.total_order = ++total_order_;
        pos.collection_order = count_collection(*change.relation);
        emit(encode_change(txn.info, change, pos));
        if (change.op == ChangeOp::Delete && options_.tombstones_on_delete) emit(encode_tombstone(change));
      }
    }
  }
  if (txn.last_chunk) {
    if (options_.transaction_metadata) emit(encode_end(txn.info, collections_, collection_count_));
    finish_transaction(txn.info);
  }
}

}  // namespace cdcsync
