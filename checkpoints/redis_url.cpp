// RedisUrl: parsing redis:// and unix:// URLs, the password file, the redacted form.
#include "checkpoints/redis_url.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <optional>

namespace cdcsync {
namespace {

[[noreturn]] void fail(std::string_view what) {
  throw RedisUrlError(fmt::format("Redis URL: {}", what));
}

// Digits only, within [min, max]; nullopt otherwise (no sign, no spaces, no hex).
std::optional<int> parse_int(std::string_view s, int min, int max) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return static_cast<int>(v);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `part` names what is decoded in the error; the value itself is never printed (it may be the password).
std::string percent_decode(std::string_view s, std::string_view part) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) fail(fmt::format("truncated %-escape in the {}", part));
    const int hi = hex_digit(s[i + 1]);
    const int lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) fail(fmt::format("bad %-escape in the {}", part));
    out += static_cast<char>(hi << 4 | lo);
    i += 2;
  }
  return out;
}

int parse_db(std::string_view text) {
  const auto db = parse_int(text, 0, 1 << 20);
  if (!db) fail(fmt::format("bad db '{}' (expected a number >= 0)", text));
  return *db;
}

void parse_tcp(std::string_view rest, RedisUrl& url) {
  std::string_view authority = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    const auto path = rest.substr(slash + 1);
    if (path.find_first_of("?#") != std::string_view::npos) {
      fail("query parameters are not supported in redis:// URLs (put the db in the path: /N)");
    }
    if (!path.empty()) url.db = parse_db(path);
  } else if (rest.find_first_of("?#") != std::string_view::npos) {
    fail("query parameters are not supported in redis:// URLs (put the db in the path: /N)");
  }

  std::string_view hostport = authority;
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    url.user = percent_decode(userinfo.substr(0, colon), "user");
    if (colon != std::string_view::npos)
      url.password = percent_decode(userinfo.substr(colon + 1), "password");
  }

  std::string_view port_text;
  if (!hostport.empty() && hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) fail("unterminated '[' in the host");
    url.host = std::string(hostport.substr(1, close - 1));
    const auto after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') fail(fmt::format("unexpected '{}' after the host", after));
      port_text = after.substr(1);
      if (port_text.empty()) fail("empty port after ':'");
    }
  } else {
    const auto colon = hostport.find(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = hostport.substr(colon + 1);
      if (port_text.empty()) fail("empty port after ':'");
    }
  }
  if (url.host.empty()) fail("missing host (expected redis://[user[:password]@]host[:port][/db])");
  if (url.host.find_first_of(" /@[]") != std::string::npos) fail(fmt::format("bad host '{}'", url.host));
  if (!port_text.empty()) {
    const auto port = parse_int(port_text, 1, 65535);
    if (!port) fail(fmt::format("bad port '{}' (expected 1..65535)", port_text));
    url.port = *port;
  }
}

void parse_unix(std::string_view rest, RedisUrl& url) {
  url.transport = RedisUrl::Transport::Unix;
  std::string_view path = rest;
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    path = rest.substr(0, q);
    query = rest.substr(q + 1);
  }
  if (path.empty() || path.front() != '/') {
    fail("unix socket path must be absolute (expected unix:///path/to/sock[?db=N])");
  }
  url.socket_path = std::string(path);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = param.find('=');
    const auto key = param.substr(0, eq);
    const auto value = eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
    if (key == "db") {
      url.db = parse_db(value);
    } else if (key == "user") {
      url.user = percent_decode(value, "user");
    } else {
      fail(fmt::format("unknown query parameter '{}' (expected db or user)", key));
    }
  }
}

}  // namespace

RedisUrl RedisUrl::parse(std::string_view text) {
  RedisUrl url;
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    fail("missing scheme (expected redis://host[:port][/db] or unix:///path/to/sock)");
  }
  const auto scheme = text.substr(0, sep);
  const auto rest = text.substr(sep + 3);
  if (scheme == "redis") {
    parse_tcp(rest, url);
  } else if (scheme == "unix") {
    parse_unix(rest, url);
  } else if (scheme == "rediss") {
    fail("rediss:// (TLS) needs hiredis >= 1.0; use a unix:// socket when Redis is co-located");
  } else {
    fail(fmt::format("unsupported scheme '{}' (expected redis or unix)", scheme));
  }
  return url;
}

void RedisUrl::load_password_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RedisUrlError(fmt::format("Redis password file {}: cannot be read", path.string()));
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.empty()) throw RedisUrlError(fmt::format("Redis password file {}: is empty", path.string()));
  password = std::move(line);
}

std::string RedisUrl::redacted() const {
  if (transport == Transport::Unix) {
    const auto db_part = db != 0 ? fmt::format("db={}", db) : std::string();
    const auto user_part = user.empty() ? std::string() : fmt::format("user={}", user);
    const auto amp = !db_part.empty() && !user_part.empty() ? "&" : "";
    const auto query = db_part.empty() && user_part.empty() ? "" : "?";
    return fmt::format("unix://{}{}{}{}{}", socket_path, query, db_part, amp, user_part);
  }
  std::string auth;
  if (!user.empty() || !password.empty()) auth = fmt::format("{}{}@", user, password.empty() ? "" : ":***");
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}{}:{}/{}", auth, v6 ? "[" : "", host, v6 ? "]" : "", port, db);
}

}  // namespace cdcsync
