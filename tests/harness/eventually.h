// Tests wait for facts, not for time: poll a condition until it holds or a deadline passes.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace cdcsync::test {

// Polls `condition` until it holds or the timeout passes; exceptions inside count as "not yet".
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    try {
      if (condition()) return true;
    } catch (const std::exception&) {
      // not yet: a server may be restarting
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

}  // namespace cdcsync::test
