// Circuit breaker and load window behaviour, driven by an explicit clock.
#include "dataplane/routing/circuit_breaker.h"

#include <gtest/gtest.h>

#include "dataplane/routing/backend_state.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;

CircuitBreakerOptions Options() {
  CircuitBreakerOptions options;
  options.failure_threshold = 3;
  options.base_open = milliseconds(1000);
  options.max_open = milliseconds(4000);
  options.default_throttle = milliseconds(700);
  return options;
}

TEST(CircuitBreaker, ThrottleBlocksForExactlyRetryAfter) {
  CircuitBreaker breaker(Options());
  const SteadyTime t0 = SteadyTime(std::chrono::seconds(100));
  ASSERT_TRUE(breaker.TryAcquire(t0));
  breaker.OnThrottled(t0, milliseconds(1234));
  EXPECT_EQ(breaker.State(t0), v1::HEALTH_STATE_THROTTLED);
  EXPECT_FALSE(breaker.TryAcquire(t0 + milliseconds(1233)));
  EXPECT_FALSE(breaker.TryAcquire(t0 + milliseconds(1234) - std::chrono::nanoseconds(1)));
  EXPECT_TRUE(breaker.TryAcquire(t0 + milliseconds(1234)));
  EXPECT_EQ(breaker.AvailableAt(), t0 + milliseconds(1234));
  // After a throttle the backend is not on probation: many requests may go at once.
  EXPECT_TRUE(breaker.TryAcquire(t0 + milliseconds(1300)));
  EXPECT_EQ(breaker.State(t0 + milliseconds(1300)), v1::HEALTH_STATE_HEALTHY);
}

TEST(CircuitBreaker, ThrottleWithoutRetryAfterUsesDefault) {
  CircuitBreaker breaker(Options());
  const SteadyTime t0 = SteadyTime(std::chrono::seconds(100));
  breaker.OnThrottled(t0, milliseconds(0));
  EXPECT_FALSE(breaker.TryAcquire(t0 + milliseconds(699)));
  EXPECT_TRUE(breaker.TryAcquire(t0 + milliseconds(700)));
}

TEST(CircuitBreaker, OpensAfterThresholdAndProbesOnce) {
  CircuitBreaker breaker(Options());
  const SteadyTime t0 = SteadyTime(std::chrono::seconds(100));
  breaker.OnFailure(t0);
  breaker.OnFailure(t0);
  EXPECT_TRUE(breaker.TryAcquire(t0)) << "below the threshold the circuit stays closed";
  breaker.OnFailure(t0);
  EXPECT_EQ(breaker.State(t0), v1::HEALTH_STATE_UNHEALTHY);
  EXPECT_FALSE(breaker.TryAcquire(t0 + milliseconds(999)));
  // Backoff over: exactly one probe.
  const SteadyTime t1 = t0 + milliseconds(1000);
  EXPECT_EQ(breaker.State(t1), v1::HEALTH_STATE_HALF_OPEN);
  EXPECT_TRUE(breaker.TryAcquire(t1));
  EXPECT_FALSE(breaker.TryAcquire(t1));
  // Probe succeeds: closed again, unlimited.
  breaker.OnSuccess();
  EXPECT_EQ(breaker.State(t1), v1::HEALTH_STATE_HEALTHY);
  EXPECT_TRUE(breaker.TryAcquire(t1));
  EXPECT_TRUE(breaker.TryAcquire(t1));
}

TEST(CircuitBreaker, ReportsTheTransitionsItMakes) {
  // The sync client forwards exactly these to the control plane: an opening (with how long)
  // and a closing; the failures and successes in between are not news.
  CircuitBreaker breaker(Options());
  const SteadyTime t0 = SteadyTime(std::chrono::seconds(100));
  EXPECT_FALSE(breaker.OnSuccess()) << "a closed circuit closing is no transition";
  EXPECT_EQ(breaker.OnFailure(t0), milliseconds(0));
  EXPECT_EQ(breaker.OnFailure(t0), milliseconds(0));
  EXPECT_EQ(breaker.OnFailure(t0), milliseconds(1000)) << "the third failure opens it";
  const SteadyTime t1 = t0 + milliseconds(1000);
  ASSERT_TRUE(breaker.TryAcquire(t1));
  EXPECT_EQ(breaker.OnFailure(t1), milliseconds(2000)) << "a failed probe reopens it, longer";
  const SteadyTime t2 = t1 + milliseconds(2000);
  ASSERT_TRUE(breaker.TryAcquire(t2));
  EXPECT_TRUE(breaker.OnSuccess()) << "the probe that closes it is reported";
  EXPECT_FALSE(breaker.OnSuccess());
}

