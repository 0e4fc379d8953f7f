// What the ops tests share: the daemon and Prometheus as child processes, HTTP GETs, and Prometheus' query
// API.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cdcsync::test {

using namespace std::chrono_literals;

// The binary under test (ctest sets CDCSYNC_BINARY).
inline std::string daemon_binary() {
  const char* b = std::getenv("CDCSYNC_BINARY");
  return b != nullptr ? b : "cdcsync";
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A child process with stdout and stderr in a log file; SIGTERM then SIGKILL when it outlives the test.
// `env` entries ("NAME=value") are added to the inherited environment.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::filesystem::path& log, std::vector<std::string> env = {})
      : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      for (auto& e : env) putenv(e.data());
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      const std::string why = std::string("exec ") + args[0] + ": " + std::strerror(errno) + "\n";
      if (write(2, why.data(), why.size()) < 0) _exit(126);
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGTERM);
      if (!wait_exit(10s)) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
  }
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (exited_) return code_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return code_;
      }
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }
  void terminate() { ::kill(pid_, SIGTERM); }
  std::string log() const { return read_file(log_); }

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
  bool exited_ = false;
  int code_ = -1;
};

struct HttpResult {
  int status = 0;
  std::string body;
};

inline HttpResult http_get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  auto res = client.Get(path.c_str());
  if (!res) return {};
  return {res->status, res->body};
}

// GET /api/v1/query?query=EXPR on Prometheus; the parsed JSON answer.
inline rapidjson::Document prom_query(int port, const std::string& expr) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10);
  auto res = client.Get("/api/v1/query", httplib::Params{{"query", expr}}, httplib::Headers{});
  rapidjson::Document doc;
  if (!res) {
    doc.Parse(R"({"status":"error","error":"no answer"})");
    return doc;
  }
  doc.Parse(res->body.c_str());
  if (doc.HasParseError()) doc.Parse(R"({"status":"error","error":"not JSON"})");
  return doc;
}

inline std::size_t result_size(const rapidjson::Document& doc) {
  if (!doc.HasMember("data") || !doc["data"].HasMember("result")) return 0;
  const auto& r = doc["data"]["result"];
  if (r.IsArray()) return r.Size();
  return 1;  // scalar or string
}

inline std::string error_of(const rapidjson::Document& doc) {
  if (doc.HasMember("error") && doc["error"].IsString()) return doc["error"].GetString();
  return doc.HasMember("status") && doc["status"].IsString() ? doc["status"].GetString() : "?";
}

}  // namespace cdcsync::test
