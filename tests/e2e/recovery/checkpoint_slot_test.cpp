// cdcsync checkpoint show|set|reset and cdcsync slot status|create|drop; and the exit code every admin
// command gives when a server does not answer.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "decoders/replication_stream.h"
#include "tests/e2e/recovery/recovery_fixture.h"

namespace cdcsync::test {
namespace {

std::string checkpoint_key(const RecoveryPipeline& p) {
  return "cdcsync:{" + p.pipeline() + "}:checkpoint";
}

TEST(CheckpointCommand, ShowPrintsRedisLeaseProgressAndSlotSideBySide) {
  RecoveryPipeline p{"ckpt_show"};
  redis_command({"HSET", checkpoint_key(p), "lsn", "0/16B3748", "lsn_hex", "00000000016B3748", "unix_ms", "1",
                 "owner", "test"});
  exec_sql(p.order_admin(),
           "INSERT INTO ref.cdc_progress (pipeline, end_lsn, xid, acked_lsn, applied_by) VALUES ('" +
               p.pipeline() + "', '0/16B3748', 7, '0/16B3750', 'tester')");
  ASSERT_EQ(p.cdcsync({"slot", "create", "--config", "CONFIG"}).exit_code, 0);
  const auto r = p.cdcsync({"checkpoint", "show", "--config", "CONFIG"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("redis checkpoint  " + checkpoint_key(p) + ": 0/16B3748"), std::string::npos);
  EXPECT_NE(r.out.find(": (free)"), std::string::npos);
  EXPECT_NE(r.out.find("end_lsn 0/16B3748, acked_lsn 0/16B3750, xid 7"), std::string::npos);
  EXPECT_NE(r.out.find("slot              " + p.slot() + ": confirmed_flush_lsn "), std::string::npos);
}

TEST(CheckpointCommand, SetWithoutYesSaysWhatWouldHappenAndChangesNothing) {
  RecoveryPipeline p{"ckpt_dry"};
  const auto r = p.cdcsync({"checkpoint", "set", "--config", "CONFIG", "--lsn", "1/2"});
  EXPECT_EQ(r.exit_code, 2) << "a missing --yes is a usage error, as in every command";
  EXPECT_NE(r.out.find("would set " + checkpoint_key(p) + " from (none) to 1/2"), std::string::npos);
  EXPECT_NE(r.out.find("add --yes"), std::string::npos);
  EXPECT_EQ(redis_command({"HGET", checkpoint_key(p), "lsn"}), "(nil)");
}

TEST(CheckpointCommand, SetRejectsAMalformedLsnAndNamesIt) {
  RecoveryPipeline p{"ckpt_bad"};
  const auto r = p.cdcsync({"checkpoint", "set", "--config", "CONFIG", "--lsn", "16-B374", "--yes"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--lsn \"16-B374\" is not an LSN"), std::string::npos);
}

TEST(CheckpointCommand, SetAndResetWithYesEditTheRedisMirror) {
  RecoveryPipeline p{"ckpt_edit"};
  const auto set = p.cdcsync({"checkpoint", "set", "--config", "CONFIG", "--lsn", "1/2", "--yes"});
  EXPECT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(redis_command({"HGET", checkpoint_key(p), "lsn"}), "1/2");
  const auto reset = p.cdcsync({"checkpoint", "reset", "--config", "CONFIG", "--yes"});
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(redis_command({"EXISTS", checkpoint_key(p)}), "0");
}

TEST(CheckpointCommand, RefusesToEditWhileADaemonHoldsTheLease) {
  RecoveryPipeline p{"ckpt_lease"};
  redis_command({"SET", "cdcsync:{" + p.pipeline() + "}:lease", "host:42:abc", "PX", "60000"});
  const auto r = p.cdcsync({"checkpoint", "reset", "--config", "CONFIG", "--yes"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is held by host:42:abc: stop that daemon first"), std::string::npos);
}

TEST(SlotCommand, StatusOfAMissingSlotExitsOneAndSaysHowToCreateIt) {
  RecoveryPipeline p{"slot_missing"};
  const auto r = p.cdcsync({"slot", "status", "--config", "CONFIG"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("slot " + p.slot() + " does not exist on the source"), std::string::npos);
}

TEST(SlotCommand, CreateThenStatusShowsPositionsAndRetainedWal) {
  RecoveryPipeline p{"slot_create"};
  const auto c = p.cdcsync({"slot", "create", "--config", "CONFIG"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("created slot " + p.slot() + " at "), std::string::npos);
  EXPECT_EQ(p.cdcsync({"slot", "create", "--config", "CONFIG"}).exit_code, 1) << "a second create is refused";
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (full_name, email) SELECT 'n', 'e' || g FROM "
           "generate_series(1, 100) g");
  const auto s = p.cdcsync({"slot", "status", "--config", "CONFIG"});
  EXPECT_EQ(s.exit_code, 0) << s.err;
  for (const auto* field :
       {"active               false", "confirmed_flush_lsn  ", "restart_lsn          ",
        "retained WAL bytes   ", "wal_status           reserved", "safe_wal_size        "}) {
    EXPECT_NE(s.out.find(field), std::string::npos) << field;
  }
  EXPECT_EQ(s.out.find("retained WAL bytes   0 "), std::string::npos) << "the inserts are retained";
}

TEST(SlotCommand, DropNeedsYesAndRefusesWhileTheSlotIsActive) {
  RecoveryPipeline p{"slot_drop"};
  ASSERT_EQ(p.cdcsync({"slot", "create", "--config", "CONFIG"}).exit_code, 0);
  const auto dry = p.cdcsync({"slot", "drop", "--config", "CONFIG"});
  EXPECT_EQ(dry.exit_code, 2) << "a missing --yes is a usage error, as in every command";
  EXPECT_NE(dry.out.find("would drop slot " + p.slot()), std::string::npos);
  EXPECT_TRUE(query_value(p.customer_admin(),
                          "SELECT 1 FROM pg_replication_slots WHERE slot_name = '" + p.slot() + "'"));
  {
    ReplicationStream stream{TestServers::get().source_conninfo("rec_slot_drop_customers")};
    StreamOptions options;
    options.publications = {"cdcsync_customers"};
    stream.start(p.slot(), Lsn{}, options);
    const auto active = p.cdcsync({"slot", "drop", "--config", "CONFIG", "--yes"});
    EXPECT_EQ(active.exit_code, 1);
    EXPECT_NE(active.err.find("is active (pid "), std::string::npos);
  }
  ASSERT_TRUE(eventually(
      [&] {
        return query_value(p.customer_admin(),
                           "SELECT active::text FROM pg_replication_slots WHERE slot_name = '" + p.slot() +
                               "'") == "false";
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50)));
  const auto drop = p.cdcsync({"slot", "drop", "--config", "CONFIG", "--yes"});
  EXPECT_EQ(drop.exit_code, 0) << drop.err;
  EXPECT_FALSE(query_value(p.customer_admin(),
                           "SELECT 1 FROM pg_replication_slots WHERE slot_name = '" + p.slot() + "'"));
}

// One table of exit codes: a server that does not answer is "could not check" (7) in every admin command,
// never 1, which says the command found something (a divergence, a problem, a missing slot).
TEST(AdminCommands, ExitSevenWhenTheSourceOrRedisDoesNotAnswer) {
  RecoveryPipeline p{"unreachable"};
  const auto& s = TestServers::get();
  std::stringstream text;
  text << std::ifstream(p.config_path()).rdbuf();
  const std::string config = text.str();
  const auto with_port = [&](const std::string& from, const std::string& name) {
    std::string c = config;
    const auto at = c.find(from);
    EXPECT_NE(at, std::string::npos) << from << " in " << c;
    if (at != std::string::npos)
      c.replace(at, from.size(), from.substr(0, from.find_last_of("=:") + 1) + std::to_string(free_port()));
    const std::string path = p.dir() + "/" + name + ".toml";
    std::ofstream(path) << c;
    return path;
  };
  const std::string no_source = with_port("port=" + std::to_string(s.port(Server::Customer)), "no-source");
  const std::string no_redis = with_port("127.0.0.1:" + std::to_string(s.redis_port()), "no-redis");

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"verify", "--config", no_source},
                                             {"slot", "status", "--config", no_source},
                                             {"checkpoint", "show", "--config", no_source},
                                             {"resync", "--config", no_source, "--table", "ref.customer"},
                                             {"target-ddl", "--config", no_source},
                                             {"check", "--config", no_source},
                                             {"checkpoint", "show", "--config", no_redis},
                                             {"checkpoint", "reset", "--config", no_redis, "--yes"},
                                             {"dlq", "list", "--config", no_redis},
                                             {"check", "--config", no_redis}}) {
    const auto r = p.cdcsync(args, std::chrono::seconds(60));
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    EXPECT_EQ(r.exit_code, 7) << cmd << "\n" << r.out << r.err;
  }
  const auto check = p.cdcsync({"check", "--config", no_source});
  EXPECT_NE(check.out.find("COULD NOT CHECK source: connection"), std::string::npos) << check.out;
  const auto slot = p.cdcsync({"slot", "status", "--config", no_source});
  EXPECT_NE(slot.err.find("cdcsync: slot: could not check: "), std::string::npos) << slot.err;
}

}  // namespace
}  // namespace cdcsync::test
