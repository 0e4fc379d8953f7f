// The replication connection against the real customer server.
#include "decoders/replication_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "daemon/core/pg_change_source.h"
#include "tests/harness/servers.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

class ReplicationStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = TestServers::get().fresh_database(Server::Customer, "stream_test");
    exec_sql(admin_, "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE PUBLICATION p FOR TABLE t");
  }
  std::string admin_;
};

TEST_F(ReplicationStreamTest, IdentifiesTheSystemAndCreatesASlotWithAnExportedSnapshot) {
  ReplicationStream stream{admin_};
  const auto id = stream.identify_system();
  EXPECT_FALSE(id.system_id.empty());
  EXPECT_GE(id.timeline, 1u);
  EXPECT_TRUE(id.wal_position.valid());
  EXPECT_EQ(id.dbname, "stream_test");

  const auto slot =
      stream.create_slot("stream_test_slot", /*temporary=*/true, /*export_snapshot=*/true, false);
  EXPECT_EQ(slot.name, "stream_test_slot");
  EXPECT_TRUE(slot.consistent_point.valid());
  EXPECT_FALSE(slot.snapshot_name.empty());

  const auto state = stream.slot_state("stream_test_slot");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->plugin, "pgoutput");
  EXPECT_TRUE(state->temporary);
  EXPECT_FALSE(stream.slot_state("no_such_slot"));
}

TEST_F(ReplicationStreamTest, StreamsBeginInsertCommitAndAnswersKeepalives) {
  ReplicationStream stream{admin_};
  const auto slot = stream.create_slot("stream_test_slot2", true, false, false);
  stream.start("stream_test_slot2", slot.consistent_point, {.proto_version = 1, .publications = {"p"}});
  exec_sql(admin_, "INSERT INTO t VALUES (1, 'one')");

  std::string tags;
  Lsn last_end;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (tags.find('C') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    const auto ev = stream.next(500ms);
    if (ev.kind == StreamEvent::Kind::Data) {
      tags += ev.payload[0];
      // Relation messages carry no WAL position (0/0); every other message does.
      if (ev.payload[0] != 'R') {
        EXPECT_TRUE(ev.wal_start.valid()) << ev.payload[0];
      }
    } else if (ev.kind == StreamEvent::Kind::Keepalive) {
      last_end = ev.wal_end;
      if (ev.reply_requested) stream.send_status(ev.wal_end, Lsn{}, Lsn{});
    }
  }
  // Relation before the first Insert of a relation in this session.
  EXPECT_EQ(tags, "BRIC");
  stream.send_status(Lsn{}, Lsn{}, Lsn{});
  stream.finish();
}

TEST_F(ReplicationStreamTest, ConfirmingAPositionMovesTheSlot) {
  {
    ReplicationStream creator{admin_};
    creator.create_slot("stream_test_slot3", false, false, false);
  }
  ReplicationStream stream{admin_};
  const auto before = stream.slot_state("stream_test_slot3");
  ASSERT_TRUE(before);
  stream.start("stream_test_slot3", Lsn{}, {.proto_version = 1, .publications = {"p"}});
  exec_sql(admin_, "INSERT INTO t VALUES (2, 'two')");
  Lsn commit_end;
  while (!commit_end.valid()) {
    const auto ev = stream.next(5s);
    ASSERT_NE(ev.kind, StreamEvent::Kind::Timeout);
    if (ev.kind == StreamEvent::Kind::Data && ev.payload[0] == 'C') commit_end = ev.wal_end;
  }
  stream.send_status(commit_end, commit_end, commit_end);
  stream.finish();
  ReplicationStream reader{admin_};
  EXPECT_TRUE(eventually(
      [&] { return reader.slot_state("stream_test_slot3")->confirmed_flush_lsn >= commit_end; }, 10s));
  reader.drop_slot("stream_test_slot3");
  EXPECT_FALSE(reader.slot_state("stream_test_slot3"));
}

// Reads Data events until a Commit; returns how many messages came, Relation and Type messages not counted
// (pgoutput sends a Relation again whenever the table's cache entry was invalidated, by an autoanalyze for
// one).
int read_transaction(ReplicationStream& stream) {
  int messages = 0;
  while (true) {
    const auto ev = stream.next(10s);
    if (ev.kind == StreamEvent::Kind::Timeout) {
      ADD_FAILURE() << "no Commit within 10 s";
      return messages;
    }
    if (ev.kind == StreamEvent::Kind::Keepalive && ev.reply_requested)
      stream.send_status(ev.wal_end, Lsn{}, Lsn{});
    if (ev.kind != StreamEvent::Kind::Data) continue;
    if (ev.payload[0] == 'R' || ev.payload[0] == 'Y') continue;
    ++messages;
    if (ev.payload[0] == 'C') return messages;
  }
}

