// KafkaSink: the producer, one Kafka transaction per batch, and the transactions as published.
#include "sinks/kafka_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "decoders/debezium_json.h"
#include "sinks/kafka_internal.h"
#include "sinks/kafka_properties.h"

namespace cdcsync {
namespace {

using namespace kafka;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr Oid kTextOid = 25;

// Delivery errors that retrying cannot fix: the batch stops the pipeline (exit 4), naming the topic.
bool permanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
      return true;
    default:
      return false;
  }
}

}  // namespace

// The source's catalog facts for the relations as published: for each mapped column the source column's (a
// transformed one is a string: optional, without default), and the source table's key, each of its columns
// mapped.
class ProjectedFacts final : public CatalogFacts {
 public:
  explicit ProjectedFacts(CatalogFacts& source) : source_(source) {}

  void add(const RelationPtr& projected, const RelationPtr& source, const TableMapping* mapping) {
    by_projected_[projected.get()] = {source, mapping};
  }
  void set_lsn(Lsn lsn) { lsn_ = lsn; }

  RelationFacts relation_facts(const RelationDef& projected, Xid xid) override {
    const auto it = by_projected_.find(&projected);
    if (it == by_projected_.end()) return {};
    const auto& [source, mapping] = it->second;
    const RelationFacts facts = source_.relation_facts(*source, xid);
    RelationFacts out;
    for (std::size_t i = 0; i < projected.columns.size(); ++i) {
      const ColumnFacts* f = facts.column(projected.columns[i].name);
      if (f == nullptr) continue;
      const bool copied = mapping->columns[i].transform.kind() == TransformKind::Copy;
      out.columns.push_back(copied ? *f : ColumnFacts{.name = f->name});
    }
    for (const std::string& column : facts.key) {
      if (!projected.column_index(column)) {
        throw PermanentError(source->qualified_name(), lsn_, "",
                             "the key column " + column + " of " + source->qualified_name() +
                                 " is not mapped: Debezium's key (the primary key) would publish it");
      }
      out.key.push_back(column);
    }
    return out;
  }
  bool reload_types() override { return source_.reload_types(); }

 private:
  CatalogFacts& source_;
  std::unordered_map<const RelationDef*, std::pair<RelationPtr, const TableMapping*>> by_projected_;
  Lsn lsn_;
};

struct KafkaSink::Impl {
  explicit Impl(const KafkaSinkOptions& o, const Mapping& mapping)
      : source_facts(o.catalog_facts),
        catalog(o.catalog != nullptr && o.source_conninfo.empty() ? o.catalog : &own_catalog),
        encoder(
            [&] {
              DebeziumOptions d;
              d.topic_prefix = o.topic_prefix.empty() ? o.pipeline : o.topic_prefix;
              d.database = o.database;
              d.tombstones_on_delete = o.tombstones;
              d.skipped_operations.clear();  // the mapping's truncate policy decides
              return d;
            }(),
            *catalog, facts_for(o)),
        binder(mapping) {}

  // `t` as published, into `txn`: mapped tables and columns only, transforms applied. `lsn` names it in
  // errors.
  void project(const Transaction& t, Lsn lsn);

  // The source's catalog (tests: given; else over source_conninfo), and the view of it the encoder asks.
  std::shared_ptr<CatalogFacts> source_facts;
  std::unique_ptr<ProjectedFacts> projected_facts;
  TypeCatalog own_catalog;
  const TypeCatalog* catalog;
  DebeziumEncoder encoder;
  RelationBinder binder;
  RdKafka producer;

  // Source relation -> the relation as published: mapped columns only, transformed ones as text. The source
  // relation is kept alive with it, so its address is never another relation's.
  struct Projection {
    RelationPtr source;
    RelationPtr published;
  };
  std::unordered_map<const RelationDef*, Projection> projected;

  // First delivery error of the open transaction (set by the delivery report callback).
  rd_kafka_resp_err_t delivery_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string delivery_error_topic;

  // Scratch, reused.
  Transaction txn;
  std::string topic;
  std::string value_scratch;

 private:
  CatalogFacts* facts_for(const KafkaSinkOptions& o) {
    if (!source_facts && !o.source_conninfo.empty()) {
      source_facts = std::make_shared<PgCatalogFacts>(o.source_conninfo, own_catalog);
    }
    if (!source_facts) return nullptr;
    projected_facts = std::make_unique<ProjectedFacts>(*source_facts);
    return projected_facts.get();
  }
  std::pair<const BoundTable*, RelationPtr> project_relation(const RelationPtr& rel, Lsn lsn);
  void project_tuple(const BoundTable& b, const Tuple& in, bool key_only, Tuple& to);
  void project_truncate(const Change& c, Lsn lsn);
};

