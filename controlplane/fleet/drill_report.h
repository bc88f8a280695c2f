// What a drill tells the operator, computed from the topology and the agents' traffic slots:
// when each agent's traffic left the drained region and came back, where it went meanwhile,
// and what clients saw. Also the dry run's plan: from the compiled tables, where each route's
// new requests go from each region before and during the drill.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/topology_compile.h"
#include "controlplane/fleet/traffic_log.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// How far before the drain the report looks, to say who was sending to the region.
inline constexpr int64_t kDrillLookBackMs = 10'000;

struct DrillWindow {
  std::string region;
  int64_t drained_ms = 0;
  int64_t restored_ms = 0;  // the undrain's commit
};

// `traffic` holds slots from drained_ms - kDrillLookBackMs on.
v1::DrillReport BuildDrillReport(const v1::Topology& topology, const DrillWindow& window,
                                 const std::vector<AgentTraffic>& traffic);

// For every region of the drained region's stamp and every route of that stamp: the backends
// a new request tries first, with the topology as it is and with `region` drained.
absl::StatusOr<std::vector<v1::DrillMove>> PlanDrill(const v1::Topology& topology,
                                                     const std::string& region,
                                                     const CompileOptions& options);

}  // namespace spillway
