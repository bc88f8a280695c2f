// Routing snapshot construction and the router's candidate order and admission rules.
#include "dataplane/routing/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace spillway {
namespace {

using ::testing::ElementsAre;

v1::Backend* AddBackend(v1::RoutingTable* table, const std::string& id, const std::string& region,
                        uint64_t tpm = 0) {
  v1::Backend* backend = table->add_backends();
  backend->set_id(id);
  backend->set_deployment(id.substr(id.find('/') + 1));
  backend->set_region(region);
  backend->set_endpoint("http://127.0.0.1:9000");
  backend->set_insecure_http(true);
  backend->mutable_auth()->set_api_key_env("TEST_KEY");
  backend->set_estimated_tokens_per_minute(tpm);
  return backend;
}

v1::CompiledTier* AddTier(v1::CompiledSplit* split, const std::string& pool,
                          std::vector<std::pair<uint32_t, uint32_t>> members) {
  v1::CompiledTier* tier = split->add_tiers();
  tier->set_pool(pool);
  for (auto [backend, weight] : members) {
    v1::TierMember* member = tier->add_members();
    member->set_backend(backend);
    member->set_weight(weight);
  }
  return tier;
}

// eastus2 agent: ptu-local(0), ptu-remote(1), std-local(2), std-remote(3).
v1::RoutingTable ExampleTable(v1::Locality locality) {
  v1::RoutingTable table;
  table.set_version(7);
  table.set_region("eastus2");
  AddBackend(&table, "eus2-ptu/d", "eastus2", 250000);
  AddBackend(&table, "wus3-ptu/d", "westus3", 750000);
  AddBackend(&table, "eus2-std/d", "eastus2");
  AddBackend(&table, "wus3-std/d", "westus3");
  v1::CompiledRoute* route = table.add_routes();
  route->set_name("gpt-4o");
  route->set_locality(locality);
  v1::CompiledSplit* split = route->add_splits();
  split->set_percent(100);
  AddTier(split, "ptu", {{1, 1}, {0, 1}});
  AddTier(split, "std", {{3, 1}, {2, 1}});
  return table;
}

struct Fixture {
  explicit Fixture(v1::RoutingTable table) : states(CircuitBreakerOptions()) {
    SnapshotOptions options;
    options.getenv = [](const char* name) -> const char* {
      return std::string(name) == "TEST_KEY" ? "backend-secret" : nullptr;
    };
    auto built = RoutingSnapshot::Build(std::move(table), states, options);
    EXPECT_TRUE(built.ok()) << built.status();
    snapshot = *built;
  }
  std::vector<uint32_t> PlanOrder(const std::string& route_name, uint64_t seed = 1) {
    FastRandom random(seed);
    std::vector<uint32_t> order;
    for (const PlannedCandidate& c :
         Router::Plan(*snapshot->FindRoute(route_name), &FastRandom::Thunk, &random)) {
      order.push_back(c.backend);
    }
    return order;
  }
  BackendStateRegistry states;
  RoutingSnapshotPtr snapshot;
};

TEST(Router, PreferLocalWalksTiersInOrderLocalFirst) {
  Fixture f(ExampleTable(v1::LOCALITY_PREFER_LOCAL));
  for (uint64_t seed = 1; seed < 50; ++seed) {
    EXPECT_THAT(f.PlanOrder("gpt-4o", seed), ElementsAre(0, 1, 2, 3));
  }
}

TEST(Router, LocalOnlyNeverLeavesTheRegion) {
  Fixture f(ExampleTable(v1::LOCALITY_LOCAL_ONLY));
  EXPECT_THAT(f.PlanOrder("gpt-4o"), ElementsAre(0, 2));
}

TEST(Router, AnyMixesRegionsWithinATierButKeepsTierOrder) {
  Fixture f(ExampleTable(v1::LOCALITY_ANY));
  std::set<std::vector<uint32_t>> seen;
  for (uint64_t seed = 1; seed < 200; ++seed) {
    std::vector<uint32_t> order = f.PlanOrder("gpt-4o", seed);
    ASSERT_EQ(order.size(), 4u);
    EXPECT_LT(std::max(order[0], order[1]), 2u) << "PTU tier first";
    seen.insert(order);
  }
  EXPECT_EQ(seen.size(), 4u) << "both members lead their tier some of the time";
}

TEST(Router, WeightsShapeTheFirstChoice) {
  v1::RoutingTable table;
  table.set_region("swedencentral");
  AddBackend(&table, "swc/d", "francecentral");
  AddBackend(&table, "frc/d", "francecentral");
  v1::CompiledRoute* route = table.add_routes();
  route->set_name("r");
  route->set_locality(v1::LOCALITY_ANY);
  AddTier(route->add_splits(), "eu", {{0, 2}, {1, 1}});
  Fixture f(table);
  std::map<uint32_t, int> first;
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    ++first[f.PlanOrder("r", seed * 7919)[0]];
  }
  EXPECT_GT(first[0], 1800);  // expect 2000 of 3000
  EXPECT_LT(first[0], 2200);
}

