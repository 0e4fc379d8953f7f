// `cdcsync status`: gathering (the daemon over HTTP, the source, the target, Redis) and rendering.
#include "daemon/tools/status.h"

#include <netdb.h>
#include <poll.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>

#include "checkpoints/redis_store.h"
#include "daemon/core/runner.h"
#include "decoders/pg.h"
#include "sinks/load_state.h"

namespace cdcsync::status {
namespace {

// GET http://host:port/path: the body, or nullopt when nothing answers within two seconds.
std::optional<std::string> http_get(const std::string& host, int port, const std::string& path) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return std::nullopt;
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses{found, &freeaddrinfo};
  struct Socket {
    int fd;
    ~Socket() {
      if (fd >= 0) close(fd);
    }
  } sock{socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  const int fd = sock.fd;
  if (fd < 0) return std::nullopt;
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) return std::nullopt;
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return std::nullopt;
  std::string response;
  char buf[16384];
  for (ssize_t n = 0; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
    response.append(buf, static_cast<std::size_t>(n));
  const auto body = response.find("\r\n\r\n");
  if (body == std::string::npos) return std::nullopt;
  return response.substr(body + 4);
}

// A wildcard listen address is reached on loopback.
std::string reachable_host(const std::string& host) {
  if (host == "0.0.0.0" || host.empty()) return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

DaemonView read_daemon(const config::Config& cfg) {
  DaemonView d;
  const std::string host = reachable_host(cfg.metrics.host);
  const auto health = http_get(host, cfg.metrics.port, "/healthz");
  const auto metrics = http_get(host, cfg.metrics.port, "/metrics");
  if (!health && !metrics) return d;
  d.answers = true;
  if (health) {
    d.health = *health;
    while (!d.health.empty() && (d.health.back() == '\n' || d.health.back() == '\r')) d.health.pop_back();
    if (const auto at = d.health.find("last error "); at != std::string::npos)
      d.last_error = d.health.substr(at + 11);
  }
  if (!metrics) return d;
  static const std::regex state{"^cdcsync_state\\{[^}]*state=\"([a-z_]+)\"[^}]*\\} 1(\\.0*)?$"};
  static const std::regex fatal{"^cdcsync_fatal\\{[^}]*reason=\"([a-z_]+)\"[^}]*\\} 1(\\.0*)?$"};
  static const std::regex lag{"^cdcsync_replication_lag_seconds(\\{[^}]*\\})? ([-+0-9.eE]+)$"};
  std::istringstream lines(*metrics);
  std::smatch m;
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_match(line, m, state)) d.state = m[1];
    if (std::regex_match(line, m, fatal)) d.fatal.push_back(m[1]);
    if (std::regex_match(line, m, lag)) {
      const double v = std::strtod(m[2].str().c_str(), nullptr);
      if (std::isfinite(v)) d.lag_seconds = v;
    }
  }
  return d;
}

std::optional<Lsn> lsn_of(PGresult* res, int row, int col) {
  if (PQgetisnull(res, row, col)) return std::nullopt;
  return Lsn::parse(PQgetvalue(res, row, col));
}

std::optional<std::uint64_t> count_of(PGconn* conn, const std::string& sql) {
  try {
    PgResult res = pg_exec(conn, sql.c_str(), "counting rows", PGRES_TUPLES_OK);
    return std::stoull(PQgetvalue(res.get(), 0, 0));
  } catch (const std::exception&) {
    return std::nullopt;  // no privilege, a statement timeout: the count stays unknown
  }
}

void read_source(const config::Config& cfg, const Mapping& mapping, Report& r) {
  PgConn source = pg_connect(source_conninfo(cfg), "the source");
  pg_exec(source.get(), "SET statement_timeout = '10s'", "setting a statement timeout", PGRES_COMMAND_OK);
  PgResult res = pg_exec_params(
      source.get(),
      "SELECT pg_current_wal_lsn()::text, s.active::text, coalesce(s.active_pid::text, ''), "
      "s.confirmed_flush_lsn::text, s.restart_lsn::text, coalesce(s.wal_status, ''), s.safe_wal_size::text, "
      "s.slot_name IS NOT NULL FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_replication_slots s ON "
      "s.slot_name = $1",
      {cfg.source.slot}, "reading slot " + cfg.source.slot);
  r.source_wal = lsn_of(res.get(), 0, 0);
  r.slot.exists = std::string_view(PQgetvalue(res.get(), 0, 7)) == "t";
  r.slot.active = std::string_view(PQgetvalue(res.get(), 0, 1)) == "true";
  r.slot.active_pid = PQgetvalue(res.get(), 0, 2);
  r.slot.confirmed_flush = lsn_of(res.get(), 0, 3);
  r.slot.restart = lsn_of(res.get(), 0, 4);
  r.slot.wal_status = PQgetvalue(res.get(), 0, 5);
  if (!PQgetisnull(res.get(), 0, 6)) r.slot.safe_wal_size = std::stoll(PQgetvalue(res.get(), 0, 6));
  for (auto& t : r.tables) {
    for (const auto& m : mapping.tables()) {
      if (m.target.str() == t.target)
        t.source_rows = count_of(source.get(), "SELECT count(*) FROM " + m.source.quoted());
    }
  }
}

void read_target(const config::Config& cfg, const Mapping& mapping, Report& r) {
  PgConn target = pg_connect(target_conninfo(cfg), "the target");
  pg_exec(target.get(), "SET statement_timeout = '10s'", "setting a statement timeout", PGRES_COMMAND_OK);
  const QualifiedName progress{cfg.target.progress_table.schema, cfg.target.progress_table.name};
  PgResult res = pg_exec_params(target.get(),
                                "SELECT greatest(end_lsn, acked_lsn)::text, extract(epoch FROM now() - "
                                "commit_time)::float8::text FROM " +
                                    progress.quoted() + " WHERE pipeline = $1",
                                {cfg.pipeline}, "reading " + progress.str());
  if (PQntuples(res.get()) == 1) {
    r.target_progress = lsn_of(res.get(), 0, 0);
    if (!PQgetisnull(res.get(), 0, 1) && r.lag_bytes(r.target_progress).value_or(0) > 0)
      r.target_lag_seconds = std::max(0.0, std::stod(PQgetvalue(res.get(), 0, 1)));
    else if (r.target_progress && r.source_wal)
      r.target_lag_seconds = 0;
  }
  const LoadStateStore store{load_state_table(progress), cfg.pipeline};
  TableLoadStates states = store.read(target.get());
  for (auto& t : r.tables) {
    const auto it = states.find(t.target);
    if (it != states.end()) {
      t.state = std::string(name_of(it->second.phase));
      t.snapshot_lsn = it->second.snapshot_lsn;
      t.rows_copied = it->second.rows;
      states.erase(it);
    }
    for (const auto& m : mapping.tables()) {
      if (m.target.str() != t.target) continue;
      const std::string live =
          m.deletes == DeletePolicy::Soft ? " WHERE NOT " + sql_name(m.tombstone_column) : std::string();
      t.target_rows = count_of(target.get(), "SELECT count(*) FROM " + m.target.quoted() + live);
    }
  }
  // A state row of a table the config no longer maps: removed, its rows left in the target.
  for (const auto& [name, state] : states) {
    TableView t{.target = name, .state = "removed", .snapshot_lsn = state.snapshot_lsn};
    std::string error;
    if (const auto q = QualifiedName::parse(name, error))
      t.target_rows = count_of(target.get(), "SELECT count(*) FROM " + q->quoted());
    r.tables.push_back(std::move(t));
  }
}

void read_redis(const config::Config& cfg, Report& r) {
  RedisStoreOptions o;
  o.connection.url = RedisUrl::parse(cfg.checkpoint.redis);
  if (cfg.checkpoint.password_file.configured())
    o.connection.url.password = config::read_secret(cfg.checkpoint.password_file);
  o.pipeline = cfg.pipeline;
  RedisCheckpointStore store{o};
  if (const auto c = store.load()) r.redis_checkpoint = c->lsn;
}

template <class F>
void readable(Report& r, const std::string& what, F&& read) {
  try {
    read();
  } catch (const std::exception& e) {
    r.unreadable.push_back(what + ": " + e.what());
  }
}

}  // namespace

std::optional<std::uint64_t> Report::lag_bytes(const std::optional<Lsn>& position) const {
  if (!position || !source_wal) return std::nullopt;
  return bytes_between(*position, *source_wal);
}

Report gather(const config::Config& cfg) {
  Report r;
  r.pipeline = cfg.pipeline;
  const Mapping mapping = mapping_from_config(cfg);
  // Without a load state: never copied, or (snapshot.mode = never) streamed without a copy.
  const std::string no_state = cfg.snapshot.mode == config::SnapshotMode::Never ? "streaming" : "not copied";
  for (const auto& m : mapping.tables())
    r.tables.push_back(TableView{.target = m.target.str(), .source = m.source.str(), .state = no_state});
  r.daemon = read_daemon(cfg);
  readable(r, "source", [&] { read_source(cfg, mapping, r); });
  if (cfg.target.enabled) readable(r, "target", [&] { read_target(cfg, mapping, r); });
  readable(r, "redis", [&] { read_redis(cfg, r); });
  return r;
}

}  // namespace cdcsync::status