KafkaSink::KafkaSink(Mapping mapping, KafkaSinkOptions options, KafkaSinkObserver observer)
    : mapping_(std::move(mapping)), options_(std::move(options)), observer_(std::move(observer)) {
  topic_prefix_ = options_.topic_prefix.empty() ? options_.pipeline : options_.topic_prefix;
  transactional_id_ =
      options_.transactional_id.empty() ? "cdcsync-" + options_.pipeline : options_.transactional_id;
  progress_topic_ = kafka_progress_topic(topic_prefix_);
  for (const auto& [name, value] : options_.properties) {
    if (std::string problem = check_kafka_property(name, value); !problem.empty()) {
      throw std::invalid_argument("kafka.properties." + name + ": " + problem);
    }
  }
  impl_ = std::make_unique<Impl>(options_, mapping_);
}

KafkaSink::~KafkaSink() {
  try {
    abort();
  } catch (...) {
    // the broker aborts the transaction when it times out, or the next instance's init_transactions does
  }
  drop_producer();
}

void KafkaSink::count_in_flight(std::size_t bytes) {
  in_flight_bytes_ += bytes;
  if (options_.memory != nullptr) options_.memory->add(bytes);
}

void KafkaSink::uncount_in_flight(std::size_t bytes) {
  bytes = std::min(bytes, in_flight_bytes_.load());
  in_flight_bytes_ -= bytes;
  if (options_.memory != nullptr) options_.memory->release(bytes);
}

void KafkaSink::drop_producer() {
  if (!impl_ || !impl_->producer) return;
  // Undelivered records of an unfinished transaction are purged: the broker never commits them.
  rd_kafka_purge(impl_->producer.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(impl_->producer.get(), 0);
  impl_->producer.reset();
  uncount_in_flight(in_flight_bytes_.load());
  const std::int64_t left = in_flight_.exchange(0);
  if (left != 0 && observer_.in_flight_changed) observer_.in_flight_changed(-left);
  in_txn_ = false;
  skip_.reset();
}

void KafkaSink::connect() {
  drop_producer();
  RdConf conf{rd_kafka_conf_new()};
  for (const auto& [name, value] : options_.properties)
    set_conf(conf.get(), name, value, name.find("password") != std::string::npos);
  if (!options_.properties.contains("transaction.timeout.ms"))
    set_conf(conf.get(), "transaction.timeout.ms", "300000");
  if (!options_.properties.contains("linger.ms")) set_conf(conf.get(), "linger.ms", "5");
  if (!options_.properties.contains("queue.buffering.max.kbytes") && options_.max_buffered_bytes > 0)
    set_conf(conf.get(), "queue.buffering.max.kbytes",
             std::to_string(std::max<std::size_t>(options_.max_buffered_bytes >> 10, 1)));
  if (!options_.properties.contains("client.id"))
    set_conf(conf.get(), "client.id", "cdcsync-" + options_.pipeline);
  set_conf(conf.get(), "bootstrap.servers", options_.brokers);
  set_conf(conf.get(), "transactional.id", transactional_id_);
  set_conf(conf.get(), "enable.idempotence", "true");
  set_conf(conf.get(), "acks", "all");
  set_conf(conf.get(), "partitioner", "murmur2_random");
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    self->in_flight_.fetch_sub(1);
    self->uncount_in_flight(m->len + m->key_len);
    if (self->observer_.in_flight_changed) self->observer_.in_flight_changed(-1);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (self->observer_.record_delivered) {
        const std::int64_t us = rd_kafka_message_latency(m);
        if (us >= 0) self->observer_.record_delivered(std::chrono::microseconds(us));
      }
      return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) return;
    if (self->impl_->delivery_error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->impl_->delivery_error = m->err;
      self->impl_->delivery_error_topic = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
    }
    if (self->observer_.error) self->observer_.error(rd_kafka_err2name(m->err));
  });

  char err[512] = {};
  RdKafka rk{rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err)};
  if (!rk) throw std::invalid_argument(fmt::format("kafka: cannot create the producer: {}", err));
  conf.release();  // owned by rk now

  // Fences a zombie producer with the same transactional.id and aborts (or completes) its open transaction.
  if (RdError e{rd_kafka_init_transactions(rk.get(), static_cast<int>(options_.timeout.count()))}) {
    if (observer_.error) observer_.error(rd_kafka_err2name(rd_kafka_error_code(e.get())));
    throw KafkaUnavailable(fmt::format("kafka: init_transactions for transactional.id {} on {}: {}",
                                       transactional_id_, options_.brokers, rd_kafka_error_string(e.get())));
  }

  ensure_progress_topic(rk.get(), progress_topic_, options_.timeout);
  impl_->producer = std::move(rk);
  impl_->delivery_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  progress_ = read_progress();
  spdlog::info("kafka: producer {} ready on {}; progress {}", transactional_id_, options_.brokers,
               progress_ ? progress_->end_lsn.str() : std::string("(none)"));
}

