// The sinks' policy choices as plain enums, so the config (daemon/config/, plain data) names them without
// including a sink: what a delete and a TRUNCATE do to a target table, and how the order-DB sink copies rows
// and compresses large values. Enums only; nothing here may include more than <cstdint>.
#pragma once

#include <cstdint>

namespace cdcsync {

enum class DeletePolicy : std::uint8_t { Hard, Soft, Ignore };
// Apply deletes the target rows with DELETE (soft-delete tables: tombstones them): the target role has no
// TRUNCATE privilege, and DELETE keeps the operation inside the row-level permissions the sink already has.
enum class TruncatePolicy : std::uint8_t { Apply, Ignore, Fail };

// How the target session compresses the large (TOASTed) values it writes. A column's own COMPRESSION
// setting always wins; this only sets the session's default_toast_compression.
enum class ToastCompression {
  Auto,    // lz4 when the server was built with it and nobody set default_toast_compression (its source is
           // 'default': not the configuration file, the database, the role...); otherwise the server's
  Server,  // the server's default_toast_compression, untouched
  Lz4,     // lz4; a server without it keeps its own (warned at connect)
  Pglz,
};

// How rows are copied into the stage and the target.
enum class CopyFormat {
  Binary,  // COPY's binary format for a table whose every column has an encoder (sinks/copy_binary.h), text
           // for the others; a table falls back to text, until the process restarts, at its first value an
           // encoder refuses
  Text,    // always text
};

}  // namespace cdcsync
