#include "checkpoints/redis_url.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace cdcsync {
namespace {

std::string error_of(std::string_view text) {
  try {
    RedisUrl::parse(text);
  } catch (const RedisUrlError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RedisUrl, ParsesHostPortAndDb) {
  const auto url = RedisUrl::parse("redis://redis.internal:6380/3");
  EXPECT_EQ(url.transport, RedisUrl::Transport::Tcp);
  EXPECT_EQ(url.host, "redis.internal");
  EXPECT_EQ(url.port, 6380);
  EXPECT_EQ(url.db, 3);
  EXPECT_EQ(url.user, "");
  EXPECT_EQ(url.password, "");
}

TEST(RedisUrl, DefaultsPortAndDb) {
  const auto url = RedisUrl::parse("redis://127.0.0.1");
  EXPECT_EQ(url.port, 6379);
  EXPECT_EQ(url.db, 0);
  EXPECT_EQ(RedisUrl::parse("redis://127.0.0.1/").db, 0);
}

TEST(RedisUrl, ParsesAclUserAndPercentEncodedPassword) {
  const auto url = RedisUrl::parse("redis://cdcsync:p%40ss%3Aw0rd@127.0.0.1:7000/1");
  EXPECT_EQ(url.user, "cdcsync");
  EXPECT_EQ(url.password, "p@ss:w0rd");
  EXPECT_EQ(url.port, 7000);
}

TEST(RedisUrl, ParsesPasswordWithoutUser) {
  const auto url = RedisUrl::parse("redis://:secret@localhost");
  EXPECT_EQ(url.user, "");
  EXPECT_EQ(url.password, "secret");
}

TEST(RedisUrl, ParsesBracketedIpv6Host) {
  const auto url = RedisUrl::parse("redis://[::1]:6390/2");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 6390);
  EXPECT_EQ(url.db, 2);
  EXPECT_EQ(url.redacted(), "redis://[::1]:6390/2");
}

TEST(RedisUrl, ParsesUnixSocketWithDbAndUser) {
  const auto url = RedisUrl::parse("unix:///run/redis/redis.sock?db=4&user=cdcsync");
  EXPECT_EQ(url.transport, RedisUrl::Transport::Unix);
  EXPECT_EQ(url.socket_path, "/run/redis/redis.sock");
  EXPECT_EQ(url.db, 4);
  EXPECT_EQ(url.user, "cdcsync");
  EXPECT_EQ(RedisUrl::parse("unix:///tmp/r.sock").db, 0);
}

TEST(RedisUrl, RedactedNeverShowsThePassword) {
  const auto url = RedisUrl::parse("redis://cdcsync:hunter2@127.0.0.1:6379/0");
  EXPECT_EQ(url.redacted(), "redis://cdcsync:***@127.0.0.1:6379/0");
  EXPECT_EQ(url.redacted().find("hunter2"), std::string::npos);
}

TEST(RedisUrl, ErrorsNameTheBadPart) {
  EXPECT_NE(error_of("127.0.0.1:6379").find("missing scheme"), std::string::npos);
  EXPECT_NE(error_of("http://127.0.0.1").find("unsupported scheme 'http'"), std::string::npos);
  EXPECT_NE(error_of("rediss://127.0.0.1").find("TLS"), std::string::npos);
  EXPECT_NE(error_of("redis://127.0.0.1:99999").find("bad port '99999'"), std::string::npos);
  EXPECT_NE(error_of("redis://127.0.0.1:abc").find("bad port 'abc'"), std::string::npos);
  EXPECT_NE(error_of("redis://127.0.0.1:").find("empty port"), std::string::npos);
  EXPECT_NE(error_of("redis://127.0.0.1/x").find("bad db 'x'"), std::string::npos);
  EXPECT_NE(error_of("redis://127.0.0.1/-1").find("bad db '-1'"), std::string::npos);
  EXPECT_NE(error_of("redis://:6379").find("missing host"), std::string::npos);
  EXPECT_NE(error_of("redis://[::1").find("unterminated '['"), std::string::npos);
  EXPECT_NE(error_of("redis://h?db=1").find("query parameters"), std::string::npos);
  EXPECT_NE(error_of("unix://relative.sock").find("absolute"), std::string::npos);
  EXPECT_NE(error_of("unix:///r.sock?db=two").find("bad db 'two'"), std::string::npos);
  EXPECT_NE(error_of("unix:///r.sock?timeout=1").find("unknown query parameter 'timeout'"),
            std::string::npos);
}

TEST(RedisUrl, BadPasswordEscapeIsReportedWithoutThePassword) {
  const auto error = error_of("redis://u:sec%zzret@127.0.0.1");
  EXPECT_NE(error.find("bad %-escape in the password"), std::string::npos);
  EXPECT_EQ(error.find("sec"), std::string::npos);
  EXPECT_NE(error_of("redis://u:secret%4@h").find("truncated %-escape in the password"), std::string::npos);
}

class RedisPasswordFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("cdcsync-redis-pass-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void write(const std::string& content) { std::ofstream(path_, std::ios::binary) << content; }
  std::filesystem::path path_;
};

TEST_F(RedisPasswordFile, ReplacesThePasswordWithTheFirstLine) {
  write("from-file\r\nignored\n");
  auto url = RedisUrl::parse("redis://cdcsync@127.0.0.1");
  url.load_password_file(path_);
  EXPECT_EQ(url.password, "from-file");
}

TEST_F(RedisPasswordFile, RefusesAnEmptyFileNamingThePath) {
  write("\n");
  auto url = RedisUrl::parse("redis://127.0.0.1");
  try {
    url.load_password_file(path_);
    FAIL() << "no error";
  } catch (const RedisUrlError& e) {
    EXPECT_NE(std::string(e.what()).find(path_.string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos);
  }
}

TEST_F(RedisPasswordFile, RefusesAMissingFile) {
  auto url = RedisUrl::parse("redis://127.0.0.1");
  EXPECT_THROW(url.load_password_file(path_), RedisUrlError);
}

}  // namespace
}  // namespace cdcsync
