#include "decoders/assembler.h"

#include "decoders/byte_reader.h"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace cdcsync {
namespace {

std::string name_of(std::string_view raw) {
  return std::string(pgoutput::message_name(raw.empty() ? '\0' : raw[0]));
}

}  // namespace

TransactionAssembler::TransactionAssembler(AssemblerOptions options, Emit emit)
    : options_(std::move(options)), emit_(std::move(emit)), decoder_(options_.protocol) {
  if (options_.max_changes_per_chunk == 0) throw std::invalid_argument("max_changes_per_chunk must be > 0");
  if (options_.spool_dir.empty()) {
    spool_dir_ = std::filesystem::temp_directory_path();
    return;
  }
  spool_dir_ = options_.spool_dir;
  prepare_spool_dir(spool_dir_);
}

struct TransactionAssembler::Replay {
  Replay(std::unique_ptr<Held> h, const ProtocolOptions& protocol)
      : held(std::move(h)), decoder(protocol, held->block), reader(held->spool->read()) {}
  std::unique_ptr<Held> held;
  PgOutputDecoder decoder;
  SpoolFile::Reader reader;
  SpoolFile::Record record;
  Transaction chunk;
  Lsn end_lsn;
  bool promote_schema = false;
};

TransactionAssembler::~TransactionAssembler() = default;

std::optional<Lsn> TransactionAssembler::oldest_held_lsn() const {
  std::optional<Lsn> oldest;
  auto consider = [&](Lsn lsn) {
    if (!oldest || lsn < *oldest) oldest = lsn;
  };
  if (state_ != State::Idle) consider(open_first_lsn_);
  for (const auto& [xid, held] : streams_) consider(held->first_lsn);
  for (const auto& [gid, held] : prepared_) consider(held->first_lsn);
  if (replay_) consider(replay_->held->first_lsn);
  return oldest;
}

bool TransactionAssembler::can_feed(std::string_view message) const {
  if (!replay_ || stream_ != nullptr) return true;
  return !message.empty() && (message[0] == 'S' || message[0] == 'A');  // Stream Start, Stream Abort
}

void TransactionAssembler::feed(std::string_view message, Lsn wal_start) {
  if (!can_feed(message)) {
    throw std::logic_error("TransactionAssembler::feed of " + name_of(message) +
                           " while a replay is in progress");
  }
  if (stream_ != nullptr) {
    feed_stream(message, wal_start);
    return;
  }
  auto decoded = decoder_.decode(message, relations_, scratch_);
  std::visit([&](auto& m) { on(m, wal_start, message); }, decoded);
}

// Inside a stream block data messages are spooled undecoded: only their transaction's own relations
// (spooled alongside) can decode them, at commit.
void TransactionAssembler::feed_stream(std::string_view raw, Lsn at) {
  if (const auto subxid = decoder_.peek_stream_xid(raw)) {
    if (raw[0] == 'R' || raw[0] == 'Y') {
      ByteReader in{raw, pgoutput::message_name(raw[0])};
      in.byte();
      in.u32();  // xid
      const std::uint32_t id = in.u32();
      (raw[0] == 'R' ? stream_->relation_seq : stream_->type_seq)[id] = ++schema_seq_;
    }
    stream_->spool->append(*subxid, at, raw);
    return;
  }
  auto decoded = decoder_.decode(raw, relations_, scratch_);
  if (std::holds_alternative<pgoutput::StreamStop>(decoded)) {
    stream_ = nullptr;
  } else if (auto* origin = std::get_if<pgoutput::Origin>(&decoded)) {
    stream_->info.origin = std::move(origin->name);
  } else {
    throw ProtocolError(
        at, name_of(raw) + " inside a stream block of xid " + std::to_string(stream_->info.xid.value));
  }
}

std::unique_ptr<TransactionAssembler::Held> TransactionAssembler::hold(Xid xid, Lsn at,
                                                                       PgOutputDecoder::Block block) {
  auto held = std::make_unique<Held>();
  held->info.xid = xid;
  held->first_lsn = at;
  held->block = block;
  held->relations = relations_;
  held->seeded_during_replay = replay_ != nullptr;
  const std::string file = std::string(kSpoolFilePrefix) + std::to_string(::getpid()) + "-" +
                           std::to_string(++spool_seq_) + "-xid-" + std::to_string(xid.value);
  held->spool = std::make_unique<SpoolFile>(spool_dir_ / file, SpoolOwner{xid, at}, options_.spool_usage);
  return held;
}

