// save_stream_evidence: a private file for the bytes of a message the daemon could not decode.
#include "daemon/core/bug_report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace cdcsync {
namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
}

// $STATE_DIRECTORY/bug-reports, made 0700 when new; an existing one must be a real directory of ours.
std::filesystem::path state_reports_dir(const char* state) {
  const std::filesystem::path dir = std::filesystem::path(state) / "bug-reports";
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail("cannot create", dir);
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) fail("cannot stat", dir);
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
    throw std::runtime_error(dir.string() + " is not a directory of this user");
  }
  if ((st.st_mode & 0777) != 0700 && chmod(dir.c_str(), 0700) != 0) fail("cannot chmod", dir);
  return dir;
}

std::filesystem::path fresh_temp_dir() {
  std::string name = (std::filesystem::temp_directory_path() / "cdcsync-bug-report-XXXXXX").string();
  if (mkdtemp(name.data()) == nullptr) fail("cannot create a directory like", name);
  return name;  // mkdtemp makes it 0700
}

}  // namespace

std::filesystem::path save_stream_evidence(const SourceStreamError& e, std::string_view pipeline) {
  const char* state = std::getenv("STATE_DIRECTORY");  // systemd StateDirectory=
  const std::filesystem::path dir =
      state != nullptr && *state != '\0' ? state_reports_dir(state) : fresh_temp_dir();
  std::string lsn = e.lsn().valid() ? e.lsn().str() : std::string("unknown");
  for (char& c : lsn) {
    if (c == '/') c = '-';
  }
  const auto unix_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::filesystem::path path;
  int fd = -1;
  for (int n = 0; fd < 0 && n < 100; ++n) {
    path = dir / fmt::format("{}-{}-at-{}-{}{}.bin", pipeline, e.kind(), lsn, unix_s,
                             n == 0 ? std::string() : "-" + std::to_string(n));
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) fail("cannot create", path);
  std::size_t done = 0;
  while (done < e.bytes().size()) {
    const ssize_t n = write(fd, e.bytes().data() + done, e.bytes().size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      errno = err;
      fail("cannot write", path);
    }
    done += static_cast<std::size_t>(n);
  }
  const int synced = fsync(fd);
  if (close(fd) != 0 || synced != 0) fail("cannot save", path);
  return path;
}

}  // namespace cdcsync
