// `cdcsync tail`: a publication's changes as Debezium JSON, one event per line on stdout (like
// pg_recvlogical, for operators and pipes).
//
// Confirmation rule: the slot is confirmed up to a transaction's end LSN only after every line of that
// transaction has been written and flushed to stdout. A transaction cut short (the limit inside it, a closed
// pipe, a signal) is not confirmed, so the next tail on a persistent slot prints it again.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "decoders/lsn.h"

namespace cdcsync::tail {

struct Options {
  std::string source;
  std::vector<std::string> publications;
  std::string slot;
  bool create_slot = false;
  bool temporary = false;
  std::optional<Lsn> from;  // nullopt: the slot's confirmed position
  std::uint64_t limit = 0;  // change events; 0 = no limit
  double timeout_s = 0;     // seconds without a change event; 0 = none
  std::string format = "debezium-json";
  bool schemas = false;
  bool keys = false;
  bool transaction_metadata = false;
  bool tombstones = true;
  std::string skipped_operations = "t";  // Debezium's skipped.operations: of "c", "u", "d", "t"; "" for none
  std::string topic_prefix = "cdcsync";
  std::string password_file;
  int proto_version = 1;
  bool streaming = false;
  double status_interval_s = 10;
};

// A one-line error that the command prints as "cdcsync tail: <what>" and turns into exit 1.
class TailError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Streams until `stop`, the limit, the timeout or a closed stdout. Throws TailError, PgError, SpoolError.
void run(const Options& options, const std::atomic<bool>& stop);

}  // namespace cdcsync::tail
