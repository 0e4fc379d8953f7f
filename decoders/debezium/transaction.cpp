// DebeziumEncoder: transaction metadata events (BEGIN/END) and the order and count bookkeeping behind them.
#include <algorithm>
#include <charconv>

#include "decoders/debezium/schema.h"
#include "decoders/debezium_json.h"
#include "decoders/pg_text.h"

namespace cdcsync {
namespace {

void append_decimal(std::string& out, std::uint64_t v) {
  char buf[24];
  const char* end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out.append(buf, static_cast<std::size_t>(end - buf));
}

}  // namespace

// Transaction ids are "<xid>:<commit LSN as a decimal number>".
void DebeziumEncoder::write_transaction_id(Writer& w, const TransactionInfo& info) {
  txn_id_.clear();
  append_decimal(txn_id_, info.xid.value);
  txn_id_.push_back(':');
  append_decimal(txn_id_, info.final_lsn.value());
  debezium::write_string(w, txn_id_);
}

DebeziumEvent DebeziumEncoder::encode_begin(const TransactionInfo& info) {
  return encode_boundary(info, nullptr, 0);
}

DebeziumEvent DebeziumEncoder::encode_end(
    const TransactionInfo& info, const std::vector<std::pair<std::string, std::uint64_t>>& data_collections,
    std::size_t collection_count) {
  return encode_boundary(info, &data_collections, collection_count);
}

// "Transaction metadata": {status, id, event_count, data_collections, ts_ms} on <prefix>.transaction (the
// order of SchemaFactory.transactionValueSchema), keyed by the transaction id. BEGIN has null counts.
DebeziumEvent DebeziumEncoder::encode_boundary(
    const TransactionInfo& info, const std::vector<std::pair<std::string, std::uint64_t>>* collections,
    std::size_t collection_count) {
  const bool schema = options_.include_schema;
  DebeziumEvent ev;
  ev.kind = collections == nullptr ? EventKind::TransactionBegin : EventKind::TransactionEnd;
  topic_.assign(options_.topic_prefix);
  topic_.append(".transaction");
  ev.topic = topic_;

  debezium::begin_document(key_writer_, key_buf_, schema ? &debezium::transaction_key_schema() : nullptr);
  key_writer_.StartObject();
  key_writer_.Key("id");
  write_transaction_id(key_writer_, info);
  key_writer_.EndObject();
  ev.key = debezium::end_document(key_writer_, key_buf_, schema);
  ev.has_key = true;

  Writer& w = value_writer_;
  debezium::begin_document(w, value_buf_, schema ? &debezium::transaction_value_schema() : nullptr);
  w.StartObject();
  w.Key("status");
  w.String(collections == nullptr ? "BEGIN" : "END");
  w.Key("id");
  write_transaction_id(w, info);
  w.Key("event_count");
  if (collections == nullptr) {
    w.Null();
    w.Key("data_collections");
    w.Null();
  } else {
    const std::size_t n = std::min(collection_count, collections->size());
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < n; ++i) total += (*collections)[i].second;
    w.Uint64(total);
    w.Key("data_collections");
    w.StartArray();
    for (std::size_t i = 0; i < n; ++i) {
      const auto& [name, count] = (*collections)[i];
      w.StartObject();
      w.Key("data_collection");
      debezium::write_string(w, name);
      w.Key("event_count");
      w.Uint64(count);
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("ts_ms");
  w.Int64(floor_div(pg_micros_to_unix_micros(info.commit_time_us), 1000));
  w.EndObject();
  ev.value = debezium::end_document(w, value_buf_, schema);
  ev.has_value = true;
  return ev;
}

void DebeziumEncoder::start_transaction() {
  total_order_ = 0;
  collection_count_ = 0;
}

std::uint64_t DebeziumEncoder::count_collection(const RelationDef& relation) {
  for (std::size_t i = 0; i < collection_count_; ++i) {
    auto& [name, count] = collections_[i];
    if (name.size() == relation.schema.size() + 1 + relation.name.size() &&
        name.starts_with(relation.schema) && name[relation.schema.size()] == '.' &&
        name.ends_with(relation.name)) {
      return ++count;
    }
  }
  if (collection_count_ == collections_.size()) collections_.emplace_back();
  auto& [name, count] = collections_[collection_count_++];
  // Reuses the entry's string capacity from earlier transactions.
  name.assign(relation.schema);
  name.push_back('.');
  name.append(relation.name);
  count = 1;
  return 1;
}

void DebeziumEncoder::finish_transaction(const TransactionInfo& info) {
  last_commit_lsn_ = info.final_lsn;
}

}  // namespace cdcsync
