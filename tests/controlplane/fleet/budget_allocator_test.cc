// The control plane's split of tenants' limits among agents: exact sums, floors, demand
// proportions, hysteresis, and reassignment when agents come and go.
#include "controlplane/fleet/budget_allocator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <numeric>

namespace spillway {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Rebalances happen on reports, seconds apart.
struct Clock {
  std::chrono::steady_clock::time_point now =
      std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  std::chrono::steady_clock::time_point Next() { return now += seconds(2); }
};

uint64_t Sum(const std::vector<uint64_t>& shares) {
  return std::accumulate(shares.begin(), shares.end(), uint64_t{0});
}

TEST(SplitLimit, SumsToTheLimitExactly) {
  for (uint64_t limit : {0ull, 1ull, 2ull, 7ull, 100ull, 6000ull, 999'999ull}) {
    for (const std::vector<double>& demand : std::vector<std::vector<double>>{
             {0}, {0, 0, 0}, {1, 1, 1}, {3, 1, 1}, {1e9, 0, 1e-9}, {5, 0, 0, 0, 0, 0, 7}}) {
      EXPECT_EQ(Sum(SplitLimit(limit, demand, 0.05)), limit) << limit;
    }
  }
  EXPECT_THAT(SplitLimit(6000, {}, 0.05), IsEmpty());
}

TEST(SplitLimit, FloorsThenDemand) {
  // 5 % of 6000 = 300 as three floors of 100; 5700 split 3:1:1.
  EXPECT_THAT(SplitLimit(6000, {3, 1, 1}, 0.05), ElementsAre(3520, 1240, 1240));
  // Nobody asked for anything: even.
  EXPECT_THAT(SplitLimit(6000, {0, 0, 0}, 0.05), ElementsAre(2000, 2000, 2000));
  // Only one asked: the others keep their floors.
  EXPECT_THAT(SplitLimit(6000, {0, 42, 0}, 0.05), ElementsAre(100, 5800, 100));
  EXPECT_THAT(SplitLimit(6000, {17}, 0.05), ElementsAre(6000));
  // Remainders go to the largest fractions: 10 / 3 = 3.33 each, the first gets the extra.
  EXPECT_THAT(SplitLimit(10, {1, 1, 1}, 0.05), ElementsAre(4, 3, 3));
}

v1::Topology TwoStamps() {
  v1::Topology topology;
  auto region = [&](const char* name, const char* stamp) {
    v1::Region* r = topology.add_regions();
    r->set_name(name);
    r->set_stamp(stamp);
  };
  region("eastus2", "us");
  region("westus3", "us");
  region("swedencentral", "eu");
  auto tenant = [&](const char* name, const char* stamp, uint64_t tpm, uint64_t rpm) {
    v1::Tenant* t = topology.add_tenants();
    t->set_name(name);
    t->set_stamp(stamp);
    t->mutable_limits()->set_tokens_per_minute(tpm);
    t->mutable_limits()->set_requests_per_minute(rpm);
  };
  tenant("app", "us", 6000, 60);
  tenant("unlimited", "us", 0, 0);
  tenant("eu-app", "eu", 1000, 0);
  return topology;
}

v1::DemandReport Demand(const char* tenant, uint64_t tokens, uint64_t requests,
                        int64_t window_ms = 2000) {
  v1::DemandReport report;
  report.set_window_ms(window_ms);
  v1::TenantDemand* demand = report.add_tenants();
  demand->set_tenant(tenant);
  demand->set_tokens(tokens);
  demand->set_requests(requests);
  return report;
}

// agent -> tenant -> (tpm, rpm) from one Rebalance.
using Split = std::map<uint64_t, std::map<std::string, std::pair<uint64_t, uint64_t>>>;

Split ToSplit(const std::vector<std::pair<uint64_t, v1::TenantBudgets>>& pushed,
              uint64_t* epoch = nullptr) {
  Split split;
  for (const auto& [agent, budgets] : pushed) {
    if (epoch != nullptr) {
      *epoch = budgets.epoch();
    }
    for (const v1::TenantBudget& b : budgets.budgets()) {
      split[agent][b.tenant()] = {b.tokens_per_minute(), b.requests_per_minute()};
    }
  }
  return split;
}

TEST(BudgetAllocator, ANewAgentGetsItsShareAtOnceAndTheOthersShrink) {
  BudgetAllocator allocator;
  Clock clock;
  allocator.SetTopology(TwoStamps());
  allocator.AddAgent(1, "eastus2");
  uint64_t epoch = 0;
  Split split = ToSplit(allocator.Rebalance(clock.Next()), &epoch);
  EXPECT_EQ(split[1]["app"], std::make_pair(uint64_t{6000}, uint64_t{60}));
  EXPECT_FALSE(split[1].contains("unlimited"));
  EXPECT_FALSE(split[1].contains("eu-app")) << "another stamp's tenant";
  const uint64_t first_epoch = epoch;

  allocator.AddAgent(2, "westus3");
  allocator.AddAgent(3, "swedencentral");
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed = allocator.Rebalance(clock.Next());
  split = ToSplit(pushed, &epoch);
  EXPECT_GT(epoch, first_epoch);
  EXPECT_EQ(split[1]["app"], std::make_pair(uint64_t{3000}, uint64_t{30}));
  EXPECT_EQ(split[2]["app"], std::make_pair(uint64_t{3000}, uint64_t{30}));
  EXPECT_EQ(split[3]["eu-app"], std::make_pair(uint64_t{1000}, uint64_t{0}));
  EXPECT_TRUE(allocator.Rebalance(clock.Next()).empty()) << "nothing changed: nothing to send";
}

TEST(BudgetAllocator, SplitsByDemandAndSumsToTheLimitAtEveryEpoch) {
  BudgetAllocator allocator;
  Clock clock;
  allocator.SetTopology(TwoStamps());
  for (uint64_t agent : {1, 2, 3}) {
    allocator.AddAgent(agent, "eastus2");
  }
  (void)allocator.Rebalance(clock.Next());
  // Agent 1 asks three times as much as the others, for a while.
  Split split;
  for (int round = 0; round < 30; ++round) {
    allocator.ReportDemand(1, Demand("app", 600, 6));
    allocator.ReportDemand(2, Demand("app", 200, 2));
    allocator.ReportDemand(3, Demand("app", 200, 2));
    std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed = allocator.Rebalance(clock.Next());
    if (pushed.empty()) {
      continue;
    }
    ASSERT_EQ(pushed.size(), 3u) << "every agent of the stamp moves to the new epoch";
    for (const auto& [agent, budgets] : pushed) {
      EXPECT_EQ(budgets.epoch(), pushed[0].second.epoch());
    }
    split = ToSplit(pushed);
    EXPECT_EQ(split[1]["app"].first + split[2]["app"].first + split[3]["app"].first, 6000u);
    EXPECT_EQ(split[1]["app"].second + split[2]["app"].second + split[3]["app"].second, 60u);
  }
  // Converged to floors of 100 plus 5700 split 3:1:1, within the hysteresis of 2 %.
  EXPECT_NEAR(split[1]["app"].first, 3520, 120);
  EXPECT_NEAR(split[2]["app"].first, 1240, 120);
  EXPECT_NEAR(split[3]["app"].first, 1240, 120);
  EXPECT_NEAR(split[1]["app"].second, 35, 2);
  EXPECT_NEAR(allocator.Demand(1, "app").first, 600 * 30, 200) << "tokens per minute";
}

// Demand that stops decays; an agent holds demand only for the tenants it served lately, so
// once a tenant's demand has decayed to next to nothing it is forgotten (exactly zero), and
// the split is even again.
TEST(BudgetAllocator, DemandThatStopsDecaysAndIsThenForgotten) {
  BudgetOptions options;
  options.smoothing = std::chrono::milliseconds(2000);
  BudgetAllocator allocator(options);
  Clock clock;
  allocator.SetTopology(TwoStamps());
  allocator.AddAgent(1, "eastus2");
  allocator.AddAgent(2, "eastus2");
  allocator.ReportDemand(1, Demand("app", 1000, 10));
  allocator.ReportDemand(1, Demand("eu-app", 1000, 10));  // another stamp's: not tracked
  EXPECT_EQ(allocator.Demand(1, "eu-app").first, 0);
  Split split = ToSplit(allocator.Rebalance(clock.Next()));
  EXPECT_GT(split[1]["app"].first, split[2]["app"].first);
  const double before = allocator.Demand(1, "app").first;
  EXPECT_GT(before, 0);
  v1::DemandReport nothing;  // a window in which the agent saw no demand at all
  nothing.set_window_ms(2000);
  allocator.ReportDemand(1, nothing);
  EXPECT_LT(allocator.Demand(1, "app").first, before * 0.5);
  for (int i = 0; i < 20 && allocator.Demand(1, "app").first > 0; ++i) {
    allocator.ReportDemand(1, nothing);
  }
  EXPECT_EQ(allocator.Demand(1, "app"), std::make_pair(0.0, 0.0));
  split = ToSplit(allocator.Rebalance(clock.Next()));
  EXPECT_EQ(split[1]["app"], split[2]["app"]) << "even again";
  EXPECT_EQ(split[1]["app"].first, 3000u);
}

TEST(BudgetAllocator, ADisconnectedAgentsShareIsReassigned) {
  BudgetAllocator allocator;
  Clock clock;
  allocator.SetTopology(TwoStamps());
  for (uint64_t agent : {1, 2, 3}) {
    allocator.AddAgent(agent, "eastus2");
  }
  allocator.ReportDemand(1, Demand("app", 100, 1));
  allocator.ReportDemand(2, Demand("app", 100, 1));
  (void)allocator.Rebalance(clock.Next());
  allocator.RemoveAgent(1);
  Split split = ToSplit(allocator.Rebalance(clock.Next()));
  EXPECT_FALSE(split.contains(1));
  EXPECT_EQ(split[2]["app"].first + split[3]["app"].first, 6000u);
  EXPECT_GT(split[2]["app"].first, split[3]["app"].first) << "2 asked, 3 did not";
  EXPECT_EQ(split[3]["app"].first, 150u) << "its floor: 5 % of 6000 over 2 agents";
}

TEST(BudgetAllocator, SmallMovesWaitAndChangedLimitsGoOutAtOnce) {
  BudgetAllocator allocator;
  Clock clock;
  allocator.SetTopology(TwoStamps());
  allocator.AddAgent(1, "eastus2");
  allocator.AddAgent(2, "eastus2");
  for (int round = 0; round < 30; ++round) {  // steady, equal demand
    allocator.ReportDemand(1, Demand("app", 1000, 10));
    allocator.ReportDemand(2, Demand("app", 1000, 10));
    (void)allocator.Rebalance(clock.Next());
  }
  allocator.ReportDemand(1, Demand("app", 1020, 10));
  allocator.ReportDemand(2, Demand("app", 980, 10));
  EXPECT_TRUE(allocator.Rebalance(clock.Next()).empty()) << "a move under 2 % of the limit";

  v1::Topology topology = TwoStamps();
  topology.mutable_tenants(0)->mutable_limits()->set_tokens_per_minute(12000);
  allocator.SetTopology(topology);
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed = allocator.Rebalance(clock.Next());
  ASSERT_EQ(pushed.size(), 2u);
  EXPECT_EQ(pushed[0].second.budgets(0).limit_tokens_per_minute(), 12000u);
  Split split = ToSplit(pushed);
  EXPECT_EQ(split[1]["app"].first + split[2]["app"].first, 12000u);
}

TEST(BudgetAllocator, DemandAndAgentsMoveASplitAtMostOncePerIntervalLimitsAtOnce) {
  BudgetAllocator allocator;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  allocator.SetTopology(TwoStamps());
  allocator.AddAgent(1, "eastus2");
  allocator.AddAgent(2, "eastus2");
  ASSERT_EQ(allocator.Rebalance(t0).size(), 2u) << "agents after a quiet interval: at once";
  allocator.ReportDemand(1, Demand("app", 5000, 50));
  EXPECT_TRUE(allocator.Rebalance(t0 + std::chrono::milliseconds(500)).empty());
  allocator.AddAgent(3, "eastus2");
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed =
      allocator.Rebalance(t0 + std::chrono::milliseconds(600));
  ASSERT_EQ(pushed.size(), 1u) << "an agent joining just after a push: its own share only";
  EXPECT_EQ(pushed[0].first, 3u);
  EXPECT_EQ(ToSplit(pushed)[3]["app"], std::make_pair(uint64_t{2000}, uint64_t{20}))
      << "provisional: the limit over the stamp's three agents";
  EXPECT_TRUE(allocator.Rebalance(t0 + std::chrono::milliseconds(700)).empty());
  pushed = allocator.Rebalance(t0 + std::chrono::milliseconds(1000));
  ASSERT_EQ(pushed.size(), 3u) << "then it and the demand go out together";
  Split split = ToSplit(pushed);
  EXPECT_EQ(split[1]["app"].first + split[2]["app"].first + split[3]["app"].first, 6000u);
  EXPECT_GT(split[1]["app"].first, split[2]["app"].first) << "1 asked";

  v1::Topology topology = TwoStamps();
  topology.mutable_tenants(0)->mutable_limits()->set_tokens_per_minute(3000);
  allocator.SetTopology(topology);
  pushed = allocator.Rebalance(t0 + std::chrono::milliseconds(1100));
  ASSERT_EQ(pushed.size(), 3u) << "a lowered limit does not wait";
  split = ToSplit(pushed);
  EXPECT_EQ(split[1]["app"].first + split[2]["app"].first + split[3]["app"].first, 3000u);
  allocator.RemoveAgent(3);
  EXPECT_TRUE(allocator.Rebalance(t0 + std::chrono::milliseconds(1200)).empty());
  pushed = allocator.Rebalance(t0 + std::chrono::milliseconds(2100));
  ASSERT_EQ(pushed.size(), 2u) << "a leaver's share is reassigned once the interval passed";
  split = ToSplit(pushed);
  EXPECT_EQ(split[1]["app"].first + split[2]["app"].first, 3000u);
}

// Weighing demand splits every tenant for every agent of the stamp, and agents report every
// few seconds each: demand is weighed at most once per interval, not on every report.
TEST(BudgetAllocator, DemandIsWeighedAtMostOncePerInterval) {
  BudgetAllocator allocator;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  allocator.SetTopology(TwoStamps());
  allocator.AddAgent(1, "eastus2");
  allocator.AddAgent(2, "eastus2");
  ASSERT_EQ(allocator.Rebalance(t0).size(), 2u);
  EXPECT_TRUE(allocator.Rebalance(t0 + seconds(5)).empty()) << "weighed: nothing moved";
  allocator.ReportDemand(1, Demand("app", 5000, 50));
  EXPECT_TRUE(allocator.Rebalance(t0 + std::chrono::milliseconds(5500)).empty())
      << "weighed half an interval ago";
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed =
      allocator.Rebalance(t0 + std::chrono::milliseconds(6000));
  ASSERT_EQ(pushed.size(), 2u) << "an interval later the demand moves the split";
  Split split = ToSplit(pushed);
  EXPECT_GT(split[1]["app"].first, split[2]["app"].first);
  EXPECT_EQ(split[1]["app"].first + split[2]["app"].first, 6000u);
}

TEST(BudgetAllocator, AReconnectStormCostsEachAgentAPushPerIntervalNotOnePerJoin) {
  // Every agent of a stamp reconnecting at once (a control-plane replica died): before, each
  // join re-split the stamp and sent every agent its shares, N(N+1)/2 messages in all.
  constexpr uint64_t kAgents = 200;
  BudgetAllocator allocator;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  allocator.SetTopology(TwoStamps());
  std::size_t messages = 0;
  for (uint64_t agent = 1; agent <= kAgents; ++agent) {
    allocator.AddAgent(agent, "eastus2");
    std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed =
        allocator.Rebalance(t0 + std::chrono::milliseconds(agent));
    ASSERT_EQ(pushed.size(), 1u) << "each join within the interval: the joiner's share alone";
    EXPECT_EQ(pushed[0].first, agent);
    messages += pushed.size();
  }
  EXPECT_EQ(messages, kAgents);
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed =
      allocator.Rebalance(t0 + std::chrono::milliseconds(1001));
  ASSERT_EQ(pushed.size(), kAgents);
  uint64_t tokens = 0;
  for (const auto& [agent, shares] : ToSplit(pushed)) {
    tokens += shares.at("app").first;
  }
  EXPECT_EQ(tokens, 6000u) << "the split in force sums to the limit";
  EXPECT_TRUE(allocator.Rebalance(t0 + std::chrono::milliseconds(2500)).empty());
  // 2N messages in all, where each join used to resend the whole stamp: N(N+1)/2.
}

TEST(BudgetAllocator, ReportsFromUnknownAgentsOrTenantsAreIgnored) {
  BudgetAllocator allocator;
  Clock clock;
  allocator.SetTopology(TwoStamps());
  allocator.ReportDemand(9, Demand("app", 1000, 10));
  allocator.AddAgent(1, "eastus2");
  allocator.ReportDemand(1, Demand("nobody", 1000, 10));
  allocator.ReportDemand(1, Demand("eu-app", 1000, 10));
  EXPECT_EQ(allocator.Demand(1, "nobody").first, 0);
  EXPECT_EQ(allocator.Demand(1, "eu-app").first, 0);
  allocator.AddAgent(2, "nowhere");  // a region the topology does not know
  Split split = ToSplit(allocator.Rebalance(clock.Next()));
  EXPECT_EQ(split[1]["app"].first, 6000u);
  EXPECT_TRUE(split[2].empty());
}

// Replicas sharing one database: each splits its part of the stamp's limits (by the agents
// every live replica serves there) among its own agents, so the shares of all replicas' agents
// sum to the limit; a changed part moves the split, and the stamp's limit stays what the
// agents are told.
TEST(BudgetAllocator, ReplicasSplitTheirPartsAndTogetherHoldTheLimit) {
  Clock clock;
  BudgetAllocator first;   // "a": serves agents 1 and 2 of stamp "us"
  BudgetAllocator second;  // "b": serves agent 3
  for (BudgetAllocator* replica : {&first, &second}) {
    replica->SetTopology(TwoStamps());
  }
  first.AddAgent(1, "eastus2");
  first.AddAgent(2, "westus3");
  second.AddAgent(3, "eastus2");
  EXPECT_EQ(first.AgentsPerRegion().at("eastus2"), 1);
  EXPECT_EQ(first.AgentsPerRegion().at("westus3"), 1);
  EXPECT_EQ(second.AgentsPerRegion().at("eastus2"), 1);
  // What each reads back from the database: every replica's rows, its own among them.
  const std::vector<PeerAgents> rows = {
      {"a", "eastus2", 1}, {"b", "eastus2", 1}, {"a", "westus3", 1}};
  first.SetPeers(rows, "a");
  second.SetPeers(rows, "b");
  const auto now = clock.Next();
  Split a = ToSplit(first.Rebalance(now));
  Split b = ToSplit(second.Rebalance(now));
  EXPECT_EQ(a[1]["app"].first + a[2]["app"].first + b[3]["app"].first, 6000u);
  EXPECT_EQ(b[3]["app"], std::make_pair(uint64_t{2000}, uint64_t{20}));
  // The same rows again: nothing changed, nothing to send.
  second.SetPeers(rows, "b");
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed = second.Rebalance(clock.Next());
  EXPECT_TRUE(pushed.empty()) << "nothing changed: nothing to send";

  // The second replica dies (its rows go stale); its part goes to the first.
  first.SetPeers({{"a", "eastus2", 1}, {"a", "westus3", 1}}, "a");
  pushed = first.Rebalance(clock.Next());
  ASSERT_EQ(pushed.size(), 2u);
  a = ToSplit(pushed);
  EXPECT_EQ(a[1]["app"].first + a[2]["app"].first, 6000u);
  for (const auto& [agent, budgets] : pushed) {
    for (const v1::TenantBudget& budget : budgets.budgets()) {
      if (budget.tenant() == "app") {
        EXPECT_EQ(budget.limit_tokens_per_minute(), 6000u);
      }
    }
  }
}

// Counts are kept by region, so the first topology (or one that creates a stamp) is split by
// the replicas' parts at once, and only once: with counts by stamp, a replica knew of no
// stamp before the topology, gave its own agents the whole limit, and split again a tick
// later.
TEST(BudgetAllocator, AFirstTopologyIsSplitByReplicaPartsAtOnce) {
  Clock clock;
  BudgetAllocator replica;  // "b", one agent in eastus2; "a" and "c" have two each in "us"
  replica.AddAgent(7, "eastus2");
  replica.SetPeers({{"a", "eastus2", 1},
                    {"a", "westus3", 1},
                    {"b", "eastus2", 1},
                    {"c", "westus3", 2},
                    {"c", "swedencentral", 5}},
                   "b");
  EXPECT_TRUE(ToSplit(replica.Rebalance(clock.Next()))[7].empty()) << "no topology, no tenants";
  replica.SetTopology(TwoStamps());
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed = replica.Rebalance(clock.Next());
  ASSERT_EQ(pushed.size(), 1u);
  // Five agents in "us": a 2, b 1, c 2 (c's five in "eu" do not count).
  EXPECT_EQ(ToSplit(pushed)[7]["app"], std::make_pair(uint64_t{1200}, uint64_t{12}));
  replica.SetPeers({{"a", "eastus2", 1}, {"a", "westus3", 1}, {"c", "westus3", 2}}, "b");
  EXPECT_TRUE(replica.Rebalance(clock.Next()).empty()) << "the parts did not move";
  // A new topology moves westus3 to "eu": the parts follow it without new counts.
  v1::Topology moved = TwoStamps();
  moved.mutable_regions(1)->set_stamp("eu");
  replica.SetTopology(moved);
  pushed = replica.Rebalance(clock.Next());
  ASSERT_EQ(pushed.size(), 1u);
  EXPECT_EQ(ToSplit(pushed)[7]["app"], std::make_pair(uint64_t{3000}, uint64_t{30}))
      << "us is now a's agent in eastus2 and this one";
}

// Agents that read a split in columns get the same shares as those that read one message per
// tenant: the stamp's tenants and limits once, encoded alike for every such agent, and the
// shares as two lists.
TEST(BudgetAllocator, AgentsThatReadColumnsGetTheSameSplitInColumns) {
  BudgetAllocator allocator;
  Clock clock;
  v1::Topology topology = TwoStamps();
  v1::Tenant* second = topology.add_tenants();
  second->set_name("batch");
  second->set_stamp("us");
  second->mutable_limits()->set_tokens_per_minute(901);
  allocator.SetTopology(topology);
  allocator.AddAgent(1, "eastus2");
  allocator.AddAgent(2, "westus3", /*reads_columns=*/true);
  allocator.AddAgent(3, "eastus2", /*reads_columns=*/true);
  std::vector<std::pair<uint64_t, v1::TenantBudgets>> pushed = allocator.Rebalance(clock.Next());
  ASSERT_EQ(pushed.size(), 3u);
  std::map<uint64_t, const v1::TenantBudgets*> by_agent;
  for (const auto& [agent, budgets] : pushed) {
    by_agent[agent] = &budgets;
  }
  const v1::TenantBudgets& per_tenant = *by_agent.at(1);
  const v1::TenantBudgets& columns = *by_agent.at(2);
  EXPECT_EQ(per_tenant.budgets_size(), 2);
  EXPECT_TRUE(per_tenant.tenants().empty());
  EXPECT_EQ(columns.budgets_size(), 0);
  EXPECT_EQ(columns.epoch(), per_tenant.epoch());
  EXPECT_EQ(columns.tenants(), by_agent.at(3)->tenants()) << "one encoding for the stamp";
  v1::BudgetTenants tenants;
  ASSERT_TRUE(tenants.ParseFromString(columns.tenants()));
  ASSERT_THAT(tenants.names(), ElementsAre("app", "batch"));
  EXPECT_THAT(tenants.limit_tokens_per_minute(), ElementsAre(6000, 901));
  EXPECT_THAT(tenants.limit_requests_per_minute(), ElementsAre(60, 0));
  // 6000 and 901 over three agents, the remainder to the first.
  EXPECT_EQ(per_tenant.budgets(1).tokens_per_minute(), 301u);
  EXPECT_THAT(columns.tokens_per_minute(), ElementsAre(2000, 300));
  EXPECT_THAT(columns.requests_per_minute(), ElementsAre(20, 0));
  EXPECT_THAT(by_agent.at(3)->tokens_per_minute(), ElementsAre(2000, 300));
}

}  // namespace
}  // namespace spillway
