#include "tests/harness/servers.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>

namespace cdcsync::test {
namespace {

struct RedisFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

std::string reply_text(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (size_t i = 0; i < r->elements; ++i) {
        if (i) out += "\n";
        out += reply_text(r->element[i]);
      }
      return out;
    }
    default:
      return std::string(r->str, r->len);
  }
}

}  // namespace

std::string repo_root() {
  return CDCSYNC_SOURCE_ROOT;
}

// The cdcsync binary under test, for every test that links the harness: CDCSYNC_BINARY from the
// environment wins, else the one this build made.
[[maybe_unused]] const bool kBinaryEnvironment = [] {
  setenv("CDCSYNC_BINARY", CDCSYNC_BINARY_PATH, /*overwrite=*/0);
  return true;
}();

const TestServers& TestServers::get() {
  static const TestServers instance = [] {
    TestServers s;
    const char* path = std::getenv("CDCSYNC_SERVERS_ENV");
    if (path == nullptr) {
      throw std::runtime_error(
          "CDCSYNC_SERVERS_ENV is not set: run integration tests through ctest, or start servers with "
          "scripts/servers.sh start DIR and export CDCSYNC_SERVERS_ENV=DIR/env");
    }
    std::ifstream in(path);
    if (!in) throw std::runtime_error(std::string("cannot read servers env file ") + path);
    std::string line;
    while (std::getline(in, line)) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string value = line.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
        value = value.substr(1, value.size() - 2);
      }
      s.vars_[line.substr(0, eq)] = value;
    }
    s.dir_ = s.env("CDCSYNC_SERVERS_DIR");
    return s;
  }();
  return instance;
}

std::string TestServers::env(const std::string& key) const {
  const auto it = vars_.find(key);
  if (it == vars_.end()) throw std::runtime_error("servers env has no " + key);
  return it->second;
}

int TestServers::port(Server s) const {
  return std::stoi(env(s == Server::Customer ? "CDCSYNC_CUSTOMER_PORT" : "CDCSYNC_ORDER_PORT"));
}
int TestServers::redis_port() const {
  return std::stoi(env("CDCSYNC_REDIS_PORT"));
}

std::string TestServers::admin_conninfo(Server s, const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port(s)) + " dbname=" + dbname +
         " user=" + env("CDCSYNC_ADMIN_USER") + " passfile=" + passfile();
}
std::string TestServers::source_conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port(Server::Customer)) + " dbname=" + dbname +
         " user=cdcsync_source passfile=" + passfile();
}
std::string TestServers::target_conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port(Server::Order)) + " dbname=" + dbname +
         " user=cdcsync_target passfile=" + passfile();
}

std::string TestServers::fresh_database(Server s, const std::string& dbname,
                                        const std::vector<std::string>& sql_files) const {
  const auto postgres = admin_conninfo(s, "postgres");
  exec_sql(postgres, "DROP DATABASE IF EXISTS " + quote_ident(dbname) + " WITH (FORCE)");
  exec_sql(postgres, "CREATE DATABASE " + quote_ident(dbname));
  const auto conninfo = admin_conninfo(s, dbname);
  for (const auto& file : sql_files) {
    std::ifstream in(repo_root() + "/" + file);
    if (!in) throw std::runtime_error("cannot read " + file);
    const std::string sql((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    exec_sql(conninfo, sql);
  }
  return conninfo;
}

void TestServers::control(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"bash", repo_root() + "/scripts/servers.sh"};
  argv.push_back(args.at(0));
  argv.push_back(dir_);
  argv.insert(argv.end(), args.begin() + 1, args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    execvp("bash", cargv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("scripts/servers.sh " + args.at(0) + " failed");
  }
}

ClusterSetting::ClusterSetting(Server server, std::string name, const std::string& value)
    : server_(server), name_(std::move(name)) {
  const std::string admin = TestServers::get().admin_conninfo(server_, "postgres");
  exec_sql(admin, "ALTER SYSTEM SET " + name_ + " = '" + value + "'");
  exec_sql(admin, "SELECT pg_reload_conf()");
}

ClusterSetting::~ClusterSetting() {
  try {
    const std::string admin = TestServers::get().admin_conninfo(server_, "postgres");
    exec_sql(admin, "ALTER SYSTEM RESET " + name_);
    exec_sql(admin, "SELECT pg_reload_conf()");
  } catch (const std::exception& e) {
    std::cout << "[ harness  ] could not reset " << name_ << ": " << e.what() << std::endl;
  }
}

void exec_sql(const std::string& conninfo, const std::string& sql) {
  auto conn = pg_connect(conninfo, "test server");
  pg_exec(conn.get(), sql.c_str(), "test SQL");
}

std::vector<std::vector<std::optional<std::string>>> query_rows(const std::string& conninfo,
                                                                const std::string& sql) {
  auto conn = pg_connect(conninfo, "test server");
  auto res = pg_exec(conn.get(), sql.c_str(), "test query", PGRES_TUPLES_OK);
  std::vector<std::vector<std::optional<std::string>>> rows;
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    auto& row = rows.emplace_back();
    for (int c = 0; c < PQnfields(res.get()); ++c) {
      if (PQgetisnull(res.get(), r, c))
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(PQgetvalue(res.get(), r, c));
    }
  }
  return rows;
}

std::optional<std::string> query_value(const std::string& conninfo, const std::string& sql) {
  const auto rows = query_rows(conninfo, sql);
  if (rows.empty() || rows[0].empty()) return std::nullopt;
  return rows[0][0];
}

std::string redis_command(const std::vector<std::string>& argv) {
  const auto& s = TestServers::get();
  std::unique_ptr<redisContext, RedisFree> c{redisConnect("127.0.0.1", s.redis_port())};
  if (!c || c->err) throw std::runtime_error("cannot connect to test Redis");
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  std::unique_ptr<redisReply, ReplyFree> r{static_cast<redisReply*>(
      redisCommandArgv(c.get(), static_cast<int>(args.size()), args.data(), lens.data()))};
  if (!r) throw std::runtime_error("Redis command failed");
  if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error("Redis error: " + reply_text(r.get()));
  return reply_text(r.get());
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

void drop_slot(const std::string& slot) {
  const auto postgres = TestServers::get().admin_conninfo(Server::Customer, "postgres");
  eventually(
      [&] {
        exec_sql(postgres,
                 "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '" +
                     slot + "' AND active_pid IS NOT NULL");
        exec_sql(postgres,
                 "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" +
                     slot + "' AND NOT active");
        return !query_value(postgres, "SELECT 1 FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
      },
      std::chrono::seconds(10), std::chrono::milliseconds(100));
}

}  // namespace cdcsync::test
