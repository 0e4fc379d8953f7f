// Internal to daemon/config: where secret files live (a path, or credential:NAME: --credentials-dir,
// systemd's $CREDENTIALS_DIRECTORY or its credential store), the checks they pass before anything is read,
// and the capped, regular-file-only read that the config file itself shares.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include "daemon/config/config.h"

namespace cdcsync::config {

// Opens without blocking on a FIFO, refuses anything but a regular file or a mode with `forbidden_mode_bits`,
// and reads at most `cap` bytes. Returns the content or sets `error` (which names the path, never the
// content).
std::optional<std::string> read_regular_file(const std::filesystem::path& path, std::size_t cap,
                                             std::string& error, mode_t forbidden_mode_bits);

// The file credential:`name` stands for: DIR/name with --credentials-dir DIR; else
// $CREDENTIALS_DIRECTORY/name (under a unit); else the first of /etc/credstore/name, /run/credstore/name,
// /usr/lib/credstore/name that exists. Sets `error` (where it looked, and what to do) when none does.
std::optional<std::filesystem::path> find_credential(const std::string& name, std::string& error);

// Resolves `spec` (an absolute path or credential:NAME) and checks the file without reading it: regular,
// mode at most 0640, owned by the service user or root, readable. Sets `error` (the why) when it is not.
std::optional<SecretFile> resolve_secret(const std::string& spec, std::string& error);

}  // namespace cdcsync::config
