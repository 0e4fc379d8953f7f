// TransactionAssembler: pgoutput messages -> whole committed Transactions (or ordered chunks of one).
//
// Rules it enforces and relies on:
// - Begin .. Commit: one transaction; Commit.commit_lsn must equal Begin.final_lsn. Nested Begin, Commit
//   without Begin, a data message outside a transaction: ProtocolError naming the LSN.
// - Bounded memory: a chunk never holds more than max_changes_per_chunk changes (the full chunk is emitted
//   before the next change is added) nor more than max_chunk_bytes (approximate_bytes) plus one change (it
//   is emitted as soon as it reaches that bound); chunks carry first_chunk/last_chunk, and the last one
//   (the only one with end_lsn, possibly without changes) comes at Commit.
// - Streamed transactions (protocol >= 2, streaming on): Stream Start(xid) .. Stream Stop blocks of several
//   xids interleave. Their raw messages (Relation and Type included) go to one spool file per xid, tagged
//   with the subtransaction xid and the WAL position. Stream Abort(xid, subxid) drops the subtransaction's
//   changes (or the whole xid when subxid == xid); Stream Commit replays the spool in order through a
//   private RelationCache seeded from the cache as it was at the first segment, so a Relation message
//   inside a stream applies to that transaction's later changes only, until it commits: then, as pgoutput
//   counts a schema sent in a committed stream as sent, the stream's Relation and Type messages describe
//   the transactions after it too, unless one of the same id arrived outside the stream after them.
// - Two-phase (protocol >= 3): Begin Prepare .. Prepare(gid) and Stream Prepare are held in a spool until
//   Commit Prepared(gid) emits them, or Rollback Prepared(gid) drops them (an unknown gid is ignored
//   there; Commit Prepared of an unknown gid is a ProtocolError).
// - Logical decoding messages: transactional ones are Change{op = Message} in their transaction. A
//   non-transactional one is emitted at once as a transaction of its own: xid 0, final_lsn = end_lsn =
//   the message's LSN, commit_time_us 0.
// - Origin sets info.origin of the transaction it appears in.
// - Empty transactions are emitted too (no changes, last chunk): their end_lsn is progress.
// Spool files are removed at commit, abort and destruction; the constructor makes spool_dir private and
// removes stale ones left in it by an earlier process (prepare_spool_dir). Their bytes count in
// spool_usage; an append past its limit throws SpoolLimitExceeded naming the transaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "decoders/change.h"
#include "decoders/change_pool.h"
#include "decoders/lsn.h"
#include "decoders/pgoutput.h"
#include "decoders/relation_cache.h"
#include "decoders/spool.h"

namespace cdcsync {

struct AssemblerOptions {
  ProtocolOptions protocol;
  std::size_t max_changes_per_chunk = 10000;
  std::size_t max_chunk_bytes = 0;  // 0: no byte bound
  // Where streamed and prepared transactions wait for their commit; owned by this assembler. Empty: the
  // system's temporary directory (without the stale-file cleanup).
  std::filesystem::path spool_dir;
  SpoolUsage* spool_usage = nullptr;  // shared by the pipeline's spool files; null: unbounded, uncounted
  // false: a committed streamed or prepared transaction is replayed from its spool within the feed() of its
  // commit, all its chunks emitted at once. true: feed() only starts the replay and resume_replay() emits
  // it a chunk at a time, so a caller that collects emitted chunks holds one at a time, not the whole
  // transaction. While replaying(), feed() takes only what can_feed() accepts (std::logic_error otherwise).
  bool replay_in_steps = false;
};

class TransactionAssembler {
 public:
  // Receives each transaction or chunk as soon as it is complete, in commit order; may block (a bounded
  // queue), which is how memory stays bounded while a large transaction is replayed.
  using Emit = std::function<void(Transaction&&)>;

  TransactionAssembler(AssemblerOptions options, Emit emit);
  ~TransactionAssembler();
  TransactionAssembler(const TransactionAssembler&) = delete;
  TransactionAssembler& operator=(const TransactionAssembler&) = delete;

  // One message, as carried by an XLogData whose wal_start is `wal_start` (it becomes Change.lsn).
  // Calls emit zero or more times. Throws DecodeError, ProtocolError or SpoolError; after any of these
  // the assembler is unusable (reconnect and build a new one).
  void feed(std::string_view message, Lsn wal_start);

