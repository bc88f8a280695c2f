// See circuit_breaker.h. The healthy path touches only atomics; transitions take a mutex
// because they are rare and must update several fields together.
#include "dataplane/routing/circuit_breaker.h"

#include <algorithm>

namespace spillway {

bool CircuitBreaker::TryAcquire(SteadyTime now) {
  if (Ticks(now) < blocked_until_.load(std::memory_order_acquire)) {
    return false;
  }
  if (!tripped_.load(std::memory_order_acquire)) {
    return true;
  }
  // Backoff over: let one probe through.
  bool expected = false;
  return probe_in_flight_.compare_exchange_strong(expected, true, std::memory_order_acq_rel);
}

bool CircuitBreaker::OnSuccess() {
  if (!tripped_.load(std::memory_order_acquire) &&
      consecutive_failures_.load(std::memory_order_acquire) == 0) {
    return false;  // the common case: nothing to reset
  }
  absl::MutexLock lock(&mu_);
  const bool was_tripped = tripped_.load(std::memory_order_acquire);
  consecutive_failures_.store(0, std::memory_order_release);
  open_count_ = 0;
  throttled_ = false;
  tripped_.store(false, std::memory_order_release);
  probe_in_flight_.store(false, std::memory_order_release);
  return was_tripped;
}

void CircuitBreaker::OnThrottled(SteadyTime now, std::chrono::milliseconds retry_after) {
  if (retry_after <= std::chrono::milliseconds::zero()) {
    retry_after = options_.default_throttle;
  }
  absl::MutexLock lock(&mu_);
  // A throttled backend is alive: its failure streak ends, and a probe that got a 429
  // leaves the circuit closed but blocked for exactly the time the backend asked for.
  consecutive_failures_.store(0, std::memory_order_release);
  open_count_ = 0;
  throttled_ = true;
  tripped_.store(false, std::memory_order_release);
  probe_in_flight_.store(false, std::memory_order_release);
  const int64_t until = Ticks(now + retry_after);
  if (until > blocked_until_.load(std::memory_order_acquire)) {
    blocked_until_.store(until, std::memory_order_release);
  }
}

std::chrono::milliseconds CircuitBreaker::OnFailure(SteadyTime now) {
  absl::MutexLock lock(&mu_);
  throttled_ = false;
  const int failures = consecutive_failures_.fetch_add(1, std::memory_order_acq_rel) + 1;
  const bool probing = tripped_.load(std::memory_order_acquire);
  if (!probing && failures < options_.failure_threshold) {
    return std::chrono::milliseconds::zero();
  }
  // Open (or reopen after a failed probe) with a backoff that doubles while failures go on.
  const int shift = std::min(open_count_, 16);
  const auto backoff = std::min(options_.base_open * (int64_t{1} << shift), options_.max_open);
  ++open_count_;
  tripped_.store(true, std::memory_order_release);
  probe_in_flight_.store(false, std::memory_order_release);
  const int64_t until = Ticks(now + backoff);
  if (until > blocked_until_.load(std::memory_order_acquire)) {
    blocked_until_.store(until, std::memory_order_release);
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(backoff);
}

void CircuitBreaker::OnAbandoned() { probe_in_flight_.store(false, std::memory_order_release); }

void CircuitBreaker::BlockUntil(SteadyTime until) {
  absl::MutexLock lock(&mu_);
  if (Ticks(until) > blocked_until_.load(std::memory_order_acquire)) {
    blocked_until_.store(Ticks(until), std::memory_order_release);
    throttled_ = true;
  }
}

SteadyTime CircuitBreaker::AvailableAt() const {
  return SteadyTime(SteadyClock::duration(blocked_until_.load(std::memory_order_acquire)));
}

v1::HealthState CircuitBreaker::State(SteadyTime now) const {
  absl::MutexLock lock(&mu_);
  const bool blocked = Ticks(now) < blocked_until_.load(std::memory_order_acquire);
  if (tripped_.load(std::memory_order_acquire)) {
    return blocked ? v1::HEALTH_STATE_UNHEALTHY : v1::HEALTH_STATE_HALF_OPEN;
  }
  if (blocked && throttled_) {
    return v1::HEALTH_STATE_THROTTLED;
  }
  return v1::HEALTH_STATE_HEALTHY;
}

int CircuitBreaker::consecutive_failures() const {
  return consecutive_failures_.load(std::memory_order_acquire);
}

}  // namespace spillway
