// What a log line is about, beside its message: the table and the LSN the calling thread works on, set for a
// scope by the core (daemon/ops/logging.h writes them as the JSON fields "table" and "lsn"). Thread-local:
// each thread's lines carry its own; a scope restores what was there before it.
#pragma once

#include <optional>
#include <string>

#include "decoders/lsn.h"

namespace cdcsync {

struct LogFields {
  std::string table;  // target table, schema.table; empty: none
  std::optional<Lsn> lsn;
};

// This thread's fields now.
const LogFields& log_fields();

class LogScope {
 public:
  // Sets the table (when not empty) and the LSN (when given) for the scope; the other keeps its value.
  LogScope(std::string table, std::optional<Lsn> lsn);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  LogFields saved_;
};

}  // namespace cdcsync
