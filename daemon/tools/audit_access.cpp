// The audit's rules about access: whether each connection verifies its server, and where each secret comes
// from (pure functions of facts; see audit.h).
#include <fmt/format.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include "daemon/tools/audit.h"
#include "daemon/tools/audit_internal.h"

namespace cdcsync::audit {
namespace {

using namespace detail;

bool is_local_host(const std::string& h) {
  if (h.empty() || h.front() == '/' || h.front() == '@') return true;
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

std::string option(const ConnectionFacts& c, const std::string& key) {
  const auto it = c.options.find(key);
  return it == c.options.end() ? std::string() : it->second;
}

void stat_into(const std::string& path, SecretFacts& s) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    s.mode = st.st_mode & 07777;
    s.uid = st.st_uid;
  }
}

}  // namespace

void audit_connection(const ConnectionFacts& c, Report& report) {
  ConnectionReport out;
  out.name = c.name;
  const std::string hostaddr = option(c, "hostaddr");
  const std::string host_list = hostaddr.empty() ? option(c, "host") : hostaddr;
  const std::string port = option(c, "port");
  std::vector<std::string> endpoints;
  std::vector<std::string> remote;
  bool tcp_local = false;
  for (const auto& h : split(host_list, ',')) {
    if (h.empty() || h.front() == '/' || h.front() == '@') {
      endpoints.push_back("unix socket " + (h.empty() ? std::string("(libpq's default directory)") : h));
    } else {
      endpoints.push_back(h + ":" + (port.empty() ? "5432" : port));
      if (is_local_host(h)) {
        tcp_local = true;
      } else {
        remote.push_back(h);
      }
    }
  }
  out.endpoint = join(endpoints);
  out.transport = !remote.empty() ? "TCP" : tcp_local ? "loopback TCP" : "unix socket";
  const std::string sslmode = option(c, "sslmode").empty() ? "prefer" : option(c, "sslmode");
  std::string tls;
  if (c.connected && c.ssl_in_use) {
    tls = "TLS " + (c.ssl_protocol.empty() ? std::string("(protocol unknown)") : c.ssl_protocol) +
          ", sslmode=" + sslmode;
    if (sslmode == "verify-full") {
      tls += ", server certificate and host name verified";
      const auto root = option(c, "sslrootcert");
      if (!root.empty()) tls += " against " + root;
    } else if (sslmode == "verify-ca") {
      tls += ", CA verified but not the host name";
    } else {
      tls += ", server not verified";
    }
  } else {
    tls = std::string(c.connected ? "no TLS" : "not connected") + " (sslmode=" + sslmode + ")";
  }
  out.verified = remote.empty() || sslmode == "verify-full";
  if (remote.empty()) tls += "; the connection does not leave this host";
  out.tls = tls;
  if (!remote.empty() && sslmode != "verify-full") {
    add(report, Severity::Violation, "tls", c.name + " connection",
        "sslmode=" + sslmode + " to " + join(remote) +
            " does not verify the server: whoever sits on the path can read the rows and the login" +
            (c.allow_insecure_tls ? " (allowed by " + c.name + ".allow_insecure_tls)" : std::string()),
        "use sslmode=verify-full sslrootcert=<the CA's certificate> in " + c.name + ".conninfo" +
            (c.allow_insecure_tls ? " and remove " + c.name + ".allow_insecure_tls" : std::string()));
  }
  report.connections.push_back(std::move(out));
}

void audit_redis(const config::CheckpointConfig& checkpoint, Report& report) {
  ConnectionReport out;
  out.name = "checkpoint";
  const auto& e = checkpoint.endpoint;
  if (!e.unix_socket.empty()) {
    out.endpoint = "unix socket " + e.unix_socket;
    out.transport = "unix socket";
  } else {
    out.endpoint = e.host + ":" + std::to_string(e.port);
    out.transport = is_local_host(e.host) ? "loopback TCP" : "TCP";
  }
  out.verified = out.transport != "TCP";
  out.tls = out.verified ? "no TLS; the connection does not leave this host"
                         : "no TLS (this build has no TLS for Redis)";
  if (!out.verified) {
    add(report, Severity::Violation, "tls", "checkpoint connection",
        "Redis at " + out.endpoint +
            " is reached over plain TCP: the AUTH password and the checkpoint cross "
            "the network in clear",
        "run Redis on the daemon's host (loopback or unix socket), or reach it through a TLS tunnel "
        "(stunnel, "
        "WireGuard) that ends on this host");
  }
  report.connections.push_back(std::move(out));
}

