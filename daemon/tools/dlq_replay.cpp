// Dead-letter replay: one parked transaction back through the order-DB sink's guarded upserts.
#include "daemon/tools/dlq_replay.h"

#include "daemon/core/runner.h"

namespace cdcsync::dlq {
namespace {

PostgresSinkOptions replay_sink_options(const config::Config& config) {
  PostgresSinkOptions so = target_sink_options(config);
  so.applied_by = "cdcsync dlq replay";
  so.track_progress = false;
  return so;
}

}  // namespace

DeadLetterReplayer::DeadLetterReplayer(const config::Config& config)
    : mapping_(mapping_from_config(config)),
      replay_mapping_(mapping_),
      sink_(replay_mapping_.mapping(), replay_sink_options(config)) {}

void DeadLetterReplayer::apply(const DeadLetter& entry) {
  Batch b;
  b.transactions.push_back(dead_letter_transaction(entry, replay_mapping_));
  sink_.apply(b);
}

}  // namespace cdcsync::dlq
