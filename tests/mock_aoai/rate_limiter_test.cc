// Token buckets and PTU utilization with a stepped clock: no sleeping.
#include "tests/mock_aoai/rate_limiter.h"

#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

class RateLimiterTest : public ::testing::Test {
 protected:
  RateLimiter Make(LimitSpec spec) {
    return RateLimiter(spec, [this] { return now_; });
  }
  static LimitSpec Standard(int64_t tpm, int64_t rpm, absl::Duration window) {
    LimitSpec spec;
    spec.tpm = tpm;
    spec.rpm = rpm;
    spec.window = window;
    return spec;
  }
  static LimitSpec Provisioned(int64_t ptu, double tokens_per_ptu_minute, absl::Duration window) {
    LimitSpec spec;
    spec.ptu = ptu;
    spec.tokens_per_ptu_minute = tokens_per_ptu_minute;
    spec.window = window;
    spec.enforce_rpm = false;
    return spec;
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

TEST_F(RateLimiterTest, TokenBucketHoldsOneWindowAndRefillsPerSecond) {
  // 600 TPM over 10 s: 100 tokens of capacity, 10 tokens/s.
  RateLimiter limiter = Make(Standard(600, 6000, absl::Seconds(10)));
  Admission first = limiter.Acquire(60);
  ASSERT_TRUE(first.admitted);
  EXPECT_EQ(first.snapshot.remaining_tokens, 40);
  EXPECT_EQ(first.snapshot.limit_tokens, 600);
  EXPECT_EQ(first.snapshot.limit_requests, 6000);

  Admission second = limiter.Acquire(60);
  EXPECT_FALSE(second.admitted);
  EXPECT_EQ(second.cause, LimitCause::kTokens);
  EXPECT_EQ(second.retry_after, absl::Seconds(2));  // 20 missing at 10/s
  EXPECT_EQ(second.snapshot.remaining_tokens, 40);  // a rejection charges nothing

  now_ += absl::Milliseconds(1999);
  EXPECT_FALSE(limiter.Acquire(60).admitted);
  now_ += absl::Milliseconds(1);
  EXPECT_TRUE(limiter.Acquire(60).admitted);
}

TEST_F(RateLimiterTest, RequestBucketRejectsWithRequestsCause) {
  // 60 RPM over 1 s: one request per window, one per second.
  RateLimiter limiter = Make(Standard(1'000'000, 60, absl::Seconds(1)));
  ASSERT_TRUE(limiter.Acquire(1).admitted);
  Admission second = limiter.Acquire(1);
  EXPECT_FALSE(second.admitted);
  EXPECT_EQ(second.cause, LimitCause::kRequests);
  EXPECT_EQ(second.retry_after, absl::Seconds(1));
  EXPECT_EQ(second.snapshot.remaining_requests, 0);
  now_ += absl::Seconds(1);
  EXPECT_TRUE(limiter.Acquire(1).admitted);
}

TEST_F(RateLimiterTest, LongerWaitNamesTheCause) {
  // Both empty: tokens need 5 s, requests 1 s.
  RateLimiter limiter = Make(Standard(600, 60, absl::Seconds(10)));
  ASSERT_TRUE(limiter.Acquire(100).admitted);
  Admission rejected = limiter.Acquire(50);
  EXPECT_FALSE(rejected.admitted);
  EXPECT_EQ(rejected.cause, LimitCause::kTokens);
  EXPECT_EQ(rejected.retry_after, absl::Seconds(5));
}

TEST_F(RateLimiterTest, RequestLargerThanTheWindowWaitsForAFullBucket) {
  RateLimiter limiter = Make(Standard(600, 6000, absl::Seconds(10)));
  ASSERT_TRUE(limiter.Acquire(150).admitted);  // full bucket: admitted into debt
  Admission next = limiter.Acquire(10);
  EXPECT_FALSE(next.admitted);
  EXPECT_EQ(next.retry_after, absl::Seconds(6));  // -50 -> 10 at 10/s
  EXPECT_EQ(next.snapshot.remaining_tokens, 0);
}

TEST_F(RateLimiterTest, RefundReturnsUnusedTokens) {
  RateLimiter limiter = Make(Standard(600, 6000, absl::Seconds(10)));
  Admission admission = limiter.Acquire(80);
  ASSERT_TRUE(admission.admitted);
  limiter.Refund(admission.ticket, 50);
  EXPECT_EQ(limiter.Snapshot().remaining_tokens, 70);
  limiter.Refund(admission.ticket, 1000);  // never beyond capacity
  EXPECT_EQ(limiter.Snapshot().remaining_tokens, 100);
}

TEST_F(RateLimiterTest, ProvisionedUtilizationOverTheWindow) {
  // 1 PTU x 600 tokens/min over 10 s: 100 tokens is 100%.
  RateLimiter limiter = Make(Provisioned(1, 600, absl::Seconds(10)));
  Admission a = limiter.Acquire(40);
  ASSERT_TRUE(a.admitted);
  EXPECT_DOUBLE_EQ(*a.snapshot.utilization_percent, 40.0);
  EXPECT_EQ(a.snapshot.limit_tokens, 600);
  EXPECT_EQ(a.snapshot.remaining_tokens, 60);
  now_ += absl::Seconds(3);
  Admission b = limiter.Acquire(50);
  ASSERT_TRUE(b.admitted);
  EXPECT_DOUBLE_EQ(*b.snapshot.utilization_percent, 90.0);

  Admission c = limiter.Acquire(20);
  EXPECT_FALSE(c.admitted);
  EXPECT_EQ(c.cause, LimitCause::kUtilization);
  EXPECT_EQ(c.retry_after, absl::Seconds(7));  // when `a` leaves the window
  EXPECT_DOUBLE_EQ(*c.snapshot.utilization_percent, 90.0);

  now_ += absl::Seconds(7);
  Admission d = limiter.Acquire(20);
  ASSERT_TRUE(d.admitted);
  EXPECT_DOUBLE_EQ(*d.snapshot.utilization_percent, 70.0);
}

TEST_F(RateLimiterTest, ProvisionedWaitsForEnoughCapacityToFree) {
  RateLimiter limiter = Make(Provisioned(1, 600, absl::Seconds(10)));
  ASSERT_TRUE(limiter.Acquire(30).admitted);
  now_ += absl::Seconds(1);
  ASSERT_TRUE(limiter.Acquire(30).admitted);
  now_ += absl::Seconds(1);
  ASSERT_TRUE(limiter.Acquire(30).admitted);
  // 90 used; 60 more needs the first two charges gone: at t=11 s, 9 s from now.
  Admission rejected = limiter.Acquire(60);
  EXPECT_FALSE(rejected.admitted);
  EXPECT_EQ(rejected.retry_after, absl::Seconds(9));
}

TEST_F(RateLimiterTest, ProvisionedRefundLowersUtilization) {
  RateLimiter limiter = Make(Provisioned(1, 600, absl::Seconds(10)));
  Admission a = limiter.Acquire(81);
  ASSERT_TRUE(a.admitted);
  limiter.Refund(a.ticket, 64);
  EXPECT_DOUBLE_EQ(*limiter.Snapshot().utilization_percent, 17.0);
  Admission b = limiter.Acquire(17);
  ASSERT_TRUE(b.admitted);
  EXPECT_DOUBLE_EQ(*b.snapshot.utilization_percent, 34.0);
}

TEST_F(RateLimiterTest, ProvisionedRefundAfterTheWindowIsIgnored) {
  RateLimiter limiter = Make(Provisioned(1, 600, absl::Seconds(10)));
  Admission a = limiter.Acquire(50);
  now_ += absl::Seconds(10);
  Admission b = limiter.Acquire(50);
  ASSERT_TRUE(b.admitted);
  limiter.Refund(a.ticket, 50);  // `a` already left the window; must not touch `b`
  EXPECT_DOUBLE_EQ(*limiter.Snapshot().utilization_percent, 50.0);
  limiter.Refund(b.ticket, 20);
  EXPECT_DOUBLE_EQ(*limiter.Snapshot().utilization_percent, 30.0);
}

TEST_F(RateLimiterTest, ProvisionedIgnoresRpmUnlessGiven) {
  LimitSpec spec = Provisioned(1, 6000, absl::Seconds(10));
  spec.rpm = 6;  // one request per 10 s window
  RateLimiter lenient = Make(spec);
  EXPECT_TRUE(lenient.Acquire(1).admitted);
  EXPECT_TRUE(lenient.Acquire(1).admitted);
  spec.enforce_rpm = true;
  RateLimiter strict = Make(spec);
  EXPECT_TRUE(strict.Acquire(1).admitted);
  Admission second = strict.Acquire(1);
  EXPECT_FALSE(second.admitted);
  EXPECT_EQ(second.cause, LimitCause::kRequests);
}

TEST_F(RateLimiterTest, ResetRefillsAndForgetsOldCharges) {
  RateLimiter limiter = Make(Provisioned(1, 600, absl::Seconds(10)));
  Admission a = limiter.Acquire(100);
  ASSERT_FALSE(limiter.Acquire(1).admitted);
  limiter.Reset();
  Admission b = limiter.Acquire(60);
  ASSERT_TRUE(b.admitted);
  limiter.Refund(a.ticket, 100);  // predates the reset
  EXPECT_DOUBLE_EQ(*limiter.Snapshot().utilization_percent, 60.0);
}

}  // namespace
}  // namespace spillway::mock
