// Throughput and prices of provisioned deployments per model and deployment type: the PTU
// rates file (examples/ptu-rates.json, compiled in). The control plane reads how many tokens a
// minute a PTU serves from it (the agents' headroom before they spill); `spillwayctl capacity`
// also its minimums, increments and prices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// Provisioned and Standard deployments come in three types, each with its own minimum,
// increment and prices: "regional" (ProvisionedManaged, Standard), "data_zone" and "global".
inline constexpr absl::string_view kDeploymentTypes[] = {"regional", "data_zone", "global"};

// One row of the rates file: a model, on one deployment type.
struct PtuRates {
  std::string model;
  std::string deployment_type;   // one of kDeploymentTypes; empty: any type
  double input_tpm_per_ptu = 0;  // input tokens per minute one PTU serves
  double output_weight = 1;      // one output token counts as this many input tokens
  int64_t min_ptu = 0;           // the smallest deployment
  int64_t increment = 1;         // deployments grow in steps of this many PTUs
  double ptu_hour_usd = 0;       // price of one PTU for an hour
  double input_per_1k_usd = 0;   // Standard prices per 1,000 tokens
  double output_per_1k_usd = 0;
};

// The rates file: JSON, {"models": [{"model": "gpt-4o", "deployment_type": "global",
// "input_tpm_per_ptu": 2500, ...}]} (examples/ptu-rates.json). Errors name the model and the
// field; a (model, deployment type) given twice is an error.
absl::StatusOr<std::vector<PtuRates>> ParseRates(absl::string_view json);

// The row for `model` on `deployment_type`: the exact one, else the model's row without a
// type; null when the file has neither.
const PtuRates* FindRates(const std::vector<PtuRates>& rates, absl::string_view model,
                          absl::string_view deployment_type);

// The rates built into the binaries: examples/ptu-rates.json as it was at build time.
absl::string_view BuiltInRatesJson();

// The rates of the file at `path`, or the built-in ones when `path` is empty. Errors name the
// file.
absl::StatusOr<std::vector<PtuRates>> LoadRates(const std::string& path);

// The rates row type a SKU's deployments use: "regional" (ProvisionedManaged, Standard),
// "data_zone" or "global".
absl::string_view DeploymentType(v1::Sku sku);

}  // namespace spillway