TEST(Router, SplitsFollowTheirPercentages) {
  v1::RoutingTable table;
  table.set_region("eastus2");
  AddBackend(&table, "blue/d", "eastus2");
  AddBackend(&table, "green/d", "eastus2");
  v1::CompiledRoute* route = table.add_routes();
  route->set_name("canary");
  v1::CompiledSplit* blue = route->add_splits();
  blue->set_percent(90);
  AddTier(blue, "blue", {{0, 1}});
  v1::CompiledSplit* green = route->add_splits();
  green->set_percent(10);
  AddTier(green, "green", {{1, 1}});
  Fixture f(table);
  int green_count = 0;
  for (uint64_t seed = 1; seed <= 5000; ++seed) {
    std::vector<uint32_t> order = f.PlanOrder("canary", seed * 104729);
    ASSERT_EQ(order.size(), 1u) << "a request stays on its split";
    green_count += order[0] == 1;
  }
  EXPECT_GT(green_count, 400);  // expect 500 of 5000
  EXPECT_LT(green_count, 600);
}

TEST(Admit, RefusesBlockedUnusableAndOutOfHeadroom) {
  v1::RoutingTable table = ExampleTable(v1::LOCALITY_PREFER_LOCAL);
  table.mutable_backends(3)->mutable_auth()->set_api_key_env("MISSING_KEY");
  table.mutable_routes(0)
      ->mutable_splits(0)
      ->mutable_tiers(0)
      ->mutable_priority_limits()
      ->set_batch(70);
  Fixture f(table);
  const SteadyTime now = SteadyClock::now();
  const auto& backends = f.snapshot->backends();
  const auto& route = *f.snapshot->FindRoute("gpt-4o");
  const SnapshotTier& ptu_tier = route.splits[0].tiers[0];
  const SnapshotTier& std_tier = route.splits[0].tiers[1];

  EXPECT_EQ(backends[0].api_key, "backend-secret");
  EXPECT_EQ(Admit(backends[3], std_tier, v1::PRIORITY_STANDARD, 10, now), Refusal::kUnusable);
  EXPECT_THAT(backends[3].unusable_reason, ::testing::HasSubstr("MISSING_KEY"));

  backends[2].state->breaker.OnThrottled(now, std::chrono::milliseconds(500));
  EXPECT_EQ(Admit(backends[2], std_tier, v1::PRIORITY_STANDARD, 10, now), Refusal::kBlocked);

  // eus2-ptu: 250k TPM -> 41,666 tokens per 10 s window; batch may use 70 % of it.
  ASSERT_EQ(backends[0].window_capacity_tokens, 41666);
  // 70 % of 41,666 is 29,166.
  backends[0].state->load.Add(now, 28000);
  EXPECT_EQ(Admit(backends[0], ptu_tier, v1::PRIORITY_BATCH, 1000, now), Refusal::kNone);
  EXPECT_EQ(Admit(backends[0], ptu_tier, v1::PRIORITY_BATCH, 1500, now), Refusal::kNoHeadroom);
  EXPECT_EQ(Admit(backends[0], ptu_tier, v1::PRIORITY_CRITICAL, 1500, now), Refusal::kNone);
  EXPECT_EQ(Admit(backends[0], ptu_tier, v1::PRIORITY_CRITICAL, 20000, now), Refusal::kNoHeadroom);
}

