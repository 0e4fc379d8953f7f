// The decode-error drill: a pgoutput message corrupted on its way from the customer database (through the
// loopback proxy) stops the daemon with exit code 5, a log line naming the message's LSN, and the message's
// bytes in a private file for a bug report; the slot is not confirmed past it, and a start without the
// corruption applies it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/e2e/faults/faults_fixture.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::string contents(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The LSN the daemon's stop line names: "... in the source stream at LSN X/Y: ...".
std::optional<Lsn> named_lsn(const std::string& log) {
  const auto at = log.find("in the source stream at LSN ");
  if (at == std::string::npos) return std::nullopt;
  const auto from = at + std::string_view("in the source stream at LSN ").size();
  return Lsn::parse(log.substr(from, log.find(':', from) - from));
}

TEST(FaultsSourceStream, ACorruptedMessageStopsTheDaemonWithFiveNamingItsLsnAndTheSlotIsNotConfirmedPastIt) {
  SyncPipeline p{"decode_error"};
  Proxies px;
  Workload::insert_rows(p.customer_admin(), 50, "seed");
  DaemonProcess d{p.dir(), "cdcsync", proxied_config(p, px, {})};
  d.start();
  ASSERT_TRUE(wait_for_log(d, kStreaming, 30s)) << d.log_tail();
  ASSERT_TRUE(p.wait_caught_up(p.source_wal_lsn(), 30s)) << d.log_tail();

  // The name of one new customer is the marker: the proxy sets the length in front of it to 2 GB.
  const std::string marker = "poisoned-" + std::to_string(test_seed("marker"));
  px.source.corrupt_length_before(marker);
  exec_sql(p.customer_admin(),
           "INSERT INTO public.customers (full_name, email, phone, status, tier, balance) VALUES ('" +
               marker + "', 'p@example.test', '+1555', 'active', 'standard', 1)");
  const auto code = d.wait_exit(30s);
  ASSERT_TRUE(code.has_value()) << "still running after the corrupted message:\n" << d.log_tail();
  EXPECT_EQ(px.source.corrupted(), 1u);
  EXPECT_EQ(*code, 5) << d.log_tail();

  const std::string log = d.log();
  const auto lsn = named_lsn(log);
  ASSERT_TRUE(lsn.has_value()) << "the stop line names no LSN:\n" << d.log_tail();
  EXPECT_NE(log.find("cannot be decoded"), std::string::npos) << d.log_tail();
  EXPECT_EQ(log.find(marker), std::string::npos) << "the message's bytes reached the log";
  // Nothing past the message was confirmed (an idle position confirmed before it may be its very start: its
  // transaction commits after it and is sent again), nor applied.
  EXPECT_LE(p.slot_confirmed().value_or(Lsn{}), *lsn);
  EXPECT_EQ(
      query_value(p.order_admin(), "SELECT count(*) FROM ref.customer WHERE display_name = '" + marker + "'"),
      "0");

  // The bytes, for a bug report: one file, 0600, in a 0700 directory under the state directory.
  const std::filesystem::path reports = p.dir() + "/cdcsync.state/bug-reports";
  ASSERT_TRUE(std::filesystem::is_directory(reports)) << d.log_tail();
  EXPECT_EQ(mode_of(reports), 0700u);
  std::vector<std::filesystem::path> files;
  for (const auto& f : std::filesystem::directory_iterator(reports)) files.push_back(f.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(mode_of(files[0]), 0600u);
  EXPECT_NE(contents(files[0]).find(marker), std::string::npos);
  EXPECT_NE(log.find(files[0].string()), std::string::npos)
      << "the stop line does not say where the bytes are";

  // Started again (the proxy corrupts once): the same message, whole this time, is applied.
  d.start();
  ASSERT_TRUE(wait_for_log(d, kStreaming, 30s, 2)) << d.log_tail();
  p.expect_oracle({}, 60s, &d);
  EXPECT_EQ(
      query_value(p.order_admin(), "SELECT count(*) FROM ref.customer WHERE display_name = '" + marker + "'"),
      "1");
  d.terminate();
  EXPECT_EQ(d.wait_exit(15s), 0) << d.log_tail();
}

}  // namespace
}  // namespace cdcsync::test
