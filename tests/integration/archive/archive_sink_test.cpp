// The event archive against a real Redis: target-form entries with chained hashes, the head moved in the
// same step, restarts that skip what is already there, chunked and snapshot transactions, a second
// writer refused, and trimming by age.
#include "sinks/redis_archive_sink.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/harness/servers.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

using test::insert;
using test::remove;
using test::tuple;
using test::update;

class ArchiveSink : public ::testing::Test {
 protected:
  ArchiveSink() {
    TableMapping t;
    t.source = {"public", "customers"};
    t.target = {"ref", "customer"};
    t.key = {"id"};
    t.columns = {{"id", "customer_id", Transform::copy()},
                 {"email", "email_hash", Transform::hmac_sha256("k")},
                 {"tier", "tier", Transform::copy()}};
    mapping_ = Mapping({t});
    pipeline_ = std::string("archtest-") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    test::redis_command({"DEL", archive_stream_key(pipeline_), archive_head_key(pipeline_)});
  }

  ArchiveSinkOptions options() const {
    ArchiveSinkOptions o;
    o.connection.url = RedisUrl::parse(test::TestServers::get().redis_url());
    o.connection.pipeline = pipeline_;
    o.topic_prefix = "shop";
    o.entries_per_script = 3;           // several script calls per batch
    o.max_age = std::chrono::hours(0);  // the commit times here are in 2000
    return o;
  }
  RedisArchive archive() const { return RedisArchive(options().connection); }
  std::vector<ArchiveEntry> all() {
    auto a = archive();
    return a.range("-", "+", 100000);
  }
  static Batch batch(std::vector<Transaction> txns) {
    Batch b;
    b.transactions = std::move(txns);
    return b;
  }
  // Walks the chain: every prev is the previous hash and every hash recomputes.
  static void expect_chain(const std::vector<ArchiveEntry>& entries, std::string prev) {
    for (const auto& e : entries) {
      ASSERT_NE(e.field("prev"), nullptr) << e.id;
      EXPECT_EQ(*e.field("prev"), prev) << e.id;
      EXPECT_EQ(*e.field("hash"), archive_entry_hash(prev, e.id, e.hashed_fields())) << e.id;
      prev = *e.field("hash");
    }
  }

  RelationPtr rel_ = test::relation("public", "customers", {"id", "name", "email", "tier"});
  RelationPtr other_ = test::relation("public", "payment_methods", {"id", "card"}, 17000);
  Mapping mapping_;
  std::string pipeline_;
};

TEST_F(ArchiveSink, AppendsEveryMappedChangeInTargetFormWithAChainAndAHead) {
  RedisArchiveSink sink(mapping_, options());
  EXPECT_FALSE(sink.load_progress());
  auto t1 = test::txn(700, 0x1000,
                      {insert(rel_, 0xF00, tuple({"1", "Alice Secret", "alice@example.com", "gold"})),
                       insert(other_, 0xF08, tuple({"9", "4111111111111111"})),
                       insert(rel_, 0xF10, tuple({"2", "Bob Secret", "bob@example.com", "silver"}))});
  auto t2 = test::txn(701, 0x2000,
                      {update(rel_, 0x1F00, tuple({"1", "Alice Secret", "alice@example.com", "plat"})),
                       remove(rel_, 0x1F08, tuple({"2", std::nullopt, std::nullopt, std::nullopt}))});
  const auto durable = sink.apply(batch({t1, t2}));
  ASSERT_TRUE(durable);
  EXPECT_EQ(*durable, Lsn{0x2000});

  const auto entries = all();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].id, archive_entry_id(Lsn{0x1000 - 8}, 0));
  EXPECT_EQ(entries[1].id, archive_entry_id(Lsn{0x1000 - 8}, 1));
  EXPECT_EQ(entries[2].id, archive_entry_id(Lsn{0x2000 - 8}, 0));
  EXPECT_EQ(entries[3].id, archive_entry_id(Lsn{0x2000 - 8}, 1));
  expect_chain(entries, std::string(kArchiveGenesisHash));
  for (const auto& e : entries) {
    EXPECT_EQ(*e.field("topic"), "shop.ref.customer");
    for (const auto& [k, v] : e.fields) {
      EXPECT_EQ(v.find("Secret"), std::string::npos) << k;
      EXPECT_EQ(v.find("example.com"), std::string::npos) << k;
      EXPECT_EQ(v.find("4111111111111111"), std::string::npos) << k;
    }
  }
  EXPECT_EQ(entries[0].field("end"), nullptr);
  ASSERT_NE(entries[1].field("end"), nullptr);
  EXPECT_EQ(*entries[1].field("end"), Lsn{0x1000}.str());
  EXPECT_EQ(*entries[3].field("lsn"), Lsn{0x2000 - 8}.str());
  EXPECT_EQ(*entries[3].field("xid"), "701");
  const auto row = decode_archived_change(*entries[3].field("row"), entries[3].id);
  EXPECT_EQ(row.op, ArchivedOp::Delete);
  EXPECT_NE(entries[2].field("value")->find("\"op\":\"u\""), std::string::npos);
  EXPECT_NE(entries[0].field("key")->find("customer_id"), std::string::npos);

  auto a = archive();
  const auto head = a.head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->last_id, entries[3].id);
  EXPECT_EQ(head->last_hash, *entries[3].field("hash"));
  EXPECT_EQ(head->end_lsn, Lsn{0x2000});
  const auto progress = sink.load_progress();
  ASSERT_TRUE(progress);
  EXPECT_EQ(progress->end_lsn, Lsn{0x2000});
  EXPECT_EQ(progress->xid.value, 701u);
}

