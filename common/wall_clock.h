// The wall clock as the wire carries it: Unix time in milliseconds, for timestamps that cross
// processes (health reports, table stamps, usage records, stored rows).
#pragma once

#include <chrono>
#include <cstdint>

namespace spillway {

// Wall-clock time, so it jumps when the system clock is set: use a steady clock for intervals.
inline int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace spillway
