#include "tests/e2e/recovery/recovery_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace cdcsync::test {
namespace {

std::string binary() {
  const char* b = std::getenv("CDCSYNC_BINARY");
  if (b == nullptr || *b == '\0') throw std::runtime_error("CDCSYNC_BINARY is not set: run through ctest");
  return b;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> lines(const std::string& conninfo, const std::string& sql) {
  std::vector<std::string> out;
  for (const auto& row : query_rows(conninfo, sql)) {
    std::string line;
    for (const auto& v : row) line += (line.empty() ? "" : "|") + v.value_or("NULL");
    out.push_back(line);
  }
  return out;
}

}  // namespace

RecoveryPipeline::RecoveryPipeline(const std::string& tag, const RecoveryConfig& config)
    : slot_("rec_" + tag), pipeline_("rec-" + tag) {
  const auto& s = TestServers::get();
  drop_slot(slot_);
  customer_admin_ = s.fresh_database(Server::Customer, "rec_" + tag + "_customers",
                                     {"deploy/sql/customer_schema.sql", "deploy/sql/customer_roles.sql"});
  order_admin_ = s.fresh_database(Server::Order, "rec_" + tag + "_orders",
                                  {"deploy/sql/order_schema.sql", "deploy/sql/order_roles.sql"});
  redis_command({"DEL", "cdcsync:{" + pipeline_ + "}:checkpoint", "cdcsync:{" + pipeline_ + "}:lease",
                 "cdcsync:{" + pipeline_ + "}:verify"});
  char tmpl[] = "/tmp/cdcsync-rec-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  {
    std::ofstream key(dir_ + "/hmac.key");
    key << "test-hmac-key\n";
  }
  chmod((dir_ + "/hmac.key").c_str(), 0600);
  std::ostringstream c;
  c << "pipeline = \"" << pipeline_ << "\"\n\n[source]\nconninfo = \""
    << s.source_conninfo("rec_" + tag + "_customers") << "\"\npublication = \"cdcsync_customers\"\nslot = \""
    << slot_ << "\"\ncreate_slot = true\n"
    << "status_interval_ms = 200\nreconnect_min_ms = 50\nreconnect_max_ms = 500\n\n[target]\nconninfo = \""
    << s.target_conninfo("rec_" + tag + "_orders")
    << "\"\n\n[batch]\nmax_wait_ms = 20\n\n[checkpoint]\nredis = \"" << s.redis_url()
    << "\"\nlease_ttl_ms = 2000\nrenew_ms = 500\n\n[metrics]\nlisten = \"127.0.0.1:" << free_port()
    << "\"\n\n[[tables]]\nsource  = \"public.customers\"\ntarget  = \"ref.customer\"\nkey     = [\"id\"]\n"
    << "columns = { id = \"customer_id\", full_name = \"display_name\", status = \"status\", tier = \"tier\" "
       "}\n"
    << "deletes = \"soft\"\n"
    << config.customers_extra << "\n";
  if (config.with_loyalty) {
    c << "[[tables]]\nsource  = \"public.loyalty_accounts\"\ntarget  = \"ref.loyalty_account\"\n"
      << "key     = [\"customer_id\"]\ncolumns = { customer_id = \"customer_id\", points = \"points\", level "
         "= "
         "\"level\" }\ndeletes = \"hard\"\n";
  }
  config_path_ = dir_ + "/cdcsync.toml";
  std::ofstream(config_path_) << c.str();
}

RecoveryPipeline::~RecoveryPipeline() {
  stop_daemon();
  try {
    drop_slot(slot_);
  } catch (...) {
  }
}

Run RecoveryPipeline::cdcsync(std::vector<std::string> args, std::chrono::seconds timeout) const {
  static int counter = 0;
  const std::string base = dir_ + "/run" + std::to_string(++counter);
  std::vector<std::string> argv{binary()};
  for (auto& a : args) argv.push_back(a == "CONFIG" ? config_path_ : a);
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  Run r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.exit_code = -9;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (r.exit_code != -9) r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(base + ".out");
  r.err = read_file(base + ".err");
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  std::cout << "[ cdcsync  ]" << cmd << " -> exit " << r.exit_code << "\n" << r.out << r.err << std::flush;
  return r;
}

