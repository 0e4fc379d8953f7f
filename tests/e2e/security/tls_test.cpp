// TLS with sslmode=verify-full to both PostgreSQL servers, against a CA this test makes with the openssl
// CLI: the daemon syncs over verified TLS; a wrong CA or a certificate for another host name is refused with
// a clear error. SSL is turned back off on both servers when the test ends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/e2e/security/security_fixture.h"
#include "tests/harness/daemon_process.h"

namespace cdcsync::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

void sh(const std::string& command) {
  const std::string full = "set -e; " + command + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(("bash -c '" + full + "'").c_str()), 0) << command;
}

// A CA, a second (wrong) CA, and server certificates for "localhost" and for "db.example.com" in `dir`.
void make_certificates(const std::string& dir) {
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  for (const std::string ca : {"ca", "other-ca"}) {
    sh("cd " + dir + " && openssl req -x509 " + ec + " -keyout " + ca + ".key -out " + ca +
       ".crt -days 2 -subj /CN=cdcsync-test-" + ca);
  }
  for (const auto& [name, san] : {std::pair{"localhost", "DNS:localhost,IP:127.0.0.1"},
                                  std::pair{"other-host", "DNS:db.example.com"}}) {
    std::ofstream(dir + "/" + name + ".ext") << "subjectAltName=" << san << "\n";
    sh("cd " + dir + " && openssl req " + ec + " -keyout " + name + ".key -out " + name +
       ".csr -subj /CN=" + (std::string(name) == "localhost" ? "localhost" : "db.example.com") +
       " && openssl x509 -req -in " + name + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out " +
       name + ".crt -extfile " + name + ".ext");
  }
}

