// Config validation: value checks shared by several keys, and the cross-field checks run after loading.
#include "daemon/config/validate.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <variant>
#include <vector>

#include "daemon/config/listen_address.h"
#include "daemon/config/settings.h"
#include "daemon/config/values.h"

namespace cdcsync::config {
namespace {

bool is_loopback_address(std::string_view host) {
  const std::string h(host);
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::optional<int> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int port = std::stoi(std::string(s));
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

void check_conninfo(const std::string& section, const std::string& conninfo, bool allow_insecure_tls,
                    Issues& issues) {
  const std::string key = section + ".conninfo";
  if (conninfo.empty()) return;  // reported as missing
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(conninfo.c_str(), &raw_error), &PQconninfoFree);
  std::unique_ptr<char, decltype(&PQfreemem)> error(raw_error, &PQfreemem);
  std::string lowered = conninfo;
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const bool may_hold_password =
      lowered.find("password") != std::string::npos ||
      (lowered.find("://") != std::string::npos && lowered.find('@') != std::string::npos);
  if (!options) {
    std::string reason = error ? std::string(error.get()) : std::string("out of memory");
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    // libpq quotes pieces of the string in its messages; they must not carry a password.
    if (may_hold_password)
      reason = "it does not parse (libpq's message is withheld: it may quote a password)";
    issues.add_at(key, fmt::format("invalid connection string: {}", reason));
    return;
  }
  std::map<std::string, std::string> given;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr) given[o->keyword] = o->val;
  }
  if (auto it = given.find("password"); it != given.end()) {
    issues.add_at(
        key, fmt::format(
                 "contains a password; remove it and use {}.password_file, ~/.pgpass or a systemd credential",
                 section));
    return;
  }
  const std::string hosts =
      given.count("hostaddr") && !given["hostaddr"].empty() ? given["hostaddr"] : given["host"];
  std::vector<std::string> remote;
  for (const auto& h : split(hosts, ',')) {
    if (h.empty() || h.front() == '/' || h.front() == '@' || is_loopback_address(h)) continue;
    remote.push_back(h);
  }
  const std::string sslmode = given.count("sslmode") ? given["sslmode"] : "prefer";
  const bool unverified =
      sslmode == "disable" || sslmode == "allow" || sslmode == "prefer" || sslmode == "require";
  if (!remote.empty() && unverified && !allow_insecure_tls) {
    issues.add_at(
        key,
        fmt::format("sslmode={}{} does not verify the non-loopback host {}; use sslmode=verify-full "
                    "with sslrootcert, or set {}.allow_insecure_tls = true",
                    sslmode, given.count("sslmode") ? "" : " (libpq's default)", remote.front(), section));
  }
}

