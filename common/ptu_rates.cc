// See ptu_rates.h.
#include "common/ptu_rates.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "common/file_io.h"

namespace spillway {
namespace {

// Every model on every deployment type, many times over; the duplicate check is quadratic.
constexpr std::size_t kMaxRateRows = 1000;

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
  if (models->as_array().size() > kMaxRateRows) {
    return absl::InvalidArgumentError(
        absl::StrCat("rates: more than ", kMaxRateRows, " models (rows of a model and type)"));
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
    // Bounded so that every figure converts and multiplies without overflow: a topology's
    // capacity is at most 100,000 PTU, so a headroom is at most 10^14 tokens a minute.
    auto number = [&](const char* field, double& out, bool required, double max) -> absl::Status {
      const boost::json::value* value = row->if_contains(field);
      if (value == nullptr) {
        return required ? absl::InvalidArgumentError(absl::StrCat("rates: model '", rates.model,
                                                                  "' has no \"", field, "\""))
                        : absl::OkStatus();
      }
      if (!value->is_number() || value->to_number<double>() < 0 ||
          value->to_number<double>() > max) {
        return absl::InvalidArgumentError(absl::StrCat("rates: model '", rates.model, "': \"",
                                                       field, "\" must be a number from 0 to ",
                                                       static_cast<int64_t>(max)));
      }
      out = value->to_number<double>();
      return absl::OkStatus();
    };
    double min_ptu = 0;
    double increment = 1;
    for (const auto& [field, out, required, max] :
         {std::tuple<const char*, double*, bool, double>{"input_tpm_per_ptu",
                                                         &rates.input_tpm_per_ptu, true, 1e9},
          {"output_weight", &rates.output_weight, false, 1000},
          {"min_ptu", &min_ptu, false, 100'000},
          {"increment", &increment, false, 100'000},
          {"ptu_hour_usd", &rates.ptu_hour_usd, false, 1e6},
          {"input_per_1k_usd", &rates.input_per_1k_usd, false, 1e6},
          {"output_per_1k_usd", &rates.output_per_1k_usd, false, 1e6}}) {
      if (absl::Status status = number(field, *out, required, max); !status.ok()) {
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

absl::StatusOr<std::vector<PtuRates>> LoadRates(const std::string& path) {
  absl::StatusOr<std::string> json =
      path.empty() ? absl::StatusOr<std::string>(std::string(BuiltInRatesJson())) : ReadFile(path);
  if (!json.ok()) {
    return json.status();
  }
  absl::StatusOr<std::vector<PtuRates>> rates = ParseRates(*json);
  if (!rates.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.empty() ? "built-in PTU rates" : path, ": ", rates.status().message()));
  }
  return rates;
}

absl::string_view DeploymentType(v1::Sku sku) {
  switch (sku) {
    case v1::SKU_GLOBAL_STANDARD:
    case v1::SKU_GLOBAL_PROVISIONED_MANAGED:
      return "global";
    case v1::SKU_DATA_ZONE_STANDARD:
    case v1::SKU_DATA_ZONE_PROVISIONED_MANAGED:
      return "data_zone";
    default:
      return "regional";
  }
}

}  // namespace spillway
