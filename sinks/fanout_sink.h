// FanoutSink: one pipeline, several sinks (the order DB, the event archive, Kafka). Every batch goes to every
// sink in order; the pipeline confirms a position only once all of them made it durable.
//
// Each sink keeps its own progress and skips what it already has, so retrying a batch after one sink failed
// re-applies it only where it is missing. The primary's progress is the authority for what the pipeline
// ever applied; a secondary that is behind it (the daemon stopped between the two) pulls the reported
// progress back, so streaming restarts where the slowest sink stopped. A secondary that never applied
// anything (just enabled) starts from the present and does not pull it back.
#pragma once

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "sinks/sink.h"

namespace cdcsync {

class FanoutSink final : public Sink {
 public:
  FanoutSink(Sink& primary, std::vector<Sink*> secondaries)
      : primary_(primary), secondaries_(std::move(secondaries)) {}

  std::optional<Lsn> apply(const Batch& batch) override {
    std::optional<Lsn> durable = primary_.apply(batch);
    for (Sink* s : secondaries_) {
      const std::optional<Lsn> d = s->apply(batch);
      if (!d) {
        durable.reset();
      } else if (durable) {
        durable = std::min(*durable, *d);
      }
    }
    return durable;
  }

  // Secondaries return a durable position from every apply, so what waits for a flush is the primary's.
  std::optional<Lsn> sync() override { return primary_.sync(); }
  std::optional<Lsn> flushed() override { return primary_.flushed(); }
  ApplyTimings last_timings() const override { return primary_.last_timings(); }

  void abort() override {
    primary_.abort();
    for (Sink* s : secondaries_) s->abort();
  }

  std::optional<Progress> load_progress() override {
    std::optional<Progress> p = primary_.load_progress();
    if (!p) return p;
    for (Sink* s : secondaries_) {
      const std::optional<Progress> q = s->load_progress();
      if (q && q->end_lsn.valid() && q->end_lsn < p->end_lsn) {
        p->end_lsn = q->end_lsn;
        p->xid = q->xid;
        p->commit_time_us = q->commit_time_us;
      }
    }
    return p;
  }

  void record_ack(Lsn lsn) override {
    for (Sink* s : secondaries_) s->record_ack(lsn);
    primary_.record_ack(lsn);
  }

 private:
  Sink& primary_;
  std::vector<Sink*> secondaries_;
};

}  // namespace cdcsync
