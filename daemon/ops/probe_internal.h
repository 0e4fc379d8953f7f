// What probe.cpp and probe_poll.cpp share: the values a gauge takes when it is unbounded or unknown, and the
// slot states cdcsync_slot_wal_status knows. Private to daemon/ops.
#pragma once

#include <array>
#include <limits>

namespace cdcsync::probe_detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();  // unknown

// pg_replication_slots.wal_status values, plus "missing" when the slot does not exist.
inline constexpr std::array<const char*, 5> kWalStatuses = {"reserved", "extended", "unreserved", "lost",
                                                            "missing"};

}  // namespace cdcsync::probe_detail
