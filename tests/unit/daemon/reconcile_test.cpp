#include "daemon/core/reconcile.h"

#include <gtest/gtest.h>

#include "daemon/core/errors.h"

namespace cdcsync {
namespace {

Lsn L(const char* text) { return *Lsn::parse(text); }

SlotState slot_at(const char* confirmed, const char* wal_status = "reserved") {
  SlotState s;
  s.name = "s";
  s.plugin = "pgoutput";
  s.confirmed_flush_lsn = L(confirmed);
  s.restart_lsn = L(confirmed);
  s.wal_status = wal_status;
  return s;
}

Progress progress_at(const char* end, const char* acked) {
  Progress p;
  p.end_lsn = L(end);
  p.acked_lsn = L(acked);
  return p;
}

std::string fatal_reason(const StartupFacts& f) {
  try {
    reconcile(f);
  } catch (const FatalError& e) {
    return e.reason();
  }
  return "none";
}

TEST(Reconcile, FirstRunCreatesTheSlot) {
  StartupFacts f{.slot_name = "s"};
  EXPECT_EQ(reconcile(f).action, StartAction::CreateSlot);
}

TEST(Reconcile, MissingSlotWithoutCreateSlotIsAConfigError) {
  StartupFacts f{.slot_name = "s", .create_slot = false};
  EXPECT_EQ(fatal_reason(f), "slot_missing");
}

TEST(Reconcile, MissingSlotAfterProgressIsADataLossRisk) {
  StartupFacts f{.slot_name = "s", .progress = progress_at("0/100", "0/100")};
  EXPECT_EQ(fatal_reason(f), "slot_lost");
}

TEST(Reconcile, InvalidatedSlotIsFatal) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100", "lost"), .progress = progress_at("0/100", "0/100")};
  EXPECT_EQ(fatal_reason(f), "slot_lost");
}

TEST(Reconcile, SlotConfirmedPastOurConfirmationsIsAGap) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/300"), .progress = progress_at("0/100", "0/200")};
  EXPECT_EQ(fatal_reason(f), "gap_detected");
}

TEST(Reconcile, SlotBehindOurProgressStreamsFromTheProgress) {
  // After an immediate shutdown the slot may rewind: the sink skips what it already applied.
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/50"), .progress = progress_at("0/100", "0/180"),
                 .checkpoint = Checkpoint{L("0/180"), 0, "x"}};
  const auto plan = reconcile(f);
  EXPECT_EQ(plan.action, StartAction::Stream);
  EXPECT_EQ(plan.start_lsn, L("0/100"));
  EXPECT_EQ(plan.confirmed, L("0/180"));
  EXPECT_FALSE(plan.repair_checkpoint);
}

TEST(Reconcile, RedisBehindTheTargetIsRepairedWithAWarning) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .progress = progress_at("0/200", "0/200"),
                 .checkpoint = Checkpoint{L("0/100"), 0, "x"}};
  const auto plan = reconcile(f);
  ASSERT_TRUE(plan.repair_checkpoint);
  EXPECT_EQ(*plan.repair_checkpoint, L("0/200"));
  EXPECT_EQ(plan.warnings.size(), 1u);
}

TEST(Reconcile, MissingRedisCheckpointIsRestoredFromTheTarget) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .progress = progress_at("0/200", "0/200")};
  const auto plan = reconcile(f);
  ASSERT_TRUE(plan.repair_checkpoint);
  EXPECT_EQ(*plan.repair_checkpoint, L("0/200"));
}

TEST(Reconcile, RedisAheadOfTheTargetMeansTheTargetWentBackInTime) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .progress = progress_at("0/200", "0/200"),
                 .checkpoint = Checkpoint{L("0/900"), 0, "x"}};
  EXPECT_EQ(fatal_reason(f), "target_behind_checkpoint");
  try {
    reconcile(f);
  } catch (const FatalError& e) {
    EXPECT_NE(std::string(e.what()).find("cdcsync replay --config FILE --from-lsn 0/200"), std::string::npos);
    EXPECT_EQ(e.exit_code(), exit_code::kDataLossRisk);
  }
}

TEST(Reconcile, UnreadableRedisDoesNotBlockStreaming) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .progress = progress_at("0/200", "0/200"),
                 .checkpoint_known = false};
  const auto plan = reconcile(f);
  EXPECT_EQ(plan.action, StartAction::Stream);
  EXPECT_FALSE(plan.repair_checkpoint);
}

TEST(Reconcile, SnapshotThatNeverCompletedRecreatesTheSlot) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100")};
  EXPECT_EQ(reconcile(f).action, StartAction::RecreateSlot);
}

TEST(Reconcile, ABulkLoadThatNeverCompletedIsResumedOnTheSameSlot) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .load_interrupted = true};
  const auto plan = reconcile(f);
  EXPECT_EQ(plan.action, StartAction::ResumeSnapshot);
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_NE(plan.warnings[0].find("resuming"), std::string::npos);
}

TEST(Reconcile, ALoadStateDoesNotMatterOnceTheProgressRowExists) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .progress = progress_at("0/100", "0/100"),
                 .load_interrupted = true};
  EXPECT_EQ(reconcile(f).action, StartAction::Stream);
}

TEST(Reconcile, ExistingSlotWithoutSnapshotStreamsFromTheSlot) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .snapshot = SnapshotMode::Never};
  const auto plan = reconcile(f);
  EXPECT_EQ(plan.action, StartAction::Stream);
  EXPECT_EQ(plan.confirmed, L("0/100"));
}

TEST(Reconcile, ForeignSlotWithInitialSnapshotIsRefused) {
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/100"), .create_slot = false};
  EXPECT_EQ(fatal_reason(f), "slot_without_snapshot");
}

TEST(Reconcile, SlotOfAnotherPluginIsRefused) {
  auto slot = slot_at("0/100");
  slot.plugin = "test_decoding";
  StartupFacts f{.slot_name = "s", .slot = slot, .progress = progress_at("0/100", "0/100")};
  EXPECT_EQ(fatal_reason(f), "slot_plugin");
}

}  // namespace
}  // namespace cdcsync

namespace cdcsync {
namespace {

TEST(Reconcile, ARestoredTargetIsReportedAsBehindTheCheckpointNotAsAGap) {
  // The slot and Redis agree; only the target went back: replay, not resync.
  StartupFacts f{.slot_name = "s", .slot = slot_at("0/500"), .progress = progress_at("0/1", "0/1"),
                 .checkpoint = Checkpoint{L("0/500"), 0, "x"}};
  EXPECT_EQ(fatal_reason(f), "target_behind_checkpoint");
}

}  // namespace
}  // namespace cdcsync
