// The cdcsync binary as a child process, for end-to-end tests: a config file, stderr (and stdout) appended
// to a log file across restarts, signals, and waiting for the exit code with a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cdcsync::test {

// A fresh directory under $TMPDIR (kept after the test so its logs can be read).
std::string make_temp_dir(std::string_view prefix);

class DaemonProcess {
 public:
  // Writes `config_toml` to DIR/NAME.toml; the log is DIR/NAME.log. The binary is $CDCSYNC_BINARY.
  DaemonProcess(std::string dir, std::string name, const std::string& config_toml);
  ~DaemonProcess();  // SIGKILL and reap when still running: a failed test leaves no daemon behind
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Starts `cdcsync run --config FILE`; a restart appends to the same log, after a marker line.
  void start();
  // "KEY=VALUE" added to the daemon's environment from the next start() on (NOTIFY_SOCKET and WATCHDOG_USEC
  // for a test that plays systemd: the test's own are never passed on).
  void add_env(std::string key_value) { extra_env_.push_back(std::move(key_value)); }
  bool running();
  pid_t pid() const { return pid_; }

  void terminate() { send(SIGTERM); }  // graceful stop
  void kill() { send(SIGKILL); }       // crash
  void hangup() { send(SIGHUP); }      // `run` reloads its config
  // Replaces the config file (a reload or the next start reads it).
  void rewrite_config(const std::string& config_toml) const;

  // The exit code (128 + signal number when killed by a signal), or nullopt when still running at the
  // deadline. Reaps the process; once it has exited, returns the same code again until the next start().
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // SIGKILL, then reap; returns immediately when not running.
  void kill_and_reap();

  // The whole log so far (every run), and how often `needle` occurs in it.
  std::string log() const;
  std::size_t log_count(std::string_view needle) const;
  // The last `lines` lines of the log, for failure messages.
  std::string log_tail(std::size_t lines = 40) const;
  const std::string& log_path() const { return log_path_; }
  const std::string& config_path() const { return config_path_; }

  // VmHWM (peak resident set) of the running process in KiB, from /proc/PID/status; nullopt when gone.
  std::optional<std::size_t> peak_rss_kib() const;

  static std::string binary();

 private:
  void send(int sig);

  std::string dir_;
  std::string name_;
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> last_exit_;
  std::vector<std::string> extra_env_;
  int starts_ = 0;
};

// GET http://127.0.0.1:PORT/PATH (a daemon's /metrics, /healthz, /readyz); the whole response (status line,
// headers, body), or "" when refused.
std::string http_get(int port, const std::string& path);

}  // namespace cdcsync::test
