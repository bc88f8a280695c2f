// Percentiles of latencies in fixed memory, however long the run: a log-linear histogram (as
// HdrHistogram keeps), not a list of samples, since one run can see millions of token gaps.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>

namespace spillway::load {

// Microseconds from 0 to 2^36 (19 hours; longer ones count there). Below 2^SubBits us every
// value has its own bucket; above, each power of two has 2^SubBits, so a reported percentile is
// within 2^-(SubBits+1) of a sample's value: with 5 (LatencyHistogram), 1,024 counters (8 KB a
// histogram, whatever the sample count) and 1.6 %; with 3 (CoarseHistogram, the chart's one a
// time bucket), 272 counters of 32 bits (1 KB) and 6.25 %.
template <int SubBits, typename Count>
class LogLinearHistogram {
 public:
  void Add(std::chrono::microseconds value);
  void Merge(const LogLinearHistogram& other);

  int64_t count() const { return count_; }
  // The nearest-rank percentile (`p` in (0, 100]): the bucket's middle, clamped to the least
  // and greatest value seen; nullopt when empty.
  std::optional<double> PercentileMs(double p) const;
  std::optional<double> MaxMs() const;

  static int BucketOf(uint64_t micros);
  static uint64_t BucketLow(int bucket);
  static uint64_t BucketHigh(int bucket);  // exclusive

  static constexpr int kSubBits = SubBits;
  static constexpr int kMaxBits = 36;
  static constexpr int kBuckets = (kMaxBits - kSubBits + 1) << kSubBits;

 private:
  std::array<Count, kBuckets> counts_{};
  int64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

using LatencyHistogram = LogLinearHistogram<5, int64_t>;
using CoarseHistogram = LogLinearHistogram<3, uint32_t>;

}  // namespace spillway::load
