// See load_timeline.h.
#include "tools/load/load_timeline.h"

#include <algorithm>

namespace spillway::load {

std::chrono::seconds TimelineBucketWidth(std::chrono::nanoseconds duration) {
  constexpr int kWidths[] = {1, 2, 3, 5, 10, 15, 20, 30, 60, 90, 120, 150};
  for (const int width : kWidths) {
    if (duration <= std::chrono::seconds(width) * kMaxTimelineBuckets) {
      return std::chrono::seconds(width);
    }
  }
  return std::chrono::seconds(kWidths[std::size(kWidths) - 1]);  // past 25 h: never parsed
}

LoadTimeline::LoadTimeline(std::chrono::nanoseconds duration)
    : width_(TimelineBucketWidth(duration)) {
  const int64_t count = (duration + width_ - std::chrono::nanoseconds(1)) / width_;
  buckets_.resize(static_cast<size_t>(std::clamp<int64_t>(count, 1, kMaxTimelineBuckets)));
}

TimelineBucket& LoadTimeline::At(std::chrono::nanoseconds offset) {
  const int64_t index =
      std::clamp<int64_t>(offset / width_, 0, static_cast<int64_t>(buckets_.size()) - 1);
  return buckets_[static_cast<size_t>(index)];
}

void LoadTimeline::RecordSent(std::chrono::nanoseconds offset) { ++At(offset).sent; }

void LoadTimeline::RecordResult(std::chrono::nanoseconds offset, const RequestResult& result) {
  TimelineBucket& bucket = At(offset);
  if (result.ttft.has_value()) {
    bucket.ttft.Add(*result.ttft);
  }
  switch (result.outcome) {
    case Outcome::kOk:
      ++bucket.ok;
      bucket.e2e.Add(result.e2e);
      bucket.completion_tokens += result.completion_tokens.value_or(0);
      break;
    case Outcome::kThrottled:
      ++bucket.throttled;
      break;
    case Outcome::kError:
      ++bucket.errors;
      break;
  }
}

}  // namespace spillway::load
