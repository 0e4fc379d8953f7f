// End to end: an update whose large column did not change reaches the daemon without that column's value
// (unchanged TOAST). For a key the target has, the target keeps its value; for a key it lacks, the column is
// left NULL, and the daemon says so on /metrics (cdcsync_target_rows_without_toast_total, alert
// CdcsyncRowsWithoutToastValue).
#include <gtest/gtest.h>

#include "tests/e2e/sync/sync_fixture.h"
#include "tests/harness/eventually.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

TEST(SyncToast, AnUpdateWithoutItsToastValueKeepsTheTargetsValueOrCountsTheRowItHadToLeaveNull) {
  SyncPipeline p{"toast_metric"};
  // 12.8 kB of md5 hex: stored out of line, so an update that leaves it alone does not carry it.
  const std::string big = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)";
  exec_sql(p.customer_admin(), "INSERT INTO public.customers (id, full_name, email) VALUES (900001, " + big +
                                   ", 'kept@example.com'), (900002, " + big + ", 'lost@example.com')");
  ConfigOptions co;
  co.metrics_port = free_port();
  auto d = p.daemon("cdcsync", co);
  d->start();
  ASSERT_TRUE(wait_for_log(*d, kStreaming, 30s)) << d->log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();
  ASSERT_EQ(query_value(p.order_admin(),
                        "SELECT length(display_name) FROM ref.customer WHERE customer_id = 900001"),
            "12800");

  // The target loses one row (a restore, a manual delete); then both source rows change a small column.
  exec_sql(p.order_admin(), "DELETE FROM ref.customer WHERE customer_id = 900002");
  exec_sql(p.customer_admin(),
           "UPDATE public.customers SET status = 'suspended' WHERE id IN (900001, 900002)");
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d->log_tail();

  EXPECT_EQ(query_value(
                p.order_admin(),
                "SELECT length(display_name) || ' ' || status FROM ref.customer WHERE customer_id = 900001"),
            "12800 suspended");
  EXPECT_EQ(query_value(p.order_admin(),
                        "SELECT coalesce(display_name, '<null>') || ' ' || status FROM ref.customer "
                        "WHERE customer_id = 900002"),
            "<null> suspended");
  const std::string series =
      "cdcsync_target_rows_without_toast_total{pipeline=\"" + p.pipeline() + "\",table=\"ref.customer\"} 1";
  std::string metrics;
  EXPECT_TRUE(eventually(
      [&] {
        metrics = http_get(co.metrics_port, "/metrics");
        return metrics.find(series) != std::string::npos;
      },
      10s))
      << "no " << series << " in:\n"
      << metrics;
  d->terminate();
  EXPECT_EQ(d->wait_exit(10s), 0) << d->log_tail();
}

}  // namespace
}  // namespace cdcsync::test
