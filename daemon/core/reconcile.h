// The three positions, reconciled before every streaming session: the slot's confirmed LSN on the source,
// the target's progress row (the authority) and the checkpoint mirror in Redis. Pure logic: every
// disagreement has one explicit outcome, and anything that could hide a gap is fatal.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "checkpoints/checkpoint_store.h"
#include "daemon/config/config.h"
#include "decoders/lsn.h"
#include "decoders/replication_stream.h"
#include "sinks/sink.h"

namespace cdcsync {

using config::SnapshotMode;  // snapshot.mode, as the config names it

struct StartupFacts {
  std::string slot_name;
  std::optional<SlotState> slot;        // nullopt: the slot does not exist
  std::optional<Progress> progress;     // nullopt: the pipeline never applied anything
  std::optional<Checkpoint> checkpoint; // nullopt: no checkpoint in Redis (or Redis unreachable)
  bool checkpoint_known = true;         // false when Redis could not be read
  bool create_slot = true;
  SnapshotMode snapshot = SnapshotMode::Initial;
  // The order DB holds the per-table state of an initial load that never completed (sinks/load_state.h).
  bool load_interrupted = false;
};

enum class StartAction {
  Stream,                   // the slot exists and agrees: stream from start_lsn
  CreateSlot,               // first run: create the slot (and copy existing rows when snapshot = initial)
  RecreateSlot,             // an initial snapshot never completed: drop the slot, create it, copy again
  ResumeSnapshot,           // a bulk load never completed and left its state: keep the slot, copy what is left
};

struct StartPlan {
  StartAction action = StartAction::Stream;
  Lsn start_lsn;                       // START_REPLICATION position (0/0 = the slot's confirmed position)
  Lsn confirmed;                       // what is durably applied or acknowledged
  std::optional<Lsn> repair_checkpoint;  // write this to Redis before streaming (it was behind or missing)
  std::vector<std::string> warnings;
};

// Throws FatalError (exit code kDataLossRisk) when the slot is lost, missing though progress exists, was
// confirmed past our own confirmations, or the target is behind the checkpoint.
StartPlan reconcile(const StartupFacts& facts);

}  // namespace cdcsync
