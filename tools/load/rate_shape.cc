// See rate_shape.h.
#include "tools/load/rate_shape.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/load/load_report.h"
#include "tools/load/number_file.h"

namespace spillway::load {
namespace {

bool ParseWhole(absl::string_view text, int64_t min, int64_t max, int64_t& value) {
  return !text.empty() && text[0] != '+' && absl::SimpleAtoi(text, &value) && value >= min &&
         value <= max;
}

// A rate given in tokens a minute, in thousandths of a request a minute.
absl::StatusOr<int64_t> TokensToMilli(int64_t tpm, double tokens_per_request) {
  const double milli = std::round(static_cast<double>(tpm) * kMilli / tokens_per_request);
  const std::string at = absl::StrCat(" at ", FormatNumber(tokens_per_request),
                                      " tokens a request (the mean prompt and completion)");
  if (milli > static_cast<double>(kMaxRpm * kMilli)) {
    return absl::InvalidArgumentError(
        absl::StrCat(tpm, " tpm is more than ", kMaxRpm, " requests a minute", at));
  }
  if (tpm > 0 && milli < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(tpm, " tpm is less than 0.001 requests a minute", at));
  }
  return static_cast<int64_t>(milli);
}

}  // namespace

std::string MilliText(int64_t milli) { return FormatNumber(static_cast<double>(milli) / kMilli); }

absl::Status ParseRate(RateKind kind, absl::string_view text, RateShape& shape) {
  const int64_t limit = kind == RateKind::kTpm ? kMaxTpm : kMaxRpm;
  const size_t dash = text.find('-');
  int64_t from = 0;
  int64_t to = 0;
  if (dash == absl::string_view::npos) {
    if (!ParseWhole(text, 1, limit, from)) {
      return absl::InvalidArgumentError(
          absl::StrCat("must be a whole number from 1 to ", limit, ", or a ramp A-B"));
    }
    to = from;
  } else if (!ParseWhole(text.substr(0, dash), 0, limit, from) ||
             !ParseWhole(text.substr(dash + 1), 0, limit, to) || (from == 0 && to == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ramp A-B must be two whole numbers from 0 to ", limit, ", not both 0"));
  }
  shape.kind = kind;
  shape.from = from;
  shape.to = to;
  return absl::OkStatus();
}

absl::Status ReadProfile(const std::string& file, RateShape& shape) {
  absl::StatusOr<std::vector<int64_t>> minutes =
      ReadNumberColumn(file, {.names = {"rpm", "requests", "sent"},
                              .min = 0,
                              .max = kMaxRpm,
                              .max_values = kMaxProfileMinutes,
                              .unit = "minutes"});
  if (!minutes.ok()) {
    return minutes.status();
  }
  shape.kind = RateKind::kProfile;
  shape.profile_file = file;
  shape.profile_rpm = *std::move(minutes);
  return absl::OkStatus();
}

absl::StatusOr<RateSchedule> FinishRate(RateShape& shape, double tokens_per_request,
                                        std::chrono::nanoseconds duration) {
  if (shape.kind == RateKind::kProfile) {
    const auto [least, greatest] =
        std::minmax_element(shape.profile_rpm.begin(), shape.profile_rpm.end());
    shape.from_milli = *least * kMilli;
    shape.to_milli = *greatest * kMilli;
  } else if (shape.kind == RateKind::kTpm) {
    shape.tokens_per_request = tokens_per_request;
    for (auto [tpm, milli] :
         {std::pair(shape.from, &shape.from_milli), std::pair(shape.to, &shape.to_milli)}) {
      absl::StatusOr<int64_t> converted = TokensToMilli(tpm, tokens_per_request);
      if (!converted.ok()) return converted.status();
      *milli = *converted;
    }
    if (shape.from_milli == 0 && shape.to_milli == 0) {
      return absl::InvalidArgumentError("sends no request");
    }
  } else {
    shape.from_milli = shape.from * kMilli;
    shape.to_milli = shape.to * kMilli;
  }
  RateSchedule schedule = shape.kind == RateKind::kProfile
                              ? RateSchedule::Profile(shape.profile_rpm, duration)
                              : RateSchedule::Ramp(shape.from_milli, shape.to_milli, duration);
  if (schedule.count() == 0) {
    return absl::InvalidArgumentError("sends no request within --duration");
  }
  return schedule;
}

std::string RateText(const RateShape& shape) {
  const std::string range =
      shape.from == shape.to ? absl::StrCat(shape.from) : absl::StrCat(shape.from, "-", shape.to);
  const std::string rpm =
      shape.from_milli == shape.to_milli
          ? MilliText(shape.from_milli)
          : absl::StrCat(MilliText(shape.from_milli), "-", MilliText(shape.to_milli));
  switch (shape.kind) {
    case RateKind::kProfile:
      return absl::StrCat("profile ", shape.profile_file, " (", shape.profile_rpm.size(),
                          " minutes, ", rpm, " rpm)");
    case RateKind::kTpm:
      return absl::StrCat(shape.ramp() ? "ramp " : "", range, " tpm (", rpm, " rpm at ",
                          FormatNumber(shape.tokens_per_request), " tokens a request)");
    default:
      return absl::StrCat(shape.ramp() ? "ramp " : "", range, " rpm");
  }
}

}  // namespace spillway::load
