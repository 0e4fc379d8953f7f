// ListenAddress: where a local server listens ("127.0.0.1:10187", "[::1]:10187"), parsed once for everyone.
#pragma once

#include <string>
#include <string_view>

namespace cdcsync::config {

struct ListenAddress {
  std::string host;  // an IP literal without brackets ("127.0.0.1", "::1")
  int port = 0;      // 0: any free port
};

// "host:port" or "[v6]:port"; "localhost" is 127.0.0.1, any other host must be an IP literal (nothing is
// resolved). Refuses a non-loopback host unless `allow_remote`, and a port outside 0..65535. Throws
// std::invalid_argument with a message naming the bad part.
ListenAddress parse_listen_address(std::string_view text, bool allow_remote);

}  // namespace cdcsync::config
