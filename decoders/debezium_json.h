// DebeziumEncoder: whole transactions -> Debezium-compatible JSON events (the PostgreSQL connector's
// envelope, value encodings and transaction metadata), optionally with the schema part exactly as Kafka
// Connect's JsonConverter writes it with schemas.enable=true. The pieces are in decoders/debezium/.
//
// One encoder per thread. Events are views into the encoder's reusable buffers and stay valid until the
// next encode call; on the hot path (no schema) encoding a change allocates nothing once buffers have grown.
//
// The connector followed is 2.7.3.Final with its default settings; with a CatalogFacts (the source's catalog)
// the encoder reads what Debezium reads out of band for each Relation message: NOT NULL, defaults and the
// message key (the primary key, else the first unique index). Without one (the event archive, which keys by
// its mapping) the key is the replica identity columns of the Relation message, which alone are required.
//
// Deliberate differences from the connector (the counter that counts each case is named). Anything else
// that differs is a bug.
// - A NaN or +/-Infinity numeric in decimal.handling.mode=precise is null (special_numeric_values), where the
//   connector stops with an error: a daemon must go on.
// - A column Debezium has no converter for is sent, not left out (unknown_type_values for the types the
//   catalog does not know): a type the catalog does not know is its text (or, in binary form, the base64 of
//   its bytes); tsvector, the geometric types but point, and arrays of domains and of money, interval,
//   varbit, xml, point and name are sent in the form cdcsync has for them. The connector leaves such columns
//   out unless include.unknown.datatypes is set; a daemon must not drop data.
// - A value that does not parse in its type's text form is its text as a string (malformed_values), and so
//   is each element of a multidimensional array.
// - Identifiers are UTF-8, as Debezium reads them since 3.5 (dbz#1682): 2.7's pgoutput decoder reads
//   schema, table and column names byte by byte as Latin-1, so a non-ASCII name arrives garbled in
//   source.schema/table and field names, with one '_' per UTF-8 byte in topic and schema names; cdcsync
//   writes the names themselves and one '_' per UTF-16 code unit.
// - An unchanged TOAST value of a type whose converter cannot take Debezium's marker (numeric, bit strings,
//   arrays other than text, varchar, json, jsonb, bytea, int4, int8, date and uuid ones) is null even in a
//   NOT NULL column, where the connector's record fails validation.
// - Doubles have the shortest digits that round-trip, as Java 19+ prints them; Java 11 and 17 print a longer
//   digit string for a few values (JDK-4511638).
// - hstore as JSON follows java.util.HashMap's order except in a bucket HashMap turns into a tree (9 keys
//   colliding in one bucket of a table of 64 or more), which keeps insertion order.
// Limits: interval.handling.mode is numeric only, hstore.handling.mode json only; money text is read as
// lc_monetary C / en_* print it ("$1,234.56", "-$1,234.56"); timestamp defaults are read as UTC (Debezium
// reads them in the JVM's zone, UTC in its tests).
#pragma once

