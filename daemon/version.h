// What build this is: the project version and the source revision (`git describe --always --dirty` when the
// build was configured; "unknown" from a tree without git, unless -DCDCSYNC_REVISION= says). Written into
// version.cpp by CMake, so a new revision recompiles one file.
#pragma once

#include <string>
#include <string_view>

namespace cdcsync::build {

std::string_view version();   // "0.1.0"
std::string_view revision();  // "f65f3f5", "v0.1.0-12-gf65f3f5-dirty", "unknown"
// `cdcsync --version`: "cdcsync 0.1.0 (revision f65f3f5)".
std::string version_line();

}  // namespace cdcsync::build
