// Polling for a condition with a deadline that only guards against a hang: tests wait for what
// they need instead of sleeping a fixed time or asserting on how long it took.
#pragma once

#include "absl/functional/function_ref.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spillway::test {

// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
inline bool WaitFor(absl::FunctionRef<bool()> condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) {
      return false;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace spillway::test
