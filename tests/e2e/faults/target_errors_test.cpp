// Target errors while the daemon streams: a privilege revoked (an operator must act: exit 4, and nothing
// is lost once it is granted again), a table locked for longer than target.statement_timeout_ms (retried
// until the lock goes), and a full disk (a tmpfs tablespace, or a trigger raising SQLSTATE 53100 where
// mounting is not permitted: retried with backoff until space is back).
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <regex>
#include <thread>

#include "tests/e2e/faults/faults_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::unique_ptr<DaemonProcess> streaming_daemon(SyncPipeline& p, const ConfigOptions& co = {},
                                                const std::string& target_keys = "") {
  Workload::insert_rows(p.customer_admin(), 200, "seed");
  std::string config = p.config(co);
  if (!target_keys.empty()) config.replace(config.find("[target]\n"), 9, "[target]\n" + target_keys);
  auto d = std::make_unique<DaemonProcess>(p.dir(), "cdcsync", config);
  d->start();
  EXPECT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  return d;
}

void expect_recovered(SyncPipeline& p, Workload& load, DaemonProcess& d) {
  ASSERT_TRUE(load.wait_finished(90s));
  std::cout << "[ e2e      ] " << load.summary() << std::endl;
  p.expect_oracle(load.deleted_ids(), 60s, &d);
  ASSERT_TRUE(d.running()) << "the daemon exited by itself:\n" << d.log_tail();
  d.terminate();
  EXPECT_EQ(d.wait_exit(15s), 0) << d.log_tail();
}

