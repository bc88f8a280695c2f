// See capacity_plan.h.
#include "controlplane/cli/capacity_plan.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace spillway {
namespace {

constexpr double kHoursPerMonth = 730;
constexpr double kMinutesPerMonth = kHoursPerMonth * 60;

// Nearest rank: the smallest value with at least `percentile` % of the values at or below it.
double Percentile(const std::vector<double>& sorted, double percentile) {
  if (sorted.empty()) {
    return 0;
  }
  const double rank = std::ceil(percentile / 100.0 * static_cast<double>(sorted.size()));
  const std::size_t index = static_cast<std::size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

double Weighted(const MinuteTokens& minute, double output_weight) {
  return static_cast<double>(minute.prompt) +
         output_weight * static_cast<double>(minute.completion);
}

// The PTUs whose capacity covers `tpm`, as a deployment can be sized: at least the minimum,
// then whole increments.
int64_t PtusFor(double tpm, const PtuRates& rates) {
  if (tpm <= 0) {
    return 0;
  }
  const int64_t needed = static_cast<int64_t>(std::ceil(tpm / rates.input_tpm_per_ptu));
  if (needed <= rates.min_ptu) {
    return rates.min_ptu;
  }
  const int64_t steps = (needed - rates.min_ptu + rates.increment - 1) / rates.increment;
  return rates.min_ptu + steps * rates.increment;
}

}  // namespace

absl::StatusOr<TpmPercentiles> WeightedPercentiles(const std::vector<MinuteTokens>& minutes,
                                                   int64_t window_minutes, double output_weight,
                                                   double target_percentile) {
  if (window_minutes <= 0 || static_cast<std::size_t>(window_minutes) < minutes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("capacity: a window of ", window_minutes,
                                                   " minutes cannot hold ", minutes.size()));
  }
  if (!(target_percentile > 0 && target_percentile <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("capacity: target percentile ", target_percentile, " is not in (0, 100]"));
  }
  std::vector<double> sorted(static_cast<std::size_t>(window_minutes), 0.0);
  for (std::size_t i = 0; i < minutes.size(); ++i) {
    sorted[i] = Weighted(minutes[i], output_weight);
  }
  std::sort(sorted.begin(), sorted.end());
  return TpmPercentiles{.peak = sorted.back(),
                        .p50 = Percentile(sorted, 50),
                        .p95 = Percentile(sorted, 95),
                        .p99 = Percentile(sorted, 99),
                        .target = Percentile(sorted, target_percentile)};
}

double SpillShareAt(const std::vector<MinuteTokens>& minutes, double output_weight,
                    double capacity_tpm) {
  double total = 0;
  double spilled = 0;
  for (const MinuteTokens& minute : minutes) {
    const double w = Weighted(minute, output_weight);
    total += w;
    spilled += std::max(0.0, w - capacity_tpm);
  }
  return total > 0 ? spilled / total : 0;
}

absl::StatusOr<CapacityPlan> PlanCapacity(const std::vector<MinuteTokens>& minutes,
                                          int64_t window_minutes, const PtuRates& rates,
                                          double target_percentile) {
  absl::StatusOr<TpmPercentiles> percentiles =
      WeightedPercentiles(minutes, window_minutes, rates.output_weight, target_percentile);
  if (!percentiles.ok()) {
    return percentiles.status();
  }
  CapacityPlan plan;
  plan.tpm = *percentiles;
  plan.recommended_ptu = PtusFor(plan.tpm.target, rates);
  const double capacity = static_cast<double>(plan.recommended_ptu) * rates.input_tpm_per_ptu;

  plan.spill_share = SpillShareAt(minutes, rates.output_weight, capacity);
  // What spills, priced in each minute's own mix of prompt and completion tokens.
  double prompt = 0;
  double completion = 0;
  double spilled_prompt = 0;
  double spilled_completion = 0;
  for (const MinuteTokens& minute : minutes) {
    const double w = Weighted(minute, rates.output_weight);
    prompt += static_cast<double>(minute.prompt);
    completion += static_cast<double>(minute.completion);
    if (w > capacity) {
      const double fraction = (w - capacity) / w;
      spilled_prompt += fraction * static_cast<double>(minute.prompt);
      spilled_completion += fraction * static_cast<double>(minute.completion);
    }
  }
  const double scale = kMinutesPerMonth / static_cast<double>(window_minutes);
  auto standard = [&](double in, double out) {
    return (in / 1000 * rates.input_per_1k_usd + out / 1000 * rates.output_per_1k_usd) * scale;
  };
  plan.monthly_ptu_usd =
      static_cast<double>(plan.recommended_ptu) * rates.ptu_hour_usd * kHoursPerMonth;
  plan.monthly_spill_usd = standard(spilled_prompt, spilled_completion);
  plan.monthly_total_usd = plan.monthly_ptu_usd + plan.monthly_spill_usd;
  plan.monthly_all_standard_usd = standard(prompt, completion);
  plan.explanation = absl::StrFormat(
      "%s%s: p%g of %d minute%s = %.0f weighted TPM (prompt + %g x completion); %.0f TPM per PTU "
      "-> %d PTU (minimum %d, steps of %d), capacity %.0f TPM; %.1f%% of weighted tokens above "
      "it spill to Standard; a month is %.0f hours, its traffic the window's x %.2f",
      rates.model, rates.deployment_type.empty() ? "" : absl::StrCat(" ", rates.deployment_type),
      target_percentile, window_minutes, window_minutes == 1 ? "" : "s", plan.tpm.target,
      rates.output_weight, rates.input_tpm_per_ptu, plan.recommended_ptu, rates.min_ptu,
      rates.increment, capacity, 100 * plan.spill_share, kHoursPerMonth, scale);
  return plan;
}

}  // namespace spillway