TEST_F(ReplicationStreamTest, AReadIntervalWaitsBetweenWakeUpsButNeverWhileTheSocketHoldsMore) {
  constexpr auto kInterval = 300ms;
  ReplicationStream stream{admin_};
  const auto slot = stream.create_slot("stream_test_slot4", true, false, false);
  stream.start("stream_test_slot4", slot.consistent_point,
               {.proto_version = 1, .publications = {"p"}, .min_read_interval = kInterval});

  // 3 MB in one transaction: about 200 fills of libpq's 16 kB buffer. Waiting the interval at each of them
  // would take a minute; the socket is read on without waiting while it holds more.
  exec_sql(admin_, "INSERT INTO t SELECT i, repeat('x', 1500) FROM generate_series(1, 2000) i");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(read_transaction(stream), 2000 + 2);  // Begin, 2000 Inserts, Commit
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);

  // A row that arrives while the reader waits on an empty socket, longer than the interval after its last
  // wake-up: the reader wakes for it. (Reading the 3 MB without waiting may itself take longer than the
  // interval on a loaded machine, so the end of that read is no wake-up to measure from.)
  std::thread primer([&] {
    std::this_thread::sleep_for(kInterval + 100ms);
    exec_sql(admin_, "INSERT INTO t VALUES (99999, 'primer')");
  });
  EXPECT_EQ(read_transaction(stream), 3);  // Begin, Insert, Commit
  primer.join();

  // It has just woken: what comes a moment later waits for the interval, to be read together with whatever
  // else arrives meanwhile.
  const auto asked = std::chrono::steady_clock::now();
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    exec_sql(admin_, "INSERT INTO t VALUES (100000, 'late')");
  });
  EXPECT_EQ(read_transaction(stream), 3);  // Begin, Insert, Commit
  EXPECT_GE(std::chrono::steady_clock::now() - asked, kInterval / 3);
  writer.join();
  stream.finish();
}

// Polls until one whole transaction came out.
Transaction poll_one(PgChangeSource& source) {
  std::vector<Transaction> out;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (out.empty() && std::chrono::steady_clock::now() < deadline) source.poll(500ms, out);
  if (out.empty()) {
    ADD_FAILURE() << "no transaction within 20 s";
    return {};
  }
  return std::move(out.front());
}

TEST_F(ReplicationStreamTest, TransactionsCarryTheSourcesSendTimeSoABacklogIsToldFromALiveStream) {
  ReplicationStream stream{admin_};
  const auto slot = stream.create_slot("stream_test_slot5", true, false, false);
  // A backlog: committed well before the stream reads it.
  exec_sql(admin_, "INSERT INTO t VALUES (1, 'old')");
  std::this_thread::sleep_for(1500ms);
  stream.start("stream_test_slot5", slot.consistent_point, {.proto_version = 1, .publications = {"p"}});
  PgChangeSource source{stream, AssemblerOptions{}};
  const Transaction old = poll_one(source);
  ASSERT_NE(old.info.commit_time_us, 0);
  EXPECT_GE(old.info.sent_time_us - old.info.commit_time_us, 1'000'000);  // sent 1.5 s after its commit

  // Live: sent right after its commit (both times by the source's clock).
  exec_sql(admin_, "INSERT INTO t VALUES (2, 'new')");
  const Transaction live = poll_one(source);
  ASSERT_NE(live.info.commit_time_us, 0);
  EXPECT_GE(live.info.sent_time_us, live.info.commit_time_us);
  EXPECT_LT(live.info.sent_time_us - live.info.commit_time_us, 1'000'000);
  stream.finish();
}

