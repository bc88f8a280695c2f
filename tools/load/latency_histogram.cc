// See latency_histogram.h.
#include "tools/load/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace spillway::load {

template <int SubBits, typename Count>
int LogLinearHistogram<SubBits, Count>::BucketOf(uint64_t micros) {
  constexpr uint64_t kLinear = uint64_t{1} << kSubBits;
  if (micros < kLinear) {
    return static_cast<int>(micros);
  }
  if (micros >= (uint64_t{1} << kMaxBits)) {
    return kBuckets - 1;
  }
  const int high_bit = 63 - std::countl_zero(micros);
  const int group = high_bit - kSubBits + 1;
  const uint64_t sub = (micros >> (high_bit - kSubBits)) & (kLinear - 1);
  return static_cast<int>((static_cast<uint64_t>(group) << kSubBits) + sub);
}

template <int SubBits, typename Count>
uint64_t LogLinearHistogram<SubBits, Count>::BucketLow(int bucket) {
  const int group = bucket >> kSubBits;
  const uint64_t sub = static_cast<uint64_t>(bucket) & ((uint64_t{1} << kSubBits) - 1);
  if (group == 0) {
    return sub;
  }
  return ((uint64_t{1} << kSubBits) + sub) << (group - 1);
}

template <int SubBits, typename Count>
uint64_t LogLinearHistogram<SubBits, Count>::BucketHigh(int bucket) {
  const int group = bucket >> kSubBits;
  return BucketLow(bucket) + (group == 0 ? 1 : uint64_t{1} << (group - 1));
}

template <int SubBits, typename Count>
void LogLinearHistogram<SubBits, Count>::Add(std::chrono::microseconds value) {
  const uint64_t micros = value.count() < 0 ? 0 : static_cast<uint64_t>(value.count());
  ++counts_[BucketOf(micros)];
  ++count_;
  min_ = std::min(min_, micros);
  max_ = std::max(max_, micros);
}

template <int SubBits, typename Count>
void LogLinearHistogram<SubBits, Count>::Merge(const LogLinearHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) {
    counts_[i] += other.counts_[i];
  }
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

template <int SubBits, typename Count>
std::optional<double> LogLinearHistogram<SubBits, Count>::PercentileMs(double p) const {
  if (count_ == 0) {
    return std::nullopt;
  }
  const auto rank = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  int64_t seen = 0;
  int bucket = 0;
  for (; bucket < kBuckets - 1; ++bucket) {
    seen += counts_[bucket];
    if (seen >= rank) {
      break;
    }
  }
  const double middle =
      (static_cast<double>(BucketLow(bucket)) + static_cast<double>(BucketHigh(bucket) - 1)) / 2;
  const double clamped = std::clamp(middle, static_cast<double>(min_), static_cast<double>(max_));
  return clamped / 1000.0;
}

template <int SubBits, typename Count>
std::optional<double> LogLinearHistogram<SubBits, Count>::MaxMs() const {
  if (count_ == 0) {
    return std::nullopt;
  }
  return static_cast<double>(max_) / 1000.0;
}

template class LogLinearHistogram<5, int64_t>;
template class LogLinearHistogram<3, uint32_t>;

}  // namespace spillway::load
