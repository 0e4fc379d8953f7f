#include "tests/e2e/security/security_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/daemon_process.h"

namespace cdcsync::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::vector<std::string> acl_setuser(const std::string& user, const std::string& password,
                                     const std::string& pipeline) {
  std::vector<std::string> argv = {
      "ACL",           "SETUSER", user, "reset", "on", ">" + password, "~cdcsync:{" + pipeline + "}:*",
      "resetchannels", "-@all"};
  for (const char* c : {"auth",      "ping",  "select",  "get",     "set",   "del",     "exists", "hget",
                        "hset",      "hmget", "hgetall", "pexpire", "eval",  "evalsha", "xadd",   "xrange",
                        "xrevrange", "xtrim", "xlen",    "xdel",    "multi", "exec"}) {
    argv.push_back(std::string("+") + c);
  }
  return argv;
}

std::string demo_password(const std::string& role, int port) {
  std::ifstream in(TestServers::get().passfile());
  std::string line;
  const std::string prefix = "127.0.0.1:" + std::to_string(port) + ":*:" + role + ":";
  while (std::getline(in, line)) {
    if (line.starts_with(prefix)) return line.substr(prefix.size());
  }
  throw std::runtime_error("no password for " + role + " in the servers' pgpass");
}

SecurityPipeline::SecurityPipeline(const std::string& tag)
    : slot_("sec_" + tag),
      pipeline_("sec-" + tag),
      customers_db_("sec_" + tag + "_customers"),
      orders_db_("sec_" + tag + "_orders") {
  const auto& s = TestServers::get();
  drop_slot(slot_);
  customer_admin_ = s.fresh_database(Server::Customer, customers_db_,
                                     {"deploy/sql/customer_schema.sql", "deploy/sql/customer_roles.sql"});
  order_admin_ = s.fresh_database(Server::Order, orders_db_,
                                  {"deploy/sql/order_schema.sql", "deploy/sql/order_roles.sql"});
  redis_command({"DEL", "cdcsync:{" + pipeline_ + "}:checkpoint", "cdcsync:{" + pipeline_ + "}:lease",
                 "cdcsync:{" + pipeline_ + "}:verify"});
  dir_ = make_temp_dir("cdcsync-sec-" + tag);
}

SecurityPipeline::~SecurityPipeline() {
  try {
    drop_slot(slot_);
  } catch (...) {
  }
}

std::string SecurityPipeline::config_text(const PipelineOptions& o) const {
  const auto& s = TestServers::get();
  std::ostringstream c;
  c << "pipeline = \"" << (o.pipeline.empty() ? pipeline_ : o.pipeline) << "\"\n\n[source]\nconninfo = \""
    << (o.source_conninfo.empty() ? s.source_conninfo(customers_db_) : o.source_conninfo) << "\"\n";
  if (!o.source_password_file.empty()) c << "password_file = \"" << o.source_password_file << "\"\n";
  c << "publication = \"cdcsync_customers\"\nslot = \"" << slot_ << "\"\ncreate_slot = true\n"
    << "status_interval_ms = 200\nreconnect_min_ms = 50\nreconnect_max_ms = 500\n\n[target]\nconninfo = \""
    << (o.target_conninfo.empty() ? s.target_conninfo(orders_db_) : o.target_conninfo) << "\"\n";
  if (!o.target_password_file.empty()) c << "password_file = \"" << o.target_password_file << "\"\n";
  c << "\n[batch]\nmax_wait_ms = 20\n\n[checkpoint]\nredis = \""
    << (o.redis_url.empty() ? s.redis_url() : o.redis_url) << "\"\n";
  if (!o.redis_password_file.empty()) c << "password_file = \"" << o.redis_password_file << "\"\n";
  c << "lease_ttl_ms = 2000\nrenew_ms = 500\n\n[metrics]\nlisten = \"127.0.0.1:"
    << (o.metrics_port != 0 ? o.metrics_port : free_port()) << "\"\n\n"
    << "[log]\nlevel = \"" << o.log_level << "\"\n\n"
    << "[snapshot]\nmode = \"" << o.snapshot_mode << "\"\n\n"
    << "[[tables]]\nsource  = \"public.customers\"\ntarget  = \"ref.customer\"\nkey     = [\"id\"]\n"
    << "columns = { id = \"customer_id\", full_name = \"display_name\", status = \"status\", tier = \"tier\" "
       "}\n"
    << "deletes = \"soft\"\n\n"
    << "[[tables]]\nsource  = \"public.loyalty_accounts\"\ntarget  = \"ref.loyalty_account\"\n"
    << "key     = [\"customer_id\"]\ncolumns = { customer_id = \"customer_id\", points = \"points\", level = "
       "\"level\" }\n";
  return c.str();
}

