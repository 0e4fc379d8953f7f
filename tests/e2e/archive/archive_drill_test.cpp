// The event archive end to end: the restore drill (dump the order DB, keep syncing under load, restore the
// dump, `cdcsync replay --from-lsn <the dump's progress>`, restart: the target equals the source), the
// dry-run preview, replay's refusals, and `cdcsync audit verify-archive` against an altered field, a
// deleted entry and a rewritten head.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "decoders/lsn.h"
#include "sinks/redis_archive_sink.h"
#include "tests/e2e/recovery/recovery_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

const RecoveryConfig kArchived{.customers_extra = "\n[archive]\nenabled = true\n"};

void clear_archive(const RecoveryPipeline& p) {
  redis_command({"DEL", archive_stream_key(p.pipeline()), archive_head_key(p.pipeline())});
}

void workload(const std::string& conninfo, const std::atomic<bool>& stop, std::uint64_t seed,
              std::atomic<int>& txns) {
  auto conn = pg_connect(conninfo, "workload");
  std::mt19937_64 rng{seed};
  auto id = [&] { return std::to_string(1 + rng() % 600); };
  while (!stop.load()) {
    std::string sql = "BEGIN;";
    for (int i = 0; i < 3; ++i) {
      const std::string k = id();
      switch (rng() % 5) {
        case 0:
        case 1:
          sql += "UPDATE public.customers SET full_name = 'N' || " + std::to_string(rng() % 100000) +
                 ", tier = 't" + std::to_string(rng() % 5) + "' WHERE id = " + k + ";";
          break;
        case 2:
          sql += "DELETE FROM public.customers WHERE id = " + k + ";";
          break;
        case 3:
          sql += "INSERT INTO public.customers (id, full_name, email) VALUES (" + k + ", 'R" + k + "', 'r" +
                 k + "@x') ON CONFLICT DO NOTHING;";
          break;
        default:
          sql += "UPDATE public.loyalty_accounts SET points = points + 1 WHERE customer_id = " + k + ";";
      }
    }
    sql += "COMMIT;";
    pg_exec(conn.get(), sql.c_str(), "workload");
    ++txns;
    std::this_thread::sleep_for(3ms);
  }
}

std::optional<Lsn> progress(const RecoveryPipeline& p) {
  const auto v = query_value(
      p.order_admin(), "SELECT end_lsn::text FROM ref.cdc_progress WHERE pipeline = '" + p.pipeline() + "'");
  return v ? Lsn::parse(*v) : std::nullopt;
}

bool caught_up(const RecoveryPipeline& p, Lsn lsn) {
  const auto v = query_value(
      p.order_admin(), "SELECT greatest(end_lsn, acked_lsn)::text FROM ref.cdc_progress WHERE pipeline = '" +
                           p.pipeline() + "'");
  const auto at = v ? Lsn::parse(*v) : std::nullopt;
  return at && *at >= lsn;
}

Lsn source_now(const RecoveryPipeline& p) {
  return *Lsn::parse(*query_value(p.customer_admin(), "SELECT pg_current_wal_lsn()::text"));
}

