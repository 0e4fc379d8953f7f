#include "decoders/pgoutput.h"

#include <string>
#include <utility>

namespace cdcsync {
namespace {

constexpr std::uint8_t kKeyColumn = 1;
constexpr std::uint8_t kTruncateCascade = 1;
constexpr std::uint8_t kTruncateRestartIdentity = 2;
constexpr std::uint8_t kMessageTransactional = 1;

void reset_for(Change& change, ChangeOp op) {
  change.op = op;
  change.lsn = Lsn{};
  change.relation.reset();
  change.before_kind = 0;
  change.before.clear();
  change.after.clear();
  change.truncated.clear();
  change.truncate_cascade = false;
  change.truncate_restart_identity = false;
  change.message_transactional = false;
  change.message_prefix.clear();
  change.message_content.clear();
}

std::string tag_text(char tag) {
  const auto byte = static_cast<unsigned char>(tag);
  if (byte >= 0x20 && byte < 0x7f) return std::string{'\'', tag, '\''};
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string{"0x"} + kHex[byte >> 4] + kHex[byte & 0xf];
}

// TupleData: ncols:i16, then per column 'n' | 'u' | 't' len:i32 bytes | 'b' len:i32 bytes.
void read_tuple(ByteReader& in, const RelationDef& relation, Tuple& tuple) {
  const std::int16_t columns = in.i16();
  if (columns < 0) in.fail("negative column count " + std::to_string(columns));
  if (static_cast<std::size_t>(columns) != relation.columns.size()) {
    in.fail("tuple has " + std::to_string(columns) + " columns, relation " +
            std::to_string(relation.id.value) + " has " + std::to_string(relation.columns.size()));
  }
  tuple.clear();
  // One allocation for the slots and one for the values, instead of a growth chain per tuple: the
  // rest of the message bounds the values' bytes.
  tuple.reserve(static_cast<std::size_t>(columns), in.remaining());
  for (std::int16_t i = 0; i < columns; ++i) {
    const char kind = in.byte();
    switch (kind) {
      case 'n':
        tuple.add_null();
        break;
      case 'u':
        tuple.add_unchanged_toast();
        break;
      case 't':
      case 'b': {
        const std::int32_t length = in.i32();
        if (length < 0) in.fail("negative value length " + std::to_string(length));
        const std::string_view value = in.bytes(static_cast<std::size_t>(length));
        if (kind == 't') {
          tuple.add_text(value);
        } else {
          tuple.add_binary(value);
        }
        break;
      }
      default:
        in.fail("unknown column kind " + tag_text(kind));
    }
  }
}

// Insert, Update and Delete start alike: the relation (which must be known), then the change is reset for
// the operation.
const RelationDef& start_row_change(ByteReader& in, const RelationCache& relations, ChangeOp op,
                                    std::string_view message_type, Change& change) {
  const std::size_t at = in.offset();
  const RelationPtr& relation = relations.require(RelationId{in.u32()}, message_type, at);
  reset_for(change, op);
  change.relation = relation;
  return *relation;
}

pgoutput::DataChange read_insert(ByteReader& in, Xid xid, const RelationCache& relations, Change& change) {
  const RelationDef& relation = start_row_change(in, relations, ChangeOp::Insert, "Insert", change);
  if (const char kind = in.byte(); kind != 'N') in.fail("expected 'N', got " + tag_text(kind));
  read_tuple(in, relation, change.after);
  in.expect_end();
  return {xid, {}};
}

pgoutput::DataChange read_update(ByteReader& in, Xid xid, const RelationCache& relations, Change& change) {
  const RelationDef& relation = start_row_change(in, relations, ChangeOp::Update, "Update", change);
  char kind = in.byte();
  if (kind == 'K' || kind == 'O') {
    change.before_kind = kind;
    read_tuple(in, relation, change.before);
    kind = in.byte();
  }
  if (kind != 'N') in.fail("expected 'K', 'O' or 'N', got " + tag_text(kind));
  read_tuple(in, relation, change.after);
  in.expect_end();
  return {xid, {}};
}

pgoutput::DataChange read_delete(ByteReader& in, Xid xid, const RelationCache& relations, Change& change) {
  const RelationDef& relation = start_row_change(in, relations, ChangeOp::Delete, "Delete", change);
  const char kind = in.byte();
  if (kind != 'K' && kind != 'O') in.fail("expected 'K' or 'O', got " + tag_text(kind));
  change.before_kind = kind;
  read_tuple(in, relation, change.before);
  in.expect_end();
  return {xid, {}};
}

pgoutput::DataChange read_truncate(ByteReader& in, Xid xid, const RelationCache& relations, Change& change) {
  const std::uint32_t count = in.u32();
  const std::uint8_t flags = in.u8();
  if (count > in.remaining() / 4) {
    in.fail(std::to_string(count) + " relations do not fit in " + std::to_string(in.remaining()) + " bytes");
  }
  reset_for(change, ChangeOp::Truncate);
  change.truncate_cascade = (flags & kTruncateCascade) != 0;
  change.truncate_restart_identity = (flags & kTruncateRestartIdentity) != 0;
  change.truncated.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t at = in.offset();
    change.truncated.push_back(relations.require(RelationId{in.u32()}, "Truncate", at));
  }
  in.expect_end();
  return {xid, {}};
}

pgoutput::DataChange read_message(ByteReader& in, Xid xid, Change& change) {
  const std::uint8_t flags = in.u8();
  const Lsn lsn = in.lsn();
  const std::string_view prefix = in.cstring();
  const std::int32_t length = in.i32();
  if (length < 0) in.fail("negative content length " + std::to_string(length));
  const std::string_view content = in.bytes(static_cast<std::size_t>(length));
  in.expect_end();
  reset_for(change, ChangeOp::Message);
  change.message_transactional = (flags & kMessageTransactional) != 0;
  change.message_prefix.assign(prefix);
  change.message_content.assign(content);
  return {xid, lsn};
}

pgoutput::Begin read_begin(ByteReader& in) {
  pgoutput::Begin m;
  m.final_lsn = in.lsn();
  m.commit_time_us = in.i64();
  m.xid = Xid{in.u32()};
  in.expect_end();
  return m;
}

pgoutput::Commit read_commit(ByteReader& in) {
  pgoutput::Commit m;
  m.flags = in.u8();
  m.commit_lsn = in.lsn();
  m.end_lsn = in.lsn();
  m.commit_time_us = in.i64();
  in.expect_end();
  return m;
}

pgoutput::Origin read_origin(ByteReader& in) {
  pgoutput::Origin m;
  m.origin_commit_lsn = in.lsn();
  m.name = in.cstring();
  in.expect_end();
  return m;
}

pgoutput::Relation read_relation(ByteReader& in, Xid xid) {
  RelationDef def;
  def.id = RelationId{in.u32()};
  def.schema = in.cstring();
  def.name = in.cstring();
  def.replica_identity = in.byte();
  switch (def.replica_identity) {
    case 'd':
    case 'n':
    case 'f':
    case 'i':
      break;
    default:
      in.fail("unknown replica identity " + tag_text(def.replica_identity));
  }
  const std::int16_t columns = in.i16();
  if (columns < 0) in.fail("negative column count " + std::to_string(columns));
  // Each column takes at least 10 bytes: a bound before reserving.
  if (static_cast<std::size_t>(columns) > in.remaining() / 10) {
    in.fail(std::to_string(columns) + " columns do not fit in " + std::to_string(in.remaining()) + " bytes");
  }
  def.columns.reserve(static_cast<std::size_t>(columns));
  for (std::int16_t i = 0; i < columns; ++i) {
    ColumnDef column;
    column.part_of_key = (in.u8() & kKeyColumn) != 0;
    column.name = in.cstring();
    column.type_oid = in.u32();
    column.type_modifier = in.i32();
    def.columns.push_back(std::move(column));
  }
  in.expect_end();
  return {xid, std::make_shared<const RelationDef>(std::move(def))};
}

pgoutput::Type read_type(ByteReader& in, Xid xid) {
  pgoutput::Type m;
  m.xid = xid;
  m.type.oid = in.u32();
  m.type.schema = in.cstring();
  m.type.name = in.cstring();
  in.expect_end();
  return m;
}

pgoutput::StreamStart read_stream_start(ByteReader& in) {
  pgoutput::StreamStart m;
  m.xid = Xid{in.u32()};
  m.first_segment = in.u8() != 0;
  in.expect_end();
  return m;
}

pgoutput::StreamCommit read_stream_commit(ByteReader& in) {
  pgoutput::StreamCommit m;
  m.xid = Xid{in.u32()};
  m.flags = in.u8();
  m.commit_lsn = in.lsn();
  m.end_lsn = in.lsn();
  m.commit_time_us = in.i64();
  in.expect_end();
  return m;
}

// `with_abort_position`: protocol >= 4 with parallel streaming adds the abort's LSN and time.
pgoutput::StreamAbort read_stream_abort(ByteReader& in, bool with_abort_position) {
  pgoutput::StreamAbort m;
  m.xid = Xid{in.u32()};
  m.subxid = Xid{in.u32()};
  if (with_abort_position) {
    m.abort_lsn = in.lsn();
    m.abort_time_us = in.i64();
  }
  in.expect_end();
  return m;
}

pgoutput::BeginPrepare read_begin_prepare(ByteReader& in) {
  pgoutput::BeginPrepare m;
  m.prepare_lsn = in.lsn();
  m.end_lsn = in.lsn();
  m.prepare_time_us = in.i64();
  m.xid = Xid{in.u32()};
  m.gid = in.cstring();
  in.expect_end();
  return m;
}

// Prepare ('P') and Stream Prepare ('p') share one layout.
pgoutput::Prepare read_prepare(ByteReader& in, bool streamed) {
  pgoutput::Prepare m;
  m.flags = in.u8();
  m.prepare_lsn = in.lsn();
  m.end_lsn = in.lsn();
  m.prepare_time_us = in.i64();
  m.xid = Xid{in.u32()};
  m.gid = in.cstring();
  m.streamed = streamed;
  in.expect_end();
  return m;
}

pgoutput::CommitPrepared read_commit_prepared(ByteReader& in) {
  pgoutput::CommitPrepared m;
  m.flags = in.u8();
  m.commit_lsn = in.lsn();
  m.end_lsn = in.lsn();
  m.commit_time_us = in.i64();
  m.xid = Xid{in.u32()};
  m.gid = in.cstring();
  in.expect_end();
  return m;
}

pgoutput::RollbackPrepared read_rollback_prepared(ByteReader& in) {
  pgoutput::RollbackPrepared m;
  m.flags = in.u8();
  m.prepare_end_lsn = in.lsn();
  m.rollback_end_lsn = in.lsn();
  m.prepare_time_us = in.i64();
  m.rollback_time_us = in.i64();
  m.xid = Xid{in.u32()};
  m.gid = in.cstring();
  in.expect_end();
  return m;
}

}  // namespace

