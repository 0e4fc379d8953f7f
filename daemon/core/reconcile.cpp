// Reconcile: the slot, the target's progress row and the checkpoint mirror, agreed on before streaming.
#include "daemon/core/reconcile.h"

#include <algorithm>

#include "daemon/core/errors.h"

namespace cdcsync {

StartPlan reconcile(const StartupFacts& f) {
  StartPlan plan;
  const Lsn ours = f.progress ? std::max(f.progress->end_lsn, f.progress->acked_lsn) : Lsn{};

  if (!f.slot) {
    if (f.progress) {
      throw FatalError("slot_lost", exit_code::kDataLossRisk,
                       "replication slot \"" + f.slot_name + "\" does not exist, but the target has applied up to " +
                           ours.str() +
                           ": changes since then are gone. Re-create the slot and resync every table "
                           "(cdcsync resync), or restore the slot");
    }
    if (!f.create_slot) {
      throw FatalError("slot_missing", exit_code::kError,
                       "replication slot \"" + f.slot_name +
                           "\" does not exist and source.create_slot is false: create it, or set create_slot = true");
    }
    plan.action = StartAction::CreateSlot;
    return plan;
  }

  const SlotState& slot = *f.slot;
  if (slot.wal_status == "lost") {
    throw FatalError("slot_lost", exit_code::kDataLossRisk,
                     "replication slot \"" + f.slot_name +
                         "\" was invalidated (wal_status = lost, max_slot_wal_keep_size exceeded): the WAL it "
                         "needed is gone. Re-create the slot and resync every table (cdcsync resync)");
  }
  if (slot.plugin != "pgoutput") {
    throw FatalError("slot_plugin", exit_code::kError,
                     "replication slot \"" + f.slot_name + "\" uses output plugin \"" + slot.plugin +
                         "\", cdcsync needs pgoutput");
  }

  if (!f.progress) {
    if (f.snapshot == SnapshotMode::Never) {
      // First run on an existing slot without a copy: stream from wherever the slot is.
      plan.action = StartAction::Stream;
      plan.confirmed = slot.confirmed_flush_lsn;
      return plan;
    }
    if (!f.create_slot) {
      throw FatalError("slot_without_snapshot", exit_code::kError,
                       "replication slot \"" + f.slot_name +
                           "\" exists but this pipeline never applied anything, and an initial snapshot needs a "
                           "slot cdcsync creates itself (its exported snapshot): set snapshot.mode = \"never\" "
                           "or drop the slot and set source.create_slot = true");
    }
    // The slot exists but no initial copy ever completed (a crash during the snapshot, whose exported
    // snapshot died with it). Nothing was confirmed past the slot's start: the tables the bulk loader
    // finished are kept and the stream starts there (daemon/core/initial_load.h); without its state,
    // starting over is safe.
    if (f.load_interrupted) {
      plan.action = StartAction::ResumeSnapshot;
      plan.warnings.push_back("slot \"" + f.slot_name +
                              "\" exists but the initial snapshot never completed: resuming it (tables "
                              "already copied are kept, the others are copied again)");
      return plan;
    }
    plan.action = StartAction::RecreateSlot;
    plan.warnings.push_back("slot \"" + f.slot_name +
                            "\" exists but the initial snapshot never completed: re-creating it and copying again");
    return plan;
  }

  auto target_behind_checkpoint = [&](const Checkpoint& checkpoint) {
    return FatalError("target_behind_checkpoint", exit_code::kDataLossRisk,
                      "the order DB has applied up to " + ours.str() + " but the checkpoint says " +
                          checkpoint.lsn.str() +
                          ": the order DB went back in time (restored from a backup?). Replay the archived "
                          "changes: cdcsync replay --config FILE --from-lsn " +
                          ours.str());
  };
  // A restored target is behind the slot too, which alone would read as a gap; a checkpoint at or past the
  // slot says the slot is ours and the target is what went back.
  if (f.checkpoint_known && f.checkpoint && f.checkpoint->lsn > ours &&
      slot.confirmed_flush_lsn <= f.checkpoint->lsn) {
    throw target_behind_checkpoint(*f.checkpoint);
  }

  if (slot.confirmed_flush_lsn > ours) {
    throw FatalError("gap_detected", exit_code::kDataLossRisk,
                     "replication slot \"" + f.slot_name + "\" was confirmed up to " +
                         slot.confirmed_flush_lsn.str() + ", past the last position this pipeline confirmed (" +
                         ours.str() +
                         "): the changes in between would be skipped silently. Was the slot re-created or used by "
                         "another consumer? Resync the tables (cdcsync resync) to recover");
  }

  plan.action = StartAction::Stream;
  plan.confirmed = ours;
  plan.start_lsn = f.progress->end_lsn;

  if (f.checkpoint_known) {
    if (!f.checkpoint) {
      plan.repair_checkpoint = plan.confirmed;
      plan.warnings.push_back("no checkpoint in Redis for this pipeline: restoring it from the target's progress (" +
                              plan.confirmed.str() + ")");
    } else if (f.checkpoint->lsn > plan.confirmed) {
      throw target_behind_checkpoint(*f.checkpoint);
    } else if (f.checkpoint->lsn < plan.confirmed) {
      plan.repair_checkpoint = plan.confirmed;
      plan.warnings.push_back("the checkpoint in Redis (" + f.checkpoint->lsn.str() + ") is behind the target (" +
                              plan.confirmed.str() + "): lost writes in Redis, repairing it from the target");
    }
  }
  return plan;
}

}  // namespace cdcsync
