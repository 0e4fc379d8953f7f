// The evidence of a source stream error, for a bug report: the offending message's bytes in a file only the
// daemon's user can read. They may hold row values, so they never go to the log.
#pragma once

#include <filesystem>
#include <string_view>

#include "daemon/core/errors.h"

namespace cdcsync {

// Writes e.bytes() to a new file (mode 0600, never an existing one, never through a symlink) in a directory
// of mode 0700: $STATE_DIRECTORY/bug-reports when systemd gives a state directory, else a fresh directory
// that mkdtemp makes under $TMPDIR (never a predictable /tmp name). Returns the file's path; throws
// std::runtime_error naming what failed.
std::filesystem::path save_stream_evidence(const SourceStreamError& e, std::string_view pipeline);

}  // namespace cdcsync
