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

void PgOutputDecoder::decode_tuple(ByteReader& in, const RelationDef& relation, Tuple& tuple) const {
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
  using namespace pgoutput;
  ByteReader in{bytes, "empty"};
  if (bytes.empty()) in.fail("no message type");
  const char tag = in.byte();
  in.set_context(message_name(tag));

  switch (tag) {
    case 'I': {
      const Xid xid = read_stream_xid(in);
      const std::size_t at = in.offset();
      const RelationPtr& relation = relations.require(RelationId{in.u32()}, "Insert", at);
      reset_for(change, ChangeOp::Insert);
      change.relation = relation;
      if (const char kind = in.byte(); kind != 'N') in.fail("expected 'N', got " + tag_text(kind));
      decode_tuple(in, *relation, change.after);
      in.expect_end();
      return DataChange{xid, {}};
    }
    case 'U': {
      const Xid xid = read_stream_xid(in);
      const std::size_t at = in.offset();
      const RelationPtr& relation = relations.require(RelationId{in.u32()}, "Update", at);
      reset_for(change, ChangeOp::Update);
      change.relation = relation;
      char kind = in.byte();
      if (kind == 'K' || kind == 'O') {
        change.before_kind = kind;
        decode_tuple(in, *relation, change.before);
        kind = in.byte();
      }
      if (kind != 'N') in.fail("expected 'K', 'O' or 'N', got " + tag_text(kind));
      decode_tuple(in, *relation, change.after);
      in.expect_end();
      return DataChange{xid, {}};
    }
    case 'D': {
      const Xid xid = read_stream_xid(in);
      const std::size_t at = in.offset();
      const RelationPtr& relation = relations.require(RelationId{in.u32()}, "Delete", at);
      reset_for(change, ChangeOp::Delete);
      change.relation = relation;
      const char kind = in.byte();
      if (kind != 'K' && kind != 'O') in.fail("expected 'K' or 'O', got " + tag_text(kind));
      change.before_kind = kind;
      decode_tuple(in, *relation, change.before);
      in.expect_end();
      return DataChange{xid, {}};
    }
    case 'B': {
      Begin m;
      m.final_lsn = Lsn{in.u64()};
      m.commit_time_us = in.i64();
      m.xid = Xid{in.u32()};
      in.expect_end();
      return m;
    }
    case 'C': {
      Commit m;
      m.flags = in.u8();
      m.commit_lsn = Lsn{in.u64()};
      m.end_lsn = Lsn{in.u64()};
      m.commit_time_us = in.i64();
      in.expect_end();
      return m;
    }
    case 'O': {
      Origin m;
      m.origin_commit_lsn = Lsn{in.u64()};
      m.name = in.cstring();
      in.expect_end();
      return m;
    }
    case 'R': {
      Relation m;
      m.xid = read_stream_xid(in);
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
        in.fail(std::to_string(columns) + " columns do not fit in " + std::to_string(in.remaining()) +
                " bytes");
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
      m.relation = std::make_shared<const RelationDef>(std::move(def));
      return m;
    }
    case 'Y': {
      Type m;
      m.xid = read_stream_xid(in);
      m.type.oid = in.u32();
      m.type.schema = in.cstring();
      m.type.name = in.cstring();
      in.expect_end();
      return m;
    }
    case 'T': {
      const Xid xid = read_stream_xid(in);
      const std::uint32_t count = in.u32();
      const std::uint8_t flags = in.u8();
      if (count > in.remaining() / 4) {
        in.fail(std::to_string(count) + " relations do not fit in " + std::to_string(in.remaining()) +
                " bytes");
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
      return DataChange{xid, {}};
    }
    case 'M': {
      const Xid xid = read_stream_xid(in);
      const std::uint8_t flags = in.u8();
      const Lsn lsn{in.u64()};
      const std::string_view prefix = in.cstring();
      const std::int32_t length = in.i32();
      if (length < 0) in.fail("negative content length " + std::to_string(length));
      const std::string_view content = in.bytes(static_cast<std::size_t>(length));
      in.expect_end();
      reset_for(change, ChangeOp::Message);
      change.message_transactional = (flags & kMessageTransactional) != 0;
      change.message_prefix.assign(prefix);
      change.message_content.assign(content);
      return DataChange{xid, lsn};
    }
    case 'S': {
      require_version(in, 2);
      StreamStart m;
      m.xid = Xid{in.u32()};
      m.first_segment = in.u8() != 0;
      in.expect_end();
      block_ = Block::Stream;
      return m;
    }
    case 'E':
      require_version(in, 2);
      in.expect_end();
      block_ = Block::Transaction;
      return StreamStop{};
    case 'c': {
      require_version(in, 2);
      StreamCommit m;
      m.xid = Xid{in.u32()};
      m.flags = in.u8();
      m.commit_lsn = Lsn{in.u64()};
      m.end_lsn = Lsn{in.u64()};
      m.commit_time_us = in.i64();
      in.expect_end();
      return m;
    }
    case 'A': {
      require_version(in, 2);
      StreamAbort m;
      m.xid = Xid{in.u32()};
      m.subxid = Xid{in.u32()};
      if (options_.version >= 4 && options_.streaming == StreamingMode::Parallel) {
        m.abort_lsn = Lsn{in.u64()};
        m.abort_time_us = in.i64();
      }
      in.expect_end();
      return m;
    }
    case 'b': {
      require_version(in, 3);
      BeginPrepare m;
      m.prepare_lsn = Lsn{in.u64()};
      m.end_lsn = Lsn{in.u64()};
      m.prepare_time_us = in.i64();
      m.xid = Xid{in.u32()};
      m.gid = in.cstring();
      in.expect_end();
      return m;
    }
    case 'P':
    case 'p': {
      require_version(in, 3);
      Prepare m;
      m.flags = in.u8();
      m.prepare_lsn = Lsn{in.u64()};
      m.end_lsn = Lsn{in.u64()};
      m.prepare_time_us = in.i64();
      m.xid = Xid{in.u32()};
      m.gid = in.cstring();
      m.streamed = tag == 'p';
      in.expect_end();
      return m;
    }
    case 'K': {
      require_version(in, 3);
      CommitPrepared m;
      m.flags = in.u8();
      m.commit_lsn = Lsn{in.u64()};
      m.end_lsn = Lsn{in.u64()};
      m.commit_time_us = in.i64();
      m.xid = Xid{in.u32()};
      m.gid = in.cstring();
      in.expect_end();
      return m;
    }
    case 'r': {
      require_version(in, 3);
      RollbackPrepared m;
      m.flags = in.u8();
      m.prepare_end_lsn = Lsn{in.u64()};
      m.rollback_end_lsn = Lsn{in.u64()};
      m.prepare_time_us = in.i64();
      m.rollback_time_us = in.i64();
      m.xid = Xid{in.u32()};
      m.gid = in.cstring();
      in.expect_end();
      return m;
    }
    default: {
      ByteReader at_tag{bytes, "unknown"};
      at_tag.fail("unknown message type " + tag_text(tag));
    }
  }
}

}  // namespace cdcsync