TEST(CircuitBreaker, BackoffGrowsWhileFailuresContinue) {
  CircuitBreaker breaker(Options());
  SteadyTime t = SteadyTime(std::chrono::seconds(100));
  for (int i = 0; i < 3; ++i) {
    breaker.OnFailure(t);
  }
  EXPECT_EQ(breaker.AvailableAt(), t + milliseconds(1000));
  t += milliseconds(1000);
  ASSERT_TRUE(breaker.TryAcquire(t));
  breaker.OnFailure(t);  // failed probe
  EXPECT_EQ(breaker.AvailableAt(), t + milliseconds(2000));
  t += milliseconds(2000);
  ASSERT_TRUE(breaker.TryAcquire(t));
  breaker.OnFailure(t);
  EXPECT_EQ(breaker.AvailableAt(), t + milliseconds(4000));
  t += milliseconds(4000);
  ASSERT_TRUE(breaker.TryAcquire(t));
  breaker.OnFailure(t);
  EXPECT_EQ(breaker.AvailableAt(), t + milliseconds(4000)) << "capped at max_open";
}

TEST(CircuitBreaker, AbandonedProbeFreesTheSlot) {
  CircuitBreaker breaker(Options());
  SteadyTime t = SteadyTime(std::chrono::seconds(100));
  for (int i = 0; i < 3; ++i) {
    breaker.OnFailure(t);
  }
  t += milliseconds(1000);
  ASSERT_TRUE(breaker.TryAcquire(t));
  EXPECT_FALSE(breaker.TryAcquire(t));
  breaker.OnAbandoned();
  EXPECT_TRUE(breaker.TryAcquire(t));
}

TEST(CircuitBreaker, SuccessResetsTheFailureStreak) {
  CircuitBreaker breaker(Options());
  const SteadyTime t = SteadyTime(std::chrono::seconds(100));
  breaker.OnFailure(t);
  breaker.OnFailure(t);
  breaker.OnSuccess();
  breaker.OnFailure(t);
  breaker.OnFailure(t);
  EXPECT_TRUE(breaker.TryAcquire(t));
  EXPECT_EQ(breaker.consecutive_failures(), 2);
}

TEST(CircuitBreaker, BlockUntilNeverShortensABlock) {
  CircuitBreaker breaker(Options());
  const SteadyTime t = SteadyTime(std::chrono::seconds(100));
  breaker.OnThrottled(t, milliseconds(5000));
  breaker.BlockUntil(t + milliseconds(100));
  EXPECT_FALSE(breaker.TryAcquire(t + milliseconds(4999)));
  breaker.BlockUntil(t + milliseconds(8000));
  EXPECT_FALSE(breaker.TryAcquire(t + milliseconds(7999)));
  EXPECT_TRUE(breaker.TryAcquire(t + milliseconds(8000)));
}

TEST(LoadWindow, SumsTheLastTenSeconds) {
  LoadWindow window;
  const SteadyTime t = SteadyTime(std::chrono::seconds(1000));
  window.Add(t, 100);
  window.Add(t + std::chrono::seconds(3), 50);
  EXPECT_EQ(window.Sum(t + std::chrono::seconds(3)), 150);
  EXPECT_EQ(window.Sum(t + std::chrono::seconds(9)), 150);
  EXPECT_EQ(window.Sum(t + std::chrono::seconds(10)), 50) << "the first second aged out";
  window.Add(t + std::chrono::seconds(10), 7);  // reuses the first second's slot
  EXPECT_EQ(window.Sum(t + std::chrono::seconds(10)), 57);
  EXPECT_EQ(window.Sum(t + std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace spillway
