// The probe turns what the pipeline observes into metrics: fed batches, polls and hooks by hand, with a fake
// clock, and read back through Collect() as a scrape would.
#include "daemon/ops/probe.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include <prometheus/text_serializer.h>

#include "tests/harness/eventually.h"
#include "tests/unit/probe/alloc_counter.h"

namespace cdcsync {
namespace {

using namespace std::chrono_literals;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Clock = std::chrono::system_clock;

RelationPtr relation(std::string schema, std::string name, std::uint32_t oid) {
  auto r = std::make_shared<RelationDef>();
  r->id = RelationId{oid};
  r->schema = std::move(schema);
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

// PostgreSQL-epoch microseconds of a wall-clock time.
std::int64_t pg_time(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() -
         kPgEpochUnixMicros;
}

// The value of label `name` of one series; nullopt without it.
std::optional<std::string> label_of(const ClientMetric& m, std::string_view name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return std::nullopt;
}

double value_of(const MetricFamily& f, const ClientMetric& m) {
  switch (f.type) {
    case MetricType::Counter:
      return m.counter.value;
    case MetricType::Histogram:
      return static_cast<double>(m.histogram.sample_count);
    default:
      return m.gauge.value;
  }
}

Transaction txn(std::vector<Change> changes, Clock::time_point commit, bool last_chunk = true) {
  Transaction t;
  t.info.commit_time_us = pg_time(commit);
  t.changes = std::move(changes);
  t.last_chunk = last_chunk;
  return t;
}

class ProbeTest : public ::testing::Test {
 protected:
  ProbeTest() : probe_(options(), status_) {}

  ProbeOptions options() {
    ProbeOptions o;
    o.pipeline = "customers-to-orders";
    o.version = "9.9.9";
    o.revision = "abc1234";
    o.unit = "cdcsync@orders.service";
    o.slot = "slot1";
    o.now = [this] { return now_; };
    return o;
  }

  // The value of one series: family `name` whose labels include every pair of `labels`.
  std::optional<double> value(const std::string& name, const prometheus::Labels& labels = {}) const {
    for (const MetricFamily& f : probe_.Collect()) {
      if (f.name != name) continue;
      for (const auto& m : f.metric) {
        bool match = true;
        for (const auto& [k, v] : labels) match = match && label_of(m, k) == v;
        if (match) return value_of(f, m);
      }
    }
    return std::nullopt;
  }
  std::optional<ClientMetric::Histogram> histogram(const std::string& name) const {
    for (const MetricFamily& f : probe_.Collect()) {
      if (f.name == name && !f.metric.empty()) return f.metric.front().histogram;
    }
    return std::nullopt;
  }
  // Cumulative count of the bucket with upper bound `le`.
  static std::uint64_t bucket(const ClientMetric::Histogram& m, double le) {
    for (const auto& b : m.bucket) {
      if (b.upper_bound == le) return b.cumulative_count;
    }
    ADD_FAILURE() << "no bucket le=" << le;
    return 0;
  }

  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(24 * 365 * 54);
  PipelineStatus status_;
  Probe probe_;
};

TEST_F(ProbeTest, CountsAppliedChangesPerTableAndOp) {
  auto customers = relation("public", "customers", 16400);
  auto loyalty = relation("public", "loyalty_accounts", 16410);
  Batch b;
  b.transactions.push_back(txn({change(ChangeOp::Insert, customers), change(ChangeOp::Insert, customers),
                                change(ChangeOp::Update, customers), change(ChangeOp::Delete, loyalty)},
                               now_));
  probe_.batch_applied(b, 2ms);
  probe_.batch_applied(b, 2ms);

  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.customers"}, {"op", "insert"}}), 4);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.customers"}, {"op", "update"}}), 2);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.loyalty_accounts"}, {"op", "delete"}}),
            2);
  EXPECT_FALSE(
      value("cdcsync_change_events_total", {{"table", "public.loyalty_accounts"}, {"op", "insert"}}));
  EXPECT_EQ(value("cdcsync_transactions_total"), 2);
  EXPECT_EQ(value("cdcsync_batches_total"), 2);
}

TEST_F(ProbeTest, CountsRunsOfOneTableAcrossTransactionsAndWhereTablesInterleave) {
  auto customers = relation("public", "customers", 16400);
  auto loyalty = relation("public", "loyalty_accounts", 16410);
  Change message;
  message.op = ChangeOp::Message;
  Batch b;
  b.transactions.push_back(
      txn({change(ChangeOp::Insert, customers), change(ChangeOp::Insert, customers)}, now_));
  b.transactions.push_back(
      txn({change(ChangeOp::Insert, customers), message, change(ChangeOp::Insert, customers),
           change(ChangeOp::Insert, loyalty), change(ChangeOp::Insert, customers), message},
          now_));
  // The same table under a second RelationDef (a Relation message in between) continues its count.
  b.transactions.push_back(txn({change(ChangeOp::Insert, relation("public", "customers", 16400))}, now_));
  probe_.batch_applied(b, 1ms);

  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.customers"}, {"op", "insert"}}), 6);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.loyalty_accounts"}, {"op", "insert"}}),
            1);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "(none)"}, {"op", "message"}}), 2);
  EXPECT_EQ(value("cdcsync_transactions_total"), 3);
}

