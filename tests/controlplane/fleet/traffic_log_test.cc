// The control plane's memory of agents' traffic slots: a window can be read back, old slots
// and quiet agents age out, and the bounds hold whatever agents send.
#include "controlplane/fleet/traffic_log.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

v1::TrafficReport Report(int64_t first_ms, int slots, int64_t step_ms = 100) {
  v1::TrafficReport report;
  for (int i = 0; i < slots; ++i) {
    v1::TrafficSlot* slot = report.add_slots();
    slot->set_slot_unix_ms(first_ms + i * step_ms);
    slot->set_backend_id("a/gpt-4o");
    slot->set_requests(1);
  }
  return report;
}

TEST(TrafficLogTest, ReadsBackAWindowAndAgesOutOldSlotsAndQuietAgents) {
  TrafficLog log;
  log.Record("one", "eastus2", Report(kNow - 1000, 10), kNow);
  log.Record("two", "westus", Report(kNow - 500, 5), kNow);
  std::vector<AgentTraffic> window = log.Between(kNow - 1000, kNow - 500);
  ASSERT_EQ(window.size(), 2u);
  for (const AgentTraffic& agent : window) {
    EXPECT_EQ(agent.slots.size(), agent.agent_id == "one" ? 5u : 0u) << agent.agent_id;
  }
  // Much later, "one" reports again: its old slots age out, and "two", quiet since, is gone.
  const int64_t later = kNow + TrafficLog::kKeepMs + 60'000;
  log.Record("one", "eastus2", Report(later - 100, 1), later);
  window = log.Between(0, later + 1);
  ASSERT_EQ(window.size(), 1u);
  EXPECT_EQ(window[0].agent_id, "one");
  EXPECT_EQ(window[0].slots.size(), 1u);
}

TEST(TrafficLogTest, SlotsFromTheFarFutureAndPastThePerAgentBoundAreCountedNotKept) {
  TrafficLog log;
  log.Record("one", "eastus2", Report(kNow + TrafficLog::kKeepMs + 1000, 3), kNow);
  std::vector<AgentTraffic> window = log.Between(0, INT64_MAX);
  ASSERT_EQ(window.size(), 1u);
  EXPECT_TRUE(window[0].slots.empty());
  EXPECT_EQ(window[0].dropped, 3u);

  const int over = 7;
  log.Record("one", "eastus2",
             Report(kNow - 60'000, static_cast<int>(TrafficLog::kMaxSlotsPerAgent) + over, 1),
             kNow);
  window = log.Between(0, INT64_MAX);
  EXPECT_EQ(window[0].slots.size(), TrafficLog::kMaxSlotsPerAgent);
  EXPECT_EQ(window[0].dropped, 3u + over);
}

}  // namespace
}  // namespace spillway
