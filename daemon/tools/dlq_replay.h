// `cdcsync dlq replay`: re-applies a dead-lettered source transaction (daemon/core/dead_letter_stream.h) to
// the order DB through the same LSN-guarded upserts, without touching the progress row, so it runs next to a
// live daemon (a row the daemon has written since is newer and wins).
#pragma once

#include "daemon/config/config.h"
#include "daemon/core/dead_letter_stream.h"
#include "sinks/archive_codec.h"
#include "sinks/mapping.h"
#include "sinks/postgres_sink.h"

namespace cdcsync::dlq {

class DeadLetterReplayer {
 public:
  explicit DeadLetterReplayer(const config::Config& config);

  // Applies one entry in its own target transaction. Throws PermanentError (the target still refuses it)
  // or ArchiveFormatError (the entry cannot be read).
  void apply(const DeadLetter& entry);

 private:
  Mapping mapping_;
  ArchiveReplayMapping replay_mapping_;
  PostgresSink sink_;
};

}  // namespace cdcsync::dlq
