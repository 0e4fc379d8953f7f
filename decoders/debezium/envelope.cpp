// DebeziumEncoder: row change, tombstone, truncate and message events (the envelope and its source block).
#include <charconv>
#include <utility>

#include "decoders/debezium/schema.h"
#include "decoders/debezium_json.h"
#include "decoders/pg_text.h"

namespace cdcsync {

using debezium::begin_document;
using debezium::end_document;
using debezium::write_key;
using debezium::write_string;

namespace {

// An LSN as Debezium writes it in source.sequence: a decimal string, or null.
void write_lsn_decimal(debezium::JsonWriter& w, Lsn lsn) {
  if (!lsn.valid()) return static_cast<void>(w.Null());
  char buf[24];
  const char* end = std::to_chars(buf, buf + sizeof buf, lsn.value()).ptr;
  w.String(buf, static_cast<rapidjson::SizeType>(end - buf));
}

}  // namespace

DebeziumEncoder::DebeziumEncoder(DebeziumOptions options, const TypeCatalog& catalog, CatalogFacts* facts)
    : options_(std::move(options)),
      catalog_(catalog),
      facts_(facts),
      values_(options_),
      key_writer_(key_buf_),
      value_writer_(value_buf_),
      sequence_writer_(sequence_buf_),
      compare_writer_(compare_buf_) {
  collections_.reserve(8);
  if (options_.include_schema) message_schema_ = debezium::message_value_schema(options_);
}

DebeziumEncoder::~DebeziumEncoder() = default;

std::int64_t DebeziumEncoder::now_us() const {
  if (options_.clock_us) return options_.clock_us();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const DebeziumEncoder::RelationPlan& DebeziumEncoder::plan_for(const RelationPtr& relation, Xid xid) {
  const auto it = plans_.find(relation.get());
  if (it != plans_.end()) return *it->second;
  // Every Relation message makes a new RelationDef; forget old plans now and then rather than pin them all.
  if (plans_.size() >= 1024) plans_.clear();
  auto plan =
      std::make_unique<RelationPlan>(debezium::make_plan(relation, xid, options_, catalog_, facts_, values_));
  const RelationPlan& out = *plan;
  plans_.emplace(relation.get(), std::move(plan));
  return out;
}

// The value of column `i`: from `tuple`, except an unchanged TOAST value that `old` (the old row of the same
// message) has: PostgresChangeRecordEmitter.columnValues reads the old tuple first and takes its value for an
// unchanged TOAST column of the new one.
void DebeziumEncoder::write_column(Writer& w, const debezium::ColumnPlan& col, const Tuple& tuple,
                                   const Tuple* old, std::size_t i) {
  if (old != nullptr && i < tuple.size() && tuple.is_unchanged_toast(i) && i < old->size()) {
    const DatumKind k = old->kind(i);
    if (k == DatumKind::Text || k == DatumKind::Binary) return values_.write(w, col, *old, i);
  }
  values_.write(w, col, tuple, i);
}

void DebeziumEncoder::write_row(Writer& w, const RelationPlan& plan, const Tuple* tuple, const Tuple* old) {
  if (tuple == nullptr || tuple->empty()) return static_cast<void>(w.Null());
  w.StartObject();
  for (std::size_t i = 0; i < plan.columns.size(); ++i) {
    const debezium::ColumnPlan& col = plan.columns[i];
    write_key(w, col.name);
    write_column(w, col, *tuple, old, i);
  }
  w.EndObject();
}

void DebeziumEncoder::write_key_payload(Writer& w, const RelationPlan& plan, const Tuple& tuple,
                                        const Tuple* old) {
  w.StartObject();
  for (std::size_t i : plan.key_columns) {
    const debezium::ColumnPlan& col = plan.columns[i];
    write_key(w, col.name);
    write_column(w, col, tuple, old, i);
  }
  w.EndObject();
}

// source.sequence: the JSON text ["<last commit LSN>","<this LSN>"] as a string.
void DebeziumEncoder::write_sequence(Writer& w, Lsn last, Lsn current) {
  sequence_buf_.Clear();
  sequence_writer_.Reset(sequence_buf_);
  sequence_writer_.StartArray();
  write_lsn_decimal(sequence_writer_, last);
  write_lsn_decimal(sequence_writer_, current);
  sequence_writer_.EndArray();
  w.String(sequence_buf_.GetString(), static_cast<rapidjson::SizeType>(sequence_buf_.GetSize()));
}

void DebeziumEncoder::write_source(Writer& w, const TransactionInfo* info, const Change& change,
                                   const RelationDef* relation, const EventPosition& pos) {
  const std::int64_t commit_us = info != nullptr ? pg_micros_to_unix_micros(info->commit_time_us) : now_us();
  w.Key("source");
  w.StartObject();
  w.Key("version");
  write_string(w, options_.connector_version);
  w.Key("connector");
  w.String("postgresql");
  w.Key("name");
  write_string(w, options_.topic_prefix);
  w.Key("ts_ms");
  w.Int64(floor_div(commit_us, 1000));
  w.Key("ts_us");
  w.Int64(commit_us);
  w.Key("ts_ns");
  w.Int64(commit_us * 1000);
  w.Key("snapshot");
  w.String(pos.snapshot ? "true" : "false");
  w.Key("db");
  write_string(w, options_.database);
  w.Key("sequence");
  write_sequence(w, pos.last_commit_lsn, change.lsn);
  w.Key("schema");
  write_string(w, relation != nullptr ? std::string_view{relation->schema} : std::string_view{""});
  w.Key("table");
  write_string(w, relation != nullptr ? std::string_view{relation->name} : std::string_view{""});
  w.Key("txId");
  if (info != nullptr) {
    w.Int64(info->xid.value);
  } else {
    w.Null();
  }
  w.Key("lsn");
  if (change.lsn.valid()) {
    w.Int64(static_cast<std::int64_t>(change.lsn.value()));
  } else {
    w.Null();
  }
  w.Key("xmin");
  w.Null();
  w.EndObject();
}

void DebeziumEncoder::write_envelope_tail(Writer& w, char op, const TransactionInfo* info,
                                          const EventPosition& pos) {
  w.Key("op");
  w.String(&op, 1);
  const std::int64_t now = now_us();
  w.Key("ts_ms");
  w.Int64(floor_div(now, 1000));
  w.Key("ts_us");
  w.Int64(now);
  w.Key("ts_ns");
  w.Int64(now * 1000);
  if (options_.transaction_metadata && info != nullptr) {
    w.Key("transaction");
    w.StartObject();
    w.Key("id");
    write_transaction_id(w, *info);
    w.Key("total_order");
    w.Uint64(pos.total_order);
    w.Key("data_collection_order");
    w.Uint64(pos.collection_order);
    w.EndObject();
  }
}

void DebeziumEncoder::encode_row_key(const RelationPlan& plan, const Tuple& tuple, const Tuple* old,
                                     DebeziumEvent& ev) {
  begin_document(key_writer_, key_buf_, options_.include_schema ? &plan.key_schema : nullptr);
  write_key_payload(key_writer_, plan, tuple, old);
  ev.key = end_document(key_writer_, key_buf_, options_.include_schema);
  ev.has_key = true;
}

// RelationalChangeRecordEmitter.emitUpdateRecord: an update whose message has an old row is a "primary key
// update" when the key made from the old row differs from the key made from the new one. Under REPLICA
// IDENTITY FULL the old row is whole; under DEFAULT or USING INDEX it holds the identity columns only, and a
// key column it lacks is NULL, which a NOT NULL key column turns into its default or fallback (so an update
// of a USING INDEX key that is not the primary key is a key change in Debezium too).
bool DebeziumEncoder::key_changed(const RelationPlan& plan, const Change& change) {
  if (!plan.has_key || change.before.empty() || change.after.empty()) return false;
  compare_buf_.Clear();
  compare_writer_.Reset(compare_buf_);
  write_key_payload(compare_writer_, plan, change.before, nullptr);
  const std::size_t old_size = compare_buf_.GetSize();
  compare_writer_.Reset(compare_buf_);
  write_key_payload(compare_writer_, plan, change.after, &change.before);
  const std::string_view all{compare_buf_.GetString(), compare_buf_.GetSize()};
  return all.substr(0, old_size) != all.substr(old_size);
}

DebeziumEvent DebeziumEncoder::encode_change(const TransactionInfo& info, const Change& change,
                                             const EventPosition& pos) {
  if (change.op == ChangeOp::Message) return encode_message(info, change, pos);
  if (change.op == ChangeOp::Truncate) {
    if (change.truncated.empty() || !change.truncated.front()) return {};
    return encode_truncate(info, change, change.truncated.front(), pos);
  }
  if (!change.relation) return {};
  char op = static_cast<char>(change.op);
  if (change.op == ChangeOp::Insert && pos.snapshot) op = 'r';
  return encode_split_update(info, change, pos, op);
}

// One row event with the given op: 'c'/'r' and 'u' carry `after`, 'd' carries only `before`.
DebeziumEvent DebeziumEncoder::encode_split_update(const TransactionInfo& info, const Change& change,
                                                   const EventPosition& pos, char op) {
  const RelationPlan& plan = plan_for(change.relation, info.xid);
  const Tuple* before = change.before.empty() ? nullptr : &change.before;
  const Tuple* after = change.after.empty() ? nullptr : &change.after;
  if (op == 'd') after = nullptr;
  if (op == 'c' || op == 'r') before = nullptr;

  DebeziumEvent ev;
  ev.kind = EventKind::Change;
  ev.topic = plan.topic;
  // The new row's unchanged TOAST values come from the old row of the same message, when it has them.
  const Tuple* old = change.before.empty() ? nullptr : &change.before;
  if (plan.has_key) {
    if (op == 'd' && before != nullptr) encode_row_key(plan, *before, nullptr, ev);
    if (op != 'd' && after != nullptr) encode_row_key(plan, *after, old, ev);
  }

  Writer& w = value_writer_;
  begin_document(w, value_buf_, options_.include_schema ? &plan.value_schema : nullptr);
  w.StartObject();
  w.Key("before");
  write_row(w, plan, before, nullptr);
  w.Key("after");
  write_row(w, plan, after, old);
  write_source(w, &info, change, plan.relation.get(), pos);
  write_envelope_tail(w, op, &info, pos);
  w.EndObject();
  ev.value = end_document(w, value_buf_, options_.include_schema);
  ev.has_value = true;
  return ev;
}

DebeziumEvent DebeziumEncoder::encode_tombstone(const Change& change) {
  DebeziumEvent ev;
  ev.kind = EventKind::Tombstone;
  if (!change.relation) return ev;
  const RelationPlan& plan = plan_for(change.relation);
  ev.topic = plan.topic;
  const Tuple& key_source = change.before.empty() ? change.after : change.before;
  if (plan.has_key && !key_source.empty()) encode_row_key(plan, key_source, nullptr, ev);
  return ev;
}

// "_truncate_ events" (PostgresChangeRecordEmitter.emitTruncateRecord, Envelope.truncate): the key is null;
// the value is the table's Envelope with before and after null.
DebeziumEvent DebeziumEncoder::encode_truncate(const TransactionInfo& info, const Change& change,
                                               const RelationPtr& relation, const EventPosition& pos) {
  const RelationPlan& plan = plan_for(relation, info.xid);
  DebeziumEvent ev;
  ev.kind = EventKind::Change;
  ev.topic = plan.topic;
  Writer& w = value_writer_;
  begin_document(w, value_buf_, options_.include_schema ? &plan.value_schema : nullptr);
  w.StartObject();
  w.Key("before");
  w.Null();
  w.Key("after");
  w.Null();
  write_source(w, &info, change, relation.get(), pos);
  write_envelope_tail(w, 't', &info, pos);
  w.EndObject();
  ev.value = end_document(w, value_buf_, options_.include_schema);
  ev.has_value = true;
  return ev;
}

// "_message_ events" (LogicalDecodingMessageMonitor): key {prefix}; value {op "m", ts_ms, source (empty
// schema and table, txId only when transactional), message {prefix, content (bytes)}}.
DebeziumEvent DebeziumEncoder::encode_message(const TransactionInfo& info, const Change& change,
                                              const EventPosition& pos) {
  DebeziumEvent ev;
  ev.kind = EventKind::Change;
  topic_.assign(options_.topic_prefix);
  topic_.append(".message");
  ev.topic = topic_;
  const bool schema = options_.include_schema;
  const TransactionInfo* txn = change.message_transactional ? &info : nullptr;

  begin_document(key_writer_, key_buf_, schema ? &debezium::message_key_schema() : nullptr);
  key_writer_.StartObject();
  key_writer_.Key("prefix");
  write_string(key_writer_, change.message_prefix);
  key_writer_.EndObject();
  ev.key = end_document(key_writer_, key_buf_, schema);
  ev.has_key = true;

  Writer& w = value_writer_;
  begin_document(w, value_buf_, schema ? &message_schema_ : nullptr);
  w.StartObject();
  w.Key("op");
  w.String("m");
  w.Key("ts_ms");
  w.Int64(floor_div(now_us(), 1000));
  write_source(w, txn, change, nullptr, pos);
  w.Key("message");
  w.StartObject();
  w.Key("prefix");
  write_string(w, change.message_prefix);
  w.Key("content");
  values_.write_binary(w, change.message_content);
  w.EndObject();
  w.EndObject();
  ev.value = end_document(w, value_buf_, schema);
  ev.has_value = true;
  return ev;
}

}  // namespace cdcsync