TEST_F(ProbeTest, CountsEveryTruncatedTableAndLogicalMessagesWithoutATable) {
  auto a = relation("public", "a", 1);
  auto b = relation("public", "b", 2);
  Change truncate;
  truncate.op = ChangeOp::Truncate;
  truncate.truncated = {a, b};
  Change message;
  message.op = ChangeOp::Message;
  message.message_prefix = "heartbeat";
  Batch batch;
  batch.transactions.push_back(txn({truncate, message}, now_));
  probe_.batch_applied(batch, 1ms);

  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.a"}, {"op", "truncate"}}), 1);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.b"}, {"op", "truncate"}}), 1);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "(none)"}, {"op", "message"}}), 1);
}

TEST_F(ProbeTest, ARenamedTableCountsUnderItsNewName) {
  auto before = relation("public", "clients", 42);
  auto after = relation("public", "customers", 42);
  Batch b1;
  b1.transactions.push_back(txn({change(ChangeOp::Insert, before)}, now_));
  Batch b2;
  b2.transactions.push_back(txn({change(ChangeOp::Insert, after)}, now_));
  probe_.batch_applied(b1, 1ms);
  probe_.batch_applied(b2, 1ms);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.clients"}, {"op", "insert"}}), 1);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.customers"}, {"op", "insert"}}), 1);
}

TEST_F(ProbeTest, CountsATransactionOnceWhenItArrivesInChunks) {
  auto r = relation("public", "customers", 7);
  Batch first;
  first.transactions.push_back(txn({change(ChangeOp::Insert, r), change(ChangeOp::Insert, r)}, now_, false));
  Batch last;
  last.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_, true));
  last.transactions.back().first_chunk = false;
  probe_.batch_applied(first, 1ms);
  probe_.batch_applied(last, 1ms);
  EXPECT_EQ(value("cdcsync_transactions_total"), 1);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"op", "insert"}}), 3);
  EXPECT_EQ(value("cdcsync_end_to_end_latency_seconds"), 1);  // observed once, for the whole transaction
}

TEST_F(ProbeTest, ObservesBatchSizeApplyTimeAndEndToEndLatencyInTheRightBuckets) {
  auto r = relation("public", "customers", 7);
  std::vector<Change> rows(120, change(ChangeOp::Update, r));
  Batch b;
  b.transactions.push_back(txn(rows, now_ - 3s));  // committed 3 s before it was applied
  probe_.batch_applied(b, 20ms);

  const auto size = histogram("cdcsync_batch_rows");
  ASSERT_TRUE(size);
  EXPECT_EQ(size->sample_count, 1u);
  EXPECT_EQ(size->sample_sum, 120);
  EXPECT_EQ(bucket(*size, 100), 0u);
  EXPECT_EQ(bucket(*size, 500), 1u);

  const auto apply = histogram("cdcsync_apply_duration_seconds");
  ASSERT_TRUE(apply);
  EXPECT_NEAR(apply->sample_sum, 0.020, 1e-9);
  EXPECT_EQ(bucket(*apply, 0.016), 0u);
  EXPECT_EQ(bucket(*apply, 0.032), 1u);

  const auto latency = histogram("cdcsync_end_to_end_latency_seconds");
  ASSERT_TRUE(latency);
  EXPECT_NEAR(latency->sample_sum, 3.0, 1e-6);
  EXPECT_EQ(bucket(*latency, 2.048), 0u);
  EXPECT_EQ(bucket(*latency, 4.096), 1u);
}