void KafkaSink::ensure_connected() {
  if (!impl_->producer) connect();
}

void KafkaSink::fail(const std::string& what, Lsn lsn) {
  const rd_kafka_resp_err_t delivery = impl_->delivery_error;
  const std::string topic = impl_->delivery_error_topic;
  if (in_txn_ && observer_.transaction_ended) observer_.transaction_ended(false);
  drop_producer();
  progress_.reset();  // reread after reconnecting: settles an in-doubt commit
  if (delivery != RD_KAFKA_RESP_ERR_NO_ERROR && permanent(delivery)) {
    throw PermanentError(topic, lsn, rd_kafka_err2name(delivery),
                         fmt::format("kafka refused a record for {}: {}", topic, rd_kafka_err2str(delivery)));
  }
  throw KafkaUnavailable(what);
}

std::optional<Lsn> KafkaSink::apply(const Batch& batch) {
  try {
    return apply_inner(batch);
  } catch (const PermanentError&) {
    if (in_txn_ && observer_.transaction_ended) observer_.transaction_ended(false);
    drop_producer();
    progress_.reset();
    throw;
  } catch (const TransientError&) {
    throw;
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    fail(fmt::format("kafka: {}", e.what()), batch.end_lsn());
  }
}

std::optional<Lsn> KafkaSink::apply_inner(const Batch& batch) {
  ensure_connected();
  skip_.check_continuation(batch, in_txn_);
  const TransactionInfo* last_whole = nullptr;
  for (const auto& t : batch.transactions) {
    if (skip_.skip(t, progress_)) {
      if (t.last_chunk) ++stats_.source_transactions_skipped;
      continue;
    }
    if (!in_txn_) {
      if (RdError e{rd_kafka_begin_transaction(impl_->producer.get())}) {
        fail(fmt::format("kafka: begin_transaction: {}", rd_kafka_error_string(e.get())), t.info.final_lsn);
      }
      in_txn_ = true;
      produced_in_txn_ = 0;
      impl_->delivery_error = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    produce_transaction(t);
    if (t.last_chunk) last_whole = &t.info;
  }
  if (!batch.ends_whole()) return std::nullopt;
  if (in_txn_) {
    if (last_whole == nullptr)
      throw std::logic_error("open Kafka transaction without a finished source transaction");
    Progress p{last_whole->end_lsn, last_whole->xid, last_whole->commit_time_us,
               progress_ ? std::max(progress_->acked_lsn, last_whole->end_lsn) : last_whole->end_lsn};
    produce_progress(p);
    commit(p.end_lsn);
    stats_.records += produced_in_txn_;
    progress_ = p;
  }
  return progress_ ? progress_->end_lsn : Lsn{};
}

std::pair<const BoundTable*, RelationPtr> KafkaSink::Impl::project_relation(const RelationPtr& rel, Lsn lsn) {
  const BoundTable* b = binder.bind(rel, lsn);
  if (b == nullptr) return {nullptr, nullptr};
  Projection& entry = projected[rel.get()];
  if (entry.source != rel) entry = {rel, nullptr};
  RelationPtr& cached = entry.published;
  if (!cached) {
    auto def = std::make_shared<RelationDef>();
    def->id = rel->id;
    def->schema = rel->schema;
    def->name = rel->name;
    def->replica_identity = rel->replica_identity;
    const auto& cols = b->mapping->columns;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      const ColumnDef& src = rel->columns[b->source_index[i]];
      ColumnDef c{src.name, src.type_oid, src.type_modifier, false};
      if (cols[i].transform.yields_text()) {
        c.type_oid = kTextOid;
        c.type_modifier = -1;
      }
      c.part_of_key = std::find(b->key.begin(), b->key.end(), i) != b->key.end();
      def->columns.push_back(std::move(c));
    }
    cached = std::move(def);
    if (projected_facts) projected_facts->add(cached, rel, b->mapping);
  }
  return {b, cached};
}

