// The drill report and plan from known traffic slots and topologies: what left when, where it
// went, what clients saw; and the dry run's before/during choices per region and route.
#include "controlplane/fleet/drill_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/topology_yaml.h"

namespace spillway {
namespace {

constexpr char kTopology[] = R"(
stamps: [ { name: us } ]
regions: [ { name: east, stamp: us }, { name: west, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: east, subscription: s, endpoint: "https://a.example", auth: { api_key_env: K } }
  - { name: b, region: west, subscription: s, endpoint: "https://b.example", auth: { api_key_env: K } }
deployments:
  - { instance: a, name: ptu, model: gpt-4o, version: "1", sku: ProvisionedManaged, capacity: 100 }
  - { instance: b, name: std, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
pools:
  - { name: p, members: [ { deployment: a/ptu }, { deployment: b/std } ] }
  - { name: only-a, members: [ { deployment: a/ptu } ] }
routes:
  - { name: chat, stamp: us, locality: prefer-local, tiers: [ p ] }
  - { name: pinned, stamp: us, locality: local-only, tiers: [ only-a ] }
)";

v1::Topology Topology() {
  absl::StatusOr<v1::Topology> topology = ParseTopologyYaml(kTopology, "t.yaml");
  EXPECT_TRUE(topology.ok()) << topology.status();
  return *topology;
}

v1::TrafficSlot Slot(int64_t at, const std::string& backend, uint32_t status, uint64_t requests,
                     v1::Priority priority = v1::PRIORITY_STANDARD, uint64_t retried = 0) {
  v1::TrafficSlot slot;
  slot.set_slot_unix_ms(at);
  slot.set_backend_id(backend);
  slot.set_status(status);
  slot.set_requests(requests);
  slot.set_priority(priority);
  slot.set_retried(retried);
  return slot;
}

TEST(DrillReport, SaysWhenEachAgentsTrafficLeftAndCameBackAndWhereItWent) {
  const DrillWindow window{"east", 100'000, 110'000};
  AgentTraffic east{"agent-e", "east", {}, 0};
  east.slots = {Slot(95'000, "a/ptu", 200, 7),    // before: to the region
                Slot(100'300, "a/ptu", 200, 2),   // a stream finishing after the drain
                Slot(100'500, "b/std", 200, 10),  // moved
                Slot(104'000, "b/std", 429, 3, v1::PRIORITY_BATCH),
                Slot(105'000, "", 503, 1, v1::PRIORITY_STANDARD, 1),
                Slot(110'400, "b/std", 200, 1),   // after the restore, elsewhere
                Slot(111'200, "a/ptu", 200, 4)};  // back
  AgentTraffic west{"agent-w", "west", {Slot(102'000, "b/std", 200, 5)}, 2};
  const v1::DrillReport report = BuildDrillReport(Topology(), window, {west, east});

  ASSERT_EQ(report.agents_size(), 2);
  const v1::DrillAgentTraffic& e = report.agents(0);  // sorted by region
  EXPECT_EQ(e.agent_id(), "agent-e");
  EXPECT_EQ(e.to_region_before(), 7u);
  EXPECT_EQ(e.to_region_during(), 2u);
  EXPECT_EQ(e.left_after_ms(), 400);  // the end of the 100 300 slot
  EXPECT_EQ(e.back_after_ms(), 1200);
  EXPECT_EQ(e.requests_during(), 16u);
  const v1::DrillAgentTraffic& w = report.agents(1);
  EXPECT_EQ(w.left_after_ms(), -1) << "west never sent to east";
  EXPECT_EQ(w.back_after_ms(), -1);

  EXPECT_EQ(report.requests_during(), 21u);
  ASSERT_EQ(report.during_size(), 2);
  EXPECT_EQ(report.during(0).backend_id(), "b/std");
  EXPECT_EQ(report.during(0).requests(), 18u);
  EXPECT_EQ(report.during(0).region(), "west");
  EXPECT_EQ(report.during(0).tier(), "standard");
  EXPECT_EQ(report.during(1).backend_id(), "a/ptu");
  EXPECT_EQ(report.during(1).tier(), "provisioned");
  EXPECT_EQ(report.client_errors().at(429), 3u);
  EXPECT_EQ(report.client_errors().at(503), 1u);
  EXPECT_EQ(report.client_errors().size(), 2u);
  EXPECT_EQ(report.shed_by_priority().at("batch"), 3u);
  EXPECT_EQ(report.retried_by_priority().at("standard"), 1u);
  EXPECT_EQ(report.slots_dropped(), 2u);
}

TEST(DrillReport, AnAgentThatStoppedAtOnceLeftAfterZero) {
  const DrillWindow window{"east", 100'000, 110'000};
  AgentTraffic east{
      "e", "east", {Slot(99'000, "a/ptu", 200, 3), Slot(101'000, "b/std", 200, 3)}, 0};
  const v1::DrillReport report = BuildDrillReport(Topology(), window, {east});
  ASSERT_EQ(report.agents_size(), 1);
  EXPECT_EQ(report.agents(0).left_after_ms(), 0);
  EXPECT_EQ(report.agents(0).back_after_ms(), -1);
}

TEST(DrillPlan, SaysWhereEachRoutesNewRequestsGoFromEachRegion) {
  absl::StatusOr<std::vector<v1::DrillMove>> plan = PlanDrill(Topology(), "east", {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 4u);  // two regions x two routes
  auto find = [&](const std::string& region, const std::string& route) {
    for (const v1::DrillMove& move : *plan) {
      if (move.agent_region() == region && move.route() == route) {
        return move;
      }
    }
    ADD_FAILURE() << region << " " << route;
    return v1::DrillMove();
  };
  v1::DrillMove chat_east = find("east", "chat");
  EXPECT_THAT(chat_east.before(), ::testing::ElementsAre("a/ptu"));
  EXPECT_THAT(chat_east.during(), ::testing::ElementsAre("b/std"));
  v1::DrillMove chat_west = find("west", "chat");
  EXPECT_THAT(chat_west.before(), ::testing::ElementsAre("b/std"));
  EXPECT_THAT(chat_west.during(), ::testing::ElementsAre("b/std"));
  // local-only with its only backend drained: nothing left, the route answers 503.
  v1::DrillMove pinned_east = find("east", "pinned");
  EXPECT_THAT(pinned_east.before(), ::testing::ElementsAre("a/ptu"));
  EXPECT_TRUE(pinned_east.during().empty());

  EXPECT_EQ(PlanDrill(Topology(), "mars", {}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace spillway
