// A large, valid fleet topology generated in code for the control-plane benchmark: stamps,
// regions, instances, PTU and Standard deployments, pools, routes and tenants with keys.
#pragma once

#include <string>
#include <vector>

#include "spillway/v1/topology.pb.h"

namespace spillway::bench {

struct FleetShape {
  int stamps = 3;
  int regions = 20;
  int instances_per_region = 5;  // the first two of each region hold PTU deployments
  int deployments = 1000;
  int tenants = 10000;
};

// Deployments go round-robin over regions, then instances, then models, so every region
// serves every model on PTU and Standard capacity as soon as there are enough of them.
// Per stamp and model: a PTU pool, a Standard pool, a failover route and a 90/10 canary;
// per region and model: a local-only route over that region's pools. Tenant t lives in
// stamp t % stamps with one or two keys (hex SHA-256 of "bench-key-<t>-<k>").
v1::Topology GenerateFleetTopology(const FleetShape& shape);

// The region names of GenerateFleetTopology(shape), in order.
std::vector<std::string> FleetRegions(const FleetShape& shape);

}  // namespace spillway::bench
