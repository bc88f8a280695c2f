// Percentiles of latencies in fixed memory, however long the run: a log-linear histogram (as
// HdrHistogram keeps), not a list of samples, since one run can see millions of token gaps.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>

namespace spillway::load {

// Microseconds from 0 to 2^36 (19 hours; longer ones count there). Below 32 us every value has
// its own bucket; above, each power of two has 32, so a reported percentile is within 1/64
// (1.6 %) of a sample's value. 1,000 counters: 8 KB a histogram, whatever the sample count.
class LatencyHistogram {
 public:
  void Add(std::chrono::microseconds value);
  void Merge(const LatencyHistogram& other);

  int64_t count() const { return count_; }
  // The nearest-rank percentile (`p` in (0, 100]): the bucket's middle, clamped to the least
  // and greatest value seen; nullopt when empty.
  std::optional<double> PercentileMs(double p) const;
  std::optional<double> MaxMs() const;

  static int BucketOf(uint64_t micros);
  static uint64_t BucketLow(int bucket);
  static uint64_t BucketHigh(int bucket);  // exclusive

  static constexpr int kSubBits = 5;  // 32 buckets per power of two
  static constexpr int kMaxBits = 36;
  static constexpr int kBuckets = (kMaxBits - kSubBits + 1) << kSubBits;

 private:
  std::array<int64_t, kBuckets> counts_{};
  int64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace spillway::load