TEST(FaultsTarget, APrivilegeRevokedMidStreamExitsFourNamingTableAndSqlstateAndAfterAGrantNothingIsLost) {
  SyncPipeline p{"tgt_revoke"};
  auto d = streaming_daemon(p);
  Workload load{p.workload_options(8s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  exec_sql(p.order_admin(), "REVOKE UPDATE ON ref.customer FROM cdcsync_target");
  const auto code = d->wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << "still running without the UPDATE privilege:\n" << d->log_tail();
  EXPECT_EQ(*code, 4) << d->log_tail();
  EXPECT_TRUE(std::regex_search(d->log(), std::regex("refused source transaction [0-9A-F]+/[0-9A-F]+ on "
                                                     "ref\\.customer \\(SQLSTATE 42501\\)")))
      << d->log_tail();
  EXPECT_GE(d->log_count("permission denied for table customer"), 1u) << d->log_tail();

  exec_sql(p.order_admin(), "GRANT UPDATE ON ref.customer TO cdcsync_target");
  d->start();
  expect_recovered(p, load, *d);
}

TEST(FaultsTarget, ALockHeldLongerThanTheStatementTimeoutIsRetriedAndLosesNothing) {
  SyncPipeline p{"tgt_lock"};
  auto d = streaming_daemon(p, {}, "statement_timeout_ms = 1000\n");
  Workload load{p.workload_options(10s, 50)};
  load.start();
  std::this_thread::sleep_for(2s);
  {
    PgConn locker = pg_connect(p.order_admin(), "the order DB (lock holder)");
    pg_exec(locker.get(), "BEGIN; LOCK TABLE ref.customer IN ACCESS EXCLUSIVE MODE", "locking ref.customer");
    const auto locked_at = Clock::now();
    ASSERT_TRUE(wait_for_log(*d, "57014", 15s)) << d->log_tail();
    std::cout << "[ e2e      ] first statement timeout " << ms_since(locked_at) << " ms after the lock"
              << std::endl;
    ASSERT_TRUE(eventually([&] { return d->log_count("57014") >= 3; }, 20s)) << d->log_tail();
    pg_exec(locker.get(), "COMMIT", "releasing the lock");
  }
  const auto released_at = Clock::now();
  const auto progress = p.progress();
  ASSERT_TRUE(eventually([&] { return p.progress()->end_lsn > progress->end_lsn; }, 20s)) << d->log_tail();
  std::cout << "[ e2e      ] applying again " << ms_since(released_at) << " ms after the lock was released; "
            << d->log_count("57014") << " statement timeouts" << std::endl;
  EXPECT_GE(d->log_count("canceling statement due to statement timeout"), 1u) << d->log_tail();
  expect_recovered(p, load, *d);
}

// A tablespace on a tiny tmpfs for ref.customer and a filler table that takes all of its space; or, where
// mounting is not permitted, a trigger that raises SQLSTATE 53100 (disk_full) until it is dropped.
class DiskFull {
 public:
  explicit DiskFull(const SyncPipeline& p) : p_(p) {
    // Not under the pipeline's directory: the server's user must be able to reach the mount point.
    dir_ = make_temp_dir("cdcsync-tiny-tablespace");
    std::filesystem::permissions(dir_, std::filesystem::perms(0755));
    const passwd* pg = getpwnam("postgres");
    const std::string opts = "size=2m,mode=0700" + (pg != nullptr ? ",uid=" + std::to_string(pg->pw_uid) +
                                                                        ",gid=" + std::to_string(pg->pw_gid)
                                                                  : std::string());
    if (geteuid() == 0 && mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
      exec_sql(p.order_admin(), "CREATE TABLESPACE " + tablespace() + " LOCATION '" + dir_ + "'");
      exec_sql(p.order_admin(), "ALTER TABLE ref.customer SET TABLESPACE " + tablespace() +
                                    "; CREATE TABLE public.filler (pad text) TABLESPACE " + tablespace());
      std::cout << "[ e2e      ] disk full: a 2 MiB tmpfs tablespace at " << dir_ << std::endl;
    } else {
      std::cout << "[ e2e      ] disk full: mounting a tmpfs is not permitted here, simulated by a trigger "
                   "raising SQLSTATE 53100"
                << std::endl;
    }
  }
  ~DiskFull() {
    try {
      if (mounted_) {
        exec_sql(p_.order_admin(), "DROP TABLE IF EXISTS public.filler");
        exec_sql(p_.order_admin(), "ALTER TABLE ref.customer SET TABLESPACE pg_default");
        exec_sql(p_.order_admin(), "DROP TABLESPACE IF EXISTS " + tablespace());
      }
    } catch (const std::exception& e) {
      std::cout << "[ e2e      ] cleanup: " << e.what() << std::endl;
    }
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

  void fill() {
    if (!mounted_) {
      exec_sql(p_.order_admin(),
               "CREATE FUNCTION public.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "RAISE EXCEPTION 'could not extend file: No space left on device (simulated)' USING ERRCODE = "
               "'53100'; END $$; CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON ref.customer "
               "FOR EACH ROW EXECUTE FUNCTION public.disk_full()");
      return;
    }
    // Incompressible rows until the tablespace is full.
    for (int i = 0; i < 200; ++i) {
      try {
        exec_sql(p_.order_admin(),
                 "INSERT INTO public.filler SELECT string_agg(md5(random()::text), '') FROM "
                 "generate_series(1, 60) "
                 "CROSS JOIN generate_series(1, 20) g GROUP BY g");
      } catch (const PgError& e) {
        if (e.sqlstate() == "53100") return;
        throw;
      }
    }
    throw std::runtime_error("the tablespace never filled up");
  }

  void free_space() {
    // DROP, not TRUNCATE: a truncated table needs a new file, and there is no room left for one.
    exec_sql(p_.order_admin(),
             mounted_ ? "DROP TABLE public.filler"
                      : "DROP TRIGGER disk_full ON ref.customer; DROP FUNCTION public.disk_full()");
  }

 private:
  std::string tablespace() const { return "e2e_tiny_" + std::to_string(getpid()); }
  const SyncPipeline& p_;
  std::string dir_;
  bool mounted_ = false;
};

TEST(FaultsTarget, ADiskFullTargetIsRetriedWithBackoffAndTheStreamGoesOnOnceSpaceIsBack) {
  SyncPipeline p{"tgt_disk_full"};
  DiskFull disk{p};
  ConfigOptions co;
  co.reconnect_min_ms = 100;
  co.reconnect_max_ms = 1600;
  auto d = streaming_daemon(p, co);
  Workload load{p.workload_options(10s, 50)};
  load.start();
  std::this_thread::sleep_for(1s);
  disk.fill();
  const auto full_at = Clock::now();
  ASSERT_TRUE(wait_for_log(*d, "53100", 20s)) << d->log_tail();
  std::cout << "[ e2e      ] first disk-full error " << ms_since(full_at) << " ms after the disk filled"
            << std::endl;
  // Backoff: the waits between retries grow while nothing can be applied.
  ASSERT_TRUE(eventually([&] { return d->log_count("53100") >= 5; }, 30s)) << d->log_tail();
  std::vector<long> waits;
  const std::string log = d->log();
  const std::regex wait_re("target failed, reconnecting in ([0-9]+) ms: .*53100");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), wait_re); it != std::sregex_iterator(); ++it) {
    waits.push_back(std::stol((*it)[1].str()));
  }
  ASSERT_GE(waits.size(), 5u) << d->log_tail();
  EXPECT_GE(waits.back(), 400) << "the retries did not back off:\n" << d->log_tail();
  const auto progress = p.progress();
  disk.free_space();
  const auto freed_at = Clock::now();
  ASSERT_TRUE(eventually([&] { return p.progress()->end_lsn > progress->end_lsn; }, 30s)) << d->log_tail();
  std::cout << "[ e2e      ] applying again " << ms_since(freed_at) << " ms after space was freed, after "
            << waits.size() << " disk-full retries (last wait " << waits.back() << " ms)" << std::endl;
  expect_recovered(p, load, *d);
}

}  // namespace
}  // namespace cdcsync::test