// Streaming on, with a walsender that streams anything over 64 kB: while a committed streamed transaction
// is replayed a chunk at a time, absorb() reads the next one's blocks into its spool (the server goes on
// streaming instead of waiting on a full socket) and stops at the first message that must follow the
// replay; then every transaction comes out whole and in commit order.
TEST_F(ReplicationStreamTest, ReadsTheNextStreamedTransactionIntoItsSpoolWhileOneIsReplayed) {
  ReplicationStream stream{admin_ + " options='-c logical_decoding_work_mem=64kB'"};
  const auto slot = stream.create_slot("stream_test_slot6", true, false, false);
  const std::string pad = "repeat('x', 100)";
  exec_sql(admin_, "INSERT INTO t SELECT g, " + pad + " FROM generate_series(1, 3000) g");
  exec_sql(admin_, "INSERT INTO t SELECT g, " + pad + " FROM generate_series(10001, 13000) g");
  exec_sql(admin_, "INSERT INTO t VALUES (20000, 'last')");
  stream.start("stream_test_slot6", slot.consistent_point,
               {.proto_version = 2, .publications = {"p"}, .streaming = true});
  AssemblerOptions options;
  options.protocol = {.version = 2, .streaming = StreamingMode::On};
  options.max_changes_per_chunk = 100;
  PgChangeSource source{stream, options, 30s, /*max_changes_per_poll=*/100};

  std::vector<Transaction> got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) source.poll(500ms, got);
  ASSERT_FALSE(got.empty()) << "no chunk within 30 s";
  ASSERT_TRUE(got.front().first_chunk && !got.front().last_chunk) << "the first transaction was not streamed";

  // The first transaction is being replayed; read on without taking more of it.
  while (source.absorb() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_GT(source.absorbed(), 3000u) << "the second transaction's blocks were not read during the replay";
  EXPECT_FALSE(source.absorb()) << "absorb went past a message that must wait for the replay";

  // The rest comes out a chunk per poll. A stall prints where each side stands (the server's walsender and
  // what the source has read), so that a failed run tells a message never sent from one never taken.
  const auto done = [&] {
    return !got.empty() && !got.back().changes.empty() && got.back().last_chunk &&
           got.back().changes.back().after.value(0) == "20000";
  };
  const auto rest_deadline = std::chrono::steady_clock::now() + 60s;
  auto progressed = std::chrono::steady_clock::now();
  Lsn received;
  bool reported = false;
  while (!done() && std::chrono::steady_clock::now() < rest_deadline) {
    const std::size_t before = got.size();
    received = source.poll(500ms, got).received;
    const auto now = std::chrono::steady_clock::now();
    if (got.size() != before) progressed = now;
    if (!reported && now - progressed > 10s) {
      reported = true;
      const auto rows = query_rows(admin_,
                                   "SELECT r.state, r.sent_lsn::text, pg_current_wal_flush_lsn()::text, "
                                   "coalesce(a.wait_event_type, '-') || '/' || coalesce(a.wait_event, '-') "
                                   "FROM pg_stat_replication r JOIN pg_stat_activity a USING (pid)");
      std::string server = "no walsender";
      if (!rows.empty() && rows[0].size() == 4) {
        server = "walsender " + rows[0][0].value_or("?") + ", sent " + rows[0][1].value_or("?") +
                 ", flushed " + rows[0][2].value_or("?") + ", waiting on " + rows[0][3].value_or("?");
      }
      // Printed, not failed: whether it comes back within the deadline is what the asserts below tell.
      std::cerr << "nothing new for 10 s after " << got.size() << " chunks: " << server << "; read "
                << source.messages() << " messages up to " << received.str() << ", " << source.absorbed()
                << " of them during replays\n";
    }
  }
  std::vector<std::pair<std::uint32_t, std::size_t>> transactions;  // (xid, changes)
  std::vector<int> ids;
  for (const auto& t : got) {
    if (t.first_chunk) transactions.emplace_back(t.info.xid.value, 0);
    ASSERT_FALSE(transactions.empty());
    transactions.back().second += t.changes.size();
    for (const auto& c : t.changes) ids.push_back(std::stoi(std::string(c.after.value(0))));
  }
  ASSERT_EQ(transactions.size(), 3u);
  EXPECT_EQ(transactions[0].second, 3000u);
  EXPECT_EQ(transactions[1].second, 3000u);
  EXPECT_EQ(transactions[2].second, 1u);
  EXPECT_LT(transactions[0].first, transactions[1].first);
  ASSERT_EQ(ids.size(), 6001u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "changes out of commit order";
  stream.finish();
}

TEST_F(ReplicationStreamTest, RefusesAnInvalidSlotNameBeforeTalkingToTheServer) {
  ReplicationStream stream{admin_};
  EXPECT_THROW(stream.create_slot("Bad-Name", true, false, false), PgError);
  EXPECT_THROW(stream.start("x; DROP", Lsn{}, {.publications = {"p"}}), PgError);
}

}  // namespace
}  // namespace cdcsync::test