void RecoveryPipeline::start_daemon() {
  const std::string log = dir_ + "/daemon.log";
  daemon_ = fork();
  if (daemon_ == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    std::string b = binary();
    std::string run = "run";
    std::string flag = "--config";
    std::string path = config_path_;
    char* argv[] = {b.data(), run.data(), flag.data(), path.data(), nullptr};
    execv(argv[0], argv);
    _exit(127);
  }
}

void RecoveryPipeline::stop_daemon() {
  if (daemon_ <= 0) return;
  kill(daemon_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 200 && waitpid(daemon_, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (waitpid(daemon_, &status, WNOHANG) == 0) {
    kill(daemon_, SIGKILL);
    waitpid(daemon_, &status, 0);
  }
  daemon_ = -1;
}

std::string RecoveryPipeline::daemon_log() const {
  return read_file(dir_ + "/daemon.log");
}

void RecoveryPipeline::mark_target_caught_up() const {
  exec_sql(order_admin_,
           "INSERT INTO ref.cdc_progress (pipeline, end_lsn, xid, acked_lsn, applied_by) VALUES ('" +
               pipeline_ +
               "', 'FFFFFFFF/0', 0, 'FFFFFFFF/0', 'test') ON CONFLICT (pipeline) DO UPDATE SET end_lsn = "
               "EXCLUDED.end_lsn, acked_lsn = EXCLUDED.acked_lsn");
}

void copy_projection(const RecoveryPipeline& p) {
  auto target = pg_connect(p.order_admin(), "test target");
  auto lit = [&](const std::optional<std::string>& v) -> std::string {
    if (!v) return "NULL";
    std::unique_ptr<char, PqFreemem> q{PQescapeLiteral(target.get(), v->data(), v->size())};
    return q.get();
  };
  std::string sql;
  for (const auto& r :
       query_rows(p.customer_admin(), "SELECT id::text, full_name, status, tier FROM public.customers")) {
    sql += "INSERT INTO ref.customer (customer_id, display_name, status, tier, _cdc_lsn) VALUES (" +
           lit(r[0]) + ", " + lit(r[1]) + ", " + lit(r[2]) + ", " + lit(r[3]) + ", '0/1');\n";
  }
  for (const auto& r :
       query_rows(p.customer_admin(),
                  "SELECT customer_id::text, points::text, level FROM public.loyalty_accounts")) {
    sql += "INSERT INTO ref.loyalty_account (customer_id, points, level, _cdc_lsn) VALUES (" + lit(r[0]) +
           ", " + lit(r[1]) + ", " + lit(r[2]) + ", '0/1');\n";
  }
  if (!sql.empty()) pg_exec(target.get(), sql.c_str(), "copying the projection");
}

std::vector<std::string> source_customers(const RecoveryPipeline& p) {
  return lines(p.customer_admin(),
               "SELECT id::text, full_name, status, tier FROM public.customers ORDER BY id");
}
std::vector<std::string> target_customers(const RecoveryPipeline& p) {
  return lines(
      p.order_admin(),
      "SELECT customer_id::text, display_name, status, tier FROM ref.customer WHERE NOT _cdc_deleted ORDER "
      "BY customer_id");
}
std::vector<std::string> source_loyalty(const RecoveryPipeline& p) {
  return lines(
      p.customer_admin(),
      "SELECT customer_id::text, points::text, level FROM public.loyalty_accounts ORDER BY customer_id");
}
std::vector<std::string> target_loyalty(const RecoveryPipeline& p) {
  return lines(p.order_admin(),
               "SELECT customer_id::text, points::text, level FROM ref.loyalty_account ORDER BY customer_id");
}

}  // namespace cdcsync::test
