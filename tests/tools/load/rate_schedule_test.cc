// The schedule of a run: how many requests a constant rate, a ramp or a profile sends, when
// each is due, and that each minute holds what the rate's integral says, exactly.
#include "tools/load/rate_schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "tools/load/rate_shape.h"

namespace spillway::load {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr int64_t Rpm(int64_t rpm) { return rpm * kMilli; }

// Requests due in each minute of the schedule (by their due times, as LoadStats counts them).
std::vector<int64_t> PerMinute(const RateSchedule& schedule) {
  std::vector<int64_t> counts;
  for (int64_t i = 0; i < schedule.count(); ++i) {
    const auto minute = static_cast<size_t>(schedule.DueOffset(i) / minutes(1));
    if (counts.size() <= minute) counts.resize(minute + 1);
    ++counts[minute];
  }
  return counts;
}

// Due times never go back, start at 0 and stay before the duration.
void ExpectOrderedWithin(const RateSchedule& schedule, nanoseconds duration) {
  nanoseconds last{-1};
  for (int64_t i = 0; i < schedule.count(); ++i) {
    const nanoseconds due = schedule.DueOffset(i);
    ASSERT_GE(due, last) << i;
    ASSERT_LT(due, duration) << i;
    last = due;
  }
  EXPECT_EQ(schedule.DueOffset(0), nanoseconds(0));
}

TEST(RateScheduleTest, ConstantCountIsTheRateTimesTheDurationRoundedUp) {
  EXPECT_EQ(RateSchedule::Constant(Rpm(600), seconds(6)).count(), 60);
  EXPECT_EQ(RateSchedule::Constant(Rpm(60), seconds(60)).count(), 60);
  EXPECT_EQ(RateSchedule::Constant(Rpm(7), minutes(1)).count(), 7);
  EXPECT_EQ(RateSchedule::Constant(Rpm(60), milliseconds(1500)).count(), 2);  // at 0 s and 1 s
  EXPECT_EQ(RateSchedule::Constant(Rpm(60), milliseconds(1001)).count(), 2);
  EXPECT_EQ(RateSchedule::Constant(Rpm(60), milliseconds(1000)).count(), 1);  // 1 s: past it
  EXPECT_EQ(RateSchedule::Constant(Rpm(1), nanoseconds(1)).count(), 1);
  EXPECT_EQ(RateSchedule::Constant(Rpm(kMaxRpm), std::chrono::hours(24)).count(),
            kMaxRpm * 60 * 24);  // no overflow
  // A rate in thousandths (from --tpm): 1.5 a minute for 2 minutes is 3.
  EXPECT_EQ(RateSchedule::Constant(1500, minutes(2)).count(), 3);
  EXPECT_EQ(RateSchedule::Constant(1500, minutes(2)).DueOffset(1), seconds(40));
}

TEST(RateScheduleTest, ConstantDueTimesAreEvenlySpacedWithoutDrift) {
  const RateSchedule six = RateSchedule::Constant(Rpm(600), seconds(6));
  EXPECT_EQ(six.DueOffset(0), milliseconds(0));
  EXPECT_EQ(six.DueOffset(1), milliseconds(100));
  EXPECT_EQ(six.DueOffset(59), milliseconds(5900));
  // 7 rpm: 8.571428571 s apart, exact at each index (no summed rounding).
  const RateSchedule seven = RateSchedule::Constant(Rpm(7), minutes(2));
  EXPECT_EQ(seven.DueOffset(7), seconds(60));
  EXPECT_EQ(seven.DueOffset(1).count(), 8'571'428'571);
  const RateSchedule longest = RateSchedule::Constant(Rpm(kMaxRpm), std::chrono::hours(24));
  const nanoseconds last = longest.DueOffset(longest.count() - 1);
  EXPECT_LT(last, std::chrono::hours(24));
  EXPECT_GT(last, std::chrono::hours(24) - milliseconds(1));
}

TEST(RateScheduleTest, RampSendsItsIntegralExactly) {
  // 0 to 600 rpm over 60 s: a mean of 300 rpm for a minute.
  EXPECT_EQ(RateSchedule::Ramp(0, Rpm(600), seconds(60)).count(), 300);
  EXPECT_EQ(RateSchedule::Ramp(Rpm(600), 0, seconds(60)).count(), 300);
  // 0 to 1200 rpm over 4 s: 600 rpm on average, 40 requests.
  EXPECT_EQ(RateSchedule::Ramp(0, Rpm(1200), seconds(4)).count(), 40);
  // 100 to 200 over 90 s: 150 rpm × 1.5 min = 225.
  EXPECT_EQ(RateSchedule::Ramp(Rpm(100), Rpm(200), seconds(90)).count(), 225);
  // Rounded up as the constant rate is: 0 to 7 over 1 minute is 3.5, so 4.
  EXPECT_EQ(RateSchedule::Ramp(0, Rpm(7), minutes(1)).count(), 4);
  // A ramp from A to A is the constant rate, request for request.
  const RateSchedule flat = RateSchedule::Ramp(Rpm(7), Rpm(7), minutes(2));
  const RateSchedule constant = RateSchedule::Constant(Rpm(7), minutes(2));
  ASSERT_EQ(flat.count(), constant.count());
  for (int64_t i = 0; i < flat.count(); ++i) {
    EXPECT_EQ(flat.DueOffset(i), constant.DueOffset(i)) << i;
  }
}

TEST(RateScheduleTest, RampMinutesHoldTheRatesIntegral) {
  // 0 to 600 over 2 minutes: N(t) = 150 t² (t in minutes): 150 in the first, 450 in the second.
  const RateSchedule up = RateSchedule::Ramp(0, Rpm(600), minutes(2));
  EXPECT_EQ(up.count(), 600);
  EXPECT_THAT(PerMinute(up), ::testing::ElementsAre(150, 450));
  EXPECT_EQ(up.DueOffset(150), minutes(1)) << "due exactly at the minute: counts in the next";
  ExpectOrderedWithin(up, minutes(2));
  const RateSchedule down = RateSchedule::Ramp(Rpm(600), 0, minutes(2));
  EXPECT_THAT(PerMinute(down), ::testing::ElementsAre(450, 150));
  ExpectOrderedWithin(down, minutes(2));
  // 60 to 240 over 3 minutes: N(t) = 60 t + 30 t²: 90, 150, 210.
  EXPECT_THAT(PerMinute(RateSchedule::Ramp(Rpm(60), Rpm(240), minutes(3))),
              ::testing::ElementsAre(90, 150, 210));
}

// Each due time is the rate's inverse rounded down: the count due by it is at most the index,
// and one nanosecond later it is past the index.
TEST(RateScheduleTest, RampDueTimesAreTheExactInverseRoundedDown) {
  const std::vector<RateSegment> segments = {{seconds(7), 0, Rpm(997)},
                                             {minutes(3), Rpm(1234), 17},
                                             {std::chrono::hours(24), 0, Rpm(kMaxRpm)},
                                             {std::chrono::hours(24), Rpm(kMaxRpm), 1}};
  for (const RateSegment& s : segments) {
    const int64_t count = SegmentCount(s, s.length);
    for (int64_t i :
         {int64_t{0}, int64_t{1}, int64_t{2}, count / 3, count / 2, count - 2, count - 1}) {
      const nanoseconds due = SegmentDue(s, i);
      ASSERT_LE(SegmentCount(s, due), i) << i << " of " << count;
      ASSERT_GT(SegmentCount(s, due + nanoseconds(1)), i) << i << " of " << count;
      ASSERT_LT(due, s.length);
    }
  }
}

TEST(RateScheduleTest, ProfileMinutesSendTheirRatesEvenlySpaced) {
  const RateSchedule profile = RateSchedule::Profile({120, 0, 30, 7}, minutes(4));
  EXPECT_EQ(profile.count(), 157);
  EXPECT_THAT(PerMinute(profile), ::testing::ElementsAre(120, 0, 30, 7));
  EXPECT_EQ(profile.DueOffset(1), milliseconds(500));
  EXPECT_EQ(profile.DueOffset(120), minutes(2)) << "the empty minute is skipped";
  EXPECT_EQ(profile.DueOffset(121), minutes(2) + seconds(2));
  EXPECT_EQ(profile.DueOffset(150), minutes(3));
  ExpectOrderedWithin(profile, minutes(4));
  // Cut short: the part of a minute sends its rate's share, rounded up.
  EXPECT_EQ(RateSchedule::Profile({120, 60}, seconds(5)).count(), 10);
  EXPECT_EQ(RateSchedule::Profile({120, 60}, seconds(61)).count(), 121);
  EXPECT_EQ(RateSchedule::Profile({120, 60}, seconds(90)).count(), 150);
  EXPECT_EQ(RateSchedule::Profile({0, 0}, minutes(2)).count(), 0);
}

TEST(RateShapeTest, TokensAMinuteBecomeRequestsAMinute) {
  RateShape shape;
  ASSERT_TRUE(ParseRate(RateKind::kTpm, "12000", shape).ok());
  absl::StatusOr<RateSchedule> schedule = FinishRate(shape, 200, minutes(1));
  ASSERT_TRUE(schedule.ok()) << schedule.status();
  EXPECT_EQ(shape.from_milli, Rpm(60)) << "12000 tokens a minute at 200 a request";
  EXPECT_EQ(schedule->count(), 60);
  EXPECT_EQ(RateText(shape), "12000 tpm (60 rpm at 200 tokens a request)");
  // Not a whole rate: kept to the thousandth (1000 / 300 = 3.333 rpm: 4 requests a minute).
  ASSERT_TRUE(ParseRate(RateKind::kTpm, "1000", shape).ok());
  schedule = FinishRate(shape, 300, minutes(1));
  ASSERT_TRUE(schedule.ok());
  EXPECT_EQ(shape.from_milli, 3333);
  EXPECT_EQ(schedule->count(), 4);
  // A ramp in tokens.
  ASSERT_TRUE(ParseRate(RateKind::kTpm, "0-24000", shape).ok());
  schedule = FinishRate(shape, 200, minutes(1));
  ASSERT_TRUE(schedule.ok());
  EXPECT_EQ(shape.to_milli, Rpm(120));
  EXPECT_EQ(schedule->count(), 60);
  EXPECT_EQ(RateText(shape), "ramp 0-24000 tpm (0-120 rpm at 200 tokens a request)");
  // Out of bounds either way.
  ASSERT_TRUE(ParseRate(RateKind::kTpm, "10000000000", shape).ok());
  EXPECT_THAT(FinishRate(shape, 2, minutes(1)).status().message(),
              ::testing::HasSubstr("is more than 6000000 requests a minute at 2 tokens"));
  ASSERT_TRUE(ParseRate(RateKind::kTpm, "1", shape).ok());
  EXPECT_THAT(FinishRate(shape, 2'000'000, minutes(1)).status().message(),
              ::testing::HasSubstr("less than 0.001 requests a minute"));
}

TEST(RateShapeTest, RatesAndRamps) {
  RateShape shape;
  ASSERT_TRUE(ParseRate(RateKind::kRpm, "0-600", shape).ok());
  EXPECT_TRUE(shape.ramp());
  EXPECT_EQ(shape.from, 0);
  EXPECT_EQ(shape.to, 600);
  ASSERT_TRUE(FinishRate(shape, 200, seconds(60)).ok());
  EXPECT_EQ(RateText(shape), "ramp 0-600 rpm");
  ASSERT_TRUE(ParseRate(RateKind::kRpm, "600-0", shape).ok());
  ASSERT_TRUE(ParseRate(RateKind::kRpm, "600", shape).ok());
  EXPECT_FALSE(shape.ramp());
  for (const char* bad : {"0", "0-0", "-5", "5-", "a-b", "6000001", "0-6000001", "+5", "1.5"}) {
    EXPECT_FALSE(ParseRate(RateKind::kRpm, bad, shape).ok()) << bad;
  }
  EXPECT_THAT(std::string(ParseRate(RateKind::kRpm, "0-0", shape).message()),
              ::testing::HasSubstr("not both 0"));
}

}  // namespace
}  // namespace spillway::load