namespace pgoutput {

std::string_view message_name(char tag) {
  switch (tag) {
    case 'B':
      return "Begin";
    case 'C':
      return "Commit";
    case 'O':
      return "Origin";
    case 'R':
      return "Relation";
    case 'Y':
      return "Type";
    case 'I':
      return "Insert";
    case 'U':
      return "Update";
    case 'D':
      return "Delete";
    case 'T':
      return "Truncate";
    case 'M':
      return "Message";
    case 'S':
      return "Stream Start";
    case 'E':
      return "Stream Stop";
    case 'c':
      return "Stream Commit";
    case 'A':
      return "Stream Abort";
    case 'b':
      return "Begin Prepare";
    case 'P':
      return "Prepare";
    case 'K':
      return "Commit Prepared";
    case 'r':
      return "Rollback Prepared";
    case 'p':
      return "Stream Prepare";
    default:
      return "unknown";
  }
}

}  // namespace pgoutput

PgOutputDecoder::PgOutputDecoder(ProtocolOptions options, Block block) : options_(options), block_(block) {
  if (options_.version < 1 || options_.version > 4) {
    throw std::invalid_argument("pgoutput protocol version " + std::to_string(options_.version) +
                                " is not supported (1..4)");
  }
  if (options_.version < 2 && options_.streaming != StreamingMode::Off) {
    throw std::invalid_argument("pgoutput streaming needs protocol version 2 or later");
  }
  if (options_.version < 4 && options_.streaming == StreamingMode::Parallel) {
    throw std::invalid_argument("pgoutput parallel streaming needs protocol version 4 or later");
  }
}

