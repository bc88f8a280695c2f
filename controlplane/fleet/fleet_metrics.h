// The control plane's Prometheus metrics: counters the services bump as things happen, and the
// text exposition of them with a snapshot of the fleet (docs/operations.md, "Metrics").
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace spillway {

// What the fleet looks like at one instant, copied under the fleet's lock so rendering runs
// without it.
struct FleetSnapshot {
  struct Agent {
    std::string agent_id;
    std::string region;
    uint64_t acked_version = 0;  // the version the agent last acknowledged (or said hello with)
  };
  uint64_t version = 0;  // the current topology version
  std::vector<Agent> agents;
  // Every region of the topology (sorted), so a region without agents reads 0, not nothing.
  std::vector<std::string> regions;
  // Live fleet health entries by state name (throttled, unhealthy, half_open).
  std::vector<std::pair<std::string, uint64_t>> health_by_state;
  struct Drain {
    std::string scope;  // region, instance, deployment
    std::string name;
    std::string region;  // where the drained part lives
  };
  std::vector<Drain> drains;
  bool drill_running = false;  // a drill has a region out (set by the caller: DrillRunner)
};

// How an apply, create or delete ended.
enum class ApplyResult { kChanged, kUnchanged, kDryRun, kFailed };

// Lock-free counters; one instance lives in the Fleet for the process's life.
class FleetCounters {
 public:
  // Upper bounds of the apply-duration histogram, seconds (+Inf is implicit).
  static constexpr std::array<double, 10> kApplyBucketsSeconds = {0.005, 0.01, 0.025, 0.05, 0.1,
                                                                  0.25,  0.5,  1,     2.5,  10};

  void RecordApply(ApplyResult result, absl::Duration took);
  void RecordNack() { nacks_.fetch_add(1, std::memory_order_relaxed); }
  // A usage batch came in: stored (with `rows` aggregates), a replay already stored, or one
  // the store failed to take (the agent sends it again).
  enum class UsageOutcome { kStored, kDuplicate, kFailed };
  void RecordUsageBatch(UsageOutcome outcome, uint64_t rows);

 private:
  friend std::string RenderFleetMetrics(const FleetSnapshot& snapshot,
                                        const FleetCounters& counters);
  static constexpr int kApplyResults = 4;
  static constexpr int kUsageOutcomes = 3;
  std::array<std::atomic<uint64_t>, kApplyResults> applies_{};
  std::array<std::atomic<uint64_t>, kApplyBucketsSeconds.size() + 1> apply_buckets_{};  // +Inf
  std::atomic<uint64_t> apply_micros_sum_{0};
  std::atomic<uint64_t> nacks_{0};
  std::array<std::atomic<uint64_t>, kUsageOutcomes> usage_batches_{};
  std::atomic<uint64_t> usage_rows_{0};
};

// The Prometheus text exposition (format 0.0.4) of the fleet: every family with HELP and TYPE,
// names prefixed spillway_cp_, base units.
std::string RenderFleetMetrics(const FleetSnapshot& snapshot, const FleetCounters& counters);

}  // namespace spillway
