#include "tests/harness/daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace cdcsync::test {
namespace {

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string make_temp_dir(std::string_view prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (std::string(prefix) + ".XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

std::string DaemonProcess::binary() {
  const char* b = std::getenv("CDCSYNC_BINARY");
  if (b == nullptr || *b == '\0')
    throw std::runtime_error("CDCSYNC_BINARY is not set: run the e2e tests through ctest");
  return b;
}

DaemonProcess::DaemonProcess(std::string dir, std::string name, const std::string& config_toml)
    : dir_(std::move(dir)), name_(std::move(name)) {
  config_path_ = dir_ + "/" + name_ + ".toml";
  log_path_ = dir_ + "/" + name_ + ".log";
  std::ofstream out(config_path_, std::ios::trunc);
  out << config_toml;
  if (!out) throw std::runtime_error("cannot write " + config_path_);
}

void DaemonProcess::rewrite_config(const std::string& config_toml) const {
  // Written aside and renamed: a reload never reads half a file.
  const std::string tmp = config_path_ + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << config_toml;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), config_path_.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp);
}

DaemonProcess::~DaemonProcess() {
  kill_and_reap();
}

void DaemonProcess::start() {
  if (pid_ > 0) throw std::logic_error(name_ + " is already running");
  ++starts_;
  last_exit_.reset();
  append_line(log_path_, "==== e2e: start #" + std::to_string(starts_) + " of " + name_ + " ====");

  const std::string bin = binary();
  std::vector<std::string> args = {bin, "run", "--config", config_path_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The test's environment, without a systemd notify socket, with a private state directory (spool files).
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv{*e};
    if (kv.starts_with("NOTIFY_SOCKET=") || kv.starts_with("STATE_DIRECTORY=") || kv.starts_with("WATCHDOG_"))
      continue;
    env.emplace_back(kv);
  }
  const std::string state = dir_ + "/" + name_ + ".state";
  std::filesystem::create_directories(state);
  env.push_back("STATE_DIRECTORY=" + state);
  env.insert(env.end(), extra_env_.begin(), extra_env_.end());
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + bin + ": " + std::strerror(rc));
  pid_ = pid;
}

bool DaemonProcess::running() {
  if (pid_ <= 0) return false;
  return !wait_exit(std::chrono::milliseconds(0)).has_value();
}

void DaemonProcess::send(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    if (last_exit_) return last_exit_;
    throw std::logic_error(name_ + " was never started");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      last_exit_ = code;
      append_line(log_path_, "==== e2e: " + name_ + " exited with " + std::to_string(code) + " ====");
      return code;
    }
    if (r < 0) throw std::runtime_error("waitpid failed for " + name_ + ": " + std::strerror(errno));
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void DaemonProcess::kill_and_reap() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  last_exit_ = 128 + SIGKILL;
  append_line(log_path_, "==== e2e: " + name_ + " killed ====");
}

std::string DaemonProcess::log() const {
  return read_file(log_path_);
}

std::size_t DaemonProcess::log_count(std::string_view needle) const {
  const std::string text = log();
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

std::string DaemonProcess::log_tail(std::size_t lines) const {
  const std::string text = log();
  std::size_t pos = text.size();
  for (std::size_t n = 0; n <= lines && pos > 0; ++n) {
    const auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return "[" + log_path_ + "]\n" + text;
    pos = nl;
  }
  return "[" + log_path_ + ", last " + std::to_string(lines) + " lines]" + text.substr(pos);
}

std::optional<std::size_t> DaemonProcess::peak_rss_kib() const {
  if (pid_ <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmHWM:"))
      return static_cast<std::size_t>(std::strtoull(line.c_str() + 6, nullptr, 10));
  }
  return std::nullopt;
}

std::string http_get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[8192];
      ssize_t n = 0;
      while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return out;
}

}  // namespace cdcsync::test