void TransactionAssembler::add_change(Transaction& chunk, Change&& change) {
  if (chunk.changes.size() >= options_.max_changes_per_chunk) emit_chunk(chunk);
  open_bytes_ += approximate_bytes(change);
  chunk.changes.push_back(std::move(change));
  // By bytes the chunk goes as soon as it is full, so that a wide row is not held here while the next one
  // is read (the receiver reads nothing while the memory budget has no room).
  if (options_.max_chunk_bytes != 0 && open_bytes_ >= options_.max_chunk_bytes) emit_chunk(chunk);
}

void TransactionAssembler::emit_chunk(Transaction& chunk) {
  Transaction next;
  next.info = chunk.info;
  next.first_chunk = false;
  chunk.last_chunk = false;
  std::swap(chunk, next);
  emit_(std::move(next));
  ++chunks_emitted_;
  open_bytes_ = 0;
  chunk.changes = pool_.take_list();
  chunk.changes.reserve(options_.max_changes_per_chunk);
}

void TransactionAssembler::emit_last(Transaction& chunk, Lsn end_lsn) {
  open_bytes_ = 0;
  chunk.info.end_lsn = end_lsn;
  chunk.last_chunk = true;
  emit_(std::move(chunk));
  chunk = Transaction{};
}

void TransactionAssembler::emit_single_message(Change&& change, Lsn message_lsn) {
  Transaction txn;
  txn.info.final_lsn = message_lsn;
  txn.info.end_lsn = message_lsn;
  txn.changes.push_back(std::move(change));
  emit_(std::move(txn));
}

void TransactionAssembler::replay(std::unique_ptr<Held> held, TransactionInfo info, bool promote_schema) {
  replay_ = std::make_unique<Replay>(std::move(held), options_.protocol);
  replay_->chunk.info = std::move(info);
  replay_->end_lsn = replay_->chunk.info.end_lsn;
  replay_->chunk.info.end_lsn = Lsn{};
  replay_->promote_schema = promote_schema;
  if (!options_.replay_in_steps) {
    while (resume_replay()) {
    }
  }
}

bool TransactionAssembler::resume_replay() {
  if (!replay_) return false;
  Replay& r = *replay_;
  Held& held = *r.held;
  const std::uint64_t chunks_before = chunks_emitted_;
  while (r.reader.next(r.record)) {
    Change change;
    auto decoded = r.decoder.decode(r.record.message, held.relations, change);
    if (auto* relation = std::get_if<pgoutput::Relation>(&decoded)) {
      held.relations.put(std::move(relation->relation));
    } else if (auto* type = std::get_if<pgoutput::Type>(&decoded)) {
      held.relations.put_type(std::move(type->type));
    } else if (std::holds_alternative<pgoutput::DataChange>(decoded)) {
      const auto& aborted = held.aborted_subxids;
      if (std::find(aborted.begin(), aborted.end(), r.record.subxid.value) != aborted.end()) continue;
      change.lsn = r.record.lsn;
      add_change(r.chunk, std::move(change));
      if (chunks_emitted_ != chunks_before) return true;
    } else {
      throw ProtocolError(r.record.lsn, name_of(r.record.message) + " in the spool of xid " +
                                            std::to_string(held.info.xid.value));
    }
  }
  emit_last(r.chunk, r.end_lsn);
  if (r.promote_schema) promote_schema(held);
  settle_seeds(held, r.promote_schema);
  replay_.reset();  // removes the spool file
  return false;
}

// pgoutput now counts the schemas sent in this stream as sent: later transactions will not repeat them.
void TransactionAssembler::promote_schema(const Held& held) {
  for (const auto& [id, seq] : held.relation_seq) {
    auto& current = relation_seq_[id];
    if (seq <= current) continue;  // a newer Relation of this id came outside the stream
    if (auto rel = held.relations.find(RelationId{id})) relations_.put(std::move(rel));
    current = seq;
  }
  for (const auto& [oid, seq] : held.type_seq) {
    auto& current = type_seq_[oid];
    if (seq <= current) continue;
    if (const TypeDef* type = held.relations.find_type(oid)) relations_.put_type(*type);
    current = seq;
  }
}