// unix:///path[?db=N]; returns what is wrong, or empty.
std::string parse_redis_unix_url(const std::string& url, RedisEndpoint& endpoint) {
  std::string rest = url.substr(7);
  if (const auto q = rest.find('?'); q != std::string::npos) {
    const std::string query = rest.substr(q + 1);
    rest.resize(q);
    if (!query.starts_with("db=") || query.size() == 3 ||
        !std::all_of(query.begin() + 3, query.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        query.size() > 7) {
      return "unix:// URL query must be ?db=N";
    }
    endpoint.db = std::stoi(query.substr(3));
  }
  if (rest.empty() || rest.front() != '/')
    return "unix:// URL needs an absolute socket path (unix:///run/redis.sock)";
  endpoint.unix_socket = rest;
  endpoint.port = 0;
  return {};
}

// redis://[user@]host[:port][/db]; returns what is wrong, or empty.
std::string parse_redis_tcp_url(const std::string& url, RedisEndpoint& endpoint) {
  std::string rest = url.substr(8);
  std::string authority = rest.substr(0, rest.find('/'));
  const std::string path = rest.size() > authority.size() ? rest.substr(authority.size() + 1) : "";
  if (const auto at = authority.rfind('@'); at != std::string::npos) {
    const std::string userinfo = authority.substr(0, at);
    if (userinfo.find(':') != std::string::npos) {
      return "the URL contains a password; remove it and use checkpoint.password_file";
    }
    endpoint.user = userinfo;
    authority = authority.substr(at + 1);
  }
  std::string host = authority;
  std::string port;
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string::npos) return "unterminated [IPv6] host";
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return "expected :port after [IPv6] host";
      port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return "the URL has no host";
  endpoint.host = host;
  if (!port.empty()) {
    auto p = parse_port(port);
    if (!p) return fmt::format("port \"{}\" is not in 1..65535", port);
    endpoint.port = *p;
  }
  if (!path.empty()) {
    if (path.size() > 5 ||
        !std::all_of(path.begin(), path.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fmt::format("database \"{}\" is not a number", path);
    }
    endpoint.db = std::stoi(path);
  }
  return {};
}

void check_redis(CheckpointConfig& checkpoint, Issues& issues) {
  const std::string key = "checkpoint.redis";
  const std::string& url = checkpoint.redis;
  if (url.empty()) return;
  RedisEndpoint endpoint;
  std::string problem;
  if (url.starts_with("rediss://")) {
    problem =
        "TLS (rediss://) is not supported by the hiredis this build uses; use a unix socket or loopback";
  } else if (url.starts_with("unix://")) {
    problem = parse_redis_unix_url(url, endpoint);
  } else if (url.starts_with("redis://")) {
    problem = parse_redis_tcp_url(url, endpoint);
  } else {
    problem = "expected redis://[user@]host[:port][/db] or unix:///path[?db=N]";
  }
  if (!problem.empty()) {
    issues.add_at(key, std::move(problem));
    return;
  }
  checkpoint.endpoint = endpoint;
}

void check_metrics(MetricsConfig& metrics, Issues& issues) {
  const std::string key = "metrics.listen";
  try {
    const ListenAddress address = parse_listen_address(metrics.listen, metrics.allow_remote);
    if (address.port == 0) {
      issues.add_at(key, "port \"0\" is not in 1..65535");  // any free port: Prometheus could not find it
      return;
    }
    metrics.host = address.host;
    metrics.port = address.port;
  } catch (const std::invalid_argument& e) {
    issues.add_at(key, e.what());
  }
}

// Keys whose values depend on each other, and features this version does not have.
void check_sections(const Config& c, Issues& issues) {
  if (c.target.enabled) {
    if (c.target.conninfo.empty()) {
      issues.add_at("target.conninfo",
                    "required key is missing (a Kafka-only pipeline sets target.enabled = false)");
    }
  } else if (!c.kafka.enabled) {
    issues.add_at("target.enabled",
                  "a pipeline without the order DB publishes to Kafka only: set kafka.enabled = true");
  }
  if (c.kafka.enabled && c.kafka.brokers.empty()) {
    issues.add_at("kafka.brokers", "required key is missing (kafka.enabled = true)");
  }
  if (c.dead_letter.enabled && (c.archive.enabled || c.kafka.enabled)) {
    issues.add_at("dead_letter.enabled",
                  "cannot be combined with archive.enabled or kafka.enabled in this version: the archive and "
                  "Kafka would publish a transaction the order DB refused; turn one of them off");
  } else if (c.dead_letter.enabled && !c.target.enabled) {
    issues.add_at("dead_letter.enabled",
                  "dead-lettering parks what the order DB refuses; a Kafka-only pipeline (target.enabled = "
                  "false) has none");
  }
}

// Intervals and modes that must agree with each other.
void check_timings(const Config& c, Issues& issues) {
  if (c.source.streaming == StreamingMode::On && c.source.proto_version < 2) {
    issues.add_at(
        "source.streaming",
        fmt::format("streaming = \"on\" needs source.proto_version >= 2 (it is {})", c.source.proto_version));
  }
  if (c.source.temporary_slot && !c.source.create_slot) {
    issues.add_at("source.temporary_slot",
                  "a temporary slot is created for each session; set source.create_slot = true");
  }
  if (c.source.reconnect_min > c.source.reconnect_max) {
    issues.add_at("source.reconnect_min_ms",
                  fmt::format("{} is above source.reconnect_max_ms ({})", c.source.reconnect_min.count(),
                              c.source.reconnect_max.count()));
  }
  if (c.source.status_interval >= c.source.receive_timeout) {
    issues.add_at("source.status_interval_ms",
                  fmt::format("{} must be below source.receive_timeout_ms ({})",
                              c.source.status_interval.count(), c.source.receive_timeout.count()));
  }
  if (c.source.heartbeat_interval.count() != 0 &&
      c.source.heartbeat_interval < std::chrono::milliseconds{1000}) {
    issues.add_at(
        "source.heartbeat_interval_ms",
        fmt::format("{} is below 1000 (use 0 to turn heartbeats off)", c.source.heartbeat_interval.count()));
  }
  if (c.checkpoint.renew * 2 > c.checkpoint.lease_ttl) {
    issues.add_at(
        "checkpoint.renew_ms",
        fmt::format(
            "{} is more than half of checkpoint.lease_ttl_ms ({}); one late renewal would lose the lease",
            c.checkpoint.renew.count(), c.checkpoint.lease_ttl.count()));
  }
}

// Each target table is written by one mapping, and none is the progress table.
void check_target_tables(const Config& c, Issues& issues) {
  std::map<QualifiedName, std::size_t> target_owner;
  for (std::size_t i = 0; i < c.tables.size(); ++i) {
    const auto& t = c.tables[i];
    const std::string key = fmt::format("tables[{}].target", i);
    if (t.target.name.empty()) continue;  // reported as missing
    if (auto [it, inserted] = target_owner.emplace(t.target, i); !inserted) {
      issues.add_at(key, fmt::format("duplicate target table {} (already the target of tables[{}])",
                                     t.target.str(), it->second));
    }
    if (t.target == c.target.progress_table) {
      issues.add_at(key, fmt::format("{} is the target.progress_table", t.target.str()));
    }
  }
}

}  // namespace

