// Reading a backend's retry-after-ms / retry-after: numbers, HTTP-dates, and values a broken
// or hostile backend sends (issue 15, item 7: huge values overflowed).
#include <gtest/gtest.h>

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dataplane/http/client_response.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;

TEST(RetryAfter, MillisecondsFirstThenSeconds) {
  EXPECT_EQ(RetryAfter("1500", "2"), milliseconds(1500));
  EXPECT_EQ(RetryAfter("0.2", "2"), milliseconds(1));
  EXPECT_EQ(RetryAfter("", "2"), milliseconds(2000));
  EXPECT_EQ(RetryAfter("", " 7 "), milliseconds(7000));
  EXPECT_EQ(RetryAfter("", ""), milliseconds(0));
  EXPECT_EQ(RetryAfter("soon", "later"), milliseconds(0));
  EXPECT_EQ(RetryAfter("-5", "0"), milliseconds(0));
  EXPECT_EQ(RetryAfter("nan", "-3"), milliseconds(0));
}

TEST(RetryAfter, HugeValuesAreCapped) {
  EXPECT_EQ(RetryAfter("1e300", ""), kMaxRetryAfter);
  EXPECT_EQ(RetryAfter("inf", ""), kMaxRetryAfter);
  EXPECT_EQ(RetryAfter("9223372036854775807", ""), kMaxRetryAfter);
  EXPECT_EQ(RetryAfter("", "9223372036854775807"), kMaxRetryAfter);
  EXPECT_EQ(RetryAfter("", "99999999999999999999999999"), kMaxRetryAfter);
  EXPECT_EQ(RetryAfter("", "86400"), kMaxRetryAfter);
  EXPECT_EQ(RetryAfter("", "599"), milliseconds(599000));
}

TEST(RetryAfter, HttpDates) {
  const absl::Time in_30s = absl::Now() + absl::Seconds(30);
  const std::string date =
      absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", in_30s, absl::UTCTimeZone());
  const milliseconds wait = RetryAfter("", date);
  // The date has whole seconds and the clock moves between the two calls.
  EXPECT_GT(wait, milliseconds(20000)) << date;
  EXPECT_LE(wait, milliseconds(30000)) << date;
  EXPECT_EQ(RetryAfter("", "Sun, 06 Nov 1994 08:49:37 GMT"), milliseconds(0)) << "past";
  EXPECT_EQ(RetryAfter("", "Fri, 01 Jan 2100 00:00:00 GMT"), kMaxRetryAfter) << "far future";
  EXPECT_EQ(RetryAfter("", "Sun, 06 Nov 1994"), milliseconds(0)) << "not a whole date";
}

}  // namespace
}  // namespace spillway