// Where a batch's time went: every stage observed once per whole transaction of the batch.
TEST_F(ProbeTest, ObservesEachStageOncePerTransaction) {
  using namespace std::chrono_literals;
  auto r = relation("public", "customers", 7);
  const auto steady = std::chrono::steady_clock::now();
  Batch b;
  std::vector<Arrival> arrivals;
  for (int i = 0; i < 2; ++i) {
    b.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_ - 10ms));
    b.transactions.back().info.sent_time_us = b.transactions.back().info.commit_time_us + 1500;
    arrivals.push_back({steady - 4ms, steady - 3ms});
  }
  BatchTimings t;
  t.arrivals = &arrivals;
  t.started = steady - 2ms;
  t.apply = 2ms;
  t.sink.statements = 1ms;
  t.sink.commit = 500us;
  t.sink.committed = true;
  t.mirror = 250us;
  probe_.batch_applied(b, t);
  const auto stage = [&](const std::string& name) {
    for (const MetricFamily& f : probe_.Collect()) {
      if (f.name != "cdcsync_stage_seconds") continue;
      for (const auto& m : f.metric) {
        if (label_of(m, "stage") == name) return m.histogram;
      }
    }
    ADD_FAILURE() << "no stage " << name;
    return ClientMetric::Histogram{};
  };
  EXPECT_EQ(stage("statements").sample_count, 2u);
  EXPECT_NEAR(stage("statements").sample_sum, 0.002, 1e-9);
  EXPECT_EQ(stage("commit").sample_count, 2u);
  EXPECT_EQ(stage("commit_flushed").sample_count, 0u);
  EXPECT_EQ(stage("progress_row").sample_count, 0u) << "a progress row written with the COMMIT has no time";
  EXPECT_NEAR(stage("mirror").sample_sum, 0.0005, 1e-9);
  EXPECT_NEAR(stage("handoff").sample_sum, 0.002, 1e-6);
  EXPECT_NEAR(stage("batch_wait").sample_sum, 0.002, 1e-6);
  EXPECT_EQ(stage("receipt").sample_count, 2u);
  EXPECT_NEAR(stage("receipt").sample_sum / 2, 0.006, 0.002);
  EXPECT_EQ(stage("source_sent").sample_count, 2u);
  EXPECT_NEAR(stage("source_sent").sample_sum, 0.003, 1e-9) << "the walsender's send time, less the commit's";
}

TEST_F(ProbeTest, ObservesEveryTransactionsLatencyWhenABatchHoldsMany) {
  auto r = relation("public", "customers", 7);
  Batch b;
  b.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_ - 500ms));
  b.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_ - 3s));
  b.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_ - 3s));
  probe_.batch_applied(b, 1ms);
  auto latency = histogram("cdcsync_end_to_end_latency_seconds");
  ASSERT_TRUE(latency);
  EXPECT_EQ(latency->sample_count, 3u);
  EXPECT_NEAR(latency->sample_sum, 6.5, 1e-6);
  EXPECT_EQ(bucket(*latency, 0.256), 0u);
  EXPECT_EQ(bucket(*latency, 0.512), 1u);
  EXPECT_EQ(bucket(*latency, 2.048), 1u);
  EXPECT_EQ(bucket(*latency, 4.096), 3u);

  Batch caught_up;  // the next batch starts from empty buckets
  caught_up.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_));
  caught_up.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_));
  probe_.batch_applied(caught_up, 1ms);
  latency = histogram("cdcsync_end_to_end_latency_seconds");
  EXPECT_EQ(latency->sample_count, 5u);
  EXPECT_EQ(bucket(*latency, 0.001), 2u);
  EXPECT_EQ(bucket(*latency, 0.512), 3u);
  EXPECT_EQ(bucket(*latency, 4.096), 5u);
  EXPECT_EQ(value("cdcsync_transactions_total"), 5);
}

TEST_F(ProbeTest, TheBatchHotPathAllocatesNothingOnceEveryTableAndOpWasSeen) {
  auto customers = relation("public", "customers", 16400);
  auto loyalty = relation("public", "loyalty_accounts", 16410);
  Batch b;
  b.transactions.push_back(txn({change(ChangeOp::Insert, customers), change(ChangeOp::Update, customers),
                                change(ChangeOp::Delete, loyalty)},
                               now_ - 10ms));
  b.transactions.push_back(txn({change(ChangeOp::Delete, loyalty)}, now_ - 5ms));  // latencies of two
  probe_.batch_applied(b, 1ms);                                                    // warms the cache
  // A fresh RelationDef for the same table (a Relation message after a reconnect) hits the cache as well.
  Batch again = b;
  again.transactions[0].changes[0].relation = relation("public", "customers", 16400);
  test::AllocationCounter counter;
  for (int i = 0; i < 100; ++i) probe_.batch_applied(again, 1ms);
  EXPECT_EQ(counter.count(), 0u);
  EXPECT_EQ(value("cdcsync_change_events_total", {{"table", "public.customers"}, {"op", "insert"}}), 101);
}

TEST_F(ProbeTest, CountsEventArchiveEntriesByOutcomeAndItsErrors) {
  EXPECT_EQ(value("cdcsync_archive_entries_total", {{"outcome", "appended"}}), 0);  // exported before any
  const auto archive = probe_.hooks({}, {}).archive;
  archive.entries("appended", 3);
  archive.entries("appended", 2);
  archive.entries("skipped", 1);
  archive.entries("trimmed", 7);
  archive.error();
  EXPECT_EQ(value("cdcsync_archive_entries_total", {{"outcome", "appended"}}), 5);
  EXPECT_EQ(value("cdcsync_archive_entries_total", {{"outcome", "skipped"}}), 1);
  EXPECT_EQ(value("cdcsync_archive_entries_total", {{"outcome", "trimmed"}}), 7);
  EXPECT_EQ(value("cdcsync_archive_errors_total"), 1);
}

