// Config: the daemon's typed configuration, loaded from one TOML file and validated as a whole.
//
// Every scalar key is declared once, with type, unit, default, bounds and help, in daemon/config/settings.h;
// the loader, `cdcsync config-help` and docs/configuration.md are all generated from that table. Loading
// collects every problem (not just the first) into a ConfigError whose issues each name file, line and key.
// Secrets never live in the file: passwords come from `password_file` (or ~/.pgpass / PGPASSFILE, or a
// systemd credential), and neither a password nor a secret file's content ever appears in an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "decoders/pgoutput.h"  // StreamingMode (the config allows Off and On)
#include "decoders/qualified_name.h"
#include "sinks/policy.h"  // DeletePolicy, TruncatePolicy, ToastCompression, CopyFormat

namespace cdcsync::config {

// The config's own choices; the others are the enums of the layers that act on them (included above).
// initial: copy the existing rows when the slot is created; never: stream changes only.
enum class SnapshotMode { Initial, Never };
enum class LogLevel { Trace, Debug, Info, Warn, Error };
enum class LogFormat { Text, Json };

// Each value's name in the file ("auto" for ToastCompression::Auto).
std::string_view name_of(StreamingMode v);
std::string_view name_of(SnapshotMode v);
std::string_view name_of(DeletePolicy v);
std::string_view name_of(TruncatePolicy v);
std::string_view name_of(LogLevel v);
std::string_view name_of(LogFormat v);
std::string_view name_of(ToastCompression v);
std::string_view name_of(CopyFormat v);

// "schema.table"; each part unquoted lowercase (`public`) or a quoted identifier (`"Mixed Case"`).
using cdcsync::QualifiedName;  // decoders/qualified_name.h
using cdcsync::sql_name;

// Where a secret lives: `password_file = "/etc/cdcsync/pg_source"` or `"credential:pg_source"`: under a unit
// with LoadCredential=pg_source, $CREDENTIALS_DIRECTORY/pg_source; from a shell, the file that setting reads,
// /etc/credstore/pg_source (then /run/credstore/, /usr/lib/credstore/). Empty spec = not configured.
struct SecretFile {
  std::string spec;            // as written in the file; safe to print
  std::filesystem::path path;  // resolved at load time
  bool configured() const { return !spec.empty(); }
};

// --credentials-dir DIR: credential:NAME is DIR/NAME, whatever the environment says (an empty path: no
// override). Call before loading.
void set_credentials_directory(std::filesystem::path dir);

// Reads a secret (≤ 4 KiB, one trailing newline stripped) after re-checking it is a regular file no wider
// than 0640. Throws std::runtime_error naming the path, never the content.
std::string read_secret(const SecretFile& secret);

struct HmacSha256 {
  SecretFile key_file;
  auto operator==(const HmacSha256& o) const { return key_file.spec == o.key_file.spec; }
};
struct Mask {
  std::int64_t keep_last = 4;
  std::string mask_char = "*";
  auto operator<=>(const Mask&) const = default;
};
struct Constant {
  std::string value;
  auto operator<=>(const Constant&) const = default;
};
using Transform = std::variant<HmacSha256, Mask, Constant>;
std::string_view name_of(const Transform& t);  // "hmac_sha256" | "mask" | "constant"

struct ColumnMapping {
  std::string source;  // exact source column name
  std::string target;  // exact target column name
  std::optional<Transform> transform;
};

struct TableMapping {
  QualifiedName source;
  QualifiedName target;
  std::vector<std::string> key;        // source column names; each is mapped
  std::vector<ColumnMapping> columns;  // in file order
  DeletePolicy deletes = DeletePolicy::Hard;
  TruncatePolicy truncate = TruncatePolicy::Fail;
  std::string lsn_column = "_cdc_lsn";
  std::string tombstone_column = "_cdc_deleted";
  int line = 0;  // of the [[tables]] header, for messages
};

struct SourceConfig {
  std::string conninfo;  // never holds a password (refused at load)
  SecretFile password_file;
  std::string publication;
  std::string slot;
  bool create_slot = false;
  bool temporary_slot = false;
  std::int64_t proto_version = 1;
  StreamingMode streaming = StreamingMode::Off;
  std::chrono::milliseconds status_interval{1000};
  std::chrono::milliseconds receive_timeout{30000};
  std::chrono::milliseconds heartbeat_interval{0};  // 0 = off
  std::int64_t min_read_interval_us = 1000;         // 0 = wake for every message
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  bool allow_insecure_tls = false;
};

struct TargetConfig {
  bool enabled = true;  // false: a Kafka-only pipeline (no order DB)
  std::string conninfo;
  SecretFile password_file;
  QualifiedName progress_table{"ref", "cdc_progress"};
  std::chrono::milliseconds statement_timeout{30000};
  ToastCompression toast_compression = ToastCompression::Auto;
  CopyFormat copy_format = CopyFormat::Binary;
  std::int64_t one_trip_max_changes = 32;  // 0 = off
  bool allow_insecure_tls = false;
};

struct BatchConfig {
  std::int64_t max_rows = 5000;
  std::chrono::milliseconds max_wait{50};
  std::chrono::milliseconds catch_up_lag{1000};    // 0 = off
  std::chrono::milliseconds flush_interval{1000};  // 0 = every batch waits for its flush
  std::int64_t max_txn_chunk_rows = 10000;
  std::int64_t queue_max_transactions = 100000;
  std::int64_t queue_max_bytes = 16 * 1024 * 1024;
  std::int64_t max_bytes = 16 * 1024 * 1024;
};

struct MemoryConfig {
  std::int64_t limit_bytes = 64 * 1024 * 1024;
};

struct SpoolConfig {
  std::int64_t limit_bytes = 10LL * 1024 * 1024 * 1024;
  std::string directory;  // empty: $STATE_DIRECTORY, $XDG_STATE_HOME or ~/.local/state, per pipeline
};

// redis://[user@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]
struct RedisEndpoint {
  std::string host;  // empty for a unix socket
  int port = 6379;
  std::string unix_socket;  // empty for TCP
  std::string user;         // ACL user; its password comes from checkpoint.password_file
  int db = 0;
};

struct CheckpointConfig {
  std::string redis;  // the URL as written (holds no password)
  RedisEndpoint endpoint;
  SecretFile password_file;
  std::chrono::milliseconds lease_ttl{10000};
  std::chrono::milliseconds renew{3000};
  bool required = false;
};

struct SnapshotConfig {
  SnapshotMode mode = SnapshotMode::Initial;
  std::int64_t parallel = 2;
  bool truncate = false;
  bool rebuild_indexes = false;
  std::chrono::milliseconds stall_timeout{60000};
};

struct ArchiveConfig {
  bool enabled = false;
  std::int64_t stream_maxlen = 1000000;
  std::int64_t max_age_hours = 168;  // 0: no age limit
  std::string topic_prefix;          // empty: the pipeline name
};

struct DeadLetterConfig {
  bool enabled = false;
  std::int64_t max_transactions = 1000;
};

struct KafkaConfig {
  bool enabled = false;
  std::string brokers;       // bootstrap.servers
  std::string topic_prefix;  // empty: the pipeline name
  bool tombstones = true;
  std::string transactional_id;  // empty: cdcsync-<pipeline>
  SecretFile password_file;      // sasl.password
  std::chrono::milliseconds timeout{30000};
  std::vector<std::pair<std::string, std::string>> properties;  // librdkafka pass-through, by name
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:10187";
  std::string host = "127.0.0.1";  // parsed from listen, without brackets
  int port = 10187;
  bool allow_remote = false;
};

struct NetworkConfig {
  // The reply deadline of a PostgreSQL session without one of its own (decoders/pg_link.h).
  std::chrono::milliseconds reply_timeout{600000};
};

struct LogConfig {
  LogLevel level = LogLevel::Info;
  LogFormat format = LogFormat::Text;
};

struct Config {
  std::filesystem::path file;  // where it was loaded from (or the name given for messages)
  std::string pipeline;
  SourceConfig source;
  TargetConfig target;
  BatchConfig batch;
  MemoryConfig memory;
  SpoolConfig spool;
  CheckpointConfig checkpoint;
  SnapshotConfig snapshot;
  ArchiveConfig archive;
  DeadLetterConfig dead_letter;
  KafkaConfig kafka;
  MetricsConfig metrics;
  NetworkConfig network;
  LogConfig log;
  std::vector<TableMapping> tables;
};

// One problem in a config file. line/column are 1-based; 0 when the problem is about the file itself.
struct ConfigIssue {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key;  // dotted, e.g. "tables[0].columns"; empty for file-level problems
  std::string message;
  std::string str() const;  // "file:line:column: key: message"
};

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<ConfigIssue> issues);
  const std::vector<ConfigIssue>& issues() const { return issues_; }

 private:
  std::vector<ConfigIssue> issues_;
};

inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

// Reads (regular files only, at most kMaxConfigBytes) and validates. Throws ConfigError listing every issue.
Config load_config(const std::filesystem::path& path);
Config load_config_from_string(std::string_view text, std::string_view file_name_for_messages);

// The effective configuration (defaults filled in) as TOML; it loads back to the same Config. Conninfos
// are shown with any password redacted; secret files by path only.
std::string render_effective_config(const Config& config);

// Every key's effective value as text, in file order ("source.slot" -> "\"cdc\""), then
// "kafka.properties" and one "tables.<target>" per mapped table (its whole [[tables]] entry): what a reload
// compares (daemon/config/reload.h).
std::vector<std::pair<std::string, std::string>> effective_values(const Config& config);

// The key reference: plain text for `cdcsync config-help`, Markdown for docs/configuration.md.
std::string render_config_help();
std::string render_config_reference_markdown();

// The Markdown reference sits between these markers in docs/configuration.md.
inline constexpr std::string_view kReferenceBegin =
    "<!-- BEGIN GENERATED: cdcsync config-help --markdown -->";
inline constexpr std::string_view kReferenceEnd = "<!-- END GENERATED -->";

}  // namespace cdcsync::config

namespace cdcsync {
using config::Config;
using config::ConfigError;
using config::load_config;
}  // namespace cdcsync
