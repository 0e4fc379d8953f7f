// Where the time of one change goes between its source commit and its visibility in the target, stage by
// stage: cdcsync_stage_seconds{stage}, one observation per source transaction for every stage (a batch's
// stages count once for each transaction it carried), so a stage's p50 is the one a change sees.
//
//   receipt        source commit -> the receiver queued it (the source's WAL flush, walsender, network,
//                  decode)
//   source_sent    source commit -> the walsender sent its COMMIT (part of receipt, both on the source's
//                  clock: the source's own share of it)
//   handoff        queued -> the applier took it from the queue (its wake-up, or the batch before it)
//   batch_wait     taken from the queue -> its batch's apply began
//   statements     the batch's changes, from BEGIN on
//   progress_row   writing the progress row
//   commit         COMMIT, without waiting for the WAL flush (commit_flushed: waiting for it)
//   mirror         mirroring the position the batch made durable to the checkpoint store (after visibility;
//                  it holds the next batch)
#pragma once

#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <vector>

#include "daemon/core/pipeline.h"

namespace cdcsync {

class StageMetrics {
 public:
  StageMetrics(prometheus::Registry& registry, const prometheus::Labels& constant);

  // One applied batch; `now_unix_us`: this host's wall clock now (receipt is measured against the source's
  // commit time, same host or synchronised clocks).
  void record(const Batch& batch, const BatchTimings& timings, std::int64_t now_unix_us);

 private:
  enum Stage : std::size_t {
    kReceipt,
    kSourceSent,
    kHandoff,
    kBatchWait,
    kStatements,
    kProgressRow,
    kCommit,
    kCommitFlushed,
    kMirror,
    kStages
  };
  // One stage's observations of a batch, per bucket (not cumulative), handed to its histogram at once.
  struct Pending {
    prometheus::Histogram* histogram = nullptr;
    std::vector<double> counts;
    double sum = 0;
    std::uint64_t n = 0;
  };
  void add(Stage stage, double seconds, std::uint64_t times);

  prometheus::Histogram::BucketBoundaries bounds_;
  std::array<Pending, kStages> stages_;
};

}  // namespace cdcsync