void KafkaSink::Impl::project_tuple(const BoundTable& b, const Tuple& in, bool key_only, Tuple& to) {
  to.clear();
  const auto& cols = b.mapping->columns;
  for (std::size_t i = 0; i < cols.size(); ++i) {
    const std::size_t idx = b.source_index[i];
    const bool is_key = std::find(b.key.begin(), b.key.end(), i) != b.key.end();
    if (idx >= in.size() || (key_only && !is_key)) {
      to.add_null();
      continue;
    }
    const DatumKind kind = in.kind(idx);
    if (kind == DatumKind::UnchangedToast) {
      to.add_unchanged_toast();
      continue;
    }
    const Transform& tr = cols[i].transform;
    if (tr.kind() == TransformKind::Copy) {
      if (kind == DatumKind::Null) {
        to.add_null();
      } else if (kind == DatumKind::Binary) {
        to.add_binary(in.value(idx));
      } else {
        to.add_text(in.value(idx));
      }
      continue;
    }
    value_scratch.clear();
    const std::optional<std::string_view> v =
        kind == DatumKind::Null ? std::nullopt : std::optional<std::string_view>(in.value(idx));
    if (tr.apply(v, value_scratch)) {
      to.add_text(value_scratch);
    } else {
      to.add_null();
    }
  }
}

void KafkaSink::Impl::project_truncate(const Change& c, Lsn lsn) {
  Change pc;
  pc.op = ChangeOp::Truncate;
  pc.lsn = c.lsn;
  pc.truncate_cascade = c.truncate_cascade;
  pc.truncate_restart_identity = c.truncate_restart_identity;
  for (const RelationPtr& rel : c.truncated) {
    if (!rel) continue;
    auto [b, relation] = project_relation(rel, lsn);
    if (b == nullptr || b->mapping->truncates == TruncatePolicy::Ignore) continue;
    if (b->mapping->truncates == TruncatePolicy::Fail) {
      throw PermanentError(rel->qualified_name(), lsn, "",
                           "TRUNCATE of " + rel->qualified_name() + " with truncate = \"fail\"");
    }
    pc.truncated.push_back(relation);
  }
  if (!pc.truncated.empty()) txn.changes.push_back(std::move(pc));
}

void KafkaSink::Impl::project(const Transaction& t, Lsn lsn) {
  if (projected_facts) projected_facts->set_lsn(lsn);
  txn.info = t.info;
  txn.first_chunk = t.first_chunk;
  txn.last_chunk = t.last_chunk;
  txn.changes.clear();
  for (const Change& c : t.changes) {
    switch (c.op) {
      case ChangeOp::Message:
        break;
      case ChangeOp::Truncate:
        project_truncate(c, lsn);
        break;
      default: {
        if (!c.relation) break;
        auto [b, relation] = project_relation(c.relation, lsn);
        if (b == nullptr) break;
        Change pc;
        pc.op = c.op;
        pc.lsn = c.lsn;
        pc.relation = relation;
        pc.before_kind = c.before_kind;
        // Keyed by the mapping, a key-only old row keeps only the mapping's key; keyed by the source's key,
        // it is what the source sent (its identity columns).
        const bool key_only = c.before_kind == 'K' && !projected_facts;
        if (!c.before.empty()) project_tuple(*b, c.before, key_only, pc.before);
        if (!c.after.empty()) project_tuple(*b, c.after, false, pc.after);
        txn.changes.push_back(std::move(pc));
      }
    }
  }
  for (const ColumnDrift& d : binder.take_new_drift()) {
    spdlog::warn("kafka: source column {}.{} is not mapped; it is not published", d.table, d.column);
  }
  for (const auto& [configured, arriving] : binder.take_new_renames()) {
    spdlog::warn(
        "kafka: source table {} arrives as {} (the same table, renamed): published through its "
        "[[tables]] entry",
        configured, arriving);
  }
}