// Turns ssl on in both test clusters with one certificate; off again (and the files gone) on destruction.
class ServerTls {
 public:
  explicit ServerTls(const std::string& certs) {
    const auto& s = TestServers::get();
    dir_ = s.env("CDCSYNC_PG_ROOT") + "/tls-" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    for (const std::string name : {"localhost", "other-host"}) {
      std::filesystem::copy_file(certs + "/" + name + ".crt", dir_ + "/" + name + ".crt",
                                 std::filesystem::copy_options::overwrite_existing);
      std::filesystem::copy_file(certs + "/" + name + ".key", dir_ + "/" + name + ".key",
                                 std::filesystem::copy_options::overwrite_existing);
      chmod((dir_ + "/" + name + ".key").c_str(), 0600);
      chmod((dir_ + "/" + name + ".crt").c_str(), 0644);
    }
    // The clusters run as "postgres" when the tests run as root (scripts/servers.sh); the key must be its
    // own.
    if (geteuid() == 0) {
      if (const passwd* pg = getpwnam("postgres")) {
        for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
          if (chown(entry.path().c_str(), pg->pw_uid, pg->pw_gid) != 0)
            throw std::runtime_error("chown failed");
        }
        if (chown(dir_.c_str(), pg->pw_uid, pg->pw_gid) != 0) throw std::runtime_error("chown failed");
      }
    }
  }
  ~ServerTls() {
    for (const auto server : {Server::Customer, Server::Order}) {
      try {
        const auto admin = TestServers::get().admin_conninfo(server, "postgres");
        exec_sql(admin, "ALTER SYSTEM RESET ssl");
        exec_sql(admin, "ALTER SYSTEM RESET ssl_cert_file");
        exec_sql(admin, "ALTER SYSTEM RESET ssl_key_file");
        exec_sql(admin, "SELECT pg_reload_conf()");
      } catch (...) {
      }
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Serves `name`.crt/.key on `server` and waits until a new connection gets TLS with it.
  void serve(Server server, const std::string& name) {
    const auto admin = TestServers::get().admin_conninfo(server, "postgres");
    exec_sql(admin, "ALTER SYSTEM SET ssl = on");
    exec_sql(admin, "ALTER SYSTEM SET ssl_cert_file = '" + dir_ + "/" + name + ".crt'");
    exec_sql(admin, "ALTER SYSTEM SET ssl_key_file = '" + dir_ + "/" + name + ".key'");
    exec_sql(admin, "SELECT pg_reload_conf()");
    ASSERT_TRUE(eventually(
        [&] {
          return query_value(admin + " sslmode=require", "SELECT current_setting('ssl_cert_file')") ==
                 dir_ + "/" + name + ".crt";
        },
        10s, 100ms))
        << "the server did not take " << name << ".crt (see its server.log)";
  }

 private:
  std::string dir_;
};

std::string tls_conninfo(Server server, const std::string& db, const std::string& user,
                         const std::string& ca) {
  return "host=localhost port=" + std::to_string(TestServers::get().port(server)) + " dbname=" + db +
         " user=" + user + " sslmode=verify-full sslrootcert=" + ca;
}

int tls_backends(Server server, const std::string& user, const std::string& db) {
  return std::stoi(
      query_value(TestServers::get().admin_conninfo(server, "postgres"),
                  "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl "
                  "AND a.usename = '" +
                      user + "' AND a.datname = '" + db + "'")
          .value_or("0"));
}

TEST(Tls, VerifyFullToBothServersSyncsAndAWrongCaOrHostNameIsRefused) {
  const auto& s = TestServers::get();
  SecurityPipeline p("tls");
  const std::string certs = p.dir() + "/certs";
  std::filesystem::create_directories(certs);
  make_certificates(certs);
  ServerTls tls(certs);
  tls.serve(Server::Customer, "localhost");
  tls.serve(Server::Order, "localhost");

  // pgpass lines name 127.0.0.1, not localhost: the passwords come from files, as in production.
  const auto source_pw =
      p.secret_file("source.pw", demo_password("cdcsync_source", s.port(Server::Customer)));
  const auto target_pw = p.secret_file("target.pw", demo_password("cdcsync_target", s.port(Server::Order)));
  const auto options = [&](const std::string& ca) {
    PipelineOptions o;
    o.source_conninfo = tls_conninfo(Server::Customer, p.customers_db(), "cdcsync_source", ca);
    o.target_conninfo = tls_conninfo(Server::Order, p.orders_db(), "cdcsync_target", ca);
    o.source_password_file = source_pw;
    o.target_password_file = target_pw;
    return o;
  };

  // The right CA: syncs, and both sessions are TLS.
  p.insert_customers(1, 20);
  {
    const auto config = p.write_config("tls", options(certs + "/ca.crt"));
    DaemonProcess daemon(p.dir(), "tls-daemon", p.config_text(options(certs + "/ca.crt")));
    daemon.start();
    ASSERT_TRUE(eventually([&] { return p.target_customers() == 20; }, 60s)) << daemon.log_tail();
    p.insert_customers(21, 5);
    ASSERT_TRUE(eventually([&] { return p.target_customers() == 25; }, 60s)) << daemon.log_tail();
    EXPECT_GE(tls_backends(Server::Customer, "cdcsync_source", p.customers_db()), 1);
    EXPECT_GE(tls_backends(Server::Order, "cdcsync_target", p.orders_db()), 1);
    daemon.terminate();
    EXPECT_EQ(daemon.wait_exit(30s), 0) << daemon.log_tail();

    const auto audit = p.cdcsync({"audit", "--config", config});
    EXPECT_THAT(audit.out,
                HasSubstr("sslmode=verify-full, server certificate and host name verified against " + certs +
                          "/ca.crt"));
    EXPECT_THAT(audit.out, HasSubstr("source password: file " + source_pw + " (mode 0600"));
  }

  // A CA that did not sign the server's certificate.
  {
    const auto config = p.write_config("wrong-ca", options(certs + "/other-ca.crt"));
    const auto check = p.cdcsync({"check", "--config", config});
    EXPECT_EQ(check.exit_code, 1);
    EXPECT_THAT(check.out, HasSubstr("cannot connect to the source"));
    EXPECT_THAT(check.out, HasSubstr("certificate verify failed"));
    DaemonProcess daemon(p.dir(), "wrong-ca-daemon", p.config_text(options(certs + "/other-ca.crt")));
    daemon.start();
    EXPECT_TRUE(eventually([&] { return daemon.log_count("certificate verify failed") > 0; }, 30s))
        << daemon.log_tail();
    daemon.terminate();
    daemon.wait_exit(30s);
  }

  // The right CA, but the customer server presents a certificate for another host.
  tls.serve(Server::Customer, "other-host");
  {
    const auto config = p.write_config("other-host", options(certs + "/ca.crt"));
    const auto check = p.cdcsync({"check", "--config", config});
    EXPECT_EQ(check.exit_code, 1);
    EXPECT_THAT(check.out, HasSubstr("server certificate for \"db.example.com\" does not match host name "
                                     "\"localhost\""));
    EXPECT_THAT(check.out, Not(HasSubstr("PROBLEM target")));  // the order server still verifies
  }
  EXPECT_EQ(p.target_customers(), 25);
}

}  // namespace
}  // namespace cdcsync::test
