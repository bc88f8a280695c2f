// When each request of a run is due: the inverse of the cumulative request count of a rate
// that is constant, a linear ramp, or a per-minute profile, in exact integer arithmetic so that
// the count sent and every minute's count are the rate's integral, rounded up.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace spillway::load {

// Rates are kept in thousandths of a request a minute: a rate derived from tokens a minute
// (--tpm) need not be whole.
inline constexpr int64_t kMilli = 1000;

// A stretch of the rate: from `from_milli` to `to_milli` (linearly) over `length`.
struct RateSegment {
  std::chrono::nanoseconds length{0};
  int64_t from_milli = 0;
  int64_t to_milli = 0;
};

class RateSchedule {
 public:
  RateSchedule() = default;
  // Segments back to back from t = 0; the run sends what is due before `duration` (at most
  // the segments' total length). Every segment but the one `duration` ends in must hold a
  // whole number of requests (a profile's whole-number minutes do; a single segment always).
  RateSchedule(std::vector<RateSegment> segments, std::chrono::nanoseconds duration);

  static RateSchedule Constant(int64_t rate_milli, std::chrono::nanoseconds duration);
  static RateSchedule Ramp(int64_t from_milli, int64_t to_milli, std::chrono::nanoseconds duration);
  // One whole-number rate (requests a minute) per minute; each minute's requests evenly spaced.
  static RateSchedule Profile(const std::vector<int64_t>& rpm, std::chrono::nanoseconds duration);

  // Requests i with due time t_i < duration, t_i being where the cumulative count reaches i:
  // the integral of the rate over the duration, rounded up (600 rpm for 6 s: 60; 0 to 600 rpm
  // over 60 s: 300).
  int64_t count() const { return count_; }
  // When request `index` (0 <= index < count()) is due: t_index rounded down to the
  // nanosecond, so a request due at a minute's first instant counts in that minute.
  std::chrono::nanoseconds DueOffset(int64_t index) const;

 private:
  struct Placed {
    RateSegment segment;
    std::chrono::nanoseconds start{0};
    int64_t before = 0;  // requests due before the segment starts
  };

  std::vector<Placed> placed_;
  int64_t count_ = 0;
};

// Requests due in the first `elapsed` of `segment` (0 <= elapsed <= length): its cumulative
// count there, rounded up.
int64_t SegmentCount(const RateSegment& segment, std::chrono::nanoseconds elapsed);
// The offset within `segment` of its request `j` (0-based), rounded down to the nanosecond.
std::chrono::nanoseconds SegmentDue(const RateSegment& segment, int64_t j);

}  // namespace spillway::load
