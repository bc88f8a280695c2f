// The run over time, for the chart (--chart): per bucket of send time, what was sent and how
// it ended, the tokens generated, and time to first token and end-to-end latency in small fixed
// histograms. At most kMaxTimelineBuckets buckets, whatever the run's length.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "tools/load/latency_histogram.h"
#include "tools/load/load_stats.h"

namespace spillway::load {

struct TimelineBucket {
  int64_t sent = 0;
  int64_t ok = 0;
  int64_t throttled = 0;
  int64_t errors = 0;
  int64_t completion_tokens = 0;  // from ok answers' usage
  CoarseHistogram ttft;           // streams
  CoarseHistogram e2e;            // ok answers
};

inline constexpr size_t kMaxTimelineBuckets = 600;

// A bucket's width for a run of `duration`: 1 s up to 10 minutes; beyond, the first of 2, 3,
// 5, 10, 15, 20, 30, 60, 90, 120 and 150 s that keeps to kMaxTimelineBuckets (24 h: 150 s).
std::chrono::seconds TimelineBucketWidth(std::chrono::nanoseconds duration);

class LoadTimeline {
 public:
  explicit LoadTimeline(std::chrono::nanoseconds duration);

  // As LoadStats: a request counts in the bucket it was sent in (`offset` from the start),
  // its answer with it, however late that came.
  void RecordSent(std::chrono::nanoseconds offset);
  void RecordResult(std::chrono::nanoseconds offset, const RequestResult& result);

  std::chrono::seconds width() const { return width_; }
  const std::vector<TimelineBucket>& buckets() const { return buckets_; }

 private:
  TimelineBucket& At(std::chrono::nanoseconds offset);

  std::chrono::seconds width_;
  std::vector<TimelineBucket> buckets_;
};

}  // namespace spillway::load
