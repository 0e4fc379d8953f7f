// Memory and disk bounds end to end (docs/reliability.md, "Memory and disk"): wide rows in one large
// transaction pass under a small memory.limit_bytes with the daemon's peak RSS within the documented bound,
// and a streamed transaction larger than spool.limit_bytes stops the pipeline with the error that names it,
// nothing confirmed past it, until a restart with a higher limit applies it with nothing lost.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>

#include "tests/e2e/sync/sync_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kBudget = 16 * kMiB;
constexpr int kRows = 300;
constexpr std::size_t kRowBytes = 512 * 1024;  // 16384 md5 digests: incompressible for pglz and lz4

// `rows` rows whose full_name (mapped) is kRowBytes of md5 hex, different for every row and call.
std::string wide_insert(int rows, const std::string& tag) {
  return "INSERT INTO public.customers (full_name, email) SELECT (SELECT string_agg(md5(random()::text || g "
         "|| "
         "i), '') FROM generate_series(1, " +
         std::to_string(kRowBytes / 32) + ") i), '" + tag +
         "-' || g || '@example.test' FROM generate_series(1, " + std::to_string(rows) + ") g";
}

std::string memory_config(std::size_t budget) {
  return "\n[memory]\nlimit_bytes = " + std::to_string(budget) + "\n";
}

TEST(SyncMemory, WideRowsInOneTransactionPassWithPeakMemoryWithinTheBudgetPlusThreeRows) {
  SyncPipeline p{"wide_memory"};
  ConfigOptions co;
  co.extra = memory_config(kBudget);
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  Workload::insert_rows(p.customer_admin(), 10, "narrow");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 60s)) << d->log_tail();
  const auto base = d->peak_rss_kib();
  ASSERT_TRUE(base.has_value()) << d->log_tail();

  exec_sql(p.customer_admin(), wide_insert(kRows, "wide"));
  exec_sql(
      p.customer_admin(),
      "UPDATE public.customers SET full_name = (SELECT string_agg(md5(random()::text || id || i), '') FROM "
      "generate_series(1, " +
          std::to_string(kRowBytes / 32) + ") i) WHERE email LIKE 'wide-%' AND id % 2 = 0");
  p.expect_oracle({}, 300s, d.get());
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer WHERE length(display_name) = " +
                                             std::to_string(kRowBytes)),
            std::to_string(kRows));

  const auto peak = d->peak_rss_kib();
  ASSERT_TRUE(peak.has_value()) << d->log_tail();
  // The bound of docs/reliability.md: what the daemon held before any wide row (R0), plus the budget, plus
  // three times the largest row (a row's message is its value plus a few dozen bytes), plus 4 MiB (COPY
  // pieces and allocator slack).
  const std::size_t bound_kib = *base + (kBudget + 3 * (kRowBytes + 4096) + 4 * kMiB) / 1024;
  std::cout << "[ e2e      ] " << kRows << " rows of " << kRowBytes / 1024 << " kB under a " << kBudget / kMiB
            << " MiB budget: VmHWM " << *peak / 1024 << " MiB (" << *base / 1024 << " MiB before them; bound "
            << bound_kib / 1024 << " MiB)" << std::endl;
  EXPECT_LE(*peak, bound_kib);
  d->terminate();
  EXPECT_EQ(d->wait_exit(30s), 0) << d->log_tail();
}

TEST(SyncMemory, AStreamedTransactionPastTheSpoolLimitStopsNamingItAndARestartWithMoreGoesOnWithNothingLost) {
  SyncPipeline p{"spool_limit"};
  const std::string spool = p.dir() + "/spool";
  ConfigOptions co;
  co.source_extra = "streaming = \"on\"\nproto_version = 2\n";
  co.source_options = "-c logical_decoding_work_mem=64kB";
  co.extra = "\n[spool]\nlimit_bytes = 1048576\ndirectory = \"" + spool + "\"\n";
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  Workload::insert_rows(p.customer_admin(), 5, "before");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 60s)) << d->log_tail();
  struct stat st {};
  ASSERT_EQ(::stat(spool.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "the spool directory is private";

  // About 4 MB of pgoutput messages, streamed in 64 kB blocks: the spool passes 1 MiB.
  Workload::insert_rows(p.customer_admin(), 20000, "streamed");
  const Lsn after_streamed = p.source_wal_lsn();
  const auto code = d->wait_exit(120s);
  ASSERT_TRUE(code.has_value()) << "the daemon did not stop\n" << d->log_tail();
  EXPECT_EQ(*code, 1) << d->log_tail();
  const std::string log = d->log();
  EXPECT_NE(log.find("spool.limit_bytes = 1048576 bytes"), std::string::npos) << d->log_tail();
  EXPECT_NE(log.find("source transaction xid "), std::string::npos) << d->log_tail();
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), "5")
      << "rows of the refused transaction were applied";
  const auto confirmed = p.slot_confirmed();
  ASSERT_TRUE(confirmed.has_value());
  EXPECT_LT(*confirmed, after_streamed) << "confirmed past the refused transaction";
  std::size_t left = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(spool)) ++left;
  EXPECT_EQ(left, 0u) << "spool files left behind";

  co.extra = "\n[spool]\nlimit_bytes = 67108864\ndirectory = \"" + spool + "\"\n";
  auto again = p.daemon("cdcsync-raised", co);
  again->start();
  p.expect_oracle({}, 180s, again.get());
  EXPECT_EQ(query_value(p.order_admin(), "SELECT count(*) FROM ref.customer"), "20005");
  again->terminate();
  EXPECT_EQ(again->wait_exit(30s), 0) << again->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
