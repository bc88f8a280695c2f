// See traffic_log.h.
#include "controlplane/fleet/traffic_log.h"

namespace spillway {

void TrafficLog::Record(const std::string& agent_id, const std::string& region,
                        const v1::TrafficReport& report, int64_t now_unix_ms) {
  absl::MutexLock lock(&mu_);
  if (now_unix_ms - swept_at_ms_ > 10'000) {
    // An agent that stopped reporting (gone, or idle) ages out here, not in its own reports.
    swept_at_ms_ = now_unix_ms;
    absl::erase_if(agents_, [&](auto& entry) {
      const std::deque<v1::TrafficSlot>& slots = entry.second.slots;
      const bool gone = entry.first != agent_id &&
                        (slots.empty() || slots.back().slot_unix_ms() < now_unix_ms - kKeepMs);
      if (gone) {
        slots_ -= slots.size();
      }
      return gone;
    });
  }
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) {
    if (agents_.size() >= kMaxAgents) {
      return;  // more agents than any fleet runs: someone is inventing ids
    }
    it = agents_.try_emplace(agent_id).first;
  }
  Agent& agent = it->second;
  agent.region = region;
  agent.dropped += report.dropped();
  for (const v1::TrafficSlot& slot : report.slots()) {
    // A slot from the far future would never age out.
    if (slot.slot_unix_ms() > now_unix_ms + kKeepMs || slot.backend_id().size() > 1024 ||
        slots_ >= kMaxSlots) {
      ++agent.dropped;
      continue;
    }
    agent.slots.push_back(slot);
    ++slots_;
  }
  while (!agent.slots.empty() && (agent.slots.size() > kMaxSlotsPerAgent ||
                                  agent.slots.front().slot_unix_ms() < now_unix_ms - kKeepMs)) {
    agent.dropped += agent.slots.size() > kMaxSlotsPerAgent ? 1 : 0;
    agent.slots.pop_front();
    --slots_;
  }
}

std::vector<AgentTraffic> TrafficLog::Between(int64_t from_ms, int64_t to_ms) const {
  std::vector<AgentTraffic> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [agent_id, agent] : agents_) {
    AgentTraffic traffic{agent_id, agent.region, {}, agent.dropped};
    for (const v1::TrafficSlot& slot : agent.slots) {
      if (slot.slot_unix_ms() >= from_ms && slot.slot_unix_ms() < to_ms) {
        traffic.slots.push_back(slot);
      }
    }
    out.push_back(std::move(traffic));
  }
  return out;
}

}  // namespace spillway
