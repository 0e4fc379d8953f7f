// pgoutput: one logical replication message (protocol versions 1-4) -> one typed message.
//
// Grammar (all integers big-endian; String = NUL-terminated; [xid] = Int32 transaction id, present only
// inside a Stream Start .. Stream Stop block, protocol >= 2; inside a stream it is the id of the
// (sub)transaction that made the change, not the top-level one):
//
//   Begin            'B' final_lsn:u64 commit_time:i64 xid:u32
//   Commit           'C' flags:u8 commit_lsn:u64 end_lsn:u64 commit_time:i64
//   Origin           'O' origin_commit_lsn:u64 name:String
//   Relation         'R' [xid] relid:u32 namespace:String name:String replica_identity:u8 ncols:i16
//                        ncols * (flags:u8 [1 = part of the key] name:String type_oid:u32 typmod:i32)
//   Type             'Y' [xid] oid:u32 namespace:String name:String
//   Insert           'I' [xid] relid:u32 'N' TupleData
//   Update           'U' [xid] relid:u32 [('K' | 'O') TupleData] 'N' TupleData
//   Delete           'D' [xid] relid:u32 ('K' | 'O') TupleData
//   Truncate         'T' [xid] nrels:u32 options:u8 [1 cascade, 2 restart identity] nrels * relid:u32
//   Message          'M' [xid] flags:u8 [1 transactional] lsn:u64 prefix:String length:i32 content
//   Stream Start     'S' xid:u32 first_segment:u8                                  (protocol >= 2)
//   Stream Stop      'E'                                                           (protocol >= 2)
//   Stream Commit    'c' xid:u32 flags:u8 commit_lsn:u64 end_lsn:u64 commit_time:i64 (protocol >= 2)
//   Stream Abort     'A' xid:u32 subxid:u32 [abort_lsn:u64 abort_time:i64]        (protocol >= 2; the
//                        bracketed fields only with protocol >= 4 and streaming = parallel)
//   Begin Prepare    'b' prepare_lsn:u64 end_lsn:u64 prepare_time:i64 xid:u32 gid:String (protocol >= 3)
//   Prepare          'P' flags:u8 prepare_lsn:u64 end_lsn:u64 prepare_time:i64 xid:u32 gid:String
//   Commit Prepared  'K' flags:u8 commit_lsn:u64 end_lsn:u64 commit_time:i64 xid:u32 gid:String
//   Rollback Prep.   'r' flags:u8 prepare_end_lsn:u64 rollback_end_lsn:u64 prepare_time:i64
//                        rollback_time:i64 xid:u32 gid:String
//   Stream Prepare   'p' flags:u8 prepare_lsn:u64 end_lsn:u64 prepare_time:i64 xid:u32 gid:String
//
//   TupleData        ncols:i16 ncols * ('n' | 'u' | 't' len:i32 bytes | 'b' len:i32 bytes)
//                    'n' null, 'u' unchanged TOAST value (not sent), 't' text form, 'b' binary form
//
// Every read goes through ByteReader: a truncated or malformed message throws DecodeError naming the
// message type and the offset; trailing bytes are an error too.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include "decoders/byte_reader.h"
#include "decoders/change.h"
#include "decoders/lsn.h"
#include "decoders/relation_cache.h"

namespace cdcsync {

// A message sequence that breaks the protocol's rules (Commit without Begin, nested Begin, a commit LSN
// that differs from the Begin's final LSN, ...). Not retryable: the stream is not what it claims to be.
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(Lsn lsn, const std::string& what)
      : std::runtime_error("protocol error at " + lsn.str() + ": " + what), lsn_(lsn) {}
  Lsn lsn() const { return lsn_; }

 private:
  Lsn lsn_;
};

// How the server was asked to stream in-progress transactions (START_REPLICATION option "streaming").
enum class StreamingMode : std::uint8_t { Off, On, Parallel };

// What was negotiated with START_REPLICATION; decides which fields a message carries.
struct ProtocolOptions {
  int version = 1;  // proto_version, 1..4
  StreamingMode streaming = StreamingMode::Off;
};

