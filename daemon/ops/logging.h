// Log output: text for people ("2024-05-01T12:00:00.123+0000 info message"), or one JSON object per line for
// collectors ({"ts":"...","level":"info","logger":"cdcsync","msg":"...","pipeline":"orders",
// "table":"ref.customer","lsn":"0/16B3748","tid":2}: "pipeline" once the config is read, "table" and "lsn"
// where the line is about one, from daemon/core/log_context.h). Either way on
// stderr (journald adds its own fields). Messages never carry row values or secrets: that is the callers'
// rule; this layer only guarantees that whatever a message holds stays one valid JSON line.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string>
#include <string_view>

#include "daemon/config/config.h"

namespace cdcsync::logging {

// Creates the stderr logger "cdcsync" as spdlog's default, in text format at `level` (trace..error).
void setup(std::string_view level);
// Switches the default logger's format (and, when given, its level) after the config is read.
void set_format(config::LogFormat format);
void set_level(std::string_view level);
// The pipeline's name, on every JSON line from now on. Call once, before the threads that log start.
void set_pipeline(std::string_view name);

// A status line kept below the log on stderr (a progress bar on a terminal): every log line is written above
// it. end_status_line: leave it as the last line (`keep`) or erase it; the log goes on without one.
void set_status_line(std::string_view line);
void end_status_line(bool keep);

// The JSON-lines formatter (exposed for tests).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Appends `text` as the inside of a JSON string (RFC 8259): quote, backslash and control characters
// escaped, U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
void append_json_escaped(std::string_view text, spdlog::memory_buf_t& dest);

}  // namespace cdcsync::logging
