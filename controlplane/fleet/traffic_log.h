// The last minutes of what each agent served, in the 100 ms slots agents report: what a
// drill's report is computed from. Bounded per agent by age and by count; kept in memory only
// (a drill running across a control-plane restart reports from what arrived since).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

struct AgentTraffic {
  std::string agent_id;
  std::string region;
  std::vector<v1::TrafficSlot> slots;  // those asked for, in arrival order
  uint64_t dropped = 0;                // slots the agent or this log could not keep
};

class TrafficLog {
 public:
  // Long enough for the longest drill (kMaxDrillSeconds) and the margins around it.
  static constexpr int64_t kKeepMs = 12 * 60 * 1000;
  static constexpr std::size_t kMaxSlotsPerAgent = 50000;
  static constexpr std::size_t kMaxAgents = 10000;
  // All agents together (~100 bytes a slot): a large fleet reports less detail, not more memory.
  static constexpr std::size_t kMaxSlots = 2'000'000;

  void Record(const std::string& agent_id, const std::string& region,
              const v1::TrafficReport& report, int64_t now_unix_ms);
  // Every agent's slots that start in [from_ms, to_ms).
  std::vector<AgentTraffic> Between(int64_t from_ms, int64_t to_ms) const;

 private:
  struct Agent {
    std::string region;
    std::deque<v1::TrafficSlot> slots;
    uint64_t dropped = 0;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Agent> agents_ ABSL_GUARDED_BY(mu_);
  std::size_t slots_ ABSL_GUARDED_BY(mu_) = 0;    // across agents
  int64_t swept_at_ms_ ABSL_GUARDED_BY(mu_) = 0;  // agents gone quiet are forgotten now and then
};

}  // namespace spillway
