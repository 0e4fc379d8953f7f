// Listen-address parsing: host:port or [v6]:port, IP literals only, loopback unless allowed.
#include "daemon/config/listen_address.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

namespace cdcsync::config {
namespace {

bool is_ip_literal(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

bool is_loopback(const std::string& host) {
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

}  // namespace

ListenAddress parse_listen_address(std::string_view text, bool allow_remote) {
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument(fmt::format("listen address '{}': {}", text, why));
  };
  ListenAddress address;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      fail("expected [ipv6]:port");
    }
    address.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) fail("expected host:port");
    address.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (address.host == "localhost") address.host = "127.0.0.1";
  if (!is_ip_literal(address.host)) {
    fail(fmt::format("host '{}' is not an IP address", address.host.empty() ? "(empty)" : address.host));
  }
  int port = -1;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port < 0 ||
      port > 65535) {
    fail(fmt::format("bad port '{}': not in 1..65535 (or 0 for any free port)", port_text));
  }
  address.port = port;
  if (!allow_remote && !is_loopback(address.host)) {
    fail(fmt::format("host '{}' is not a loopback address (other hosts may connect only with allow_remote)",
                     address.host));
  }
  return address;
}

}  // namespace cdcsync::config
