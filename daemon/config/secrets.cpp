// Secrets: resolving password_file, credential:NAME and key files, checking them, and reading them (never
// printing their content); also the capped regular-file read used for the config file.
//
// credential:NAME is the same file under systemd and from a shell: the unit's LoadCredential=NAME (no path)
// copies /etc/credstore/NAME (or /run/credstore/NAME, /usr/lib/credstore/NAME) into $CREDENTIALS_DIRECTORY,
// and an admin command run outside the unit reads the store itself.
#include "daemon/config/secrets.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace cdcsync::config {
namespace {

constexpr std::size_t kMaxSecretBytes = 4096;
constexpr mode_t kSecretForbiddenBits = S_IWGRP | S_IXGRP | S_IRWXO;  // wider than 0640
// systemd's credential store, searched in this order for LoadCredential=NAME without a path (systemd.exec(5),
// systemd 252). The encrypted stores (/etc/credstore.encrypted/ ...) need systemd-creds to decrypt: not read.
constexpr std::array<const char*, 3> kCredentialStores = {"/etc/credstore", "/run/credstore",
                                                          "/usr/lib/credstore"};

std::string errno_text(int err) {
  return std::strerror(err);
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Checks a secret file without reading it: regular, mode ≤ 0640, owned by us or root, readable.
std::string check_secret_path(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fmt::format("cannot use {}: {}", path.string(), errno_text(errno));
  if (!S_ISREG(st.st_mode)) return fmt::format("{} is not a regular file", path.string());
  if ((st.st_mode & kSecretForbiddenBits) != 0) {
    return fmt::format("{} has mode {:04o}, wider than 0640 (run: chmod 0600 {})", path.string(),
                       st.st_mode & 07777, path.string());
  }
  const uid_t me = ::geteuid();
  if (me != 0 && st.st_uid != me && st.st_uid != 0) {
    return fmt::format("{} is owned by uid {}, not by the service user (uid {}) or root", path.string(),
                       st.st_uid, me);
  }
  if (::access(path.c_str(), R_OK) != 0)
    return fmt::format("cannot read {}: {}", path.string(), errno_text(errno));
  return {};
}

}  // namespace

std::optional<std::string> read_regular_file(const std::filesystem::path& path, std::size_t cap,
                                             std::string& error, mode_t forbidden_mode_bits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    error = fmt::format("cannot open {}: {}", path.string(), errno_text(errno));
    return std::nullopt;
  }
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    error = fmt::format("cannot stat {}: {}", path.string(), errno_text(errno));
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    error = fmt::format("{} is not a regular file", path.string());
    return std::nullopt;
  }
  if ((st.st_mode & forbidden_mode_bits) != 0) {
    error = fmt::format("{} has mode {:04o}, wider than 0640 (run: chmod 0600 {})", path.string(),
                        st.st_mode & 07777, path.string());
    return std::nullopt;
  }
  if (static_cast<std::uint64_t>(st.st_size) > cap) {
    error = fmt::format("{} is {} bytes, more than the {} byte limit", path.string(), st.st_size, cap);
    return std::nullopt;
  }
  std::string content;
  std::array<char, 8192> buf{};
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = fmt::format("cannot read {}: {}", path.string(), errno_text(errno));
      return std::nullopt;
    }
    if (n == 0) break;
    content.append(buf.data(), static_cast<std::size_t>(n));
    if (content.size() > cap) {  // grew after fstat
      error = fmt::format("{} is more than the {} byte limit", path.string(), cap);
      return std::nullopt;
    }
  }
  return content;
}

namespace {

// --credentials-dir: set once by main before any command runs.
std::optional<std::filesystem::path>& credentials_directory_override() {
  static std::optional<std::filesystem::path> dir;
  return dir;
}

}  // namespace

void set_credentials_directory(std::filesystem::path dir) {
  if (dir.empty()) {
    credentials_directory_override().reset();
  } else {
    credentials_directory_override() = std::move(dir);
  }
}

std::optional<std::filesystem::path> find_credential(const std::string& name, std::string& error) {
  if (const auto& dir = credentials_directory_override()) return *dir / name;
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && *dir != '\0')
    return std::filesystem::path(dir) / name;
  // Outside a unit: the files LoadCredential=NAME (no path) reads, in systemd's order. The first that
  // exists wins; a store this user may not look into is remembered, so a miss names the real cause.
  std::string unreadable;
  for (const char* store : kCredentialStores) {
    const std::filesystem::path path = std::filesystem::path(store) / name;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return path;
    if (errno != ENOENT && errno != ENOTDIR && unreadable.empty())
      unreadable = fmt::format("; cannot look into {}: {} (the store is root's: run as root)", store,
                               errno_text(errno));
  }
  error = fmt::format(
      "credential:{} not found: $CREDENTIALS_DIRECTORY is not set (not under systemd) and none of "
      "/etc/credstore/{}, /run/credstore/{}, /usr/lib/credstore/{} exists{}; put the secret in "
      "/etc/credstore/{} (mode 0600, owner root) or pass --credentials-dir DIR",
      name, name, name, name, unreadable, name);
  return std::nullopt;
}

std::optional<SecretFile> resolve_secret(const std::string& spec, std::string& error) {
  constexpr std::string_view kCredential = "credential:";
  SecretFile secret{spec, {}};
  if (spec.empty()) {
    error = "is empty; remove the key to leave it unset";
    return std::nullopt;
  }
  if (spec.starts_with(kCredential)) {
    const std::string name = spec.substr(kCredential.size());
    const bool name_ok = !name.empty() && name != "." && name != ".." &&
                         std::all_of(name.begin(), name.end(), [](unsigned char c) {
                           return std::isalnum(c) || c == '_' || c == '-' || c == '.';
                         });
    if (!name_ok) {
      error = fmt::format("credential name \"{}\" must be [A-Za-z0-9_.-]+", name);
      return std::nullopt;
    }
    auto path = find_credential(name, error);
    if (!path) return std::nullopt;
    secret.path = std::move(*path);
  } else {
    secret.path = spec;
    if (!secret.path.is_absolute()) {
      error = fmt::format("\"{}\" must be an absolute path or credential:NAME", spec);
      return std::nullopt;
    }
  }
  error = check_secret_path(secret.path);
  if (!error.empty()) return std::nullopt;
  return secret;
}

std::string read_secret(const SecretFile& secret) {
  std::string error;
  auto content = read_regular_file(secret.path, kMaxSecretBytes, error, kSecretForbiddenBits);
  if (!content) throw std::runtime_error(fmt::format("secret {}: {}", secret.spec, error));
  if (content->ends_with("\r\n")) {
    content->resize(content->size() - 2);
  } else if (content->ends_with("\n")) {
    content->pop_back();
  }
  if (content->empty())
    throw std::runtime_error(fmt::format("secret {}: {} is empty", secret.spec, secret.path.string()));
  return std::move(*content);
}

}  // namespace cdcsync::config
