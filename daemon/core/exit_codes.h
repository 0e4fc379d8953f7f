// Process exit codes, one table for the daemon and every admin command. systemd's RestartPreventExitStatus=
// lists the ones that need an operator.
#pragma once

namespace cdcsync::exit_code {

inline constexpr int kOk = 0;
inline constexpr int kError = 1;          // config error, failed check, a finding (divergence, violation)
inline constexpr int kUsage = 2;          // bad command line
inline constexpr int kDataLossRisk = 3;   // slot lost, gap, source identity changed, target behind checkpoint
inline constexpr int kApplyFailed = 4;    // a change the target refuses (constraint, permission, type)
inline constexpr int kDecodeError = 5;    // a protocol or decode error in the source stream
inline constexpr int kInternal = 6;       // an unexpected internal error
inline constexpr int kUnavailable = 7;    // could not check: a server unreachable (admin commands)

}  // namespace cdcsync::exit_code
