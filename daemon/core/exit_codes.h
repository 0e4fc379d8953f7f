// Process exit codes. systemd's RestartPreventExitStatus= lists the ones that need an operator.
#pragma once

namespace cdcsync::exit_code {

inline constexpr int kOk = 0;
inline constexpr int kError = 1;          // config or usage error, failed check
inline constexpr int kUsage = 2;          // bad command line
inline constexpr int kDataLossRisk = 3;   // slot lost, gap, source identity changed, target behind checkpoint
inline constexpr int kApplyFailed = 4;    // a change the target refuses (constraint, permission, type)

}  // namespace cdcsync::exit_code
