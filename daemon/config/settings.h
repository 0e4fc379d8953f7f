// Settings: every config key, declared once with type, unit, default, bounds and help.
//
// The loader (load.cpp), `cdcsync config-help` and docs/configuration.md are generated from the tables at
// the bottom of this file; a key that is not declared here is an unknown key and is refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "daemon/config/config.h"

namespace cdcsync::config {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

enum class Need { optional, required };

template <class T>
struct Bounds {
  std::optional<T> min;
  std::optional<T> max;
};

// A per-value check beyond type and bounds; returns what is wrong, or empty when the value is fine.
template <class T>
using Check = std::string (*)(const T&);

template <class T>
struct Setting {
  std::string_view key;  // dotted; "tables[]." for per-table keys, "<column>" for a column name
  T default_value;
  Bounds<T> bounds;
  std::string_view help;
  std::string_view unit = {};
  Need need = Need::optional;
  Check<T> check = nullptr;
};

// A setting and where its value lives (Access: Owner& -> T&).
template <class T, class Access>
struct Bound {
  Setting<T> setting;
  Access access;
};
template <class T, class Access>
Bound(Setting<T>, Access) -> Bound<T, Access>;

// A key whose value is structured (array or table) and parsed by hand; documented here all the same.
struct StructuredKey {
  std::string_view key;
  std::string_view type;
  std::string_view help;
  Need need = Need::optional;
};

// Value checks shared by several keys (defined in validate.cpp).
std::string check_pipeline_name(const std::string& v);
std::string check_slot_name(const std::string& v);
std::string check_publication_name(const std::string& v);
std::string check_column_name(const std::string& v);
std::string check_not_empty(const std::string& v);
std::string check_mask_char(const std::string& v);

// clang-format off
inline const auto kGlobalSettings = std::tuple{
  Bound{Setting<std::string>{"pipeline", "", {}, "Name of this pipeline ([a-z0-9_-], 1..63 bytes); labels metrics, logs and Redis keys.", {}, Need::required, check_pipeline_name},
        [](Config& c) -> auto& { return c.pipeline; }},

  Bound{Setting<std::string>{"source.conninfo", "", {}, "libpq connection string for the customer DB; no password (see password_file). Checked with PQconninfoParse.", {}, Need::required},
        [](Config& c) -> auto& { return c.source.conninfo; }},
  Bound{Setting<SecretFile>{"source.password_file", {}, {}, "File holding the source password (mode 0600/0640), or credential:NAME: systemd's credential ($CREDENTIALS_DIRECTORY/NAME under the unit, /etc/credstore/NAME from a shell). Unset: ~/.pgpass or PGPASSFILE."},
        [](Config& c) -> auto& { return c.source.password_file; }},
  Bound{Setting<std::string>{"source.publication", "", {}, "Publication to stream (created by the DBA, never FOR ALL TABLES); 1..63 bytes, no quotes or commas.", {}, Need::required, check_publication_name},
        [](Config& c) -> auto& { return c.source.publication; }},
  Bound{Setting<std::string>{"source.slot", "", {}, "Logical replication slot name, [a-z0-9_]{1,63}.", {}, Need::required, check_slot_name},
        [](Config& c) -> auto& { return c.source.slot; }},
  Bound{Setting<bool>{"source.create_slot", false, {}, "Create the slot (pgoutput) when it does not exist; otherwise a missing slot stops the daemon."},
        [](Config& c) -> auto& { return c.source.create_slot; }},
  Bound{Setting<bool>{"source.temporary_slot", false, {}, "Use a temporary slot, dropped when the session ends (tests and one-off copies only; needs create_slot)."},
        [](Config& c) -> auto& { return c.source.temporary_slot; }},
  Bound{Setting<std::int64_t>{"source.proto_version", 1, {.min = 1, .max = 4}, "pgoutput protocol version; 1 is all a non-streaming client needs, streaming = \"on\" needs 2 or more (PG15 supports up to 3)."},
        [](Config& c) -> auto& { return c.source.proto_version; }},
  Bound{Setting<StreamingMode>{"source.streaming", StreamingMode::Off, {}, "Stream large in-progress transactions (pgoutput streaming) instead of waiting for their commit: the source spills nothing to disk for them, cdcsync spools them and reads the next ones on while one is applied (faster on large transactions)."},
        [](Config& c) -> auto& { return c.source.streaming; }},
  Bound{Setting<milliseconds>{"source.status_interval_ms", 1000ms, {.min = 100ms, .max = 60000ms}, "Interval between standby status updates to the source (must stay below its wal_sender_timeout).", "ms"},
        [](Config& c) -> auto& { return c.source.status_interval; }},
  Bound{Setting<milliseconds>{"source.receive_timeout_ms", 30000ms, {.min = 1000ms, .max = 3600000ms}, "Silence from the source after which the connection is treated as dead and reopened.", "ms"},
        [](Config& c) -> auto& { return c.source.receive_timeout; }},
  Bound{Setting<std::int64_t>{"source.min_read_interval_us", 1000, {.min = 0, .max = 100000}, "While catching up (the source sends transactions 20 ms or more after their commit), least time between two waits on the replication socket: what arrives meanwhile is read in one wake-up (less CPU per change, at most this much added lag). Caught up, each transaction is read as it arrives. 0 = wake for every message.", "microseconds"},
        [](Config& c) -> auto& { return c.source.min_read_interval_us; }},
  Bound{Setting<milliseconds>{"source.heartbeat_interval_ms", 0ms, {.min = 0ms, .max = 3600000ms}, "Interval of pg_logical_emit_message heartbeats that let an idle slot advance; 0 = off.", "ms"},
        [](Config& c) -> auto& { return c.source.heartbeat_interval; }},
  Bound{Setting<milliseconds>{"source.reconnect_min_ms", 500ms, {.min = 10ms, .max = 60000ms}, "First delay before reconnecting to the source; doubles up to reconnect_max_ms.", "ms"},
        [](Config& c) -> auto& { return c.source.reconnect_min; }},
  Bound{Setting<milliseconds>{"source.reconnect_max_ms", 30000ms, {.min = 100ms, .max = 3600000ms}, "Longest delay between reconnect attempts.", "ms"},
        [](Config& c) -> auto& { return c.source.reconnect_max; }},
  Bound{Setting<bool>{"source.allow_insecure_tls", false, {}, "Allow sslmode disable/allow/prefer/require to a non-loopback source host (no server verification)."},
        [](Config& c) -> auto& { return c.source.allow_insecure_tls; }},

  Bound{Setting<bool>{"target.enabled", true, {}, "false: a Kafka-only pipeline (needs kafka.enabled): no order DB connection and no writer lock; the progress lives in Kafka and the transactional.id fences a second writer."},
        [](Config& c) -> auto& { return c.target.enabled; }},
  Bound{Setting<std::string>{"target.conninfo", "", {}, "libpq connection string for the order DB; no password (see password_file). Required unless target.enabled = false."},
        [](Config& c) -> auto& { return c.target.conninfo; }},
  Bound{Setting<SecretFile>{"target.password_file", {}, {}, "File holding the target password (mode 0600/0640), or credential:NAME. Unset: ~/.pgpass or PGPASSFILE."},
        [](Config& c) -> auto& { return c.target.password_file; }},
  Bound{Setting<QualifiedName>{"target.progress_table", {"ref", "cdc_progress"}, {}, "Table holding the applied LSN per pipeline, written in the same transaction as each batch."},
        [](Config& c) -> auto& { return c.target.progress_table; }},
  Bound{Setting<milliseconds>{"target.statement_timeout_ms", 30000ms, {.min = 100ms, .max = 3600000ms}, "statement_timeout for the target session; a batch that takes longer is retried.", "ms"},
        [](Config& c) -> auto& { return c.target.statement_timeout; }},
  Bound{Setting<ToastCompression>{"target.toast_compression", ToastCompression::Auto, {}, "How the target session compresses the large (TOASTed) values it writes, for columns without their own COMPRESSION: \"auto\" = lz4 when the server has it and nobody set default_toast_compression (server, database or role), else the server's choice; \"server\" = the server's default_toast_compression; \"lz4\" or \"pglz\"."},
        [](Config& c) -> auto& { return c.target.toast_compression; }},
  Bound{Setting<CopyFormat>{"target.copy_format", CopyFormat::Binary, {}, "How rows are copied into the target and its staging tables: \"binary\" = COPY's binary format for each table whose every column is boolean, an integer, oid, numeric, real, double precision, text, varchar, char, json, jsonb, bytea, uuid, date, time, timetz, timestamp, timestamptz, interval, inet, cidr, macaddr, macaddr8, pg_lsn, an enum, a domain over one of these or a one-dimensional array of any of them, text for the other tables (and, until cdcsync restarts, for a table with a value not in its type's usual output form, such as a timestamp in another DateStyle); \"text\" = always COPY's text format."},
        [](Config& c) -> auto& { return c.target.copy_format; }},
  Bound{Setting<std::int64_t>{"target.one_trip_max_changes", 32, {.min = 0, .max = 256}, "A batch of whole source transactions with at most this many changes (none of them a TRUNCATE or an update with an unchanged TOAST value) is applied in one round trip to the order DB: BEGIN, one prepared upsert or delete per change under the LSN guard, the progress row and COMMIT, sent together in libpq's pipeline mode. What a service sees at a steady rate (each transaction a batch of its own) is then visible a few round trips sooner. Larger batches are copied (COPY, then set-based statements). 0 = every batch is copied.", "changes"},
        [](Config& c) -> auto& { return c.target.one_trip_max_changes; }},
  Bound{Setting<bool>{"target.allow_insecure_tls", false, {}, "Allow sslmode disable/allow/prefer/require to a non-loopback target host (no server verification)."},
        [](Config& c) -> auto& { return c.target.allow_insecure_tls; }},

  Bound{Setting<std::int64_t>{"batch.max_rows", 5000, {.min = 1, .max = 1000000}, "Most rows in one batch (whole transactions are never split across batches).", "rows"},
        [](Config& c) -> auto& { return c.batch.max_rows; }},
  Bound{Setting<milliseconds>{"batch.max_wait_ms", 50ms, {.min = 1ms, .max = 60000ms}, "Longest a batch keeps taking transactions that keep arriving (a batch is applied as soon as nothing more is queued).", "ms"},
        [](Config& c) -> auto& { return c.batch.max_wait; }},
  Bound{Setting<std::int64_t>{"batch.max_txn_chunk_rows", 10000, {.min = 1, .max = 10000000}, "A larger source transaction is applied in chunks of this many rows (and at most an eighth of memory.limit_bytes) inside one target transaction.", "rows"},
        [](Config& c) -> auto& { return c.batch.max_txn_chunk_rows; }},
  Bound{Setting<milliseconds>{"batch.catch_up_lag_ms", 1000ms, {.min = 0ms, .max = 3600000ms}, "Catching up: when the source sends a transaction this long after its commit or longer (its own clock), a batch keeps growing to max_rows while transactions keep arriving (applied after max_wait_ms without one, or when it is this old); 0 = always apply as soon as nothing is queued.", "ms"},
        [](Config& c) -> auto& { return c.batch.catch_up_lag; }},
  Bound{Setting<milliseconds>{"batch.flush_interval_ms", 1000ms, {.min = 0ms, .max = 60000ms}, "A batch's commit in the order DB does not wait for the WAL flush: its rows are visible at once, and cdcsync learns afterwards how far the order DB has flushed (pg_current_wal_flush_lsn, read with each commit and every 20 ms between batches). The first batch this long after the flushed position last advanced, a flush once nothing arrived for max_wait_ms (at most 100 ms), and a stop wait for it and make every commit before them durable. Nothing is confirmed to the source or mirrored to Redis before it is durable; if the order DB crashes first, cdcsync applies the lost commits again. 0 = every batch waits for its flush.", "ms"},
        [](Config& c) -> auto& { return c.batch.flush_interval; }},
  Bound{Setting<std::int64_t>{"batch.queue_max_transactions", 100000, {.min = 1, .max = 1000000}, "Most transactions queued between receiver and applier; a full queue stops reading. Keep it above max_rows: the queue holds the next batch while the current one is applied (queue_max_bytes is the usual bound).", "transactions"},
        [](Config& c) -> auto& { return c.batch.queue_max_transactions; }},
  Bound{Setting<std::int64_t>{"batch.queue_max_bytes", 16 * 1024 * 1024, {.min = 1024 * 1024, .max = 16LL * 1024 * 1024 * 1024}, "Most decoded bytes queued between receiver and applier (at most a quarter of memory.limit_bytes is used).", "bytes"},
        [](Config& c) -> auto& { return c.batch.queue_max_bytes; }},
  Bound{Setting<std::int64_t>{"batch.max_bytes", 16 * 1024 * 1024, {.min = 64 * 1024, .max = 4LL * 1024 * 1024 * 1024}, "Most decoded bytes in one batch (whole transactions are never split across batches; at most a quarter of memory.limit_bytes is used).", "bytes"},
        [](Config& c) -> auto& { return c.batch.max_bytes; }},

  Bound{Setting<std::int64_t>{"memory.limit_bytes", 64 * 1024 * 1024, {.min = 4 * 1024 * 1024, .max = 64LL * 1024 * 1024 * 1024}, "Most bytes of decoded changes held at once: the source's output, the queue, the open chunk of a large transaction, the batch, and the COPY, JSON and Kafka buffers all count against it (the queue and batch byte bounds are at most a quarter of it each, a chunk an eighth). A larger transaction is applied in chunks of at most an eighth of it inside one target transaction; a single row wider than it still passes (it is read once what is held is below the limit). Peak memory: see docs/reliability.md.", "bytes"},
        [](Config& c) -> auto& { return c.memory.limit_bytes; }},
  Bound{Setting<std::int64_t>{"spool.limit_bytes", 10LL * 1024 * 1024 * 1024, {.min = 1024 * 1024, .max = 16LL * 1024 * 1024 * 1024 * 1024}, "Most bytes in the spool files of streamed transactions waiting for their commit (source.streaming = \"on\"). A transaction that needs more stops the pipeline (exit 1) naming it, its size and this key; nothing past it is confirmed, and a restart with a higher limit goes on.", "bytes"},
        [](Config& c) -> auto& { return c.spool.limit_bytes; }},
  Bound{Setting<std::string>{"spool.directory", "", {}, "Directory of the spool files, private to the pipeline (created 0700, files 0600, refused when owned by another user; stale files removed at start). Empty: $STATE_DIRECTORY/spool-<pipeline> under systemd (StateDirectory=), else $XDG_STATE_HOME/cdcsync/spool-<pipeline>, else ~/.local/state/cdcsync/spool-<pipeline>."},
        [](Config& c) -> auto& { return c.spool.directory; }},

  Bound{Setting<std::string>{"checkpoint.redis", "", {}, "Redis for the checkpoint mirror: redis://[user@]host[:port][/db] or unix:///path[?db=N]; no password in the URL.", {}, Need::required},
        [](Config& c) -> auto& { return c.checkpoint.redis; }},
  Bound{Setting<SecretFile>{"checkpoint.password_file", {}, {}, "File holding the Redis password (mode 0600/0640), or credential:NAME. Unset: no AUTH."},
        [](Config& c) -> auto& { return c.checkpoint.password_file; }},
  Bound{Setting<milliseconds>{"checkpoint.lease_ttl_ms", 10000ms, {.min = 1000ms, .max = 600000ms}, "Lifetime of the single-writer lease in Redis; another daemon may take over after it lapses.", "ms"},
        [](Config& c) -> auto& { return c.checkpoint.lease_ttl; }},
  Bound{Setting<milliseconds>{"checkpoint.renew_ms", 3000ms, {.min = 100ms, .max = 300000ms}, "Interval of lease renewals; at most half of lease_ttl_ms.", "ms"},
        [](Config& c) -> auto& { return c.checkpoint.renew; }},
  Bound{Setting<bool>{"checkpoint.required", false, {}, "Refuse to start while Redis is unreachable (otherwise run on the target's progress row and catch up)."},
        [](Config& c) -> auto& { return c.checkpoint.required; }},

  Bound{Setting<SnapshotMode>{"snapshot.mode", SnapshotMode::Initial, {}, "initial: copy the existing rows when the slot is created; never: stream changes only."},
        [](Config& c) -> auto& { return c.snapshot.mode; }},
  Bound{Setting<std::int64_t>{"snapshot.parallel", 2, {.min = 1, .max = 32}, "Sessions copying at once (each a source and a target connection, all in the one snapshot): the initial snapshot, resync and verify --repair cut each table into ranges of heap blocks and copy several ranges and tables at once.", "sessions"},
        [](Config& c) -> auto& { return c.snapshot.parallel; }},
  Bound{Setting<bool>{"snapshot.truncate", false, {}, "Let the copy TRUNCATE a table it fills (needs the TRUNCATE privilege, which the least-privilege role lacks): a table left half-copied by a crash is emptied by TRUNCATE instead of DELETE, and a table copied in one part is truncated and loaded with COPY FREEZE in the same transaction (no later vacuum to freeze it)."},
        [](Config& c) -> auto& { return c.snapshot.truncate; }},
  Bound{Setting<bool>{"snapshot.rebuild_indexes", false, {}, "Build a table's indexes after its data, as pg_restore does: a table the initial snapshot copies straight in (empty, or emptied of an interrupted copy) has its indexes and the primary key, unique and exclusion constraints they back dropped before the copy and built again in one transaction when every part has committed; the statements that build them are kept in the load state meanwhile (column deferred_indexes), so a crash in between loses none. About a quarter less time for a table with a primary key. Needs the target role to own the mapped tables and to CREATE in their schema (more than the least privilege; check and audit say so); where an index cannot be dropped (another table's foreign key needs it) the table is copied with its indexes."},
        [](Config& c) -> auto& { return c.snapshot.rebuild_indexes; }},
  Bound{Setting<milliseconds>{"snapshot.stall_timeout_ms", 60000ms, {.min = 1000ms, .max = 3600000ms}, "A copy session whose source sends no row, or whose target takes none, for this long is taken for dead (a half-open link): the copy fails and is resumed.", "ms"},
        [](Config& c) -> auto& { return c.snapshot.stall_timeout; }},

  Bound{Setting<bool>{"archive.enabled", false, {}, "Append every applied transaction's change events (Debezium JSON, hash-chained) to a Redis stream on the checkpoint Redis before the checkpoint moves; replay and audit verify-archive read it."},
        [](Config& c) -> auto& { return c.archive.enabled; }},
  Bound{Setting<std::int64_t>{"archive.stream_maxlen", 1000000, {.min = 1000, .max = 1000000000}, "Approximate length cap of the archive stream (XADD MAXLEN ~); the oldest entries go first.", "entries"},
        [](Config& c) -> auto& { return c.archive.stream_maxlen; }},
  Bound{Setting<std::int64_t>{"archive.max_age_hours", 168, {.min = 0, .max = 87600}, "Entries of source transactions committed longer ago than this are trimmed; 0 = no age limit.", "hours"},
        [](Config& c) -> auto& { return c.archive.max_age_hours; }},
  Bound{Setting<std::string>{"archive.topic_prefix", "", {}, "Debezium topic.prefix of the archived events (topic <prefix>.<schema>.<table>); empty = the pipeline name."},
        [](Config& c) -> auto& { return c.archive.topic_prefix; }},

  Bound{Setting<bool>{"dead_letter.enabled", false, {}, "Park a source transaction the order DB refuses (constraint, permission, bad value) in the Redis stream cdcsync:{pipeline}:dlq and go on; false: stop with exit code 4. See `cdcsync dlq`."},
        [](Config& c) -> auto& { return c.dead_letter.enabled; }},
  Bound{Setting<std::int64_t>{"dead_letter.max_transactions", 1000, {.min = 1, .max = 1000000}, "Most transactions held in the dead-letter stream; one more stops the daemon (exit 4).", "transactions"},
        [](Config& c) -> auto& { return c.dead_letter.max_transactions; }},

  Bound{Setting<bool>{"kafka.enabled", false, {}, "Publish every applied transaction as Debezium-compatible records to Kafka, one Kafka transaction per batch (after the order DB, or alone with target.enabled = false)."},
        [](Config& c) -> auto& { return c.kafka.enabled; }},
  Bound{Setting<std::string>{"kafka.brokers", "", {}, "bootstrap.servers: host:port[,host:port...]; required when enabled."},
        [](Config& c) -> auto& { return c.kafka.brokers; }},
  Bound{Setting<std::string>{"kafka.topic_prefix", "", {}, "Debezium topic.prefix: topics <prefix>.<source schema>.<source table> and the progress topic <prefix>.cdcsync.progress; empty = the pipeline name."},
        [](Config& c) -> auto& { return c.kafka.topic_prefix; }},
  Bound{Setting<bool>{"kafka.tombstones", true, {}, "A null-value record (same key) after each delete, so log compaction can drop the key (Debezium's tombstones.on.delete)."},
        [](Config& c) -> auto& { return c.kafka.tombstones; }},
  Bound{Setting<std::string>{"kafka.transactional_id", "", {}, "The producer's transactional.id; a new instance with the same id fences the old one. Empty = cdcsync-<pipeline>."},
        [](Config& c) -> auto& { return c.kafka.transactional_id; }},
  Bound{Setting<SecretFile>{"kafka.password_file", {}, {}, "File holding the SASL password (sasl.password; mode 0600/0640), or credential:NAME. Unset: no SASL password."},
        [](Config& c) -> auto& { return c.kafka.password_file; }},
  Bound{Setting<milliseconds>{"kafka.timeout_ms", 30000ms, {.min = 1000ms, .max = 600000ms}, "Longest wait for init_transactions, a commit, an abort or reading the progress topic; then the batch is retried.", "ms"},
        [](Config& c) -> auto& { return c.kafka.timeout; }},

  Bound{Setting<std::string>{"metrics.listen", "127.0.0.1:10187", {}, "host:port (or [v6]:port) of the /metrics endpoint; loopback unless allow_remote."},
        [](Config& c) -> auto& { return c.metrics.listen; }},
  Bound{Setting<bool>{"metrics.allow_remote", false, {}, "Allow metrics.listen on a non-loopback address."},
        [](Config& c) -> auto& { return c.metrics.allow_remote; }},

  Bound{Setting<milliseconds>{"network.reply_timeout_ms", 600000ms, {.min = 1000ms, .max = 86400000ms}, "Longest a PostgreSQL session with no deadline of its own (initial snapshot, verify, resync, replay, checks) waits for any byte of a reply to a command before it takes the link for dead (half-open: bytes taken, never answered) and fails the command; keep it above your slowest verify or resync statement. The apply session's is target.statement_timeout_ms + min(it, 5 s); the replication connection's and the heartbeat's source.receive_timeout_ms.", "ms"},
        [](Config& c) -> auto& { return c.network.reply_timeout; }},

  Bound{Setting<LogLevel>{"log.level", LogLevel::Info, {}, "Least severe level written."},
        [](Config& c) -> auto& { return c.log.level; }},
  Bound{Setting<LogFormat>{"log.format", LogFormat::Text, {}, "Log line format: text for people, json for collectors."},
        [](Config& c) -> auto& { return c.log.format; }},
};

// Structured keys outside [[tables]]: "section.key".
inline const StructuredKey kGlobalStructuredKeys[] = {
  {"kafka.properties", "inline table", "librdkafka properties passed through (security.protocol, sasl.mechanism, sasl.username, ssl.ca.location, compression.type, linger.ms, ...) with string, integer or boolean values; those cdcsync controls (bootstrap.servers, transactional.id, enable.idempotence, acks, partitioner, isolation.level, passwords) are refused."},
};

inline const auto kTableSettings = std::tuple{
  Bound{Setting<QualifiedName>{"tables[].source", {}, {}, "Source table, schema.table (quote mixed case: \"Sales\".\"Customer\").", {}, Need::required},
        [](TableMapping& t) -> auto& { return t.source; }},
  Bound{Setting<QualifiedName>{"tables[].target", {}, {}, "Target table in the order DB, schema.table; each target appears once.", {}, Need::required},
        [](TableMapping& t) -> auto& { return t.target; }},
  Bound{Setting<DeletePolicy>{"tables[].deletes", DeletePolicy::Hard, {}, "hard: delete the row; soft: set tombstone_column; ignore: keep the row."},
        [](TableMapping& t) -> auto& { return t.deletes; }},
  Bound{Setting<TruncatePolicy>{"tables[].truncate", TruncatePolicy::Fail, {}, "On a source TRUNCATE: apply it, ignore it, or fail (stop; the safe default for reference data)."},
        [](TableMapping& t) -> auto& { return t.truncate; }},
  Bound{Setting<std::string>{"tables[].lsn_column", "_cdc_lsn", {}, "Target column (pg_lsn) holding the LSN of the row's last change; guards against going backwards.", {}, Need::optional, check_column_name},
        [](TableMapping& t) -> auto& { return t.lsn_column; }},
  Bound{Setting<std::string>{"tables[].tombstone_column", "_cdc_deleted", {}, "Target column (boolean) set by deletes = \"soft\".", {}, Need::optional, check_column_name},
        [](TableMapping& t) -> auto& { return t.tombstone_column; }},
};

inline const StructuredKey kTableStructuredKeys[] = {
  {"tables[].key", "array of strings", "Source key columns (the replica identity); each must be mapped in columns.", Need::required},
  {"tables[].columns", "inline table", "Source column = target column; only these columns reach the order DB, in file order.", Need::required},
  {"tables[].transforms", "inline table", "Per mapped source column, one transform: hmac_sha256, mask or constant (keys below)."},
};

inline const auto kHmacSettings = std::tuple{
  Bound{Setting<SecretFile>{"tables[].transforms.<column>.hmac_sha256.key_file", {}, {}, "Key file (mode 0600/0640, or credential:NAME); the value becomes hex HMAC-SHA-256.", {}, Need::required},
        [](HmacSha256& h) -> auto& { return h.key_file; }},
};

inline const auto kMaskSettings = std::tuple{
  Bound{Setting<std::int64_t>{"tables[].transforms.<column>.mask.keep_last", 4, {.min = 0, .max = 64}, "Characters kept at the end; the rest become char.", "characters"},
        [](Mask& m) -> auto& { return m.keep_last; }},
  Bound{Setting<std::string>{"tables[].transforms.<column>.mask.char", "*", {}, "The masking character (one character).", {}, Need::optional, check_mask_char},
        [](Mask& m) -> auto& { return m.mask_char; }},
};

inline const auto kConstantSettings = std::tuple{
  Bound{Setting<std::string>{"tables[].transforms.<column>.constant", "", {}, "Replace the value with this string.", {}, Need::required},
        [](Constant& k) -> auto& { return k.value; }},
};
// clang-format on

template <class Tuple, class F>
void for_each_bound(const Tuple& tuple, F&& f) {
  std::apply([&](const auto&... b) { (f(b), ...); }, tuple);
}

}  // namespace cdcsync::config
