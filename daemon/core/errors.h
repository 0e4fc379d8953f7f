// What can end a pipeline session, and the one place that decides what each error means (classify): retry
// with backoff, stand by, or stop with which exit code. docs/reliability.md has the table, with what systemd
// does for each exit code.
#pragma once

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "daemon/core/exit_codes.h"
#include "decoders/lsn.h"

namespace cdcsync {

// Stops the daemon: retrying cannot help. `reason` is a short stable label (metric label, log key).
class FatalError : public std::runtime_error {
 public:
  FatalError(std::string reason, int exit_code, const std::string& what)
      : std::runtime_error(what), reason_(std::move(reason)), exit_code_(exit_code) {}
  const std::string& reason() const { return reason_; }
  int exit_code() const { return exit_code_; }

 private:
  std::string reason_;
  int exit_code_;
};

// Another instance holds the pipeline's lease or the target's writer lock: stand by and try again.
class LeaseLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A message of the source stream that cannot be decoded, or that breaks the protocol's rules. Never retried:
// the slot would send the same bytes again. `lsn` is the WAL position of the message (nothing past it was
// confirmed), `bytes` the message as received, for a bug report: it may hold row values, so it is
// written only to a private file (bug_report.h), never logged.
class SourceStreamError : public std::runtime_error {
 public:
  SourceStreamError(std::string kind, Lsn lsn, std::string bytes, const std::string& what)
      : std::runtime_error(what), kind_(std::move(kind)), lsn_(lsn), bytes_(std::move(bytes)) {}
  const std::string& kind() const { return kind_; }  // malformed_message, protocol_violation
  Lsn lsn() const { return lsn_; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string kind_;
  Lsn lsn_;
  std::string bytes_;
};

enum class ErrorClass : std::uint8_t {
  Transient,      // a server unreachable or busy, a listed SQLSTATE: the session restarts after a backoff
  Standby,        // another instance holds the lease, the writer lock or the slot: wait and try again
  Config,         // exit 1: a setting, a credential or a permission only an operator can fix
  DataLossRisk,   // exit 3: slot lost, a gap, the target behind the checkpoint
  TargetRefused,  // exit 4: a change the target refuses (constraint, permission, type, a dropped column)
  SourceStream,   // exit 5: a protocol or decode error in the source stream
  Internal,       // exit 6: anything unexpected (a bug, out of memory)
};

struct Classified {
  ErrorClass error_class = ErrorClass::Internal;
  int exit_code = exit_code::kInternal;  // kOk for Transient and Standby: the daemon goes on
  // A stop: cdcsync_fatal{reason}. A retry: the errors metric's kind (a SQLSTATE, "connection", ...).
  std::string reason;
  std::string component;  // a retry: the server it came from (source, target, checkpoint, kafka)
  std::string message;    // one line for the log: what happened and where; never row values
};

// The one classification of everything that can escape a session.
Classified classify(const std::exception_ptr& error);

}  // namespace cdcsync
