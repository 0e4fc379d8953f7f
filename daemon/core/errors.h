// Errors that end a pipeline session. Anything else that escapes a session is treated as transient:
// the session restarts from the durable position after a backoff.
#pragma once

#include <stdexcept>
#include <string>

#include "daemon/core/exit_codes.h"

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

}  // namespace cdcsync
