// Per-backend admission state shared by every request of the process: a 429 blocks the
// backend for exactly its retry-after; repeated failures open the circuit for a growing
// backoff, after which one real request probes recovery (half-open).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "spillway/v1/routing_table.pb.h"

namespace spillway {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

struct CircuitBreakerOptions {
  int failure_threshold = 3;  // consecutive failures that open the circuit
  std::chrono::milliseconds base_open{1000};
  std::chrono::milliseconds max_open{60000};
  std::chrono::milliseconds default_throttle{1000};  // 429 with no retry-after header
};

class CircuitBreaker {
 public:
  explicit CircuitBreaker(const CircuitBreakerOptions& options) : options_(options) {}

  // May a request be sent now? Lock-free while the backend is healthy. When a failure
  // backoff has expired, exactly one caller gets true (the half-open probe) until it
  // reports its outcome.
  bool TryAcquire(SteadyTime now);

  // Outcomes of a request that TryAcquire admitted. OnSuccess returns true when it closed an
  // open circuit (a probe succeeded); OnFailure returns how long the circuit is now open
  // for when this failure opened or reopened it, zero otherwise.
  bool OnSuccess();
  void OnThrottled(SteadyTime now, std::chrono::milliseconds retry_after);
  std::chrono::milliseconds OnFailure(SteadyTime now);
  // An admitted request that ended without an outcome (client went away): frees the probe.
  void OnAbandoned();

  // Throttling learned from elsewhere (another agent via the control plane): block until
  // `until` unless already blocked for longer.
  void BlockUntil(SteadyTime until);

  // When the backend may next be tried (now or earlier when it is available).
  SteadyTime AvailableAt() const;
  v1::HealthState State(SteadyTime now) const;
  int consecutive_failures() const;

 private:
  static int64_t Ticks(SteadyTime t) { return t.time_since_epoch().count(); }

  const CircuitBreakerOptions options_;
  // Requests are refused before this steady-clock tick: the hot-path check is one load.
  std::atomic<int64_t> blocked_until_{0};
  // True while the circuit is open or half-open (a failure backoff, not a throttle).
  std::atomic<bool> tripped_{false};
  std::atomic<bool> probe_in_flight_{false};
  // Written under mu_, read lock-free so a success on a healthy backend takes no lock.
  std::atomic<int> consecutive_failures_{0};

  mutable absl::Mutex mu_;
  int open_count_ ABSL_GUARDED_BY(mu_) = 0;  // backoff doubles with each reopening
  bool throttled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace spillway
