// parse_listen_address: the one parser of a listen address (metrics.listen).
#include "daemon/config/listen_address.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace cdcsync::config {
namespace {

std::string error_of(std::string_view text, bool allow_remote = false) {
  try {
    parse_listen_address(text, allow_remote);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ListenAddress, ParsesIpv4Ipv6AndLocalhost) {
  const auto v4 = parse_listen_address("127.0.0.1:10187", false);
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 10187);
  const auto v6 = parse_listen_address("[::1]:10187", false);
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 10187);
  EXPECT_EQ(parse_listen_address("localhost:80", false).host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("127.0.0.2:0", false).port, 0);  // any free port
  EXPECT_EQ(parse_listen_address("127.0.0.1:65535", false).port, 65535);
}

TEST(ListenAddress, RefusesNonLoopbackUnlessAllowed) {
  EXPECT_NE(error_of("0.0.0.0:10187").find("not a loopback address"), std::string::npos);
  EXPECT_NE(error_of("[::]:10187").find("allow_remote"), std::string::npos);
  EXPECT_NE(error_of("192.168.1.10:10187").find("'192.168.1.10'"), std::string::npos);
  EXPECT_EQ(parse_listen_address("0.0.0.0:10187", true).host, "0.0.0.0");
  EXPECT_EQ(parse_listen_address("[::]:10187", true).host, "::");
}

TEST(ListenAddress, AcceptsIpLiteralsOnlyAndNamesTheBadPart) {
  EXPECT_NE(error_of("127.0.0.1").find("expected host:port"), std::string::npos);
  EXPECT_NE(error_of("[::1]10187").find("expected [ipv6]:port"), std::string::npos);
  EXPECT_NE(error_of("[::1:10187").find("expected [ipv6]:port"), std::string::npos);
  EXPECT_NE(
      error_of("metrics.example.com:10187", true).find("host 'metrics.example.com' is not an IP address"),
      std::string::npos);
  EXPECT_NE(error_of(":10187", true).find("not an IP address"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:http").find("bad port 'http'"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:70000").find("bad port '70000'"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:-1").find("bad port '-1'"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:").find("bad port ''"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:80x").find("bad port '80x'"), std::string::npos);
}

}  // namespace
}  // namespace cdcsync::config
