// Cost of the metrics on the applier's hot path: Probe::batch_applied (per-run counter adds, one latency
// observation per transaction, the batch histograms), one Kafka latency observation through the probe's
// observer, and the bare counter and histogram updates underneath.
//   cmake --build build --target metrics_bench && build/bench/metrics_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/core/pipeline.h"
#include "daemon/ops/probe.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"

namespace {

using namespace cdcsync;
using namespace std::chrono_literals;

RelationPtr relation(std::string name, std::uint32_t oid) {
  auto r = std::make_shared<RelationDef>();
  r->id = RelationId{oid};
  r->schema = "public";
  r->name = std::move(name);
  r->columns.push_back(ColumnDef{"id", 20, -1, true});
  return r;
}

Change change(ChangeOp op, const RelationPtr& r) {
  Change c;
  c.op = op;
  c.relation = r;
  return c;
}

std::int64_t pg_now_micros() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count() - kPgEpochUnixMicros;
}

// `transactions` transactions of `changes` changes each, alternating between two tables every `run` changes.
Batch make_batch(int transactions, int changes, int run) {
  const auto customers = relation("customers", 16400);
  const auto loyalty = relation("loyalty_accounts", 16410);
  Batch b;
  for (int t = 0; t < transactions; ++t) {
    Transaction txn;
    txn.info.commit_time_us = pg_now_micros() - 2000;
    for (int c = 0; c < changes; ++c) {
      const bool first_table = (c / run) % 2 == 0;
      txn.changes.push_back(
          change(first_table ? ChangeOp::Update : ChangeOp::Insert, first_table ? customers : loyalty));
    }
    b.transactions.push_back(std::move(txn));
  }
  return b;
}

ProbeOptions probe_options() {
  ProbeOptions o;
  o.pipeline = "bench";
  o.version = "0";
  o.slot = "bench";
  return o;
}

// args: transactions per batch, changes per transaction, changes per run of one table and op.
void BM_ProbeBatchApplied(benchmark::State& state) {
  PipelineStatus status;
  Probe probe(probe_options(), status);
  const Batch batch = make_batch(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)),
                                 static_cast<int>(state.range(2)));
  probe.batch_applied(batch, 3ms);  // the counters exist and are cached, as in a running daemon
  for (auto _ : state) probe.batch_applied(batch, 3ms);
  state.counters["changes/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * state.range(0) * state.range(1)), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ProbeBatchApplied)
    ->ArgNames({"txns", "changes", "run"})
    ->Args({1, 1, 1})        // one small transaction
    ->Args({100, 4, 2})      // OLTP: short transactions, two tables interleaved
    ->Args({1, 5000, 5000})  // a bulk-load chunk: one run
    ->Args({1, 5000, 1});    // worst case: the table changes on every change

void BM_ProbeKafkaLatencyObservation(benchmark::State& state) {
  PipelineStatus status;
  Probe probe(probe_options(), status);
  const auto observer = probe.kafka_observer();
  std::chrono::microseconds us{1};
  for (auto _ : state) {
    observer.record_delivered(us);
    us = us < 100'000us ? us * 3 : 1us;
  }
}
BENCHMARK(BM_ProbeKafkaLatencyObservation);

void BM_CounterIncrement(benchmark::State& state) {
  prometheus::Counter counter;
  for (auto _ : state) counter.Increment(3.0);
  benchmark::DoNotOptimize(counter.Value());
}
BENCHMARK(BM_CounterIncrement);

void BM_HistogramObserve(benchmark::State& state) {
  prometheus::Histogram::BucketBoundaries bounds;
  for (double v = 0.001; bounds.size() < 20; v *= 2) bounds.push_back(v);
  prometheus::Histogram histogram(bounds);
  double v = 0.0001;
  for (auto _ : state) {
    histogram.Observe(v);
    v = v < 600 ? v * 3 : 0.0001;
  }
}
BENCHMARK(BM_HistogramObserve);

}  // namespace

BENCHMARK_MAIN();