#include <rapidjson/stringbuffer.h>

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
#include "decoders/debezium/json_writer.h"
#include "decoders/debezium/plan.h"
#include "decoders/debezium/values.h"
#include "decoders/relation_facts.h"
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
  // skipped.operations: the ops whose events are left out, any of "c", "u", "d", "t" (Debezium's default "t":
  // no truncate events; "" for none). A key update's delete and create count as "d" and "c".
  std::string skipped_operations = "t";
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
  // `facts` (may be null) is the source's catalog: NOT NULL, defaults and the message key of each relation,
  // and the reload of `catalog` when a Relation message names a type it does not know. Without it the key is
  // the Relation message's replica identity columns, which alone are required. It must outlive the encoder.
  DebeziumEncoder(DebeziumOptions options, const TypeCatalog& catalog, CatalogFacts* facts = nullptr);
  ~DebeziumEncoder();
  DebeziumEncoder(const DebeziumEncoder&) = delete;
  DebeziumEncoder& operator=(const DebeziumEncoder&) = delete;

  // Every event of a transaction (or chunk) in Debezium's order: BEGIN (first chunk, metadata enabled), per
  // change its event (an update of the key becomes delete + tombstone + create), a tombstone after each
  // delete (when enabled), END (last chunk); skipped operations are left out. `emit(const DebeziumEvent&)`
  // is called synchronously. Throws CatalogError when the catalog of a new relation cannot be read.
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
  std::uint64_t unknown_type_values() const { return values_.unknown_type_values(); }
  // Values that could not be parsed in their type's text form: sent as the text string.
  std::uint64_t malformed_values() const { return values_.malformed_values(); }
  // NaN/Infinity numerics in precise mode, which Debezium cannot represent: sent as null.
  std::uint64_t special_numeric_values() const { return values_.special_numeric_values(); }
  // Unchanged TOAST values sent as the placeholder.
  std::uint64_t unavailable_values() const { return values_.unavailable_values(); }

  const DebeziumOptions& options() const { return options_; }

 private:
  using Writer = debezium::JsonWriter;
  using RelationPlan = debezium::RelationPlan;

  // `xid`: the transaction of the change (the catalog is read as it committed); 0 when the plan must exist.
  const RelationPlan& plan_for(const RelationPtr& relation, Xid xid = {});
  void write_column(Writer& w, const debezium::ColumnPlan& col, const Tuple& tuple, const Tuple* old,
                    std::size_t i);
  void write_row(Writer& w, const RelationPlan& plan, const Tuple* tuple, const Tuple* old);
  void write_key_payload(Writer& w, const RelationPlan& plan, const Tuple& tuple, const Tuple* old);
  void write_source(Writer& w, const TransactionInfo* info, const Change& change, const RelationDef* relation,
                    const EventPosition& pos);
  void write_sequence(Writer& w, Lsn last, Lsn current);
  void write_envelope_tail(Writer& w, char op, const TransactionInfo* info, const EventPosition& pos);
  void write_transaction_id(Writer& w, const TransactionInfo& info);
  // The key document of a row event or tombstone: the key columns of `tuple` (unchanged TOAST values from
  // `old`).
  void encode_row_key(const RelationPlan& plan, const Tuple& tuple, const Tuple* old, DebeziumEvent& ev);

  DebeziumEvent encode_truncate(const TransactionInfo& info, const Change& change,
                                const RelationPtr& relation, const EventPosition& pos);
  DebeziumEvent encode_boundary(const TransactionInfo& info,
                                const std::vector<std::pair<std::string, std::uint64_t>>* collections,
                                std::size_t collection_count);
  DebeziumEvent encode_message(const TransactionInfo& info, const Change& change, const EventPosition& pos);
  DebeziumEvent encode_split_update(const TransactionInfo& info, const Change& change,
                                    const EventPosition& pos, char as_op);
  bool key_changed(const RelationPlan& plan, const Change& change);
  bool skipped(char op) const { return options_.skipped_operations.find(op) != std::string::npos; }

  // Transaction bookkeeping for encode(): orders and per-table counts across chunks.
  void start_transaction();
  std::uint64_t count_collection(const RelationDef& relation);
  void finish_transaction(const TransactionInfo& info);

  std::int64_t now_us() const;

  DebeziumOptions options_;
  const TypeCatalog& catalog_;
  CatalogFacts* facts_;
  debezium::ValueEncoder values_;

  rapidjson::StringBuffer key_buf_;
  rapidjson::StringBuffer value_buf_;
  rapidjson::StringBuffer sequence_buf_;
  Writer key_writer_;
  Writer value_writer_;
  Writer sequence_writer_;
  rapidjson::StringBuffer compare_buf_;  // the old and the new key, side by side (key_changed)
  Writer compare_writer_;
  std::string topic_;
  std::string txn_id_;
  std::string message_schema_;  // with include_schema

  std::unordered_map<const RelationDef*, std::unique_ptr<RelationPlan>> plans_;

  // encode() state
  Lsn last_commit_lsn_;
  std::uint64_t total_order_ = 0;
  std::vector<std::pair<std::string, std::uint64_t>> collections_;
  std::size_t collection_count_ = 0;
};

template <class Emit>
void DebeziumEncoder::encode(const Transaction& txn, Emit&& emit) {
  if (txn.first_chunk) {
    start_transaction();
    if (options_.transaction_metadata) emit(encode_begin(txn.info));
  }
  for (const Change& change : txn.changes) {
    EventPosition pos{.last_commit_lsn = last_commit_lsn_, .snapshot = txn.info.snapshot};
    auto place = [&](const RelationDef& rel) {
      pos.total_order = ++total_order_;
      pos.collection_order = count_collection(rel);
    };
    switch (change.op) {
      case ChangeOp::Truncate:
        if (skipped('t')) break;
        for (const RelationPtr& rel : change.truncated) {
          if (!rel) continue;
          place(*rel);
          emit(encode_truncate(txn.info, change, rel, pos));
        }
        break;
      case ChangeOp::Message:
        emit(encode_message(txn.info, change, pos));
        break;
      default: {
        if (!change.relation) break;
        if (change.op == ChangeOp::Update && key_changed(plan_for(change.relation, txn.info.xid), change)) {
          // Debezium's "primary key update": a delete of the old key, its tombstone, a create of the new.
          if (!skipped('d')) {
            place(*change.relation);
            emit(encode_split_update(txn.info, change, pos, 'd'));
            if (options_.tombstones_on_delete) emit(encode_tombstone(change));
          }
          if (!skipped('c')) {
            place(*change.relation);
            emit(encode_split_update(txn.info, change, pos, 'c'));
          }
          break;
        }
        if (!pos.snapshot && skipped(static_cast<char>(change.op))) break;
        place(*change.relation);
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
