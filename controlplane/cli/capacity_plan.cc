// See capacity_plan.h.
#include "controlplane/cli/capacity_plan.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "boost/json.hpp"

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

absl::StatusOr<std::vector<PtuRates>> ParseRates(absl::string_view json) {
  boost::system::error_code error;
  const boost::json::value parsed =
      boost::json::parse(boost::json::string_view(json.data(), json.size()), error);
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat("rates: not JSON: ", error.message()));
  }
  const boost::json::object* root = parsed.if_object();
  const boost::json::value* models = root == nullptr ? nullptr : root->if_contains("models");
  if (models == nullptr || !models->is_array()) {
    return absl::InvalidArgumentError("rates: expected {\"models\": [...]}");
  }
  std::vector<PtuRates> rows;
  for (const boost::json::value& entry : models->as_array()) {
    const boost::json::object* row = entry.if_object();
    const boost::json::value* model = row == nullptr ? nullptr : row->if_contains("model");
    if (model == nullptr || !model->is_string() || model->as_string().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rates: model ", rows.size() + 1, " has no \"model\" name"));
    }
    PtuRates rates;
    rates.model = std::string(model->as_string());
    auto number = [&](const char* field, double& out, bool required) -> absl::Status {
      const boost::json::value* value = row->if_contains(field);
      if (value == nullptr) {
        return required ? absl::InvalidArgumentError(absl::StrCat("rates: model '", rates.model,
                                                                  "' has no \"", field, "\""))
                        : absl::OkStatus();
      }
      if (!value->is_number() || value->to_number<double>() < 0) {
        return absl::InvalidArgumentError(absl::StrCat("rates: model '", rates.model, "': \"",
                                                       field, "\" must be a number, 0 or more"));
      }
      out = value->to_number<double>();
      return absl::OkStatus();
    };
    double min_ptu = 0;
    double increment = 1;
    for (const auto& [field, out, required] :
         {std::tuple<const char*, double*, bool>{"input_tpm_per_ptu", &rates.input_tpm_per_ptu,
                                                 true},
          {"output_weight", &rates.output_weight, false},
          {"min_ptu", &min_ptu, false},
          {"increment", &increment, false},
          {"ptu_hour_usd", &rates.ptu_hour_usd, false},
          {"input_per_1k_usd", &rates.input_per_1k_usd, false},
          {"output_per_1k_usd", &rates.output_per_1k_usd, false}}) {
      if (absl::Status status = number(field, *out, required); !status.ok()) {
        return status;
      }
    }
    if (rates.input_tpm_per_ptu <= 0 || increment < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("rates: model '", rates.model,
                       "': \"input_tpm_per_ptu\" must be above 0 and \"increment\" at least 1"));
    }
    rates.min_ptu = static_cast<int64_t>(min_ptu);
    rates.increment = static_cast<int64_t>(increment);
    rows.push_back(std::move(rates));
  }
  return rows;
}

absl::StatusOr<CapacityPlan> PlanCapacity(const std::vector<MinuteTokens>& minutes,
                                          int64_t window_minutes, const PtuRates& rates,
                                          double target_percentile) {
  if (window_minutes <= 0 || static_cast<std::size_t>(window_minutes) < minutes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("capacity: a window of ", window_minutes,
                                                   " minutes cannot hold ", minutes.size()));
  }
  if (!(target_percentile > 0 && target_percentile <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("capacity: target percentile ", target_percentile, " is not in (0, 100]"));
  }
  std::vector<double> weighted(static_cast<std::size_t>(window_minutes), 0.0);
  for (std::size_t i = 0; i < minutes.size(); ++i) {
    weighted[i] = static_cast<double>(minutes[i].prompt) +
                  rates.output_weight * static_cast<double>(minutes[i].completion);
  }
  std::vector<double> sorted = weighted;
  std::sort(sorted.begin(), sorted.end());
  CapacityPlan plan;
  plan.peak_tpm = sorted.back();
  plan.p50_tpm = Percentile(sorted, 50);
  plan.p95_tpm = Percentile(sorted, 95);
  plan.p99_tpm = Percentile(sorted, 99);
  plan.target_tpm = Percentile(sorted, target_percentile);
  plan.recommended_ptu = PtusFor(plan.target_tpm, rates);
  const double capacity = static_cast<double>(plan.recommended_ptu) * rates.input_tpm_per_ptu;

  double total = 0;
  double spilled = 0;
  double prompt = 0;
  double completion = 0;
  double spilled_prompt = 0;
  double spilled_completion = 0;
  for (std::size_t i = 0; i < minutes.size(); ++i) {
    const double w = weighted[i];
    total += w;
    prompt += static_cast<double>(minutes[i].prompt);
    completion += static_cast<double>(minutes[i].completion);
    if (w > capacity) {
      // The minute's tokens above capacity, in the minute's own mix of prompt and completion.
      const double fraction = (w - capacity) / w;
      spilled += w - capacity;
      spilled_prompt += fraction * static_cast<double>(minutes[i].prompt);
      spilled_completion += fraction * static_cast<double>(minutes[i].completion);
    }
  }
  plan.spill_share = total > 0 ? spilled / total : 0;
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
      "%s: p%g of %d minutes = %.0f weighted TPM (prompt + %g x completion); %.0f TPM per PTU "
      "-> %d PTU (minimum %d, steps of %d), capacity %.0f TPM; %.1f%% of weighted tokens above "
      "it spill to Standard; a month is %.0f hours, its traffic the window's x %.2f",
      rates.model, target_percentile, window_minutes, plan.target_tpm, rates.output_weight,
      rates.input_tpm_per_ptu, plan.recommended_ptu, rates.min_ptu, rates.increment, capacity,
      100 * plan.spill_share, kHoursPerMonth, scale);
  return plan;
}

}  // namespace spillway
