// See rate_schedule.h. Within a segment of length L whose rate goes from a to b (thousandths
// of a request a minute), the count due by t (ns) is N(t) = (2·a·t·L + (b−a)·t²) / (2·L·M·q),
// M = 60e9 ns a minute, q = 1000. In 128 bits this is exact: at the bounds (6,000,000 rpm,
// a 24 h ramp) the numerator stays below 9e37, under the 1.7e38 of a signed 128-bit integer.
#include "tools/load/rate_schedule.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace spillway::load {
namespace {

using i128 = __int128;
constexpr i128 kNanosPerMinute = 60'000'000'000;

// 2·a·t·L + (b−a)·t²: the count due by t, times 2·L·M·q.
i128 Scaled(const RateSegment& s, int64_t t) {
  const i128 a = s.from_milli;
  const i128 b = s.to_milli;
  const i128 length = s.length.count();
  return 2 * a * t * length + (b - a) * i128{t} * t;
}

i128 Denominator(const RateSegment& s) {
  return 2 * i128{s.length.count()} * kNanosPerMinute * kMilli;
}

// The rate's inverse, in long double: where the count reaches j (a first guess).
int64_t Estimate(const RateSegment& s, int64_t j) {
  const long double a = static_cast<long double>(s.from_milli);
  const long double b = static_cast<long double>(s.to_milli);
  const long double length = static_cast<long double>(s.length.count());
  const long double scaled = static_cast<long double>(j) * 60e9L * kMilli;  // j·M·q
  // The rationalized root of (b−a)/(2L)·t² + a·t − j·M·q = 0: stable for a = 0 and for b < a.
  const long double root = std::sqrt(std::max(0.0L, a * a + 2 * (b - a) * scaled / length));
  const long double t = scaled == 0 ? 0 : a + root > 0 ? 2 * scaled / (a + root) : length;
  return static_cast<int64_t>(std::clamp(t, 0.0L, length));
}

}  // namespace

int64_t SegmentCount(const RateSegment& segment, std::chrono::nanoseconds elapsed) {
  if (segment.length.count() == 0) return 0;
  const i128 den = Denominator(segment);
  return static_cast<int64_t>((Scaled(segment, elapsed.count()) + den - 1) / den);
}

std::chrono::nanoseconds SegmentDue(const RateSegment& segment, int64_t j) {
  if (segment.from_milli == 0 && segment.to_milli == 0) {
    return segment.length;  // no request is ever due in it
  }
  if (segment.from_milli == segment.to_milli) {  // evenly spaced: j·M·q / a, rounded down
    return std::chrono::nanoseconds(
        static_cast<int64_t>(i128{j} * kNanosPerMinute * kMilli / segment.from_milli));
  }
  // The last t in [0, L] with N(t) <= j (N rises strictly: the rate is above 0 but perhaps
  // at an end). Galloping from the estimate, then bisecting; t = 0 always qualifies.
  const i128 target = 2 * i128{j} * segment.length.count() * kNanosPerMinute * kMilli;
  const int64_t length = segment.length.count();
  auto reached_by = [&](int64_t t) { return Scaled(segment, t) <= target; };
  int64_t lo = Estimate(segment, j);
  int64_t hi = lo;
  int64_t step = 1;
  if (reached_by(lo)) {
    hi = lo + 1;
    while (hi <= length && reached_by(hi)) {
      lo = hi;
      hi = lo + step;
      step *= 2;
    }
    hi = std::min(hi, length + 1);  // length + 1: past the segment, never reached
  } else {
    lo = hi - 1;
    while (lo > 0 && !reached_by(lo)) {
      hi = lo;
      lo = hi - step;
      step *= 2;
    }
    lo = std::max<int64_t>(lo, 0);
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (reached_by(mid) ? lo : hi) = mid;
  }
  return std::chrono::nanoseconds(lo);
}

RateSchedule::RateSchedule(std::vector<RateSegment> segments, std::chrono::nanoseconds duration) {
  std::chrono::nanoseconds start{0};
  int64_t before = 0;
  for (const RateSegment& segment : segments) {
    placed_.push_back({segment, start, before});
    if (duration <= start + segment.length) {
      count_ = before + SegmentCount(segment, duration - start);
      return;
    }
    before += SegmentCount(segment, segment.length);
    start += segment.length;
  }
  count_ = before;  // a duration past the segments: they end the run
}

RateSchedule RateSchedule::Constant(int64_t rate_milli, std::chrono::nanoseconds duration) {
  return RateSchedule({{duration, rate_milli, rate_milli}}, duration);
}

RateSchedule RateSchedule::Ramp(int64_t from_milli, int64_t to_milli,
                                std::chrono::nanoseconds duration) {
  return RateSchedule({{duration, from_milli, to_milli}}, duration);
}

RateSchedule RateSchedule::Profile(const std::vector<int64_t>& rpm,
                                   std::chrono::nanoseconds duration) {
  std::vector<RateSegment> segments;
  segments.reserve(rpm.size());
  for (const int64_t rate : rpm) {
    segments.push_back({std::chrono::minutes(1), rate * kMilli, rate * kMilli});
  }
  return RateSchedule(std::move(segments), duration);
}

std::chrono::nanoseconds RateSchedule::DueOffset(int64_t index) const {
  // The last segment whose first request is at or before `index`: segments without requests
  // share their `before` with the next one, so the search passes over them.
  auto it = std::upper_bound(placed_.begin(), placed_.end(), index,
                             [](int64_t i, const Placed& p) { return i < p.before; });
  const Placed& placed = *std::prev(it);
  return placed.start + SegmentDue(placed.segment, index - placed.before);
}

}  // namespace spillway::load