TEST_F(ProbeTest, CountsRowsWithoutTheirToastValueAndApplyFallbacksPerTable) {
  const auto target = probe_.hooks({}, {}).target;
  target.inserted_without_toast("ref.customer", 3);
  target.inserted_without_toast("ref.customer", 2);
  target.apply_fallback("ref.customer", "existing_key");
  target.apply_fallback("ref.customer", "replay_in_order");
  target.apply_fallback("ref.customer", "replay_in_order");
  EXPECT_EQ(value("cdcsync_target_rows_without_toast_total", {{"table", "ref.customer"}}), 5);
  EXPECT_EQ(
      value("cdcsync_target_apply_fallbacks_total", {{"table", "ref.customer"}, {"reason", "existing_key"}}),
      1);
  EXPECT_EQ(value("cdcsync_target_apply_fallbacks_total",
                  {{"table", "ref.customer"}, {"reason", "replay_in_order"}}),
            2);
  EXPECT_FALSE(value("cdcsync_target_rows_without_toast_total", {{"table", "ref.loyalty_account"}}));
}

TEST_F(ProbeTest, CountsUnmappedSourceColumnsPerTable) {
  const auto drift = probe_.hooks({}, {}).schema_drift;
  drift("public.customers");
  drift("public.customers");
  drift("public.loyalty_accounts");
  EXPECT_EQ(value("cdcsync_schema_drift_columns_total", {{"table", "public.customers"}}), 2);
  EXPECT_EQ(value("cdcsync_schema_drift_columns_total", {{"table", "public.loyalty_accounts"}}), 1);
}

