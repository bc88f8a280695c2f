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
    if (const boost::json::value* type = row->if_contains("deployment_type"); type != nullptr) {
      const boost::json::string* text = type->if_string();
      if (text == nullptr ||
          std::find(std::begin(kDeploymentTypes), std::end(kDeploymentTypes),
                    absl::string_view(text->data(), text->size())) == std::end(kDeploymentTypes)) {
        return absl::InvalidArgumentError(
            absl::StrCat("rates: model '", rates.model,
                         "': \"deployment_type\" must be regional, data_zone or global"));
      }
      rates.deployment_type = std::string(*text);
    }
    for (const PtuRates& earlier : rows) {
      if (earlier.model == rates.model && earlier.deployment_type == rates.deployment_type) {
        return absl::InvalidArgumentError(
            absl::StrCat("rates: model '", rates.model, "' is given twice",
                         rates.deployment_type.empty() ? "" : " for ", rates.deployment_type));
      }
    }
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

const PtuRates* FindRates(const std::vector<PtuRates>& rates, absl::string_view model,
                          absl::string_view deployment_type) {
  const PtuRates* any_type = nullptr;
  for (const PtuRates& row : rates) {
    if (row.model != model) {
      continue;
    }
    if (row.deployment_type == deployment_type) {
      return &row;
    }
    if (row.deployment_type.empty()) {
      any_type = &row;
    }
  }
  return any_type;
}

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
  plan.peak_tpm = percentiles->peak;
  plan.p50_tpm = percentiles->p50;
  plan.p95_tpm = percentiles->p95;
  plan.p99_tpm = percentiles->p99;
  plan.target_tpm = percentiles->target;
  plan.recommended_ptu = PtusFor(plan.target_tpm, rates);
  const double capacity = static_cast<double>(plan.recommended_ptu) * rates.input_tpm_per_ptu;

  double total = 0;
  double spilled = 0;
  double prompt = 0;
  double completion = 0;
  double spilled_prompt = 0;
  double spilled_completion = 0;
  for (std::size_t i = 0; i < minutes.size(); ++i) {
    const double w = Weighted(minutes[i], rates.output_weight);
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
      "%s%s: p%g of %d minute%s = %.0f weighted TPM (prompt + %g x completion); %.0f TPM per PTU "
      "-> %d PTU (minimum %d, steps of %d), capacity %.0f TPM; %.1f%% of weighted tokens above "
      "it spill to Standard; a month is %.0f hours, its traffic the window's x %.2f",
      rates.model, rates.deployment_type.empty() ? "" : absl::StrCat(" ", rates.deployment_type),
      target_percentile, window_minutes, window_minutes == 1 ? "" : "s", plan.target_tpm,
      rates.output_weight, rates.input_tpm_per_ptu, plan.recommended_ptu, rates.min_ptu,
      rates.increment, capacity, 100 * plan.spill_share, kHoursPerMonth, scale);
  return plan;
}

}  // namespace spillway
