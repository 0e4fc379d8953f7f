// Throughput of the order-DB sink on this machine: changes per second into the order database.
// CDCSYNC_SINK_BENCH_CHANGES (default 200000) and CDCSYNC_SINK_BENCH_BATCH (default 5000) size the run.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdlib>

#include "tests/integration/sinks/sink_fixture.h"

namespace cdcsync::test {
namespace {

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double run(ApplyMethod method, std::size_t total, std::size_t per_batch) {
  const std::string name = method == ApplyMethod::Copy ? "sink_bench_copy" : "sink_bench_pipe";
  SinkDatabase db(name);
  PostgresSink sink(Mapping({customer_mapping()}),
                    {.conninfo = db.target(), .pipeline = "bench", .method = method});
  sink.connect();
  const auto rel = customers_relation();
  // 3/4 inserts of new keys, 1/4 updates of earlier keys; 50 changes per source transaction.
  std::vector<Batch> batches;
  std::uint64_t lsn = 0x1'0000'0000;
  std::uint32_t xid = 1000;
  std::size_t made = 0;
  std::size_t next_id = 1;
  while (made < total) {
    Batch b;
    for (std::size_t in_batch = 0; in_batch < per_batch && made < total;) {
      Transaction t;
      t.info.xid = Xid{xid++};
      for (int i = 0; i < 50 && made < total; ++i, ++in_batch, ++made) {
        lsn += 0x40;
        const bool is_update = made % 4 == 3;
        const std::size_t id = is_update ? (made * 7919) % next_id + 1 : next_id++;
        const std::string s = std::to_string(id);
        t.changes.push_back(is_update
                                ? update(rel, lsn, tuple({s, "Customer " + s, "blocked", "gold", "e"}))
                                : insert(rel, lsn, tuple({s, "Customer " + s, "active", "silver", "e"})));
      }
      lsn += 0x40;
      t.info.final_lsn = Lsn{lsn};
      t.info.end_lsn = Lsn{lsn + 0x20};
      b.transactions.push_back(std::move(t));
    }
    batches.push_back(std::move(b));
  }
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  for (const auto& b : batches) sink.apply(b);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sink throughput: %s: %.2f s wall, %.2f s CPU in the sink's process\n",
              method == ApplyMethod::Copy ? "copy" : "pipeline", seconds, cpu_seconds() - cpu_start);
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), std::to_string(next_id - 1));
  return total / seconds;
}

TEST(SinkThroughput, MeasuresChangesPerSecondForBothMethods) {
  const auto total = env_size("CDCSYNC_SINK_BENCH_CHANGES", 200000);
  const auto per_batch = env_size("CDCSYNC_SINK_BENCH_BATCH", 5000);
  const double copy = run(ApplyMethod::Copy, total, per_batch);
  const double pipe = run(ApplyMethod::Pipeline, total, per_batch);
  std::printf("sink throughput: %zu changes, batches of %zu: copy %.0f changes/s, pipeline %.0f changes/s\n",
              total, per_batch, copy, pipe);
  RecordProperty("copy_changes_per_second", static_cast<int>(copy));
  RecordProperty("pipeline_changes_per_second", static_cast<int>(pipe));
  EXPECT_GT(copy, 0);
}

}  // namespace
}  // namespace cdcsync::test
