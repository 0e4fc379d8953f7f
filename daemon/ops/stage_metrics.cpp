// StageMetrics: cdcsync_stage_seconds{stage}, fed by the pipeline's BatchObserver.
#include "daemon/ops/stage_metrics.h"

#include <algorithm>

namespace cdcsync {

using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::duration d) {
  return std::max(0.0, std::chrono::duration<double>(d).count());
}

}  // namespace

StageMetrics::StageMetrics(prometheus::Registry& registry, const prometheus::Labels& constant) {
  // 50 us to 6.5 s.
  for (double v = 0.00005; bounds_.size() < 18; v *= 2) bounds_.push_back(v);
  auto& family =
      prometheus::BuildHistogram()
          .Name("cdcsync_stage_seconds")
          .Help(
              "Where a source transaction's time goes from its source commit until it is visible in "
              "the target, by stage (receipt, of which source_sent; handoff, batch_wait, statements, "
              "progress_row, "
              "commit, commit_flushed; mirror, after it is visible); one observation per "
              "transaction.")
          .Labels(constant)
          .Register(registry);
  constexpr std::array<const char*, kStages> names{"receipt",    "source_sent",    "handoff",
                                                   "batch_wait", "statements",     "progress_row",
                                                   "commit",     "commit_flushed", "mirror"};
  for (std::size_t i = 0; i < kStages; ++i) {
    stages_[i].histogram = &family.Add({{"stage", names[i]}}, bounds_);
    stages_[i].counts.assign(bounds_.size() + 1, 0.0);
  }
}

void StageMetrics::add(Stage stage, double value, std::uint64_t times) {
  Pending& p = stages_[stage];
  const auto bucket =
      static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  p.counts[bucket] += static_cast<double>(times);
  p.sum += value * static_cast<double>(times);
  p.n += times;
}

void StageMetrics::record(const Batch& batch, const BatchTimings& timings, std::int64_t now_unix_us) {
  const auto now = Clock::now();
  std::uint64_t whole = 0;
  for (std::size_t i = 0; i < batch.transactions.size(); ++i) {
    const Transaction& t = batch.transactions[i];
    if (!t.last_chunk) continue;
    ++whole;
    if (timings.arrivals == nullptr) continue;
    const Arrival& a = (*timings.arrivals)[i];
    if (t.info.commit_time_us != 0) {
      const std::int64_t queued_us =
          now_unix_us - std::chrono::duration_cast<std::chrono::microseconds>(now - a.queued).count();
      add(kReceipt,
          std::max(0.0,
                   static_cast<double>(queued_us - pg_micros_to_unix_micros(t.info.commit_time_us)) / 1e6),
          1);
      if (t.info.sent_time_us != 0) {
        add(kSourceSent,
            std::max(0.0, static_cast<double>(t.info.sent_time_us - t.info.commit_time_us) / 1e6), 1);
      }
    }
    add(kHandoff, seconds(a.taken - a.queued), 1);
    add(kBatchWait, seconds(timings.started - a.taken), 1);
  }
  if (whole > 0 && timings.sink.committed) {
    add(kStatements, seconds(timings.sink.statements), whole);
    // A sink that writes its progress row in COMMIT's round trip has no time of its own for it.
    if (timings.sink.progress != Clock::duration{}) add(kProgressRow, seconds(timings.sink.progress), whole);
    add(timings.sink.waited_for_flush ? kCommitFlushed : kCommit, seconds(timings.sink.commit), whole);
  }
  if (whole > 0 && timings.mirror != Clock::duration{}) add(kMirror, seconds(timings.mirror), whole);
  for (Pending& p : stages_) {
    if (p.n == 0) continue;
    p.histogram->ObserveMultiple(p.counts, p.sum);
    std::fill(p.counts.begin(), p.counts.end(), 0.0);
    p.sum = 0;
    p.n = 0;
  }
}

}  // namespace cdcsync