void PgOutputDecoder::require_version(ByteReader& in, int version) const {
  if (options_.version < version) {
    in.fail("needs protocol version " + std::to_string(version) + ", negotiated " +
            std::to_string(options_.version));
  }
}

Xid PgOutputDecoder::read_stream_xid(ByteReader& in) const {
  // The xid prefix exists only inside a stream block (which needs protocol >= 2).
  return block_ == Block::Stream ? Xid{in.u32()} : Xid{};
}

std::optional<Xid> PgOutputDecoder::peek_stream_xid(std::string_view bytes) const {
  if (block_ != Block::Stream || bytes.empty()) return std::nullopt;
  switch (bytes[0]) {
    case 'R':
    case 'Y':
    case 'I':
    case 'U':
    case 'D':
    case 'T':
    case 'M': {
      ByteReader in{bytes, pgoutput::message_name(bytes[0])};
      in.byte();
      return Xid{in.u32()};
    }
    default:
      return std::nullopt;
  }
}

pgoutput::Message PgOutputDecoder::decode(std::string_view bytes, const RelationCache& relations,
                                          Change& change) {
  ByteReader in{bytes, "empty"};
  if (bytes.empty()) in.fail("no message type");
  const char tag = in.byte();
  in.set_context(pgoutput::message_name(tag));

  switch (tag) {
    case 'I':
      return read_insert(in, read_stream_xid(in), relations, change);
    case 'U':
      return read_update(in, read_stream_xid(in), relations, change);
    case 'D':
      return read_delete(in, read_stream_xid(in), relations, change);
    case 'T':
      return read_truncate(in, read_stream_xid(in), relations, change);
    case 'M':
      return read_message(in, read_stream_xid(in), change);
    case 'B':
      return read_begin(in);
    case 'C':
      return read_commit(in);
    case 'O':
      return read_origin(in);
    case 'R':
      return read_relation(in, read_stream_xid(in));
    case 'Y':
      return read_type(in, read_stream_xid(in));
    case 'S': {
      require_version(in, 2);
      const pgoutput::StreamStart m = read_stream_start(in);
      block_ = Block::Stream;
      return m;
    }
    case 'E':
      require_version(in, 2);
      in.expect_end();
      block_ = Block::Transaction;
      return pgoutput::StreamStop{};
    case 'c':
      require_version(in, 2);
      return read_stream_commit(in);
    case 'A':
      require_version(in, 2);
      return read_stream_abort(in, options_.version >= 4 && options_.streaming == StreamingMode::Parallel);
    case 'b':
      require_version(in, 3);
      return read_begin_prepare(in);
    case 'P':
    case 'p':
      require_version(in, 3);
      return read_prepare(in, tag == 'p');
    case 'K':
      require_version(in, 3);
      return read_commit_prepared(in);
    case 'r':
      require_version(in, 3);
      return read_rollback_prepared(in);
    default: {
      ByteReader at_tag{bytes, "unknown"};
      at_tag.fail("unknown message type " + tag_text(tag));
    }
  }
}

}  // namespace cdcsync
