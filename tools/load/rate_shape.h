// The rate a run sends at, as the command line declares it: requests or tokens a minute,
// constant or a linear ramp (--rpm N|A-B, --tpm N|A-B), or a replayed per-minute profile
// (--profile FILE); and the schedule it makes once the sizes and the duration are known.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tools/load/rate_schedule.h"

namespace spillway::load {

enum class RateKind { kNone, kRpm, kTpm, kProfile };

struct RateShape {
  RateKind kind = RateKind::kNone;
  // --rpm / --tpm: the rate at the start and at the end (equal: a constant rate).
  int64_t from = 0;
  int64_t to = 0;
  std::string profile_file;          // --profile: the file as given
  std::vector<int64_t> profile_rpm;  // --profile: requests a minute, a minute each

  // Set by Finish: requests a minute, in thousandths, at the start and the end (--tpm: the
  // tokens over tokens_per_request, rounded to the thousandth).
  int64_t from_milli = 0;
  int64_t to_milli = 0;
  double tokens_per_request = 0;  // --tpm: the mean prompt plus the mean completion asked for

  bool ramp() const { return kind != RateKind::kProfile && from != to; }
};

// Bounds of the rates (the schedule's arithmetic is exact within them).
inline constexpr int64_t kMaxRpm = 6'000'000;  // 100k requests a second
inline constexpr int64_t kMaxTpm = 10'000'000'000;
inline constexpr size_t kMaxProfileMinutes = 1'440;  // 24 h

// "N" (1..limit) or a ramp "A-B" (0..limit each, not both 0) into `shape`'s kind, from and
// to. The error is the reason alone, for the caller to prefix with the flag and value.
absl::Status ParseRate(RateKind kind, absl::string_view text, RateShape& shape);
// Reads --profile FILE into `shape`: a plain list of requests a minute, or a CSV with an
// rpm, requests or sent column; 0..kMaxRpm each, at most kMaxProfileMinutes.
absl::Status ReadProfile(const std::string& file, RateShape& shape);

// Completes `shape` once every flag is known: the rates in thousandths (--tpm over
// `tokens_per_request`). Then the schedule over `duration` (a profile's: at most its length):
// InvalidArgument, the reason alone, for a rate out of bounds or a shape that sends nothing.
absl::StatusOr<RateSchedule> FinishRate(RateShape& shape, double tokens_per_request,
                                        std::chrono::nanoseconds duration);

// "600 rpm", "ramp 0-600 rpm", "12000 tpm (60 rpm at 200 tokens a request)", "profile p.csv
// (2 minutes, 30-60 rpm)": how the report's table states the rate.
std::string RateText(const RateShape& shape);
// A rate in thousandths of a request a minute, as a number: "0.5", "600".
std::string MilliText(int64_t milli);

}  // namespace spillway::load