  const RelationCache& relations() const { return relations_; }
  // The earliest WAL position of anything still held (the open transaction, streamed or prepared ones);
  // nullopt when nothing is. The slot must not be confirmed past it, or a restart would not resend it.
  std::optional<Lsn> oldest_held_lsn() const;
  bool in_transaction() const { return state_ != State::Idle || stream_ != nullptr || replay_ != nullptr; }
  // With replay_in_steps: a committed transaction is being replayed. resume_replay() emits its next chunk
  // (the last one at the end) and returns whether more is left.
  bool replaying() const { return replay_ != nullptr; }
  bool resume_replay();
  // Whether feed(message) is allowed now: always, except while replaying, when only messages that are
  // spooled and emit nothing are (the blocks of other streamed transactions: Stream Start, what is inside a
  // block, Stream Stop, Stream Abort). A caller keeps reading the stream during a long replay with it, so
  // the server goes on streaming the next transactions instead of waiting on a full socket.
  bool can_feed(std::string_view message) const;
  // Takes back transactions the consumer is done with (applied): the next changes are decoded into their
  // memory (see ChangePool). Leaves `spent` empty.
  void recycle(std::vector<Transaction>& spent) { pool_.give(spent); }
  const ChangePool& pool() const { return pool_; }
  // Bytes (approximate_bytes) of the changes in the chunk being filled, not yet emitted.
  std::size_t open_bytes() const { return open_bytes_; }
  std::size_t streamed_in_progress() const { return streams_.size(); }
  std::size_t prepared_held() const { return prepared_.size(); }

 private:
  // A transaction waiting in a spool file for its commit.
  struct Held {
    TransactionInfo info;
    Lsn first_lsn;
    PgOutputDecoder::Block block = PgOutputDecoder::Block::Transaction;
    RelationCache relations;  // as it was when the transaction started
    std::vector<std::uint32_t> aborted_subxids;
    std::unique_ptr<SpoolFile> spool;
    // Receipt order (schema_seq_) of the last Relation / Type message of each id in this stream.
    std::unordered_map<std::uint32_t, std::uint64_t> relation_seq;
    std::unordered_map<std::uint32_t, std::uint64_t> type_seq;
    // First segment received while a committed stream was replaying: its relations were seeded before
    // that stream's schema was promoted (see promote_schema), so the promotion is applied to it too.
    bool seeded_during_replay = false;
  };
  enum class State : std::uint8_t { Idle, Transaction, Preparing };

  void on(pgoutput::Begin& m, Lsn at, std::string_view raw);
  void on(pgoutput::Commit& m, Lsn at, std::string_view raw);
  void on(pgoutput::Origin& m, Lsn at, std::string_view raw);
  void on(pgoutput::Relation& m, Lsn at, std::string_view raw);
  void on(pgoutput::Type& m, Lsn at, std::string_view raw);
  void on(pgoutput::DataChange& m, Lsn at, std::string_view raw);
  void on(pgoutput::StreamStart& m, Lsn at, std::string_view raw);
  void on(pgoutput::StreamStop& m, Lsn at, std::string_view raw);
  void on(pgoutput::StreamCommit& m, Lsn at, std::string_view raw);
  void on(pgoutput::StreamAbort& m, Lsn at, std::string_view raw);
  void on(pgoutput::BeginPrepare& m, Lsn at, std::string_view raw);
  void on(pgoutput::Prepare& m, Lsn at, std::string_view raw);
  void on(pgoutput::CommitPrepared& m, Lsn at, std::string_view raw);
  void on(pgoutput::RollbackPrepared& m, Lsn at, std::string_view raw);

  void feed_stream(std::string_view raw, Lsn at);
  std::unique_ptr<Held> hold(Xid xid, Lsn at, PgOutputDecoder::Block block);
  // Starts replaying `held` from its spool (at once unless replay_in_steps); `promote_schema` at a Stream
  // Commit (see the header comment).
  void replay(std::unique_ptr<Held> held, TransactionInfo info, bool promote_schema);
  void promote_schema(const Held& held);
  // At the end of a replay: streams seeded during it get the schema the replayed one promoted (when it
  // did), except for the ids they sent themselves.
  void settle_seeds(const Held& replayed, bool promoted);
  struct Replay;
  void add_change(Transaction& chunk, Change&& change);
  // Emits `chunk` as a chunk that is not the last and starts the next one in its place.
  void emit_chunk(Transaction& chunk);
  void emit_last(Transaction& chunk, Lsn end_lsn);
  void emit_single_message(Change&& change, Lsn message_lsn);

  AssemblerOptions options_;
  Emit emit_;
  PgOutputDecoder decoder_;
  RelationCache relations_;
  Change scratch_;
  ChangePool pool_;
  std::filesystem::path spool_dir_;
  std::uint64_t spool_seq_ = 0;
  // Receipt order of Relation and Type messages, and of the ones that set relations_' entries.
  std::uint64_t schema_seq_ = 0;
  std::unordered_map<std::uint32_t, std::uint64_t> relation_seq_;
  std::unordered_map<std::uint32_t, std::uint64_t> type_seq_;

  State state_ = State::Idle;
  Lsn open_first_lsn_;
  Transaction open_;                 // State::Transaction: the chunk being filled
  std::unique_ptr<Held> preparing_;  // State::Preparing
  std::unique_ptr<Replay> replay_;   // a committed transaction being replayed from its spool
  std::uint64_t chunks_emitted_ = 0;
  std::size_t open_bytes_ = 0;

  Held* stream_ = nullptr;  // inside Stream Start .. Stream Stop: the transaction it belongs to
  std::unordered_map<std::uint32_t, std::unique_ptr<Held>> streams_;  // by top-level xid
  std::map<std::string, std::unique_ptr<Held>> prepared_;             // by gid
};

}  // namespace cdcsync
