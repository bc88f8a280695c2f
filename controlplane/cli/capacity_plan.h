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

namespace spillway {

// One model's row of the rates file.
struct PtuRates {
  std::string model;
  double input_tpm_per_ptu = 0;  // input tokens per minute one PTU serves
  double output_weight = 1;      // one output token counts as this many input tokens
  int64_t min_ptu = 0;           // the smallest deployment
  int64_t increment = 1;         // deployments grow in steps of this many PTUs
  double ptu_hour_usd = 0;       // price of one PTU for an hour
  double input_per_1k_usd = 0;   // Standard prices per 1,000 tokens
  double output_per_1k_usd = 0;
};

// The rates file: JSON, {"models": [{"model": "gpt-4o", "input_tpm_per_ptu": 2500, ...}]}.
// Errors name the model and the field.
absl::StatusOr<std::vector<PtuRates>> ParseRates(absl::string_view json);

struct MinuteTokens {
  int64_t prompt = 0;
  int64_t completion = 0;
};

struct CapacityPlan {
  // Weighted tokens per minute (prompt + output_weight × completion) over the window's minutes.
  double peak_tpm = 0;
  double p50_tpm = 0;
  double p95_tpm = 0;
  double p99_tpm = 0;
  double target_tpm = 0;  // the chosen percentile
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
