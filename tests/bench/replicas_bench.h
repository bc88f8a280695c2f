// The control-plane benchmark's replicas scenario (issue 20): spillway-cp replicas sharing one
// PostgreSQL database, 1,000 simulated agents spread over them, applies and reconnect storms.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "spillway/v1/topology.pb.h"
#include "tests/bench/controlplane_bench_util.h"

namespace spillway::bench {

struct ReplicaOptions {
  std::string cp_binary;
  int replicas = 3;
  int agents = 1000;
  int rounds = 3;  // applies, as the single control plane's scenario does them
  int storms = 3;
  bool storm_random_replica = false;  // reconnect to any replica rather than the last one
  bool storm_forget_tables = false;   // reconnect saying "no table", as new agents would
  std::string logs_dir;               // if set, each replica's output is written there
};

// A figure without a limit, for the report beside the targets.
struct Info {
  std::string name;
  double value = 0;
  std::string unit;
  std::string detail;
};

struct ReplicaReport {
  std::vector<Target> targets;
  std::vector<Info> info;
  boost::json::object json;
};

// The name every line of the scenario starts with, e.g. "controlplane.replicas3". Inline:
// builds without PostgreSQL have no replicas_bench.cc, yet name the scenario they skip.
inline std::string ReplicaScenarioName(const ReplicaOptions& options) {
  return absl::StrCat("controlplane.replicas", options.replicas);
}

// Starts PostgreSQL and the replicas, connects the agents, measures, prints one line per
// round and storm, and stops everything again. NotFound when PostgreSQL is not installed:
// the caller reports a SKIP, not a failure.
absl::StatusOr<ReplicaReport> RunReplicaScenario(const ReplicaOptions& options,
                                                 v1::Topology topology,
                                                 const std::vector<std::string>& regions,
                                                 SignalCleanup& cleanup);

}  // namespace spillway::bench