TEST(RoutingSnapshot, BackendStateSurvivesANewTable) {
  BackendStateRegistry states{CircuitBreakerOptions()};
  SnapshotOptions options;
  options.getenv = [](const char*) -> const char* { return "k"; };
  auto first = RoutingSnapshot::Build(ExampleTable(v1::LOCALITY_ANY), states, options);
  auto second = RoutingSnapshot::Build(ExampleTable(v1::LOCALITY_ANY), states, options);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ((*first)->backends()[1].state, (*second)->backends()[1].state);
}

TEST(RoutingSnapshot, AnEmptyTenantListIsNotOpenAccess) {
  v1::RoutingTable table = ExampleTable(v1::LOCALITY_ANY);
  EXPECT_FALSE(Fixture(table).snapshot->open_access()) << "a stamp without its own tenants";
  table.set_open_access(true);
  EXPECT_TRUE(Fixture(table).snapshot->open_access()) << "a topology without tenants";
}

TEST(RoutingSnapshot, FindsTenantsByKeyHash) {
  v1::RoutingTable table = ExampleTable(v1::LOCALITY_ANY);
  v1::CompiledTenant* tenant = table.add_tenants();
  tenant->set_name("checkout");
  tenant->add_routes("gpt-4o");
  // SHA-256("test")
  tenant->add_api_keys()->set_sha256(
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  Fixture f(table);
  EXPECT_FALSE(f.snapshot->open_access());
  const SnapshotTenant* found = f.snapshot->FindTenantByKey("test");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->name, "checkout");
  EXPECT_EQ(found->priority, v1::PRIORITY_STANDARD);
  EXPECT_EQ(f.snapshot->FindTenantByKey("tesT"), nullptr);
  EXPECT_EQ(f.snapshot->FindTenantByKey(""), nullptr);
}

TEST(RoutingSnapshot, RejectsBadTables) {
  BackendStateRegistry states{CircuitBreakerOptions()};
  v1::RoutingTable bad_index = ExampleTable(v1::LOCALITY_ANY);
  bad_index.mutable_routes(0)->mutable_splits(0)->mutable_tiers(0)->mutable_members(0)->set_backend(
      9);
  EXPECT_FALSE(RoutingSnapshot::Build(bad_index, states).ok());
  v1::RoutingTable bad_endpoint = ExampleTable(v1::LOCALITY_ANY);
  bad_endpoint.mutable_backends(0)->set_endpoint("ftp://x");
  auto result = RoutingSnapshot::Build(bad_endpoint, states);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr("ftp://x"));
  // A table from an older control plane may carry http:// without the operator's consent.
  v1::RoutingTable clear_text = ExampleTable(v1::LOCALITY_ANY);
  clear_text.mutable_backends(0)->set_insecure_http(false);
  result = RoutingSnapshot::Build(clear_text, states);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("is http:// and its instance does not set insecure_http"));
}

TEST(ParseEndpoint, Forms) {
  auto a = ParseEndpoint("https://aoai-eus2.openai.azure.com");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->host, "aoai-eus2.openai.azure.com");
  EXPECT_EQ(a->port, "443");
  auto b = ParseEndpoint("http://127.0.0.1:9001/");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->tls);
  EXPECT_EQ(b->port, "9001");
  EXPECT_EQ(b->host_header, "127.0.0.1:9001");
  EXPECT_FALSE(ParseEndpoint("http://host/path").ok());
  EXPECT_FALSE(ParseEndpoint("http://host:99999").ok());
  EXPECT_FALSE(ParseEndpoint("host:80").ok());
}

}  // namespace
}  // namespace spillway