std::string check_pipeline_name(const std::string& v) {
  const bool ok = !v.empty() && v.size() <= kMaxIdentifierBytes && v.front() != '-' &&
                  std::all_of(v.begin(), v.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
                  });
  return ok ? "" : fmt::format("\"{}\" must be 1..63 of [a-z0-9_-], not starting with '-'", v);
}

std::string check_slot_name(const std::string& v) {
  const bool ok =
      !v.empty() && v.size() <= kMaxIdentifierBytes && std::all_of(v.begin(), v.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
  return ok ? "" : fmt::format("\"{}\" must match [a-z0-9_]{{1,63}} (PostgreSQL's rule for slot names)", v);
}

std::string check_publication_name(const std::string& v) {
  if (v.empty()) return "is empty";
  if (v.size() > kMaxIdentifierBytes)
    return fmt::format("is {} bytes, more than {}", v.size(), kMaxIdentifierBytes);
  for (unsigned char c : v) {
    if (c == '"' || c == '\'' || c == ',' || c < 0x20 || c == 0x7f) {
      return "must not contain quotes, commas or control characters";
    }
  }
  return {};
}

std::string check_column_name(const std::string& v) {
  if (v.empty()) return "name is empty";
  if (v.size() > kMaxIdentifierBytes) {
    return fmt::format("name \"{}\" is {} bytes, more than {}", v, v.size(), kMaxIdentifierBytes);
  }
  if (v.find('\0') != std::string::npos) return "name contains a NUL byte";
  return {};
}

std::string check_not_empty(const std::string& v) {
  return v.empty() ? "is empty" : "";
}

std::string check_mask_char(const std::string& v) {
  // One UTF-8 character: a lead byte and its continuation bytes.
  const bool one = !v.empty() &&
                   std::count_if(v.begin(), v.end(), [](unsigned char c) { return (c & 0xC0) != 0x80; }) == 1;
  return one ? "" : fmt::format("\"{}\" must be exactly one character", v);
}

void validate_table(const std::string& prefix, const TableMapping& mapping, Issues& issues) {
  for (std::size_t i = 0; i < mapping.key.size(); ++i) {
    const std::string& k = mapping.key[i];
    auto column = std::find_if(mapping.columns.begin(), mapping.columns.end(),
                               [&](const ColumnMapping& c) { return c.source == k; });
    const std::string key = prefix + ".key";
    if (column == mapping.columns.end()) {
      issues.add_at(key, fmt::format("key column \"{}\" is not mapped in columns", k));
    } else if (column->transform && !std::holds_alternative<HmacSha256>(*column->transform)) {
      issues.add(issues.where(fmt::format("{}.transforms.{}", prefix, toml_key(k))), key,
                 fmt::format("key column \"{}\" has a {} transform, which would merge distinct keys; only "
                             "hmac_sha256 keeps keys distinct",
                             k, name_of(*column->transform)));
    }
  }
  for (const auto& c : mapping.columns) {
    if (c.target == mapping.lsn_column) {
      issues.add(issues.where(prefix + ".lsn_column"), prefix + ".columns",
                 fmt::format("target column \"{}\" is also the lsn_column", c.target));
    }
    if (mapping.deletes == DeletePolicy::Soft && c.target == mapping.tombstone_column) {
      issues.add(issues.where(prefix + ".tombstone_column"), prefix + ".columns",
                 fmt::format("target column \"{}\" is also the tombstone_column", c.target));
    }
  }
  if (mapping.deletes == DeletePolicy::Soft && mapping.tombstone_column == mapping.lsn_column) {
    issues.add_at(prefix + ".tombstone_column", "must differ from lsn_column when deletes = \"soft\"");
  }
}

void validate_config(Config& c, Issues& issues) {
  check_conninfo("source", c.source.conninfo, c.source.allow_insecure_tls, issues);
  if (c.target.enabled) check_conninfo("target", c.target.conninfo, c.target.allow_insecure_tls, issues);
  check_sections(c, issues);
  check_redis(c.checkpoint, issues);
  check_metrics(c.metrics, issues);
  check_timings(c, issues);
  check_target_tables(c, issues);
}

}  // namespace cdcsync::config