void KafkaSink::produce_transaction(const Transaction& t) {
  Impl& im = *impl_;
  const Lsn lsn = t.info.end_lsn.valid() ? t.info.end_lsn : t.info.final_lsn;
  im.project(t, lsn);
  im.encoder.encode(im.txn, [&](const DebeziumEvent& ev) {
    im.topic.assign(ev.topic);
    sanitize_topic(im.topic);
    const auto deadline = Clock::now() + options_.timeout;
    while (true) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          im.producer.get(), RD_KAFKA_V_TOPIC(im.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(ev.has_key ? ev.key.data() : nullptr, ev.has_key ? ev.key.size() : 0),
          RD_KAFKA_V_VALUE(ev.has_value ? const_cast<char*>(ev.value.data()) : nullptr,
                           ev.has_value ? ev.value.size() : 0),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && Clock::now() < deadline) {
        rd_kafka_poll(im.producer.get(), 50);  // serve delivery reports until there is room
        continue;
      }
      if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        throw PermanentError(im.topic, lsn, rd_kafka_err2name(err),
                             fmt::format("kafka: a record of {} bytes for {} exceeds message.max.bytes",
                                         ev.value.size(), im.topic));
      }
      fail(fmt::format("kafka: producing to {}: {}", im.topic, rd_kafka_err2str(err)), lsn);
    }
    ++produced_in_txn_;
    in_flight_.fetch_add(1);
    count_in_flight((ev.has_key ? ev.key.size() : 0) + (ev.has_value ? ev.value.size() : 0));
    if (observer_.in_flight_changed) observer_.in_flight_changed(1);
  });
  rd_kafka_poll(im.producer.get(), 0);
}

void KafkaSink::produce_progress(const Progress& p) {
  const std::string value = progress_json(options_.pipeline, transactional_id_, p);
  const rd_kafka_resp_err_t err =
      rd_kafka_producev(impl_->producer.get(), RD_KAFKA_V_TOPIC(progress_topic_.c_str()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_KEY(options_.pipeline.data(), options_.pipeline.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail(
        fmt::format("kafka: producing the progress record to {}: {}", progress_topic_, rd_kafka_err2str(err)),
        p.end_lsn);
  }
  in_flight_.fetch_add(1);
  count_in_flight(options_.pipeline.size() + value.size());
  if (observer_.in_flight_changed) observer_.in_flight_changed(1);
}

void KafkaSink::commit(Lsn lsn) {
  if (options_.before_commit) {
    rd_kafka_flush(impl_->producer.get(), static_cast<int>(options_.timeout.count()));
    options_.before_commit();
  }
  if (RdError e{
          rd_kafka_commit_transaction(impl_->producer.get(), static_cast<int>(options_.timeout.count()))}) {
    if (observer_.error) observer_.error(rd_kafka_err2name(rd_kafka_error_code(e.get())));
    const rd_kafka_resp_err_t delivery = impl_->delivery_error;
    fail(fmt::format("kafka: committing the transaction up to {}: {}{}", lsn.str(),
                     rd_kafka_error_string(e.get()),
                     delivery != RD_KAFKA_RESP_ERR_NO_ERROR
                         ? fmt::format(" (first delivery error: {} on {})", rd_kafka_err2name(delivery),
                                       impl_->delivery_error_topic)
                         : std::string()),
         lsn);
  }
  in_txn_ = false;
  ++stats_.transactions_committed;
  if (observer_.transaction_ended) observer_.transaction_ended(true);
}

void KafkaSink::abort() {
  if (!in_txn_ || !impl_ || !impl_->producer) {
    in_txn_ = false;
    skip_.reset();
    return;
  }
  RdError e{rd_kafka_abort_transaction(impl_->producer.get(), static_cast<int>(options_.timeout.count()))};
  if (observer_.transaction_ended) observer_.transaction_ended(false);
  in_txn_ = false;
  skip_.reset();
  if (e) {
    spdlog::warn("kafka: aborting the transaction failed ({}); the next producer fences it",
                 rd_kafka_error_string(e.get()));
    drop_producer();
    progress_.reset();
  }
}

std::optional<Progress> KafkaSink::load_progress() {
  if (in_txn_) return progress_;
  if (!impl_->producer) {
    connect();
    return progress_;
  }
  progress_ = read_progress();
  return progress_;
}

void KafkaSink::record_ack(Lsn lsn) {
  if (in_txn_) throw std::logic_error("record_ack inside an open source transaction");
  try {
    ensure_connected();
    Progress p = progress_.value_or(Progress{});
    if (p.acked_lsn >= lsn) return;
    p.acked_lsn = lsn;
    if (RdError e{rd_kafka_begin_transaction(impl_->producer.get())}) {
      fail(fmt::format("kafka: begin_transaction: {}", rd_kafka_error_string(e.get())), lsn);
    }
    in_txn_ = true;
    impl_->delivery_error = RD_KAFKA_RESP_ERR_NO_ERROR;
    produce_progress(p);
    commit(lsn);
    progress_ = p;
  } catch (const TransientError&) {
    throw;
  } catch (const PermanentError&) {
    throw;
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    fail(fmt::format("kafka: recording the acknowledged position {}: {}", lsn.str(), e.what()), lsn);
  }
}

}  // namespace cdcsync
