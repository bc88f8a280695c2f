// Runs drills (spillwayctl drill): drains a region, restores it when the duration is up, then
// waits for the agents' last traffic reports and stores the report. The control plane keeps
// the clock, not the operator's terminal: a drill whose caller went away still ends, and one
// a crash interrupted is restored when the control plane starts again.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/periodic_thread.h"
#include "common/topology_compile.h"
#include "controlplane/fleet/fleet.h"
#include "controlplane/store/store.h"
#include "spillway/v1/admin.pb.h"

namespace spillway {

class DrillRunner {
 public:
  // A drill rehearses an outage; a longer one is a drain (and needs no report).
  static constexpr uint32_t kMaxDrillSeconds = 600;

  // `settle`: how long after the restore the report waits for agents' traffic reports (they
  // come every half second) and for traffic to come back.
  DrillRunner(TopologyStore& store, Fleet& fleet, CompileOptions options,
              std::chrono::milliseconds settle = std::chrono::milliseconds(3000));
  ~DrillRunner();

  // Picks up drills left unfinished and starts the clock.
  absl::Status Start();
  void Stop();

  // One drill at a time; the region must exist and not be drained already. A dry run
  // changes nothing and returns the plan.
  absl::StatusOr<v1::Drill> Begin(const v1::DrillRequest& request);
  absl::StatusOr<v1::Drill> Get(uint64_t id);
  absl::StatusOr<std::vector<v1::Drill>> List();
  // Whether a drill has a region out right now (for /metrics and alerts).
  bool draining() const;

 private:
  void Tick();
  void Restore(v1::Drill& drill) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Finish(v1::Drill& drill) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Save(const v1::Drill& drill) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TopologyStore& store_;
  Fleet& fleet_;
  const CompileOptions options_;
  const std::chrono::milliseconds settle_;
  mutable std::mutex mu_;
  std::vector<v1::Drill> active_ ABSL_GUARDED_BY(mu_);  // not done yet
  std::unique_ptr<PeriodicThread> clock_;
};

}  // namespace spillway
