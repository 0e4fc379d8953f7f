// The production-style config from a root shell: deploy/cdcsync.example.toml as shipped (password_file =
// "credential:pg_source", "credential:pg_target", "credential:redis"), pointed at the test servers, and the
// secrets in systemd's credential store, /etc/credstore/NAME, where the unit's LoadCredential=NAME reads
// them. `cdcsync check` finds them there with no flag and no $CREDENTIALS_DIRECTORY.
//
// The store is the real path, /etc/credstore, as the binary opens it in production: a private mount namespace
// (unshare -m) bind-mounts the test's directory over it for the one command, so the host's store is neither
// read nor written, and the binary has no test-only way to move the store. Needs root (CAP_SYS_ADMIN);
// skipped otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "tests/e2e/security/security_fixture.h"
#include "tests/harness/daemon_process.h"

namespace cdcsync::test {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string random_password(const std::string& what) {
  std::random_device rd;
  return what + "Cred" + std::to_string(rd()) + std::to_string(rd());
}

// `text` with `from` replaced by `to`, failing the test when the shipped example no longer has `from`.
void replace_in(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "deploy/cdcsync.example.toml no longer has: " << from;
  text.replace(at, from.size(), to);
}

bool can_unshare_mounts() {
  return ::geteuid() == 0 && std::system("unshare -m true >/dev/null 2>&1") == 0;
}

// Runs `argv` with a clean environment as a root shell has it (no $CREDENTIALS_DIRECTORY, no pgpass), in a
// private mount namespace where `store` is bind-mounted over /etc/credstore when given.
Run run_in_namespace(const std::string& dir, const std::optional<std::string>& store,
                     const std::vector<std::string>& argv) {
  static int counter = 0;
  const std::string base = dir + "/ns" + std::to_string(++counter);
  std::string script = "set -e\n";
  if (store) script += "mount --bind \"$CRED_STORE\" /etc/credstore\n";
  script += "exec \"$@\"\n";
  std::vector<std::string> args{"/usr/bin/unshare", "-m", "--propagation", "private",
                                "/bin/sh",          "-c", script,          "sh"};
  args.insert(args.end(), argv.begin(), argv.end());
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, 1);
    dup2(err, 2);
    clearenv();
    setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
    setenv("HOME", dir.c_str(), 1);
    setenv("PGPASSFILE", (dir + "/no-pgpass").c_str(), 1);
    if (store) setenv("CRED_STORE", store->c_str(), 1);
    std::vector<char*> c;
    for (auto& a : args) c.push_back(a.data());
    c.push_back(nullptr);
    execv(c[0], c.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(base + ".out");
  r.err = read_text(base + ".err");
  std::cout << "[ unshare  ] " << argv.back() << " -> exit " << r.exit_code << "\n" << r.out << r.err;
  return r;
}

// /etc/credstore must exist to be mounted over; one the test creates (empty, 0700 as systemd's own) goes
// again afterwards.
struct StoreMountPoint {
  bool created = false;
  StoreMountPoint() {
    if (!fs::exists("/etc/credstore")) created = ::mkdir("/etc/credstore", 0700) == 0;
  }
  ~StoreMountPoint() {
    if (created) ::rmdir("/etc/credstore");
  }
};

TEST(CredentialStore, CheckAsRootReadsTheProductionConfigsCredentialsFromEtcCredstore) {
  if (!can_unshare_mounts()) GTEST_SKIP() << "needs root and unshare -m (a private mount namespace)";
  const auto& s = TestServers::get();
  SecurityPipeline p("credstore");
  const std::string source_pw = random_password("Src");
  const std::string target_pw = random_password("Tgt");
  const std::string redis_pw = random_password("Redis");

  // Roles that log in only with these passwords; they get the demo roles' privileges by membership.
  const PasswordLogins logins(p, "cdcsync_cred", source_pw, target_pw, redis_pw);
  const std::string redis_user = logins.redis_user();

  // The shipped example, pointed at this test's servers, databases, slot, pipeline and Redis user; nothing
  // else changed (its password_file lines stay as shipped).
  std::string config = read_text(fs::path(repo_root()) / "deploy/cdcsync.example.toml");
  ASSERT_NE(config.find("\npassword_file = \"credential:pg_source\""), std::string::npos) << config;
  ASSERT_NE(config.find("\npassword_file = \"credential:pg_target\""), std::string::npos) << config;
  ASSERT_NE(config.find("\npassword_file = \"credential:redis\""), std::string::npos) << config;
  replace_in(config, "pipeline = \"customers-to-orders\"", "pipeline = \"" + p.pipeline() + "\"");
  replace_in(config, "host=127.0.0.1 port=5432 dbname=customers user=cdcsync_source",
             "host=127.0.0.1 port=" + std::to_string(s.port(Server::Customer)) +
                 " dbname=" + p.customers_db() + " user=cdcsync_cred_source");
  replace_in(config, "slot        = \"cdcsync_customers_orders\"", "slot        = \"" + p.slot() + "\"");
  replace_in(config, "host=127.0.0.1 port=5433 dbname=orders user=cdcsync_target",
             "host=127.0.0.1 port=" + std::to_string(s.port(Server::Order)) + " dbname=" + p.orders_db() +
                 " user=cdcsync_cred_target");
  replace_in(config, "redis://cdcsync-customers-to-orders@127.0.0.1:6379/0",
             "redis://" + redis_user + "@127.0.0.1:" + std::to_string(s.redis_port()) + "/0");
  replace_in(config, "127.0.0.1:10187", "127.0.0.1:" + std::to_string(free_port()));
  const std::string config_path = p.dir() + "/cdcsync.toml";
  std::ofstream(config_path) << config;

  // The store as deploy/README.md has the admin make it: a root-only directory of 0600 files.
  const std::string store = p.dir() + "/credstore";
  fs::create_directories(store);
  ::chmod(store.c_str(), 0700);
  for (const auto& [name, value] :
       {std::pair{"pg_source", source_pw}, std::pair{"pg_target", target_pw}, std::pair{"redis", redis_pw}}) {
    const std::string file = store + "/" + name;
    std::ofstream(file) << value << "\n";
    ::chmod(file.c_str(), 0600);
  }
  StoreMountPoint mount_point;
  const std::string binary = DaemonProcess::binary();

  const cdcsync::test::Run check =
      run_in_namespace(p.dir(), store, {binary, "check", "--config", config_path});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("all checks passed"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("checkpoint: (none yet), lease: (free)"), std::string::npos) << check.out;

  // The daemon's own view of where each secret comes from, the same store.
  const cdcsync::test::Run audit =
      run_in_namespace(p.dir(), store, {binary, "audit", "--config", config_path, "--json"});
  EXPECT_NE(audit.out.find("pg_source (/etc/credstore/pg_source)"), std::string::npos) << audit.out;

  // An empty store: the error says where it looked and what to do; exit 1 (a config error).
  const std::string empty = p.dir() + "/empty-store";
  fs::create_directories(empty);
  const cdcsync::test::Run missing =
      run_in_namespace(p.dir(), empty, {binary, "check", "--config", config_path});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("credential:pg_source not found"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("/etc/credstore/pg_source"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("--credentials-dir"), std::string::npos) << missing.err;

  // --credentials-dir: the same files from another directory, after the subcommand too.
  const cdcsync::test::Run flag = run_in_namespace(
      p.dir(), empty, {binary, "check", "--config", config_path, "--credentials-dir", store});
  EXPECT_EQ(flag.exit_code, 0) << flag.out << flag.err;

  // A wrong password in the store is a finding about the config (exit 1), not an unreachable server.
  const std::string wrong = p.dir() + "/wrong-store";
  fs::create_directories(wrong);
  for (const char* name : {"pg_source", "pg_target", "redis"}) {
    fs::copy_file(store + "/" + name, wrong + "/" + name);
  }
  std::ofstream(wrong + "/pg_target", std::ios::trunc) << "not-the-password\n";
  const cdcsync::test::Run refused =
      run_in_namespace(p.dir(), wrong, {binary, "check", "--config", config_path});
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("PROBLEM target: connection"), std::string::npos) << refused.out;

  for (const cdcsync::test::Run* r : {&check, &audit, &missing, &flag, &refused}) {
    for (const std::string& pw : {source_pw, target_pw, redis_pw}) {
      EXPECT_EQ(r->out.find(pw), std::string::npos);
      EXPECT_EQ(r->err.find(pw), std::string::npos);
    }
  }
}

// cdcsync@NAME: the instance's credentials carry its name (credential:cdcsync.NAME.pg_source); the template
// unit loads exactly those names, so the shell finds the same files.
TEST(CredentialStore, TheTemplateUnitsPerInstanceNamesAreTheConfigsCredentialNames) {
  const std::string unit = read_text(fs::path(repo_root()) / "deploy/cdcsync@.service");
  for (const char* name : {"pg_source", "pg_target", "redis"}) {
    EXPECT_NE(unit.find(std::string("\nLoadCredential=cdcsync.%i.") + name + "\n"), std::string::npos)
        << name;
  }
  const std::string single = read_text(fs::path(repo_root()) / "deploy/cdcsync.service");
  for (const char* name : {"pg_source", "pg_target", "redis"}) {
    EXPECT_NE(single.find(std::string("\nLoadCredential=") + name + "\n"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace cdcsync::test