void TransactionAssembler::settle_seeds(const Held& replayed, bool promoted) {
  for (auto& [xid, held] : streams_) {
    if (!held->seeded_during_replay) continue;
    held->seeded_during_replay = false;
    if (!promoted) continue;
    // Had its first segment waited for the replay to end, its seed would have held the promoted schema;
    // its own Relation and Type messages came later and win.
    for (const auto& [id, seq] : replayed.relation_seq) {
      if (relation_seq_[id] != seq || held->relation_seq.contains(id)) continue;
      if (auto rel = replayed.relations.find(RelationId{id})) held->relations.put(std::move(rel));
    }
    for (const auto& [oid, seq] : replayed.type_seq) {
      if (type_seq_[oid] != seq || held->type_seq.contains(oid)) continue;
      if (const TypeDef* type = replayed.relations.find_type(oid)) held->relations.put_type(*type);
    }
  }
}

void TransactionAssembler::on(pgoutput::Begin& m, Lsn at, std::string_view) {
  if (state_ != State::Idle) {
    throw ProtocolError(at, "Begin of xid " + std::to_string(m.xid.value) + " inside an open transaction");
  }
  state_ = State::Transaction;
  open_first_lsn_ = at;
  open_ = Transaction{};
  open_.changes = pool_.take_list();
  open_.info.xid = m.xid;
  open_.info.final_lsn = m.final_lsn;
  open_.info.commit_time_us = m.commit_time_us;
}

void TransactionAssembler::on(pgoutput::Commit& m, Lsn at, std::string_view) {
  if (state_ != State::Transaction) throw ProtocolError(at, "Commit without Begin");
  if (m.commit_lsn != open_.info.final_lsn) {
    throw ProtocolError(at, "Commit LSN " + m.commit_lsn.str() + " differs from the Begin's final LSN " +
                                open_.info.final_lsn.str());
  }
  open_.info.commit_time_us = m.commit_time_us;
  state_ = State::Idle;
  emit_last(open_, m.end_lsn);
}

void TransactionAssembler::on(pgoutput::Origin& m, Lsn at, std::string_view) {
  if (state_ == State::Transaction) {
    open_.info.origin = std::move(m.name);
  } else if (state_ == State::Preparing) {
    preparing_->info.origin = std::move(m.name);
  } else {
    throw ProtocolError(at, "Origin outside a transaction");
  }
}

void TransactionAssembler::on(pgoutput::Relation& m, Lsn at, std::string_view raw) {
  if (state_ == State::Preparing) preparing_->spool->append(Xid{}, at, raw);
  relation_seq_[m.relation->id.value] = ++schema_seq_;
  relations_.put(std::move(m.relation));
}

void TransactionAssembler::on(pgoutput::Type& m, Lsn at, std::string_view raw) {
  if (state_ == State::Preparing) preparing_->spool->append(Xid{}, at, raw);
  type_seq_[m.type.oid] = ++schema_seq_;
  relations_.put_type(std::move(m.type));
}

void TransactionAssembler::on(pgoutput::DataChange& m, Lsn at, std::string_view raw) {
  if (scratch_.op == ChangeOp::Message && !scratch_.message_transactional) {
    scratch_.lsn = at;
    emit_single_message(std::move(scratch_), m.message_lsn);
    pool_.take(scratch_);
    return;
  }
  switch (state_) {
    case State::Idle:
      throw ProtocolError(at, name_of(raw) + " outside a transaction");
    case State::Transaction:
      scratch_.lsn = at;
      add_change(open_, std::move(scratch_));
      pool_.take(scratch_);  // decode() resets every field of scratch_ before use
      return;
    case State::Preparing:
      preparing_->spool->append(Xid{}, at, raw);
      return;
  }
}

void TransactionAssembler::on(pgoutput::StreamStart& m, Lsn at, std::string_view) {
  if (state_ != State::Idle) {
    throw ProtocolError(at,
                        "Stream Start of xid " + std::to_string(m.xid.value) + " inside an open transaction");
  }
  auto it = streams_.find(m.xid.value);
  if (m.first_segment) {
    if (it != streams_.end()) {
      throw ProtocolError(at, "first Stream Start of xid " + std::to_string(m.xid.value) + " seen twice");
    }
    it = streams_.emplace(m.xid.value, hold(m.xid, at, PgOutputDecoder::Block::Stream)).first;
  } else if (it == streams_.end()) {
    throw ProtocolError(
        at, "Stream Start of xid " + std::to_string(m.xid.value) + " continues a stream that never started");
  }
  stream_ = it->second.get();
}

