#include "tests/e2e/faults/faults_fixture.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cdcsync::test {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

}  // namespace

Proxies::Proxies()
    : source(TestServers::get().port(Server::Customer), "source"),
      target(TestServers::get().port(Server::Order), "target"),
      redis(TestServers::get().redis_port(), "redis") {}

std::string proxied_config(const SyncPipeline& p, const Proxies& px, const ConfigOptions& options,
                           const ProxiedOptions& extra) {
  const auto& s = TestServers::get();
  const std::string cport = std::to_string(s.port(Server::Customer));
  const std::string oport = std::to_string(s.port(Server::Order));
  const std::string rport = std::to_string(s.redis_port());

  // libpq matches pgpass lines by port: the same passwords, for the proxies' ports.
  std::ifstream in(s.passfile());
  std::stringstream lines;
  lines << in.rdbuf();
  std::string pgpass = lines.str();
  std::string proxied = pgpass;
  replace_all(proxied, "127.0.0.1:" + cport + ":", "127.0.0.1:" + std::to_string(px.source.port()) + ":");
  replace_all(proxied, "127.0.0.1:" + oport + ":", "127.0.0.1:" + std::to_string(px.target.port()) + ":");
  const std::string passfile = p.dir() + "/pgpass-proxied";
  {
    std::ofstream out(passfile);
    out << pgpass << proxied;
  }
  chmod(passfile.c_str(), 0600);

  std::string c = p.config(options);
  replace_all(c, "passfile=" + s.passfile(), "passfile=" + passfile);
  replace_all(c, "port=" + cport + " ", "port=" + std::to_string(px.source.port()) + " ");
  replace_all(c, "port=" + oport + " ", "port=" + std::to_string(px.target.port()) + " ");
  replace_all(c, "127.0.0.1:" + rport + "/", "127.0.0.1:" + std::to_string(px.redis.port()) + "/");
  // The first conninfo is the source's, the second the target's.
  const auto source_at = c.find("conninfo = \"");
  const auto target_at = c.find("conninfo = \"", source_at + 1);
  if (source_at == std::string::npos || target_at == std::string::npos)
    throw std::runtime_error("no conninfo");
  if (!extra.target_conninfo.empty()) c.insert(c.find('"', target_at + 12), " " + extra.target_conninfo);
  if (!extra.source_conninfo.empty()) c.insert(c.find('"', source_at + 12), " " + extra.source_conninfo);
  if (!extra.target_keys.empty()) replace_all(c, "[target]\n", "[target]\n" + extra.target_keys);
  if (c.find(std::to_string(px.source.port())) == std::string::npos ||
      c.find(std::to_string(px.target.port())) == std::string::npos ||
      c.find(std::to_string(px.redis.port())) == std::string::npos) {
    throw std::runtime_error("could not point the config at the proxies:\n" + c);
  }
  return c;
}

long long ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace cdcsync::test
