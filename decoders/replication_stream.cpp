#include "decoders/replication_stream.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "decoders/byte_reader.h"
#include "decoders/change.h"

namespace cdcsync {
namespace {

// How long a stop waits for the server to acknowledge the end of the stream (finish()).
constexpr std::chrono::milliseconds kFinishReplyTimeout{5000};

std::int64_t now_pg_micros() {
  const auto unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  return unix_us - kPgEpochUnixMicros;
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// A text value; SQL NULL reads as "".
std::string value(const PGresult* res, int row, int col) {
  return pg_value(res, row, col).value_or(std::string{});
}

Lsn lsn_value(const PGresult* res, int row, int col, std::string_view what) {
  if (PQgetisnull(res, row, col)) return Lsn{};
  const auto lsn = Lsn::parse(PQgetvalue(res, row, col));
  if (!lsn) throw PgError{"XX000", std::string("server sent a malformed LSN for ") + std::string(what)};
  return *lsn;
}

}  // namespace

bool valid_slot_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::string publication_names_option(const std::vector<std::string>& publications) {
  std::string out;
  for (const auto& p : publications) {
    if (!out.empty()) out += ',';
    out += quote_ident(p);
  }
  return out;
}

ReplicationStream::ReplicationStream(const std::string& conninfo,
                                     std::optional<std::chrono::milliseconds> reply_timeout)
    : reply_timeout_(reply_timeout.value_or(pg_link::default_reply_timeout())) {
  // cdcsync's network defaults and reply deadline (decoders/pg.h): a connect without answer, a vanished
  // peer and a command without reply are noticed.
  conn_ = pg_connect(conninfo, "the source (replication)",
                     {.reply_timeout = reply_timeout_,
                      .after = {{"fallback_application_name", "cdcsync"}, {"replication", "database"}}});
}

ReplicationStream::~ReplicationStream() = default;

int ReplicationStream::server_version() const {
  return PQserverVersion(conn_.get());
}

PgResult ReplicationStream::query(const std::string& sql, std::string_view doing) {
  return pg_exec(conn_.get(), sql.c_str(), doing, PGRES_TUPLES_OK, PGRES_COMMAND_OK);
}

SystemIdentity ReplicationStream::identify_system() {
  auto res = query("IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM");
  if (PQntuples(res.get()) != 1 || PQnfields(res.get()) < 4) {
    throw PgError{"XX000", "IDENTIFY_SYSTEM: unexpected answer shape"};
  }
  SystemIdentity id;
  id.system_id = value(res.get(), 0, 0);
  id.timeline = static_cast<std::uint32_t>(std::strtoul(PQgetvalue(res.get(), 0, 1), nullptr, 10));
  id.wal_position = lsn_value(res.get(), 0, 2, "IDENTIFY_SYSTEM xlogpos");
  id.dbname = value(res.get(), 0, 3);
  return id;
}

CreatedSlot ReplicationStream::create_slot(const std::string& slot, bool temporary, bool export_snapshot,
                                           bool two_phase) {
  if (!valid_slot_name(slot)) {
    throw PgError{"42602", "invalid slot name \"" + slot + "\": use 1 to 63 of [a-z0-9_]"};
  }
  std::string sql = "CREATE_REPLICATION_SLOT " + slot + (temporary ? " TEMPORARY" : "") +
                    " LOGICAL pgoutput (SNAPSHOT '" + (export_snapshot ? "export" : "nothing") + "'";
  if (two_phase) sql += ", TWO_PHASE true";
  sql += ")";
  // It waits for every transaction open on the source to end.
  pg_link::set_reply_timeout(conn_.get(), std::max(reply_timeout_, pg_link::default_reply_timeout()));
  auto res = query(sql, "CREATE_REPLICATION_SLOT " + slot);
  pg_link::set_reply_timeout(conn_.get(), reply_timeout_);
  CreatedSlot created;
  created.name = value(res.get(), 0, 0);
  created.consistent_point = lsn_value(res.get(), 0, 1, "consistent_point");
  created.snapshot_name = value(res.get(), 0, 2);
  return created;
}

std::optional<SlotState> ReplicationStream::slot_state(const std::string& slot) {
  // A replication connection speaks the simple query protocol only (no PQexecParams): the name is a literal.
  const std::string sql =
      "SELECT slot_name, plugin, database, temporary, active, coalesce(active_pid, 0), two_phase, "
      "restart_lsn, confirmed_flush_lsn, coalesce(wal_status, ''), safe_wal_size "
      "FROM pg_catalog.pg_replication_slots WHERE slot_name = " +
      pg_quote_literal(conn_.get(), slot);
  auto res = query(sql, "reading slot " + slot);
  if (PQntuples(res.get()) == 0) return std::nullopt;
  SlotState s;
  s.name = value(res.get(), 0, 0);
  s.plugin = value(res.get(), 0, 1);
  s.database = value(res.get(), 0, 2);
  s.temporary = value(res.get(), 0, 3) == "t";
  s.active = value(res.get(), 0, 4) == "t";
  s.active_pid = std::atoi(PQgetvalue(res.get(), 0, 5));
  s.two_phase = value(res.get(), 0, 6) == "t";
  s.restart_lsn = lsn_value(res.get(), 0, 7, "restart_lsn");
  s.confirmed_flush_lsn = lsn_value(res.get(), 0, 8, "confirmed_flush_lsn");
  s.wal_status = value(res.get(), 0, 9);
  if (!PQgetisnull(res.get(), 0, 10))
    s.safe_wal_size = std::strtoll(PQgetvalue(res.get(), 0, 10), nullptr, 10);
  return s;
}

void ReplicationStream::drop_slot(const std::string& slot) {
  if (!valid_slot_name(slot)) throw PgError{"42602", "invalid slot name \"" + slot + "\""};
  query("DROP_REPLICATION_SLOT " + slot + " WAIT", "DROP_REPLICATION_SLOT " + slot);
}

void ReplicationStream::start(const std::string& slot, Lsn from, const StreamOptions& options) {
  if (!valid_slot_name(slot)) throw PgError{"42602", "invalid slot name \"" + slot + "\""};
  std::string sql = "START_REPLICATION SLOT " + slot + " LOGICAL " + from.str() + " (proto_version '" +
                    std::to_string(options.proto_version) + "', publication_names " +
                    pg_quote_literal(conn_.get(), publication_names_option(options.publications));
  if (options.messages) sql += ", messages 'true'";
  if (options.binary) sql += ", binary 'true'";
  if (options.streaming) sql += ", streaming 'on'";
  if (options.two_phase) sql += ", two_phase 'on'";
  sql += ")";
  pg_exec(conn_.get(), sql.c_str(), "START_REPLICATION on slot " + slot, PGRES_COPY_BOTH, PGRES_COPY_BOTH);
  // From now on the receiver's thread owns the connection; always in COPY, it vouches for nobody's liveness.
  pg_link::set_owner(conn_.get(), pg_link::Owner::SideThread);
  streaming_ = true;
  min_read_interval_ = options.min_read_interval;
}

int ReplicationStream::read_socket(int timeout_ms) {
  pollfd pfd{.fd = PQsocket(conn_.get()), .events = POLLIN, .revents = 0};
  const int r = poll(&pfd, 1, timeout_ms);
  if (r < 0 && errno != EINTR)
    throw PgError{"08006", std::string("poll on the replication socket: ") + std::strerror(errno)};
  if (r > 0 && PQconsumeInput(conn_.get()) == 0)
    throw pg_error(conn_.get(), nullptr, "reading the replication stream");
  return r;
}

StreamEvent ReplicationStream::next(std::chrono::milliseconds timeout) {
  return next_until(std::chrono::steady_clock::now() + timeout);
}

StreamEvent ReplicationStream::next_arrived() {
  constexpr auto no_wait = std::chrono::steady_clock::time_point::min();
  StreamEvent ev = next_until(no_wait);
  if (ev.kind != StreamEvent::Kind::Timeout || read_socket(0) <= 0) return ev;
  return next_until(no_wait);
}

StreamEvent ReplicationStream::next_until(std::chrono::steady_clock::time_point deadline) {
  last_message_ = {};
  buffer_.reset();
  while (true) {
    char* raw = nullptr;
    const int n = PQgetCopyData(conn_.get(), &raw, 1);
    if (n > 0) {
      buffer_.reset(raw);
      const std::string_view msg{raw, static_cast<std::size_t>(n)};
      last_message_ = msg;
      StreamEvent ev;
      if (msg[0] == 'w') {
        ByteReader in{msg.substr(1), "XLogData"};
        ev.kind = StreamEvent::Kind::Data;
        ev.wal_start = in.lsn();
        ev.wal_end = in.lsn();
        ev.server_time_us = in.i64();
        ev.payload = msg.substr(1 + in.offset());
        if (ev.payload.empty()) in.fail("empty pgoutput message");
        return ev;
      }
      if (msg[0] == 'k') {
        ByteReader in{msg.substr(1), "PrimaryKeepalive"};
        ev.kind = StreamEvent::Kind::Keepalive;
        ev.wal_end = in.lsn();
        ev.server_time_us = in.i64();
        ev.reply_requested = in.u8() != 0;
        in.expect_end();
        return ev;
      }
      throw DecodeError("CopyData", 0,
                        std::string("unknown replication message tag 0x") +
                            std::to_string(static_cast<unsigned char>(msg[0])));
    }
    if (n == -1) {
      streaming_ = false;
      PgResult res{PQgetResult(conn_.get())};
      if (res && PQresultStatus(res.get()) != PGRES_COMMAND_OK &&
          PQresultStatus(res.get()) != PGRES_COPY_OUT) {
        throw pg_error(conn_.get(), res.get(), "replication stream");
      }
      return StreamEvent{.kind = StreamEvent::Kind::Ended};
    }
    if (n == -2) throw pg_error(conn_.get(), nullptr, "reading the replication stream");

    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return StreamEvent{.kind = StreamEvent::Kind::Timeout};
    if (read_throttle_ && min_read_interval_.count() > 0 && now < last_wake_ + min_read_interval_) {
      // libpq's buffer is used up, but the socket may hold more (libpq reads at most its buffer at a time):
      // read on without waiting. Only when the socket is empty too, and it woke a moment ago, let more
      // arrive before waiting again.
      if (read_socket(0) > 0) continue;
      std::this_thread::sleep_until(std::min(last_wake_ + min_read_interval_, deadline));
      now = std::chrono::steady_clock::now();
    }
    // Rounded up: a wait shorter than a millisecond must not become a busy poll(0).
    const auto left =
        std::max<std::int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
    const int r = read_socket(static_cast<int>(left));
    if (r > 0) last_wake_ = std::chrono::steady_clock::now();
    if (r == 0) return StreamEvent{.kind = StreamEvent::Kind::Timeout};
  }
}

void ReplicationStream::send_status(Lsn written, Lsn flushed, Lsn applied, bool reply_requested) {
  std::string msg;
  msg.reserve(34);
  msg.push_back('r');
  put_u64(msg, written.value());
  put_u64(msg, flushed.value());
  put_u64(msg, applied.value());
  put_u64(msg, static_cast<std::uint64_t>(now_pg_micros()));
  msg.push_back(reply_requested ? 1 : 0);
  if (PQputCopyData(conn_.get(), msg.data(), static_cast<int>(msg.size())) != 1 ||
      PQflush(conn_.get()) != 0) {
    throw pg_error(conn_.get(), nullptr, "sending a standby status update");
  }
}

void ReplicationStream::finish() {
  if (!streaming_) return;
  streaming_ = false;
  // Every confirmed position was already sent: nothing depends on the server's acknowledgement, so a link
  // that says nothing for 5 s (half-open) is cut rather than holding a stop for the whole receive timeout.
  pg_link::set_reply_timeout(conn_.get(), kFinishReplyTimeout);
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) return;
  PQflush(conn_.get());
  // Drain what the server still sends until it acknowledges the end of COPY; bounded by the socket.
  for (int i = 0; i < 100000; ++i) {
    char* raw = nullptr;
    const int n = PQgetCopyData(conn_.get(), &raw, 0);
    if (raw != nullptr) PQfreemem(raw);
    if (n < 0) break;
  }
  while (PgResult res{PQgetResult(conn_.get())}) {
  }
}

}  // namespace cdcsync
