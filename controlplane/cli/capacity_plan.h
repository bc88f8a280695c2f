// PTU sizing from metered usage (issue 21, `spillwayctl capacity`): a model's tokens per minute
// over a window, weighted as the capacity calculator weighs output tokens, give the PTUs that
// serve a chosen percentile of minutes, the share that would spill to Standard, and the
// monthly cost of PTU + Standard against all-Standard, from a rates file the operator keeps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/ptu_rates.h"

namespace spillway {

struct MinuteTokens {
  int64_t prompt = 0;
  int64_t completion = 0;
};

// Weighted tokens per minute (prompt + output_weight x completion) over a window: `minutes`
// holds the minutes that had traffic, the window has `window_minutes` in all (the rest are
// idle). Nearest-rank percentiles over every minute of the window.
struct TpmPercentiles {
  double peak = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double target = 0;  // at the chosen percentile
};
absl::StatusOr<TpmPercentiles> WeightedPercentiles(const std::vector<MinuteTokens>& minutes,
                                                   int64_t window_minutes, double output_weight,
                                                   double target_percentile);

// The share of weighted tokens above `capacity_tpm` in their minute: what spills to Standard
// when the PTUs serve that many weighted tokens a minute.
double SpillShareAt(const std::vector<MinuteTokens>& minutes, double output_weight,
                    double capacity_tpm);

struct CapacityPlan {
  TpmPercentiles tpm;  // the target is the chosen percentile
  int64_t recommended_ptu = 0;
  double spill_share = 0;  // of weighted tokens, above the PTUs' capacity
  double monthly_ptu_usd = 0;
  double monthly_spill_usd = 0;  // Standard, for what spills
  double monthly_total_usd = 0;  // PTU + spill
  double monthly_all_standard_usd = 0;
  std::string explanation;  // which minutes and which rates gave the numbers
};

// `minutes` holds the minutes that had traffic; the window has `window_minutes` in all (the
// rest count as idle). Percentiles are nearest-rank over every minute of the window. A month
// is 730 hours, its traffic the window's scaled up.
absl::StatusOr<CapacityPlan> PlanCapacity(const std::vector<MinuteTokens>& minutes,
                                          int64_t window_minutes, const PtuRates& rates,
                                          double target_percentile);

}  // namespace spillway
