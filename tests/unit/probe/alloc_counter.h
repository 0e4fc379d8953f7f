// Counts global operator new calls made while an AllocationCounter is alive (this test binary replaces
// operator new in alloc_counter.cpp, a separate file so the compiler never inlines it into a caller).
#pragma once

#include <cstddef>

namespace cdcsync::test {

class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  std::size_t count() const;
};

}  // namespace cdcsync::test