int shell(const std::string& cmd) {
  std::cout << "[ shell    ] " << cmd << "\n" << std::flush;
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(ArchiveDrill, ARestoredOrderDbIsReplayedFromTheDumpsProgressAndEqualsTheSourceAgain) {
  RecoveryPipeline p{"arch_drill", kArchived};
  clear_archive(p);
  exec_sql(
      p.customer_admin(),
      "INSERT INTO public.customers (id, full_name, email, tier) SELECT g, 'Name ' || g, 'c' || g || '@x', "
      "'gold' FROM generate_series(1, 500) g; INSERT INTO public.loyalty_accounts (customer_id, points) "
      "SELECT g, g FROM generate_series(1, 500, 2) g");
  p.start_daemon();
  ASSERT_TRUE(eventually(
      [&] { return query_value(p.order_admin(), "SELECT count(*)::text FROM ref.customer") == "500"; }, 60s,
      100ms))
      << p.daemon_log();

  std::atomic<bool> stop{false};
  std::atomic<int> txns{0};
  std::thread load([&] { workload(p.customer_admin(), stop, 7, txns); });
  ASSERT_TRUE(eventually([&] { return txns.load() > 100; }, 60s, 50ms));

  // The nightly backup, taken while the daemon writes.
  const std::string bin = TestServers::get().env("CDCSYNC_PG_BIN");
  const std::string dump = p.dir() + "/orders.dump";
  ASSERT_EQ(shell(bin + "/pg_dump -Fc -f " + dump + " --dbname='" + p.order_admin() + "'"), 0);

  const int before = txns.load();
  ASSERT_TRUE(eventually([&] { return txns.load() > before + 300; }, 60s, 50ms));
  stop = true;
  load.join();
  const Lsn end = source_now(p);
  ASSERT_TRUE(eventually([&] { return caught_up(p, end); }, 60s, 100ms)) << p.daemon_log();
  ASSERT_EQ(source_customers(p), target_customers(p));
  p.stop_daemon();

  // The order DB goes back in time.
  ASSERT_EQ(shell(bin + "/pg_restore --clean --if-exists --single-transaction --dbname='" + p.order_admin() +
                  "' " + dump),
            0);
  const auto restored = progress(p);
  ASSERT_TRUE(restored);
  ASSERT_NE(source_customers(p), target_customers(p)) << "the dump was taken too late to prove anything";

  const auto refused = p.cdcsync({"run", "--config", "CONFIG"}, 60s);
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE((refused.out + refused.err).find("cdcsync replay"), std::string::npos);

  // The preview names rows and changes nothing.
  const auto preview =
      p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", restored->str(), "--dry-run"});
  ASSERT_EQ(preview.exit_code, 0) << preview.err;
  EXPECT_NE(preview.out.find("ref.customer: "), std::string::npos);
  EXPECT_NE(preview.out.find("row(s) would change"), std::string::npos);
  EXPECT_EQ(progress(p), restored);
  const auto preview_json =
      p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", restored->str(), "--dry-run", "--json"});
  ASSERT_EQ(preview_json.exit_code, 0) << preview_json.err;
  EXPECT_NE(preview_json.out.find("\"dry_run\":true"), std::string::npos);
  EXPECT_NE(preview_json.out.find("\"current\""), std::string::npos);

  const auto replayed = p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", restored->str()}, 300s);
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  EXPECT_NE(replayed.out.find("moved from " + restored->str()), std::string::npos) << replayed.out;
  EXPECT_EQ(source_customers(p), target_customers(p));
  EXPECT_EQ(source_loyalty(p), target_loyalty(p));

  // Replaying again changes nothing; the daemon starts again and the target equals the source.
  const auto again = p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", restored->str()}, 300s);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  p.start_daemon();
  exec_sql(p.customer_admin(), "UPDATE public.customers SET tier = 'after-replay' WHERE id <= 10");
  const Lsn end2 = source_now(p);
  ASSERT_TRUE(eventually([&] { return caught_up(p, end2); }, 60s, 100ms)) << p.daemon_log();
  EXPECT_EQ(source_customers(p), target_customers(p));
  EXPECT_EQ(source_loyalty(p), target_loyalty(p));
  const auto v = p.cdcsync({"verify", "--config", "CONFIG"});
  EXPECT_EQ(v.exit_code, 0) << v.out;
  const auto audit = p.cdcsync({"audit", "verify-archive", "--config", "CONFIG"});
  EXPECT_EQ(audit.exit_code, 0) << audit.out;
  EXPECT_NE(audit.out.find("verified"), std::string::npos);
}

// An archive written by the sink itself (no daemon needed), for the refusal and tampering cases.
class ArchiveCommands : public ::testing::Test {
 protected:
  void fill(const RecoveryPipeline& p, int transactions) {
    clear_archive(p);
    TableMapping t;
    t.source = {"public", "customers"};
    t.target = {"ref", "customer"};
    t.key = {"id"};
    t.columns = {{"id", "customer_id", Transform::copy()}, {"tier", "tier", Transform::copy()}};
    t.deletes = DeletePolicy::Soft;
    ArchiveSinkOptions o;
    o.connection.url = RedisUrl::parse(TestServers::get().redis_url());
    o.connection.pipeline = p.pipeline();
    o.max_age = std::chrono::hours(0);  // fixed commit times in the past
    RedisArchiveSink sink(Mapping({t}), o);
    auto rel = std::make_shared<RelationDef>();
    rel->schema = "public";
    rel->name = "customers";
    rel->columns = {{"id", 23, -1, true}, {"tier", 25, -1, false}};
    Batch b;
    for (int i = 1; i <= transactions; ++i) {
      Transaction txn;
      txn.info.xid = Xid{static_cast<std::uint32_t>(1000 + i)};
      txn.info.final_lsn = Lsn{0x100000ull * i};
      txn.info.end_lsn = Lsn{0x100000ull * i + 0x40};
      txn.info.commit_time_us = 800'000'000'000'000;
      for (int j = 0; j < 3; ++j) {
        Change c;
        c.op = ChangeOp::Insert;
        c.relation = rel;
        c.after.add_text(std::to_string(i * 10 + j));
        c.after.add_text("tier" + std::to_string(i));
        txn.changes.push_back(std::move(c));
      }
      b.transactions.push_back(std::move(txn));
    }
    sink.apply(b);
  }
  static std::vector<ArchiveEntry> entries(const RecoveryPipeline& p) {
    ArchiveConnectionOptions o;
    o.url = RedisUrl::parse(TestServers::get().redis_url());
    o.pipeline = p.pipeline();
    RedisArchive a(o);
    return a.range("-", "+", 100000);
  }
  // Rewrites the stream with `edit` applied to each entry (return false to drop it).
  static void rewrite(const RecoveryPipeline& p, const std::function<bool(ArchiveEntry&)>& edit) {
    auto all = entries(p);
    redis_command({"DEL", archive_stream_key(p.pipeline())});
    for (auto& e : all) {
      if (!edit(e)) continue;
      std::vector<std::string> argv{"XADD", archive_stream_key(p.pipeline()), e.id};
      for (const auto& [k, v] : e.fields) {
        argv.push_back(k);
        argv.push_back(v);
      }
      redis_command(argv);
    }
  }
};

TEST_F(ArchiveCommands,
       VerifyArchiveProvesAnIntactArchiveAndFindsAnAlteredFieldADeletedEntryAndARewrittenHead) {
  RecoveryPipeline p{"arch_audit", kArchived};
  fill(p, 5);
  auto ok = p.cdcsync({"audit", "verify-archive", "--config", "CONFIG"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("15 entries, 5 whole transaction(s)"), std::string::npos) << ok.out;

  const auto original = entries(p);
  ASSERT_EQ(original.size(), 15u);
  const std::string victim = original[7].id;

  rewrite(p, [&](ArchiveEntry& e) {
    if (e.id == victim) {
      for (auto& [k, v] : e.fields) {
        if (k == "row") v.replace(v.find("tier3"), 5, "tierX");
      }
    }
    return true;
  });
  auto altered = p.cdcsync({"audit", "verify-archive", "--config", "CONFIG", "--json"});
  EXPECT_EQ(altered.exit_code, 1) << altered.out;
  EXPECT_NE(altered.out.find("\"broken_id\":\"" + victim + "\""), std::string::npos) << altered.out;
  EXPECT_NE(altered.out.find("altered"), std::string::npos) << altered.out;

  rewrite(p, [&](ArchiveEntry& e) {
    for (const auto& o : original) {
      if (o.id == e.id) e = o;
    }
    return true;
  });
  EXPECT_EQ(p.cdcsync({"audit", "verify-archive", "--config", "CONFIG"}).exit_code, 0);

  redis_command({"XDEL", archive_stream_key(p.pipeline()), victim});
  auto deleted = p.cdcsync({"audit", "verify-archive", "--config", "CONFIG"});
  EXPECT_EQ(deleted.exit_code, 1) << deleted.out;
  EXPECT_NE(deleted.out.find("BROKEN at entry " + original[8].id), std::string::npos) << deleted.out;
  EXPECT_NE(deleted.out.find("missing"), std::string::npos) << deleted.out;

  fill(p, 5);
  EXPECT_EQ(p.cdcsync({"audit", "verify-archive", "--config", "CONFIG"}).exit_code, 0);
  redis_command({"HSET", archive_head_key(p.pipeline()), "last_hash", std::string(64, 'a')});
  auto head = p.cdcsync({"audit", "verify-archive", "--config", "CONFIG"});
  EXPECT_EQ(head.exit_code, 1) << head.out;
  EXPECT_NE(head.out.find("head key"), std::string::npos) << head.out;
}

TEST_F(ArchiveCommands, ReplayRefusesADisabledEmptyTrimmedOrBrokenArchiveAndSaysWhy) {
  RecoveryPipeline p{"arch_refuse", kArchived};
  clear_archive(p);
  auto empty = p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", "0/1"});
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.err.find("is empty"), std::string::npos) << empty.err;

  fill(p, 5);
  const auto all = entries(p);
  // Trim the two oldest transactions: an older --from-lsn is refused naming the oldest entry left.
  redis_command({"XTRIM", archive_stream_key(p.pipeline()), "MINID", all[6].id});
  auto trimmed = p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", Lsn{0x100000}.str()});
  EXPECT_EQ(trimmed.exit_code, 1);
  EXPECT_NE(trimmed.err.find("older than the oldest entry"), std::string::npos) << trimmed.err;
  EXPECT_NE(trimmed.err.find(all[6].id), std::string::npos) << trimmed.err;

  redis_command({"XDEL", archive_stream_key(p.pipeline()), all[10].id});
  auto gap = p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", Lsn{0x300000}.str(), "--dry-run"});
  EXPECT_EQ(gap.exit_code, 1);
  EXPECT_NE(gap.err.find("chain is broken at entry " + all[11].id), std::string::npos) << gap.err;

  // The archive disabled in the config.
  std::string cfg;
  {
    std::ifstream in(p.config_path());
    cfg.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  cfg.replace(cfg.find("enabled = true"), 14, "enabled = false");
  std::ofstream(p.config_path()) << cfg;
  auto disabled = p.cdcsync({"replay", "--config", "CONFIG", "--from-lsn", "0/1"});
  EXPECT_EQ(disabled.exit_code, 1);
  EXPECT_NE(disabled.err.find("archive.enabled = false"), std::string::npos) << disabled.err;
}

}  // namespace
}  // namespace cdcsync::test