TEST_F(ArchiveSink, ARestartSkipsWhatIsAlreadyThereAndContinuesTheChain) {
  auto t1 = test::txn(700, 0x1000, {insert(rel_, 0xF00, tuple({"1", "a", "a@x", "gold"}))});
  auto t2 = test::txn(701, 0x2000, {insert(rel_, 0x1F00, tuple({"2", "b", "b@x", "gold"}))});
  auto t3 = test::txn(702, 0x3000, {insert(rel_, 0x2F00, tuple({"3", "c", "c@x", "gold"}))});
  {
    RedisArchiveSink sink(mapping_, options());
    sink.apply(batch({t1, t2}));
  }
  // What the metrics see (cdcsync_archive_entries_total{outcome}).
  std::map<std::string, std::uint64_t> observed;
  auto o = options();
  o.observer.entries = [&](std::string_view outcome, std::uint64_t n) {
    observed[std::string(outcome)] += n;
  };
  RedisArchiveSink again(mapping_, o);
  ASSERT_EQ(again.load_progress()->end_lsn, Lsn{0x2000});
  EXPECT_EQ(again.apply(batch({t1, t2, t3})), Lsn{0x3000});
  EXPECT_EQ(again.stats().entries_skipped, 2u);
  EXPECT_EQ(again.stats().entries_appended, 1u);
  EXPECT_EQ(observed, (std::map<std::string, std::uint64_t>{{"appended", 1}, {"skipped", 2}}));
  const auto entries = all();
  ASSERT_EQ(entries.size(), 3u);
  expect_chain(entries, std::string(kArchiveGenesisHash));
}

TEST_F(ArchiveSink, ChunksCountAcrossChunksAndTheHeadMovesOnlyWithTheLastOne) {
  RedisArchiveSink sink(mapping_, options());
  auto first = test::txn(800, 0x5000,
                         {insert(rel_, 0x4000, tuple({"1", "a", "a@x", "g"})),
                          insert(rel_, 0x4008, tuple({"2", "a", "a@x", "g"}))});
  first.last_chunk = false;
  first.info.end_lsn = Lsn{};
  auto last = test::txn(800, 0x5000, {insert(rel_, 0x4010, tuple({"3", "a", "a@x", "g"}))});
  last.first_chunk = false;
  EXPECT_FALSE(sink.apply(batch({first})));
  EXPECT_FALSE(sink.load_progress());  // nothing whole yet
  EXPECT_EQ(sink.apply(batch({last})), Lsn{0x5000});
  const auto entries = all();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].id, archive_entry_id(Lsn{0x5000 - 8}, 2));
  EXPECT_NE(entries[2].field("end"), nullptr);
  EXPECT_EQ(sink.load_progress()->end_lsn, Lsn{0x5000});
}