SecretFacts describe_secret(const std::string& what, const config::SecretFile& secret) {
  SecretFacts s;
  s.what = what;
  constexpr std::string_view kCredential = "credential:";
  if (secret.spec.starts_with(kCredential)) {
    s.kind = "systemd credential";
    s.location = secret.spec.substr(kCredential.size()) + " (" + secret.path.string() + ")";
  } else {
    s.kind = "file";
    s.location = secret.path.string();
  }
  stat_into(secret.path.string(), s);
  return s;
}

void audit_secrets(const config::Config& config, const std::vector<ConnectionFacts>& connections,
                   const std::optional<std::string>& pgpassword, Report& report) {
  const auto check_mode = [&](const SecretFacts& s) {
    if (s.mode && (*s.mode & 0037) != 0) {
      add(report, Severity::Violation, "secrets", s.what,
          fmt::format("{} has mode {:04o}, wider than 0640", s.location, *s.mode),
          "chmod 0600 " + s.location);
    }
  };
  for (const auto& c : connections) {
    const config::SecretFile& file =
        c.name == "source" ? config.source.password_file : config.target.password_file;
    const std::string what = c.name + " password";
    SecretFacts s;
    if (file.configured()) {
      s = describe_secret(what, file);
      if (pgpassword) {
        add(report, Severity::Warning, "secrets", "PGPASSWORD",
            "is set in this environment (unused here: " + c.name +
                ".password_file wins); a variable is "
                "readable in /proc/PID/environ and inherited by every child",
            "unset PGPASSWORD (and never set it in the unit)");
      }
    } else if (pgpassword) {
      s = SecretFacts{what, "environment", "PGPASSWORD", std::nullopt, std::nullopt};
      add(report, Severity::Violation, "secrets", what,
          "comes from PGPASSWORD: readable in /proc/PID/environ, inherited by every child, easily logged",
          "put it in a file (mode 0600) or a systemd credential and set " + c.name +
              ".password_file; unset PGPASSWORD");
    } else if (!option(c, "sslcert").empty() && !c.used_password && c.connected) {
      s = SecretFacts{what, "client certificate", option(c, "sslcert"), std::nullopt, std::nullopt};
      stat_into(option(c, "sslkey"), s);
    } else if (c.connected && !c.used_password) {
      s = SecretFacts{what, "none", "", std::nullopt, std::nullopt};
      add(report, Severity::Warning, "secrets", what,
          "the server asked for no password (trust or peer authentication)",
          "use scram-sha-256 in pg_hba.conf for this role, with " + c.name + ".password_file");
    } else {
      s = SecretFacts{what, "pgpass", option(c, "passfile"), std::nullopt, std::nullopt};
      stat_into(s.location, s);
      if (!s.mode) s = SecretFacts{what, "none", "", std::nullopt, std::nullopt};
    }
    check_mode(s);
    report.secrets.push_back(std::move(s));
  }
  if (config.checkpoint.password_file.configured()) {
    auto s = describe_secret("Redis password", config.checkpoint.password_file);
    check_mode(s);
    report.secrets.push_back(std::move(s));
  } else {
    report.secrets.push_back({"Redis password", "none", "", std::nullopt, std::nullopt});
    add(report, Severity::Warning, "secrets", "Redis password",
        "the checkpoint Redis is used without AUTH: any process that reaches it can move the checkpoint",
        "create the ACL user of SECURITY.md and set checkpoint.password_file (and the user in "
        "checkpoint.redis)");
  }
  for (const auto& t : config.tables) {
    for (const auto& c : t.columns) {
      if (!c.transform) continue;
      if (const auto* h = std::get_if<config::HmacSha256>(&*c.transform)) {
        auto s = describe_secret("HMAC key of " + column_of(t.source, c.source), h->key_file);
        check_mode(s);
        report.secrets.push_back(std::move(s));
      }
    }
  }
}

}  // namespace cdcsync::audit
