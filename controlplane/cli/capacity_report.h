// `spillwayctl capacity` (issue 21): joins per-minute usage by route and deployment with the
// topology's models, SKUs and regions, and sizes PTUs per route with capacity_plan.h.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/cli/capacity_plan.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/capacity.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway::cli {

struct CapacityOptions {
  // The window, on whole minutes (CapacityWindow rounds a command line's bounds).
  absl::Time since;
  absl::Time until;
  double target_percentile = 95;
  std::string route;  // empty: every route; else NAME (any stamp) or STAMP/NAME
};

// The usage query the report needs: per route, deployment and minute over the window.
v1::UsageQuery CapacityUsageQuery(const CapacityOptions& options);

// `usage` answers CapacityUsageQuery. Routes are keyed STAMP/NAME, the stamp being that of
// the region of the deployment that served; usage of deployments no longer in the topology
// is left out and counted in a note. Routes whose model has no rates row get percentiles
// (output tokens weighted 1) and no recommendation, and the explanation says so.
absl::StatusOr<v1::CapacityReport> BuildCapacityReport(const v1::UsageQueryResponse& usage,
                                                       const v1::Topology& topology,
                                                       const std::vector<PtuRates>& rates,
                                                       const CapacityOptions& options);

}  // namespace spillway::cli