void TransactionAssembler::on(pgoutput::StreamStop&, Lsn at, std::string_view) {
  throw ProtocolError(at, "Stream Stop outside a stream block");
}

void TransactionAssembler::on(pgoutput::StreamCommit& m, Lsn at, std::string_view) {
  if (state_ != State::Idle) throw ProtocolError(at, "Stream Commit inside an open transaction");
  const auto it = streams_.find(m.xid.value);
  if (it == streams_.end()) {
    throw ProtocolError(at, "Stream Commit of xid " + std::to_string(m.xid.value) + " that never streamed");
  }
  std::unique_ptr<Held> held = std::move(it->second);
  streams_.erase(it);
  TransactionInfo info = held->info;
  info.final_lsn = m.commit_lsn;
  info.end_lsn = m.end_lsn;
  info.commit_time_us = m.commit_time_us;
  replay(std::move(held), std::move(info), /*promote_schema=*/true);
}

void TransactionAssembler::on(pgoutput::StreamAbort& m, Lsn at, std::string_view) {
  if (state_ != State::Idle) throw ProtocolError(at, "Stream Abort inside an open transaction");
  const auto it = streams_.find(m.xid.value);
  if (it == streams_.end()) return;  // nothing of it was kept
  if (m.subxid == m.xid) {
    streams_.erase(it);
  } else {
    it->second->aborted_subxids.push_back(m.subxid.value);
  }
}

void TransactionAssembler::on(pgoutput::BeginPrepare& m, Lsn at, std::string_view) {
  if (state_ != State::Idle) {
    throw ProtocolError(
        at, "Begin Prepare of xid " + std::to_string(m.xid.value) + " inside an open transaction");
  }
  preparing_ = hold(m.xid, at, PgOutputDecoder::Block::Transaction);
  preparing_->info.final_lsn = m.prepare_lsn;
  open_first_lsn_ = at;
  state_ = State::Preparing;
}

void TransactionAssembler::on(pgoutput::Prepare& m, Lsn at, std::string_view) {
  std::unique_ptr<Held> held;
  if (m.streamed) {
    if (state_ != State::Idle) throw ProtocolError(at, "Stream Prepare inside an open transaction");
    const auto it = streams_.find(m.xid.value);
    if (it == streams_.end()) {
      throw ProtocolError(at,
                          "Stream Prepare of xid " + std::to_string(m.xid.value) + " that never streamed");
    }
    held = std::move(it->second);
    streams_.erase(it);
  } else {
    if (state_ != State::Preparing) throw ProtocolError(at, "Prepare without Begin Prepare");
    if (m.xid != preparing_->info.xid || m.prepare_lsn != preparing_->info.final_lsn) {
      throw ProtocolError(at, "Prepare of xid " + std::to_string(m.xid.value) + " at " + m.prepare_lsn.str() +
                                  " does not match Begin Prepare of xid " +
                                  std::to_string(preparing_->info.xid.value) + " at " +
                                  preparing_->info.final_lsn.str());
    }
    held = std::move(preparing_);
    state_ = State::Idle;
  }
  if (prepared_.contains(m.gid)) throw ProtocolError(at, "transaction prepared twice as '" + m.gid + "'");
  prepared_.emplace(std::move(m.gid), std::move(held));
}

void TransactionAssembler::on(pgoutput::CommitPrepared& m, Lsn at, std::string_view) {
  if (state_ != State::Idle) throw ProtocolError(at, "Commit Prepared inside an open transaction");
  const auto it = prepared_.find(m.gid);
  if (it == prepared_.end()) {
    throw ProtocolError(at, "Commit Prepared of '" + m.gid + "' (xid " + std::to_string(m.xid.value) +
                                ") whose Prepare was not received");
  }
  std::unique_ptr<Held> held = std::move(it->second);
  prepared_.erase(it);
  TransactionInfo info = held->info;
  info.xid = m.xid;
  info.final_lsn = m.commit_lsn;
  info.end_lsn = m.end_lsn;
  info.commit_time_us = m.commit_time_us;
  replay(std::move(held), std::move(info), /*promote_schema=*/false);
}

void TransactionAssembler::on(pgoutput::RollbackPrepared& m, Lsn at, std::string_view) {
  if (state_ != State::Idle) throw ProtocolError(at, "Rollback Prepared inside an open transaction");
  prepared_.erase(m.gid);
}

}  // namespace cdcsync