std::string SecurityPipeline::write_config(const std::string& name, const PipelineOptions& o) const {
  const std::string path = dir_ + "/" + name + ".toml";
  std::ofstream(path) << config_text(o);
  return path;
}

std::string SecurityPipeline::secret_file(const std::string& name, const std::string& content) const {
  const std::string path = dir_ + "/" + name;
  {
    std::ofstream out(path, std::ios::trunc);
    out << content << "\n";
  }
  chmod(path.c_str(), 0600);
  return path;
}

Run SecurityPipeline::cdcsync(const std::vector<std::string>& args, std::chrono::seconds timeout) const {
  static std::atomic<int> counter{0};
  const std::string base = dir_ + "/run" + std::to_string(++counter);
  std::vector<std::string> argv{DaemonProcess::binary()};
  argv.insert(argv.end(), args.begin(), args.end());
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
  bool killed = false;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.exit_code = killed ? -9 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(base + ".out");
  r.err = read_file(base + ".err");
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  std::cout << "[ cdcsync  ]" << cmd << " -> exit " << r.exit_code << "\n" << r.out << r.err << std::flush;
  return r;
}

void SecurityPipeline::insert_customers(int first_id, int count) const {
  exec_sql(customer_admin_,
           "INSERT INTO public.customers (id, full_name, email, status, tier) SELECT g, 'Customer ' || g, "
           "'c' || g || '@example.com', 'active', 'gold' FROM generate_series(" +
               std::to_string(first_id) + ", " + std::to_string(first_id + count - 1) + ") g");
}

int SecurityPipeline::target_customers() const {
  return std::stoi(
      query_value(order_admin_, "SELECT count(*) FROM ref.customer WHERE NOT _cdc_deleted").value_or("0"));
}

PasswordLogins::PasswordLogins(const SecurityPipeline& p, const std::string& prefix,
                               const std::string& source_password, const std::string& target_password,
                               const std::string& redis_password)
    : prefix_(prefix), redis_user_("cdcsync-" + p.pipeline()) {
  const auto& s = TestServers::get();
  const auto customer_postgres = s.admin_conninfo(Server::Customer, "postgres");
  const auto order_postgres = s.admin_conninfo(Server::Order, "postgres");
  exec_sql(customer_postgres, "DROP ROLE IF EXISTS " + source_role());
  exec_sql(customer_postgres, "CREATE ROLE " + source_role() +
                                  " LOGIN REPLICATION IN ROLE cdcsync_source PASSWORD '" + source_password +
                                  "'");
  exec_sql(order_postgres, "DROP ROLE IF EXISTS " + target_role());
  exec_sql(order_postgres, "CREATE ROLE " + target_role() + " LOGIN IN ROLE cdcsync_target PASSWORD '" +
                               target_password + "'");
  redis_command(acl_setuser(redis_user_, redis_password, p.pipeline()));
}

PasswordLogins::~PasswordLogins() {
  try {
    redis_command({"ACL", "DELUSER", redis_user_});
  } catch (...) {
  }
}

}  // namespace cdcsync::test
