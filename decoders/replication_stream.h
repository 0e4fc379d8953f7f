// A logical replication connection (libpq, replication=database): IDENTIFY_SYSTEM, slot management,
// START_REPLICATION with pgoutput, CopyData in (XLogData and keepalives), standby status updates out.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/lsn.h"
#include "decoders/pg.h"

namespace cdcsync {

struct SystemIdentity {
  std::string system_id;  // the cluster's system identifier: changes when the source is a different cluster
  std::uint32_t timeline = 0;
  Lsn wal_position;  // the server's current flush position
  std::string dbname;
};

struct CreatedSlot {
  std::string name;
  Lsn consistent_point;       // streaming starts here; the exported snapshot sees everything before it
  std::string snapshot_name;  // valid until the next command on this connection or its end
};

struct SlotState {
  std::string name;
  std::string plugin;
  std::string database;
  bool temporary = false;
  bool active = false;
  int active_pid = 0;
  bool two_phase = false;
  Lsn restart_lsn;
  Lsn confirmed_flush_lsn;
  std::string wal_status;  // reserved, extended, unreserved, lost
  std::optional<std::int64_t> safe_wal_size;
};

struct StreamOptions {
  int proto_version = 1;
  std::vector<std::string> publications;
  bool streaming = false;  // stream large in-progress transactions (proto_version >= 2)
  bool messages = true;    // logical decoding messages (pg_logical_emit_message)
  bool binary = false;
  bool two_phase = false;  // proto_version >= 3 and a slot created with TWO_PHASE
  // Least time between two waits on the socket. The server sends each message as it decodes it; a reader
  // that wakes for every one spends its CPU on wake-ups. With an interval, what arrives meanwhile is read
  // in one go, at the cost of at most this much added latency. 0: wake for every arrival.
  std::chrono::microseconds min_read_interval{0};
};

// One event read from the stream. `payload` stays valid until the next call to next().
struct StreamEvent {
  enum class Kind { Data, Keepalive, Timeout, Ended };
  Kind kind = Kind::Timeout;
  Lsn wal_start;                    // Data: WAL position of the message
  Lsn wal_end;                      // the server's current end of WAL
  std::int64_t server_time_us = 0;  // PostgreSQL epoch microseconds
  bool reply_requested = false;     // Keepalive: the server wants a status update now
  std::string_view payload;         // Data: one pgoutput message
};

class ReplicationStream {
 public:
  // `conninfo` is an ordinary libpq conninfo; replication=database is added. `reply_timeout`: the reply
  // deadline of the commands before streaming (decoders/pg_link.h; nullopt: the process's default); a slot's
  // creation, which waits for the source's open transactions, gets at least the default. Once streaming, the
  // status updates it sends keep the deadline off: silence is the caller's to notice (receive timeout).
  explicit ReplicationStream(const std::string& conninfo,
                             std::optional<std::chrono::milliseconds> reply_timeout = std::nullopt);
  ~ReplicationStream();
  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  SystemIdentity identify_system();
  CreatedSlot create_slot(const std::string& slot, bool temporary, bool export_snapshot, bool two_phase);
  std::optional<SlotState> slot_state(const std::string& slot);
  void drop_slot(const std::string& slot);
  int server_version() const;

  void start(const std::string& slot, Lsn from, const StreamOptions& options);
  // Waits at most `timeout` for the next message.
  StreamEvent next(std::chrono::milliseconds timeout);
  // Waits until `deadline` at most; a message already received is returned without reading the clock.
  StreamEvent next_until(std::chrono::steady_clock::time_point deadline);
  // The next message already received by libpq or waiting in the socket, without waiting (Timeout: none).
  StreamEvent next_arrived();
  // Standby status update. `flushed` must be durable downstream: the server may discard WAL before it.
  void send_status(Lsn written, Lsn flushed, Lsn applied, bool reply_requested = false);
  // Frees the last message's copy now rather than at the next read: call once its payload is used (a wide
  // row's copy is not kept while the reader waits). libpq's own input buffer keeps its size (the largest
  // message so far) until the connection closes.
  void release_message() { buffer_.reset(); }
  // Ends COPY mode politely (CopyDone) and drains the server's answer.
  void finish();

  // The raw CopyData message last read (valid until the next read), for a bug report when it was malformed.
  std::string_view last_message() const { return last_message_; }

  bool streaming() const { return streaming_; }
  PGconn* raw() const { return conn_.get(); }

  // StreamOptions::min_read_interval applies only while this is on (the default). A consumer that is caught
  // up turns it off: each transaction is read as soon as it arrives, as its commit is waited for downstream.
  void set_read_throttle(bool on) { read_throttle_ = on; }

 private:
  PgResult query(const std::string& sql, std::string_view doing);
  // Waits up to `timeout_ms` for the socket to be readable and hands what is there to libpq; poll's result
  // (> 0 read, 0 timed out, < 0 interrupted).
  int read_socket(int timeout_ms);

  PgConn conn_;
  std::chrono::milliseconds reply_timeout_;
  bool streaming_ = false;
  std::chrono::microseconds min_read_interval_{0};
  bool read_throttle_ = true;
  std::chrono::steady_clock::time_point last_wake_{};
  std::unique_ptr<char, PqFreemem> buffer_;
  std::string_view last_message_;
};

// "name" or "a, b" as a publication_names option value: each name quoted as an identifier.
std::string publication_names_option(const std::vector<std::string>& publications);

// Slot names the server accepts: [a-z0-9_]{1,63}.
bool valid_slot_name(std::string_view name);

}  // namespace cdcsync
