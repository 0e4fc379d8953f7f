// The replication connection against the real customer server.
#include "decoders/replication_stream.h"

#include <gtest/gtest.h>

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

  const auto slot = stream.create_slot("stream_test_slot", /*temporary=*/true, /*export_snapshot=*/true, false);
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
  EXPECT_TRUE(eventually([&] { return reader.slot_state("stream_test_slot3")->confirmed_flush_lsn >= commit_end; },
                         10s));
  reader.drop_slot("stream_test_slot3");
  EXPECT_FALSE(reader.slot_state("stream_test_slot3"));
}

TEST_F(ReplicationStreamTest, RefusesAnInvalidSlotNameBeforeTalkingToTheServer) {
  ReplicationStream stream{admin_};
  EXPECT_THROW(stream.create_slot("Bad-Name", true, false, false), PgError);
  EXPECT_THROW(stream.start("x; DROP", Lsn{}, {.publications = {"p"}}), PgError);
}

}  // namespace
}  // namespace cdcsync::test
