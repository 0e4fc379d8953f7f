// Where the checkpoint Redis lives: redis://[user[:password]@]host[:port][/db] or
// unix:///path/to/sock[?db=N&user=NAME]. The password never reaches a log: use redacted().
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cdcsync {

// A malformed URL or password file; the message names the bad part, never the password.
class RedisUrlError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct RedisUrl {
  enum class Transport { Tcp, Unix };

  Transport transport = Transport::Tcp;
  std::string host = "127.0.0.1";  // Tcp: name or address (IPv6 written [::1] in the URL)
  int port = 6379;                 // Tcp
  std::string socket_path;         // Unix
  int db = 0;
  std::string user;      // ACL user; empty means AUTH with the password only (the "default" user)
  std::string password;  // secret: never log it

  // Throws RedisUrlError naming the bad part (scheme, host, port, db, query, ...).
  // User and password may be percent-encoded.
  static RedisUrl parse(std::string_view text);

  // Replaces `password` with the first line of `path` (trailing CR/LF stripped); throws RedisUrlError when
  // the file cannot be read or is empty. The error names the path, never the content.
  void load_password_file(const std::filesystem::path& path);

  // The URL with the password shown as "***": what logs and errors print.
  std::string redacted() const;
};

}  // namespace cdcsync
