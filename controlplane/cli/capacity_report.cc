// See capacity_report.h.
#include "controlplane/cli/capacity_report.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/topology_compile.h"

namespace spillway::cli {
namespace {

// What the report needs of one deployment.
struct DeploymentFacts {
  std::string model;
  v1::Sku sku = v1::SKU_UNSPECIFIED;
  uint32_t capacity = 0;
  std::string region;
  std::string stamp;
};

struct TopologyIndex {
  absl::flat_hash_map<std::string, DeploymentFacts> deployments;  // "<instance>/<name>"
  // STAMP/NAME -> the deployments its tiers and splits reach.
  std::map<std::string, std::set<std::string>> route_deployments;
};

TopologyIndex IndexTopology(const v1::Topology& topology) {
  absl::flat_hash_map<std::string, std::string> stamp_of_region;
  for (const v1::Region& region : topology.regions()) {
    stamp_of_region[region.name()] = region.stamp();
  }
  absl::flat_hash_map<std::string, std::string> region_of_instance;
  for (const v1::Instance& instance : topology.instances()) {
    region_of_instance[instance.name()] = instance.region();
  }
  TopologyIndex index;
  for (const v1::Deployment& deployment : topology.deployments()) {
    DeploymentFacts facts{deployment.model(), deployment.sku(), deployment.capacity(),
                          region_of_instance[deployment.instance()], ""};
    facts.stamp = stamp_of_region[facts.region];
    index.deployments[absl::StrCat(deployment.instance(), "/", deployment.name())] =
        std::move(facts);
  }
  absl::flat_hash_map<std::string, const v1::Pool*> pools;
  for (const v1::Pool& pool : topology.pools()) {
    pools[pool.name()] = &pool;
  }
  for (const v1::Route& route : topology.routes()) {
    std::set<std::string>& reached =
        index.route_deployments[absl::StrCat(route.stamp(), "/", route.name())];
    auto add_tiers = [&](const auto& tiers) {
      for (const std::string& tier : tiers) {
        if (const auto pool = pools.find(tier); pool != pools.end()) {
          for (const v1::PoolMember& member : pool->second->members()) {
            reached.insert(member.deployment());
          }
        }
      }
    };
    add_tiers(route.tiers());
    for (const v1::RouteSplit& split : route.split()) {
      add_tiers(split.tiers());
    }
  }
  return index;
}

// One route's usage over the window, summed as the rows arrive.
struct RouteUsage {
  std::map<int64_t, MinuteTokens> minutes;  // every deployment's tokens, per minute
  std::set<int64_t> standard_minutes;       // minutes in which a Standard deployment served
  std::map<std::string, uint64_t> deployment_tokens;  // prompt + completion per deployment
  uint64_t requests = 0;
  uint64_t prompt = 0;
  uint64_t completion = 0;
  uint64_t throttled = 0;
  uint64_t provisioned_tokens = 0;
};

// The key of `counts` with the largest count (the first such in key order); empty when none.
template <typename Map>
std::string Largest(const Map& counts) {
  std::string best;
  uint64_t most = 0;
  for (const auto& [key, count] : counts) {
    if (best.empty() || count > most) {
      best = key;
      most = count;
    }
  }
  return best;
}

// Which model, region and deployment types a route's plan is for: the model that served most
// tokens; its provisioned deployments' type and region (those serving most, else the route's
// configured ones), and its Standard deployments' type, for the price of what spills.
struct RouteShape {
  std::string model;
  std::string region;
  std::string ptu_type;
  std::string standard_type;
  uint32_t current_ptu = 0;
  bool has_provisioned = false;
};

RouteShape ShapeOf(const RouteUsage& usage, const std::set<std::string>& configured,
                   const TopologyIndex& index) {
  std::map<std::string, uint64_t> by_model;
  for (const auto& [id, tokens] : usage.deployment_tokens) {
    by_model[index.deployments.at(id).model] += tokens;
  }
  RouteShape shape;
  shape.model = Largest(by_model);
  std::map<std::string, uint64_t> provisioned;  // id -> tokens (0 when configured, unused)
  std::map<std::string, uint64_t> standard;
  for (const std::string& id : configured) {
    const auto facts = index.deployments.find(id);
    if (facts != index.deployments.end() && facts->second.model == shape.model) {
      (IsProvisioned(facts->second.sku) ? provisioned : standard)[id] = 0;
      if (IsProvisioned(facts->second.sku)) {
        shape.current_ptu += facts->second.capacity;
      }
    }
  }
  for (const auto& [id, tokens] : usage.deployment_tokens) {
    const DeploymentFacts& facts = index.deployments.at(id);
    if (facts.model == shape.model) {
      (IsProvisioned(facts.sku) ? provisioned : standard)[id] += tokens;
    }
  }
  shape.has_provisioned = !provisioned.empty();
  const std::string ptu = Largest(provisioned);
  const std::string std_id = Largest(standard);
  if (!ptu.empty()) {
    shape.ptu_type = std::string(DeploymentType(index.deployments.at(ptu).sku));
    shape.region = index.deployments.at(ptu).region;
  }
  if (!std_id.empty()) {
    shape.standard_type = std::string(DeploymentType(index.deployments.at(std_id).sku));
    if (shape.region.empty()) {
      shape.region = index.deployments.at(std_id).region;
    }
  }
  if (shape.ptu_type.empty()) {
    shape.ptu_type = shape.standard_type;  // no PTUs yet: buy the type the route runs on
  }
  if (shape.standard_type.empty()) {
    shape.standard_type = shape.ptu_type;
  }
  return shape;
}

void SetPercentiles(const TpmPercentiles& tpm, v1::RouteCapacity& out) {
  out.set_peak_tpm(tpm.peak);
  out.set_p50_tpm(tpm.p50);
  out.set_p95_tpm(tpm.p95);
  out.set_p99_tpm(tpm.p99);
  out.set_target_tpm(tpm.target);
}

absl::Status PlanRoute(const RouteUsage& usage, const RouteShape& shape, int64_t window_minutes,
                       const std::vector<PtuRates>& rates, double target_percentile,
                       v1::RouteCapacity& out) {
  out.set_model(shape.model);
  out.set_region(shape.region);
  out.set_deployment_type(shape.ptu_type);
  out.set_current_ptu(shape.current_ptu);
  std::vector<MinuteTokens> minutes;
  minutes.reserve(usage.minutes.size());
  for (const auto& [minute, tokens] : usage.minutes) {
    minutes.push_back(tokens);
  }
  const PtuRates* ptu_rates = FindRates(rates, shape.model, shape.ptu_type);
  if (ptu_rates == nullptr) {
    absl::StatusOr<TpmPercentiles> percentiles =
        WeightedPercentiles(minutes, window_minutes, 1.0, target_percentile);
    if (!percentiles.ok()) {
      return percentiles.status();
    }
    SetPercentiles(*percentiles, out);
    out.set_explanation(absl::StrCat("no rates for model '", shape.model, "' (", shape.ptu_type,
                                     ") in the rates file: tokens per minute are prompt + "
                                     "completion, and no PTU count is recommended"));
    return absl::OkStatus();
  }
  // PTUs at the provisioned type's rates; what spills, and all-Standard, at the prices of the
  // Standard type the route spills to.
  PtuRates merged = *ptu_rates;
  if (const PtuRates* standard = FindRates(rates, shape.model, shape.standard_type);
      standard != nullptr) {
    merged.input_per_1k_usd = standard->input_per_1k_usd;
    merged.output_per_1k_usd = standard->output_per_1k_usd;
  }
  absl::StatusOr<CapacityPlan> plan =
      PlanCapacity(minutes, window_minutes, merged, target_percentile);
  if (!plan.ok()) {
    return plan.status();
  }
  SetPercentiles(plan->tpm, out);
  out.set_recommended_ptu(static_cast<uint32_t>(plan->recommended_ptu));
  out.set_spill_share(plan->spill_share);
  out.set_current_spill_share(
      SpillShareAt(minutes, merged.output_weight, shape.current_ptu * merged.input_tpm_per_ptu));
  v1::MonthlyCost& cost = *out.mutable_monthly_cost();
  cost.set_ptu_usd(plan->monthly_ptu_usd);
  cost.set_standard_spill_usd(plan->monthly_spill_usd);
  cost.set_ptu_plus_standard_usd(plan->monthly_total_usd);
  cost.set_all_standard_usd(plan->monthly_all_standard_usd);
  out.set_explanation(absl::StrCat(plan->explanation, "; Standard prices: ", shape.model, " ",
                                   shape.standard_type));
  return absl::OkStatus();
}

void FillObserved(const RouteUsage& usage, const RouteShape& shape, v1::RouteCapacity& out) {
  v1::CapacityObserved& observed = *out.mutable_observed();
  observed.set_requests(usage.requests);
  observed.set_prompt_tokens(usage.prompt);
  observed.set_completion_tokens(usage.completion);
  observed.set_throttled(usage.throttled);
  const uint64_t tokens = usage.prompt + usage.completion;
  observed.set_ptu_share(tokens == 0 ? 0
                                     : static_cast<double>(usage.provisioned_tokens) /
                                           static_cast<double>(tokens));
  observed.set_active_minutes(static_cast<uint32_t>(usage.minutes.size()));
  observed.set_spill_minutes(
      shape.has_provisioned ? static_cast<uint32_t>(usage.standard_minutes.size()) : 0);
}

bool RouteSelected(const std::string& filter, const std::string& stamp, const std::string& name) {
  return filter.empty() || filter == name || filter == absl::StrCat(stamp, "/", name);
}

}  // namespace

v1::UsageQuery CapacityUsageQuery(const CapacityOptions& options) {
  v1::UsageQuery query;
  query.set_since_unix_ms(absl::ToUnixMillis(options.since));
  query.set_until_unix_ms(absl::ToUnixMillis(options.until));
  for (const char* dimension : {"route", "deployment", "minute"}) {
    query.add_group_by(dimension);
  }
  return query;
}

absl::StatusOr<v1::CapacityReport> BuildCapacityReport(const v1::UsageQueryResponse& usage,
                                                       const v1::Topology& topology,
                                                       const std::vector<PtuRates>& rates,
                                                       const CapacityOptions& options) {
  const int64_t since_ms = absl::ToUnixMillis(options.since);
  const int64_t until_ms = absl::ToUnixMillis(options.until);
  const int64_t window_minutes = (until_ms - since_ms) / 60000;
  const TopologyIndex index = IndexTopology(topology);
  std::map<std::string, RouteUsage> routes;  // STAMP/NAME, in name order
  uint64_t unknown_rows = 0;
  std::set<std::string> unknown_deployments;
  for (const v1::UsageRow& row : usage.rows()) {
    const auto key = [&](const char* dimension) -> std::string {
      const auto it = row.key().find(dimension);
      return it == row.key().end() ? "" : it->second;
    };
    int64_t minute = 0;
    if (!absl::SimpleAtoi(key("minute"), &minute) || minute < since_ms || minute >= until_ms) {
      return absl::InternalError(absl::StrCat("the control plane answered a usage row for minute '",
                                              key("minute"), "', outside the window asked for"));
    }
    const std::string deployment = key("deployment");
    const auto facts = index.deployments.find(deployment);
    if (facts == index.deployments.end()) {
      ++unknown_rows;
      if (!deployment.empty()) {
        unknown_deployments.insert(deployment);
      }
      continue;
    }
    const std::string route = key("route");
    if (!RouteSelected(options.route, facts->second.stamp, route)) {
      continue;
    }
    RouteUsage& sums = routes[absl::StrCat(facts->second.stamp, "/", route)];
    MinuteTokens& tokens = sums.minutes[minute];
    tokens.prompt += static_cast<int64_t>(row.prompt_tokens());
    tokens.completion += static_cast<int64_t>(row.completion_tokens());
    const uint64_t served = row.prompt_tokens() + row.completion_tokens();
    sums.deployment_tokens[deployment] += served;
    if (IsProvisioned(facts->second.sku)) {
      sums.provisioned_tokens += served;
    } else if (served > 0) {
      sums.standard_minutes.insert(minute);
    }
    sums.requests += row.requests();
    sums.prompt += row.prompt_tokens();
    sums.completion += row.completion_tokens();
    sums.throttled += row.throttled_requests();
  }

  v1::CapacityReport report;
  report.set_since_unix_ms(since_ms);
  report.set_until_unix_ms(until_ms);
  report.set_window_minutes(static_cast<uint32_t>(window_minutes));
  report.set_target_percentile(options.target_percentile);
  for (const auto& [id, sums] : routes) {
    const auto configured = index.route_deployments.find(id);
    const RouteShape shape = ShapeOf(
        sums,
        configured == index.route_deployments.end() ? std::set<std::string>{} : configured->second,
        index);
    v1::RouteCapacity& out = *report.add_routes();
    out.set_route(id);
    if (absl::Status planned =
            PlanRoute(sums, shape, window_minutes, rates, options.target_percentile, out);
        !planned.ok()) {
      return planned;
    }
    FillObserved(sums, shape, out);
  }
  if (unknown_rows > 0) {
    report.add_notes(absl::StrCat(unknown_rows,
                                  " usage rows of deployments no longer in the "
                                  "topology are left out (",
                                  unknown_deployments.size(), " deployments)"));
  }
  if (routes.empty()) {
    report.add_notes(options.route.empty() ? std::string("no usage recorded in the window")
                                           : absl::StrCat("no usage recorded for route '",
                                                          options.route, "' in the window"));
  }
  return report;
}

}  // namespace spillway::cli