namespace pgoutput {

struct Begin {
  Lsn final_lsn;
  std::int64_t commit_time_us = 0;  // PostgreSQL epoch
  Xid xid;
};
struct Commit {
  std::uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  std::int64_t commit_time_us = 0;
};
struct Origin {
  Lsn origin_commit_lsn;
  std::string name;
};
// The cache is not touched by decode(): the caller decides which cache a Relation message replaces an
// entry of (a streamed transaction's relations are its own until it commits).
struct Relation {
  Xid xid;  // only inside a stream
  RelationPtr relation;
};
struct Type {
  Xid xid;  // only inside a stream
  TypeDef type;
};
// Insert, Update, Delete, Truncate and Message: the content went into the Change passed to decode().
struct DataChange {
  Xid xid;          // only inside a stream: the (sub)transaction that made the change
  Lsn message_lsn;  // Message only: the LSN the message carries
};
struct StreamStart {
  Xid xid;
  bool first_segment = false;
};
struct StreamStop {};
struct StreamCommit {
  Xid xid;
  std::uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  std::int64_t commit_time_us = 0;
};
struct StreamAbort {
  Xid xid;
  Xid subxid;                      // == xid: the whole transaction
  Lsn abort_lsn;                   // protocol >= 4 with parallel streaming only
  std::int64_t abort_time_us = 0;  // likewise
};
struct BeginPrepare {
  Lsn prepare_lsn;
  Lsn end_lsn;
  std::int64_t prepare_time_us = 0;
  Xid xid;
  std::string gid;
};
struct Prepare {  // also Stream Prepare ('p'), which has the same layout
  std::uint8_t flags = 0;
  Lsn prepare_lsn;
  Lsn end_lsn;
  std::int64_t prepare_time_us = 0;
  Xid xid;
  std::string gid;
  bool streamed = false;  // true for Stream Prepare
};
struct CommitPrepared {
  std::uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  std::int64_t commit_time_us = 0;
  Xid xid;
  std::string gid;
};
struct RollbackPrepared {
  std::uint8_t flags = 0;
  Lsn prepare_end_lsn;
  Lsn rollback_end_lsn;
  std::int64_t prepare_time_us = 0;
  std::int64_t rollback_time_us = 0;
  Xid xid;
  std::string gid;
};

using Message =
    std::variant<Begin, Commit, Origin, Relation, Type, DataChange, StreamStart, StreamStop, StreamCommit,
                 StreamAbort, BeginPrepare, Prepare, CommitPrepared, RollbackPrepared>;

// The message type's name for errors ("Insert", "Stream Commit"); "unknown" for an unknown tag.
std::string_view message_name(char tag);

}  // namespace pgoutput

// Decodes messages one at a time. The only state is the negotiated options and whether a Stream Start
// .. Stream Stop block is open, which decides whether data messages carry an xid.
class PgOutputDecoder {
 public:
  enum class Block : std::uint8_t { Transaction, Stream };

  // Throws std::invalid_argument for a version outside 1..4 or streaming with version 1.
  explicit PgOutputDecoder(ProtocolOptions options, Block block = Block::Transaction);

  // Decodes one whole message. Insert/Update/Delete/Truncate/Message fill `change` (its buffers are
  // reused, so a warmed-up Change costs no allocation) and return DataChange; Insert/Update/Delete need
  // their relation in `relations` and must carry exactly its number of columns. Stream Start and Stream
  // Stop open and close the stream block. Throws DecodeError on anything malformed.
  pgoutput::Message decode(std::string_view bytes, const RelationCache& relations, Change& change);

  // Inside a stream block: the xid prefix of a data message (R, Y, I, U, D, T, M), without decoding the
  // rest; nullopt for any other message. Throws DecodeError when the message is too short for it.
  std::optional<Xid> peek_stream_xid(std::string_view bytes) const;

  bool in_stream() const { return block_ == Block::Stream; }
  const ProtocolOptions& options() const { return options_; }

 private:
  Xid read_stream_xid(ByteReader& in) const;
  void require_version(ByteReader& in, int version) const;

  ProtocolOptions options_;
  Block block_;
};

}  // namespace cdcsync
