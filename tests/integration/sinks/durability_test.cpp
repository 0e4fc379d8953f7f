// What the order-DB sink returns as durable survives a crash of the order server, and what it committed
// without waiting for the flush (Batch::durable false) is never returned before it is durable. Each test
// stops the order server with `pg_ctl stop -m immediate`, which loses the WAL still in its buffers.
//
// To keep an unflushed commit in those buffers long enough, the server's WAL writer runs every 10 s instead
// of every 200 ms while a test runs, and is woken first (an idle one hibernates, and the first commit that
// does not wait for its flush wakes it and has it written at once).
#include <gtest/gtest.h>

#include <thread>

#include "sinks/postgres_sink.h"
#include "tests/integration/sinks/sink_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kBase = 0x2'0000'0000;

// wal_writer_delay = 10 s on the order server for the test's lifetime.
class SlowWalWriter {
 public:
  SlowWalWriter() { std::this_thread::sleep_for(300ms); }  // the WAL writer rereads its settings

  // Wakes the WAL writer with a commit that does not wait for its flush (it is written at once).
  void wake(const SinkDatabase& db) const {
    exec_sql(db.admin(), "CREATE TABLE IF NOT EXISTS public.wake (n integer)");
    exec_sql(db.admin(), "SET synchronous_commit = off; INSERT INTO public.wake VALUES (1)");
    std::this_thread::sleep_for(300ms);
  }

 private:
  ClusterSetting delay_{Server::Order, "wal_writer_delay", "10s"};
};

void restart_order_server_immediately() {
  TestServers::get().control({"pg-stop", "order", "immediate"});
  TestServers::get().control({"pg-start", "order"});
}

// True when WAL inserted on the order server is not flushed yet.
bool wal_unflushed(const SinkDatabase& db) {
  return db.value("SELECT pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn()") == "t";
}

class SinkDurabilityTest : public ::testing::Test {
 protected:
  std::unique_ptr<PostgresSink> make_sink(const SinkDatabase& db) const {
    PostgresSinkOptions o;
    o.conninfo = db.target();
    o.pipeline = "durable";
    o.applied_by = "durability-test";
    return std::make_unique<PostgresSink>(Mapping({customer_mapping()}), o);
  }
  Transaction one_row(std::uint32_t xid, std::uint64_t end, int id) const {
    return txn(xid, kBase + end,
               {insert(rel_, kBase + end - 0x10,
                       tuple({std::to_string(id), "Name " + std::to_string(id), "active", "gold", "pii"}))});
  }
  static Batch unflushed(std::vector<Transaction> txns) {
    Batch b = batch_of(std::move(txns));
    b.durable = false;
    return b;
  }
  // Transaction 1 committed and flushed, then transaction 2 committed without waiting for its flush (it is
  // still in the server's WAL buffers).
  std::unique_ptr<PostgresSink> flushed_then_unflushed(const SinkDatabase& db,
                                                       const SlowWalWriter& slow) const {
    auto sink = make_sink(db);
    EXPECT_EQ(sink->apply(batch_of({one_row(1, 0x100, 1)})), Lsn{kBase + 0x100});
    slow.wake(db);
    EXPECT_EQ(sink->apply(unflushed({one_row(2, 0x200, 2)})), std::nullopt);
    return sink;
  }
  static std::string progress(const SinkDatabase& db) {
    return db.value("SELECT end_lsn::text FROM ref.cdc_progress WHERE pipeline = 'durable'")
        .value_or("<none>");
  }

  RelationPtr rel_ = customers_relation();
};

// synchronous_commit = off for the database would let a commit return before its flush: the sink's session
// raises it to local, so what apply returns as durable is on disk.
TEST_F(SinkDurabilityTest, SynchronousCommitOffForTheDatabaseIsRaisedToLocal) {
  SlowWalWriter slow;
  SinkDatabase db("durability_sync_off");
  exec_sql(db.admin(), "ALTER DATABASE durability_sync_off SET synchronous_commit = off");
  auto sink = make_sink(db);
  slow.wake(db);
  EXPECT_EQ(sink->apply(batch_of({one_row(1, 0x100, 1)})), Lsn{kBase + 0x100});
  EXPECT_EQ(sink->synchronous_commit(), "local");
  restart_order_server_immediately();
  EXPECT_EQ(progress(db), "2/100");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "1");
}