TEST_F(ArchiveSink, SnapshotRowsSitJustBelowTheConsistentPoint) {
  RedisArchiveSink sink(mapping_, options());
  auto snap = test::txn(0, 0x6000, {insert(rel_, 0x6000, tuple({"1", "a", "a@x", "g"}))});
  snap.info.final_lsn = Lsn{0x6000};
  snap.info.snapshot = true;
  // A streamed transaction whose commit record starts exactly at the consistent point.
  auto next = test::txn(801, 0x6100, {insert(rel_, 0x6000, tuple({"2", "b", "b@x", "g"}))});
  next.info.final_lsn = Lsn{0x6000};
  sink.apply(batch({snap, next}));
  const auto entries = all();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].id, archive_entry_id(Lsn{0x6000 - 1}, 0));
  EXPECT_EQ(decode_archived_change(*entries[0].field("row"), entries[0].id).op, ArchivedOp::Read);
  EXPECT_EQ(*entries[0].field("lsn"), Lsn{0x6000}.str());  // the rows' version stays the consistent point
  EXPECT_EQ(entries[1].id, archive_entry_id(Lsn{0x6000}, 0));
}

TEST_F(ArchiveSink, RefusesToInterleaveWithAnotherWriter) {
  RedisArchiveSink a(mapping_, options());
  RedisArchiveSink b(mapping_, options());
  a.apply(batch({test::txn(1, 0x1000, {insert(rel_, 0xF00, tuple({"1", "a", "a@x", "g"}))})}));
  b.apply(batch({test::txn(2, 0x2000, {insert(rel_, 0x1F00, tuple({"2", "a", "a@x", "g"}))})}));
  // `a` still believes the head is its own last entry.
  EXPECT_THROW(a.apply(batch({test::txn(3, 0x3000, {insert(rel_, 0x2F00, tuple({"3", "a", "a@x", "g"}))})})),
               TransientError);
  // After the error it rereads the head and appends after b's entry.
  a.apply(batch({test::txn(3, 0x3000, {insert(rel_, 0x2F00, tuple({"3", "a", "a@x", "g"}))})}));
  const auto entries = all();
  ASSERT_EQ(entries.size(), 3u);
  expect_chain(entries, std::string(kArchiveGenesisHash));
}

TEST_F(ArchiveSink, TrimsTransactionsOlderThanMaxAgeAtATransactionStart) {
  auto o = options();
  o.max_age = std::chrono::hours(1);
  o.trim_interval = std::chrono::milliseconds(0);
  std::int64_t now = 0;
  o.clock_unix_ms = [&] { return now; };
  RedisArchiveSink sink(mapping_, o);
  // Commit times: txn(...) uses PG-epoch 1 s; make three transactions an hour apart.
  std::vector<Transaction> txns;
  for (int i = 0; i < 3; ++i) {
    auto t =
        test::txn(900 + i, 0x1000 * (i + 1),
                  {insert(rel_, 0x1000 * (i + 1) - 16, tuple({std::to_string(i), "a", "a@x", "g"})),
                   insert(rel_, 0x1000 * (i + 1) - 12, tuple({std::to_string(i + 10), "a", "a@x", "g"}))});
    t.info.commit_time_us = std::int64_t{i} * 3600 * 1'000'000;
    txns.push_back(t);
  }
  now = pg_micros_to_unix_micros(0) / 1000;  // nothing old yet
  sink.apply(batch(txns));
  EXPECT_EQ(all().size(), 6u);
  now = pg_micros_to_unix_micros(std::int64_t{2} * 3600 * 1'000'000 + 60'000'000) / 1000;  // 2 h 1 min later
  sink.apply(batch({test::txn(950, 0x9000, {})}));
  const auto entries = all();
  ASSERT_EQ(entries.size(), 2u);  // only the transaction committed 1 min ago is younger than 1 h
  EXPECT_EQ(entries[0].id, archive_entry_id(Lsn{0x3000 - 8}, 0));
  EXPECT_EQ(sink.stats().entries_trimmed, 4u);
}

}  // namespace
}  // namespace cdcsync