TEST_F(ProbeTest, ForecastsSlotInvalidationFromSafeWalSizeAndTheWalRate) {
  SlotPoll p;
  p.slot_exists = true;
  p.wal_status = "reserved";
  p.current_wal_lsn = Lsn{1'000'000'000};
  p.confirmed_flush_lsn = Lsn{999'000'000};
  p.restart_lsn = Lsn{990'000'000};
  p.safe_wal_size = 3'600'000'000;
  probe_.record_poll(p);
  now_ += 10s;
  p.current_wal_lsn = Lsn{1'010'000'000};  // 1 MB/s
  probe_.record_poll(p);

  EXPECT_EQ(value("cdcsync_source_wal_rate_bytes_per_second"), 1'000'000);
  EXPECT_EQ(value("cdcsync_slot_invalidation_forecast_seconds"), 3600);
  EXPECT_EQ(value("cdcsync_slot_safe_wal_size_bytes"), 3'600'000'000);
  EXPECT_EQ(value("cdcsync_replication_lag_bytes"), 11'000'000);
  EXPECT_EQ(value("cdcsync_slot_retained_wal_bytes"), 20'000'000);
  EXPECT_EQ(value("cdcsync_slot_wal_status", {{"status", "reserved"}}), 1);
  EXPECT_EQ(value("cdcsync_slot_wal_status", {{"status", "lost"}}), 0);
  EXPECT_EQ(value("cdcsync_source_probe_up"), 1);
}

TEST_F(ProbeTest, TheWalRateForgetsSamplesOlderThanItsWindow) {
  SlotPoll p;
  p.slot_exists = true;
  p.wal_status = "reserved";
  p.current_wal_lsn = Lsn{0};
  probe_.record_poll(p);
  now_ += 60s;
  p.current_wal_lsn = Lsn{600'000'000};  // a burst: 10 MB/s for a minute
  probe_.record_poll(p);
  for (int i = 0; i < 10; ++i) {  // then 1 MB/s for ten minutes
    now_ += 60s;
    p.current_wal_lsn = Lsn{p.current_wal_lsn.value() + 60'000'000};
    probe_.record_poll(p);
  }
  EXPECT_NEAR(*value("cdcsync_source_wal_rate_bytes_per_second"), 1'000'000, 1);
}

TEST_F(ProbeTest, ForecastIsInfiniteWhenTheSlotIsUnlimitedOrTheSourceIdleAndZeroWhenLost) {
  SlotPoll p;
  p.slot_exists = true;
  p.wal_status = "reserved";
  p.current_wal_lsn = Lsn{5000};
  p.confirmed_flush_lsn = Lsn{5000};
  p.restart_lsn = Lsn{4000};
  probe_.record_poll(p);  // safe_wal_size null: max_slot_wal_keep_size = -1
  EXPECT_TRUE(std::isinf(*value("cdcsync_slot_invalidation_forecast_seconds")));
  EXPECT_TRUE(std::isinf(*value("cdcsync_slot_safe_wal_size_bytes")));
  EXPECT_EQ(value("cdcsync_replication_lag_bytes"), 0);

  p.safe_wal_size = 1000;
  now_ += 5s;
  probe_.record_poll(p);  // limited, but no WAL written
  EXPECT_TRUE(std::isinf(*value("cdcsync_slot_invalidation_forecast_seconds")));

  p.wal_status = "lost";
  p.safe_wal_size.reset();
  probe_.record_poll(p);
  EXPECT_EQ(value("cdcsync_slot_invalidation_forecast_seconds"), 0);
  EXPECT_EQ(value("cdcsync_slot_wal_status", {{"status", "lost"}}), 1);
  EXPECT_EQ(value("cdcsync_slot_wal_status", {{"status", "reserved"}}), 0);
}

TEST_F(ProbeTest, AMissingSlotAndAFailedPollAreVisible) {
  SlotPoll p;
  p.current_wal_lsn = Lsn{100};
  probe_.record_poll(p);
  EXPECT_EQ(value("cdcsync_slot_wal_status", {{"status", "missing"}}), 1);
  probe_.record_poll_failure();
  EXPECT_EQ(value("cdcsync_source_probe_up"), 0);
}

TEST_F(ProbeTest, WhileThePollFailsTheLagAndRetentionGaugesAreUnknownNotStale) {
  SlotPoll p;
  p.slot_exists = true;
  p.wal_status = "reserved";
  p.current_wal_lsn = Lsn{50'000'000};
  p.confirmed_flush_lsn = Lsn{40'000'000};
  p.restart_lsn = Lsn{30'000'000};
  p.safe_wal_size = 1'000'000'000;
  probe_.state_changed(RunnerState::Backoff);
  probe_.record_poll(p);
  EXPECT_EQ(value("cdcsync_replication_lag_bytes"), 10'000'000);
  EXPECT_EQ(probe_.replication_lag_bytes(), 10'000'000);

  probe_.record_poll_failure();
  for (const char* name : {"cdcsync_replication_lag_bytes", "cdcsync_slot_retained_wal_bytes",
                           "cdcsync_slot_safe_wal_size_bytes", "cdcsync_slot_invalidation_forecast_seconds",
                           "cdcsync_source_wal_rate_bytes_per_second", "cdcsync_source_wal_lsn",
                           "cdcsync_replication_lag_seconds", "cdcsync_checkpoint_age_seconds"}) {
    ASSERT_TRUE(value(name).has_value()) << name << " disappeared";
    EXPECT_TRUE(std::isnan(*value(name))) << name << " = " << *value(name);
  }
  EXPECT_TRUE(std::isnan(*value("cdcsync_slot_wal_status", {{"status", "reserved"}})));
  EXPECT_EQ(probe_.replication_lag_bytes(), std::nullopt);

  probe_.record_poll(p);  // back: known values again
  EXPECT_EQ(value("cdcsync_replication_lag_bytes"), 10'000'000);
  EXPECT_EQ(value("cdcsync_slot_wal_status", {{"status", "reserved"}}), 1);
  EXPECT_EQ(value("cdcsync_source_probe_up"), 1);
}

TEST_F(ProbeTest, StreamingTheLagInSecondsIsKnownWithoutThePoll) {
  probe_.state_changed(RunnerState::Streaming);
  probe_.record_poll_failure();
  EXPECT_EQ(value("cdcsync_replication_lag_seconds"), 0);  // the applier knows: nothing queued
}

TEST_F(ProbeTest, LagSecondsIsZeroWhenCaughtUpAndCountsFromTheLastAppliedCommitWhileWorkWaits) {
  probe_.state_changed(RunnerState::Streaming);
  status_.last_commit_time_us = pg_time(now_ - 90s);
  EXPECT_EQ(value("cdcsync_replication_lag_seconds"), 0);  // idle: nothing queued
  status_.queue_depth = 3;
  EXPECT_NEAR(*value("cdcsync_replication_lag_seconds"), 90, 1e-6);
  status_.queue_depth = 0;
  EXPECT_EQ(value("cdcsync_replication_lag_seconds"), 0);
}

TEST_F(ProbeTest, WhileReconnectingASlotBehindTheSourceCountsAsLag) {
  status_.last_commit_time_us = pg_time(now_ - 30s);
  SlotPoll p;
  p.slot_exists = true;
  p.wal_status = "reserved";
  p.current_wal_lsn = Lsn{2000};
  p.confirmed_flush_lsn = Lsn{1000};
  probe_.record_poll(p);
  probe_.state_changed(RunnerState::Backoff);
  EXPECT_NEAR(*value("cdcsync_replication_lag_seconds"), 30, 1e-6);
  probe_.state_changed(RunnerState::Standby);  // another instance applies
  EXPECT_EQ(value("cdcsync_replication_lag_seconds"), 0);
}

TEST_F(ProbeTest, CheckpointAgeGrowsWhileWorkWaitsAndTheConfirmedLsnStandsStill) {
  probe_.state_changed(RunnerState::Streaming);
  status_.confirmed_lsn = Lsn{100};
  EXPECT_EQ(value("cdcsync_checkpoint_age_seconds"), 0);
  status_.queue_depth = 5;
  EXPECT_EQ(value("cdcsync_checkpoint_age_seconds"), 0);
  now_ += 40s;
  EXPECT_EQ(value("cdcsync_checkpoint_age_seconds"), 40);
  status_.confirmed_lsn = Lsn{200};  // moved
  EXPECT_EQ(value("cdcsync_checkpoint_age_seconds"), 0);
  now_ += 10s;
  EXPECT_EQ(value("cdcsync_checkpoint_age_seconds"), 10);
  status_.queue_depth = 0;  // caught up
  EXPECT_EQ(value("cdcsync_checkpoint_age_seconds"), 0);
  EXPECT_EQ(value("cdcsync_checkpoint_lsn"), 200);
  EXPECT_EQ(value("cdcsync_confirmed_lsn"), 200);
}

TEST_F(ProbeTest, PositionsQueueAndCheckpointStoreComeFromThePipelineStatus) {
  status_.received_lsn = Lsn{0x16B374D848};
  status_.durable_lsn = Lsn{0x16B374D000};
  status_.queue_depth = 7;
  status_.checkpoint_store_ok = false;
  EXPECT_EQ(value("cdcsync_received_lsn"), static_cast<double>(0x16B374D848));
  EXPECT_EQ(value("cdcsync_durable_lsn"), static_cast<double>(0x16B374D000));
  EXPECT_EQ(value("cdcsync_queue_depth"), 7);
  EXPECT_EQ(value("cdcsync_checkpoint_store_up"), 0);
}

TEST_F(ProbeTest, StateIsOneHotAndTheLeaseComesFromTheRunner) {
  EXPECT_EQ(value("cdcsync_state", {{"state", "starting"}}), 1);
  probe_.state_changed(RunnerState::Streaming);
  EXPECT_EQ(value("cdcsync_state", {{"state", "starting"}}), 0);
  EXPECT_EQ(value("cdcsync_state", {{"state", "streaming"}}), 1);
  double sum = 0;
  for (const auto& f : probe_.Collect()) {
    if (f.name == "cdcsync_state") {
      for (const auto& m : f.metric) sum += m.gauge.value;
    }
  }
  EXPECT_EQ(sum, 1);
  bool held = false;
  probe_.set_lease_view([&] { return held; });
  EXPECT_EQ(value("cdcsync_lease_held"), 0);
  held = true;
  EXPECT_EQ(value("cdcsync_lease_held"), 1);
}

TEST_F(ProbeTest, ErrorsReconnectsAndFatalCarryTheirComponentKindAndReason) {
  auto hooks = probe_.hooks();
  hooks.error("source", "connection");
  hooks.error("source", "connection");
  hooks.error("target", "40001");
  hooks.fatal("slot_lost");
  EXPECT_EQ(value("cdcsync_errors_total", {{"component", "source"}, {"kind", "connection"}}), 2);
  EXPECT_EQ(value("cdcsync_reconnects_total", {{"component", "target"}, {"kind", "40001"}}), 1);
  EXPECT_EQ(value("cdcsync_fatal", {{"reason", "slot_lost"}}), 1);
  EXPECT_EQ(value("cdcsync_errors_total", {{"component", "runner"}, {"kind", "slot_lost"}}), 1);
  EXPECT_EQ(value("cdcsync_dead_lettered_transactions_total"), 0);
}

TEST_F(ProbeTest, HooksPassStateChangesOnAfterRecordingThem) {
  RunnerState seen = RunnerState::Starting;
  auto hooks = probe_.hooks([&](RunnerState s) {
    seen = s;
    EXPECT_EQ(probe_.state(), s);
  });
  hooks.state_changed(RunnerState::Snapshot);
  EXPECT_EQ(seen, RunnerState::Snapshot);
}

TEST_F(ProbeTest, EverySeriesCarriesThePipelineLabelAndTheBuildInfoItsVersion) {
  auto r = relation("public", "customers", 7);
  Batch b;
  b.transactions.push_back(txn({change(ChangeOp::Insert, r)}, now_));
  probe_.batch_applied(b, 1ms);
  probe_.error("source", "connection");
  std::size_t series = 0;
  bool process_seen = false;
  for (const auto& f : probe_.Collect()) {
    if (f.name.rfind("process_", 0) == 0) process_seen = true;
    for (const auto& m : f.metric) {
      ++series;
      ASSERT_EQ(
          std::count_if(m.label.begin(), m.label.end(), [](const auto& l) { return l.name == "pipeline"; }),
          1)
          << f.name;
      EXPECT_EQ(label_of(m, "pipeline"), "customers-to-orders") << f.name;
    }
  }
  EXPECT_GT(series, 30u);
  EXPECT_TRUE(process_seen);
  EXPECT_EQ(value("cdcsync_build_info",
                  {{"version", "9.9.9"}, {"revision", "abc1234"}, {"unit", "cdcsync@orders.service"}}),
            1);
  const std::string text = prometheus::TextSerializer().Serialize(probe_.Collect());
  EXPECT_NE(text.find("cdcsync_change_events_total{op=\"insert\",pipeline=\"customers-to-orders\",table="
                      "\"public.customers\"} 1"),
            std::string::npos)
      << text;
}

// What dashboards and alert rules select on: the HELP and TYPE lines, label names in order, and the le
// values of each histogram's buckets, exactly as the exposition has always written them.
TEST_F(ProbeTest, TheExpositionKeepsTheHelpTypesLabelsAndBucketsDashboardsRead) {
  const std::string text = prometheus::TextSerializer().Serialize(probe_.Collect());
  for (const char* line : {
           "# HELP cdcsync_batch_rows Changes per applied batch.\n# TYPE cdcsync_batch_rows histogram\n",
           "# TYPE cdcsync_change_events_total counter\n",
           "# TYPE cdcsync_replication_lag_seconds gauge\n",
           "cdcsync_batch_rows_bucket{pipeline=\"customers-to-orders\",le=\"100000\"} 0\n",
           "cdcsync_batch_rows_bucket{pipeline=\"customers-to-orders\",le=\"+Inf\"} 0\n",
           "cdcsync_apply_duration_seconds_bucket{pipeline=\"customers-to-orders\",le=\"0.0005\"} 0\n",
           "cdcsync_apply_duration_seconds_bucket{pipeline=\"customers-to-orders\",le=\"16.384\"} 0\n",
           "cdcsync_end_to_end_latency_seconds_bucket{pipeline=\"customers-to-orders\",le=\"524.288\"} 0\n",
           "cdcsync_kafka_produce_latency_seconds_bucket{pipeline=\"customers-to-orders\",le=\"0.032\"} 0\n",
           "cdcsync_build_info{pipeline=\"customers-to-orders\",revision=\"abc1234\",unit=\"cdcsync@orders."
           "service\",version=\"9.9.9\"} 1\n",
           "cdcsync_state{pipeline=\"customers-to-orders\",state=\"starting\"} 1\n",
           "cdcsync_slot_invalidation_forecast_seconds{pipeline=\"customers-to-orders\"} +Inf\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n--- exposition ---\n" << text;
  }
  EXPECT_EQ(text.find("_created"), std::string::npos);
  for (const MetricFamily& f : probe_.Collect()) {
    // prometheus-cpp neither appends _total nor escapes HELP text: the names and help here must do both.
    EXPECT_EQ(f.name.ends_with("_total"), f.type == MetricType::Counter) << f.name;
    EXPECT_EQ(f.help.find_first_of("\\\n"), std::string::npos) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
}

TEST_F(ProbeTest, ReadyOnlyWhenStreamingWithTheLeaseKnownAndLagUnderTheBoundOrStandingBy) {
  EXPECT_FALSE(probe_.readiness().ok);
  EXPECT_EQ(probe_.readiness().reason, "state starting");
  probe_.state_changed(RunnerState::Streaming);
  EXPECT_TRUE(probe_.readiness().ok);
  status_.checkpoint_store_ok = false;
  EXPECT_FALSE(probe_.readiness().ok);
  EXPECT_NE(probe_.readiness().reason.find("lease state unknown"), std::string::npos);
  status_.checkpoint_store_ok = true;
  status_.queue_depth = 10;
  status_.last_commit_time_us = pg_time(now_ - 600s);
  EXPECT_FALSE(probe_.readiness().ok);
  EXPECT_EQ(probe_.readiness().reason, "replication lag 600 s over 300 s");
  probe_.state_changed(RunnerState::Standby);
  EXPECT_TRUE(probe_.readiness().ok);
  probe_.state_changed(RunnerState::Backoff);
  EXPECT_FALSE(probe_.readiness().ok);
  EXPECT_TRUE(probe_.liveness().ok);
}

// The health check systemd's watchdog is fed from: a main loop that stopped turning, with none of its
// statements in flight (decoders/pg_link.h), is not alive; its next turn makes it alive again.
TEST(ProbeLiveness, FailsOnceTheMainLoopStopsTurningWithNothingInFlightAndPassesAgainOnItsNextTurn) {
  PipelineStatus status;
  ProbeOptions o;
  o.pipeline = "p";
  o.slot = "s";
  o.stall_limit = std::chrono::milliseconds(50);
  Probe probe{o, status};
  RunnerHooks hooks = probe.hooks(nullptr);
  hooks.heartbeat();
  EXPECT_TRUE(probe.liveness().ok);
  ASSERT_TRUE(test::eventually([&] { return !probe.liveness().ok; }, std::chrono::seconds(5)));
  EXPECT_NE(probe.liveness().reason.find("has not turned"), std::string::npos) << probe.liveness().reason;
  hooks.heartbeat();
  EXPECT_TRUE(probe.liveness().ok);
}

}  // namespace
}  // namespace cdcsync

namespace cdcsync {
namespace {

TEST_F(ProbeTest, CountsMessagesReadDuringReplaysAcrossScrapes) {
  EXPECT_EQ(value("cdcsync_source_messages_read_during_replay_total"), 0);
  status_.messages_read_during_replay = 5;
  EXPECT_EQ(value("cdcsync_source_messages_read_during_replay_total"), 5);
  EXPECT_EQ(value("cdcsync_source_messages_read_during_replay_total"), 5) << "a second scrape adds nothing";
  status_.messages_read_during_replay = 12;
  EXPECT_EQ(value("cdcsync_source_messages_read_during_replay_total"), 12);
}

TEST_F(ProbeTest, ExportsTheLastVerifyResult) {
  EXPECT_EQ(value("cdcsync_verify_mismatched_rows"), 0);
  EXPECT_EQ(value("cdcsync_verify_last_run_timestamp_seconds"), 0);
  probe_.record_verify({.mismatched_rows = 17, .unix_ms = 1'764'000'000'500});
  EXPECT_EQ(value("cdcsync_verify_mismatched_rows", {{"pipeline", "customers-to-orders"}}), 17);
  EXPECT_EQ(value("cdcsync_verify_last_run_timestamp_seconds"), 1'764'000'000.5);
  probe_.record_verify({.mismatched_rows = 0, .unix_ms = 1'764'000'100'000});
  EXPECT_EQ(value("cdcsync_verify_mismatched_rows"), 0);
}

TEST_F(ProbeTest, ExportsEachTablesMismatchedRowsFromTheLastVerifyThatComparedIt) {
  probe_.record_verify({.mismatched_rows = 7,
                        .unix_ms = 1'764'000'000'000,
                        .tables = {{"ref.customer", 5}, {"ref.loyalty_account", 2}}});
  EXPECT_EQ(value("cdcsync_verify_table_mismatched_rows", {{"table", "ref.customer"}}), 5);
  EXPECT_EQ(value("cdcsync_verify_table_mismatched_rows", {{"table", "ref.loyalty_account"}}), 2);
  // A later verify of one table updates that table's series and leaves the other's.
  probe_.record_verify({.mismatched_rows = 0, .unix_ms = 1'764'000'100'000, .tables = {{"ref.customer", 0}}});
  EXPECT_EQ(value("cdcsync_verify_table_mismatched_rows", {{"table", "ref.customer"}}), 0);
  EXPECT_EQ(value("cdcsync_verify_table_mismatched_rows", {{"table", "ref.loyalty_account"}}), 2);
  EXPECT_EQ(value("cdcsync_verify_mismatched_rows"), 0);
}

// The initial snapshot's progress: rows copied as a counter per table (only what is new since the last view),
// the estimate as a gauge, and the rows counted once the table is done.
TEST_F(ProbeTest, ExportsTheSnapshotsRowsAndEstimatePerTable) {
  LoadProgressView v;
  v.tables = {{.table = "ref.customer", .rows = 1000, .estimate = 5000, .parts = 8},
              {.table = "ref.loyalty_account", .rows = 0, .parts = 1}};
  probe_.snapshot_progress(v);
  v.tables[0].rows = 3000;
  probe_.snapshot_progress(v);
  probe_.snapshot_progress(v);  // the same view again adds nothing
  EXPECT_EQ(value("cdcsync_snapshot_rows_total", {{"table", "ref.customer"}}), 3000);
  EXPECT_EQ(value("cdcsync_snapshot_rows_estimate", {{"table", "ref.customer"}}), 5000);
  v.tables[0].rows = 4990;
  v.tables[0].done = true;
  probe_.snapshot_progress(v);
  EXPECT_EQ(value("cdcsync_snapshot_rows_total", {{"table", "ref.customer"}}), 4990);
  EXPECT_EQ(value("cdcsync_snapshot_rows_estimate", {{"table", "ref.customer"}}), 4990)
      << "the count, once done";
  // A resumed load copies the table again from zero: the counter goes on counting.
  v.tables[0] = {.table = "ref.customer", .rows = 10, .estimate = 5000, .parts = 8};
  probe_.snapshot_progress(v);
  EXPECT_EQ(value("cdcsync_snapshot_rows_total", {{"table", "ref.customer"}}), 5000);
  const std::string text = prometheus::TextSerializer().Serialize(probe_.Collect());
  EXPECT_NE(text.find("cdcsync_snapshot_rows_total{pipeline=\"customers-to-orders\",table=\"ref.customer\"} "
                      "5000"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace cdcsync