// A batch committed without waiting for its flush is lost when the server stops before flushing it; the sink
// notices that its progress went back at its next call and ends the session, so that streaming starts again
// from the target's progress instead of skipping the lost transaction.
TEST_F(SinkDurabilityTest, ACommitLostBeforeItsFlushEndsTheSessionAndIsAppliedAgain) {
  SlowWalWriter slow;
  SinkDatabase db("durability_lost");
  auto sink = flushed_then_unflushed(db, slow);
  EXPECT_EQ(progress(db), "2/200");  // committed and visible
  ASSERT_TRUE(wal_unflushed(db)) << "the WAL writer flushed the commit already: nothing would be lost";
  restart_order_server_immediately();
  ASSERT_EQ(progress(db), "2/100") << "the commit that did not wait for its flush survived the crash";

  try {
    sink->apply(batch_of({one_row(3, 0x300, 3)}));
    FAIL() << "applying after the lost commit must end the session";
  } catch (const TransientError& e) {
    EXPECT_NE(std::string(e.what()).find("lost committed transactions"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("2/200 to 2/100"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "1") << "nothing past the gap was applied";

  // The next session starts from the target's progress and gets the lost transaction again.
  sink = make_sink(db);
  EXPECT_EQ(sink->load_progress()->end_lsn, Lsn{kBase + 0x100});
  EXPECT_EQ(sink->apply(batch_of({one_row(2, 0x200, 2), one_row(3, 0x300, 3)})), Lsn{kBase + 0x300});
  EXPECT_EQ(db.value("SELECT string_agg(customer_id::text, ',' ORDER BY customer_id) FROM ref.customer"),
            "1,2,3");
}

// sync() makes unflushed commits durable.
TEST_F(SinkDurabilityTest, SyncMakesUnflushedCommitsDurable) {
  SlowWalWriter slow;
  SinkDatabase db("durability_sync");
  auto sink = flushed_then_unflushed(db, slow);
  ASSERT_TRUE(wal_unflushed(db));
  EXPECT_EQ(sink->sync(), Lsn{kBase + 0x200});
  EXPECT_EQ(sink->sync(), std::nullopt) << "nothing waits for a flush any more";
  EXPECT_EQ(sink->stats().syncs, 1u);
  restart_order_server_immediately();
  EXPECT_EQ(progress(db), "2/200");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "2");
}

// flushed() only asks how far the server flushed: nothing while the commit is in its WAL buffers, the
// commit's end once the server flushed it by itself (here another session's commit, which flushes the WAL
// before it too), and nothing new after that.
TEST_F(SinkDurabilityTest, FlushedReportsACommitOnceTheServerFlushedIt) {
  SlowWalWriter slow;
  SinkDatabase db("durability_flushed");
  auto sink = flushed_then_unflushed(db, slow);
  ASSERT_TRUE(wal_unflushed(db));
  EXPECT_EQ(sink->flushed(), std::nullopt);
  exec_sql(db.admin(), "CREATE TABLE flushes_the_wal (x int)");
  EXPECT_EQ(sink->flushed(), Lsn{kBase + 0x200});
  EXPECT_EQ(sink->flushed(), std::nullopt) << "nothing new";
  EXPECT_EQ(sink->stats().syncs, 0u);
  restart_order_server_immediately();
  EXPECT_EQ(progress(db), "2/200");
}

// A new session (cdcsync restarted while the target kept running) starts from the progress row, and
// confirms it: reading it makes it durable.
TEST_F(SinkDurabilityTest, ANewSessionMakesTheProgressItFindsDurable) {
  SlowWalWriter slow;
  SinkDatabase db("durability_new_session");
  auto sink = flushed_then_unflushed(db, slow);
  ASSERT_TRUE(wal_unflushed(db));
  sink.reset();  // releases the writer lock
  auto next = make_sink(db);
  EXPECT_EQ(next->load_progress()->end_lsn, Lsn{kBase + 0x200});
  restart_order_server_immediately();
  EXPECT_EQ(progress(db), "2/200");
  EXPECT_EQ(db.value("SELECT count(*) FROM ref.customer"), "2");
}

// A durable batch whose transactions were all applied before still makes earlier unflushed commits durable.
TEST_F(SinkDurabilityTest, ADurableBatchOfSkippedTransactionsFlushesWhatCameBefore) {
  SlowWalWriter slow;
  SinkDatabase db("durability_skipped");
  auto sink = make_sink(db);
  slow.wake(db);
  EXPECT_EQ(sink->apply(unflushed({one_row(1, 0x100, 1), one_row(2, 0x200, 2)})), std::nullopt);
  ASSERT_TRUE(wal_unflushed(db));
  EXPECT_EQ(sink->apply(batch_of({one_row(2, 0x200, 2)})), Lsn{kBase + 0x200});
  EXPECT_EQ(sink->stats().commits_unflushed, 1u);
  EXPECT_EQ(sink->stats().syncs, 1u);
  restart_order_server_immediately();
  EXPECT_EQ(progress(db), "2/200");
}

}  // namespace
}  // namespace cdcsync::test
