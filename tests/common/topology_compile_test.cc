// Compiling the reference topology for each region gives exactly the table an agent there
// needs: its stamp's routes, tiers and tenants, backends with locality, and nothing else.
#include "common/topology_compile.h"

#include <gmock/gmock.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/topology_yaml.h"
#include "tests/support/reference_topology.h"

namespace spillway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

using test::ReferenceTopology;

v1::RoutingTable MustCompile(const v1::Topology& topology, const std::string& region,
                             const CompileOptions& options = {}) {
  absl::StatusOr<v1::RoutingTable> table = CompileRoutingTable(topology, region, 7, options);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.value_or(v1::RoutingTable());
}

std::vector<std::string> BackendIds(const v1::RoutingTable& table) {
  std::vector<std::string> ids;
  for (const v1::Backend& backend : table.backends()) {
    ids.push_back(backend.id());
  }
  return ids;
}

std::vector<std::string> RouteNames(const v1::RoutingTable& table) {
  std::vector<std::string> names;
  for (const v1::CompiledRoute& route : table.routes()) {
    names.push_back(route.name());
  }
  return names;
}

std::vector<std::string> TenantNames(const v1::RoutingTable& table) {
  std::vector<std::string> names;
  for (const v1::CompiledTenant& tenant : table.tenants()) {
    names.push_back(tenant.name());
  }
  return names;
}

std::vector<std::string> TierPools(const v1::CompiledSplit& split) {
  std::vector<std::string> pools;
  for (const v1::CompiledTier& tier : split.tiers()) {
    pools.push_back(tier.pool());
  }
  return pools;
}

// Members of a tier as "backend id/weight/local" strings, for compact expectations.
std::vector<std::string> Members(const v1::RoutingTable& table, const v1::CompiledTier& tier) {
  std::vector<std::string> members;
  for (const v1::TierMember& member : tier.members()) {
    EXPECT_LT(member.backend(), static_cast<uint32_t>(table.backends_size()));
    members.push_back(absl::StrCat(table.backends(static_cast<int>(member.backend())).id(), " w",
                                   member.weight(), member.local() ? " local" : " remote"));
  }
  return members;
}

const v1::CompiledRoute* FindRoute(const v1::RoutingTable& table, const std::string& name) {
  for (const v1::CompiledRoute& route : table.routes()) {
    if (route.name() == name) {
      return &route;
    }
  }
  return nullptr;
}

std::string DeterministicBytes(const v1::RoutingTable& table) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    table.SerializeToCodedStream(&coded);
  }
  return bytes;
}

TEST(TopologyCompile, EastUs2) {
  CompileOptions options;
  options.now_unix_ms = 1700000000123;
  const v1::RoutingTable table = MustCompile(ReferenceTopology(), "eastus2", options);
  EXPECT_EQ(table.region(), "eastus2");
  EXPECT_EQ(table.stamp(), "us");
  EXPECT_EQ(table.version(), 7u);
  EXPECT_EQ(table.compiled_at_unix_ms(), 1700000000123);
  EXPECT_FALSE(table.has_health());

  // In the order the routes first reach them: gpt-4o's three tiers, then the canary's new
  // version, then embeddings.
  EXPECT_THAT(
      BackendIds(table),
      ElementsAre("aoai-eus2-ptu/gpt-4o-ptu", "aoai-wus3-ptu/gpt-4o-pool", "aoai-eus2-std/gpt-4o",
                  "aoai-wus3-std/gpt-4o", "aoai-eus2-std/gpt-4o-next", "aoai-eus2-std/embed-3"));
  EXPECT_THAT(RouteNames(table), ElementsAre("gpt-4o", "gpt-4o-canary", "text-embedding-3-large"));

  const v1::CompiledRoute& gpt4o = table.routes(0);
  EXPECT_EQ(gpt4o.locality(), v1::LOCALITY_PREFER_LOCAL);
  ASSERT_EQ(gpt4o.splits_size(), 1);
  EXPECT_EQ(gpt4o.splits(0).percent(), 100u);
  EXPECT_THAT(TierPools(gpt4o.splits(0)),
              ElementsAre("us-workload-ptu", "us-enterprise-ptu", "us-standard"));
  EXPECT_THAT(Members(table, gpt4o.splits(0).tiers(0)),
              ElementsAre("aoai-eus2-ptu/gpt-4o-ptu w1 local"));
  EXPECT_THAT(Members(table, gpt4o.splits(0).tiers(1)),
              ElementsAre("aoai-wus3-ptu/gpt-4o-pool w1 remote"));
  EXPECT_THAT(Members(table, gpt4o.splits(0).tiers(2)),
              ElementsAre("aoai-eus2-std/gpt-4o w1 local", "aoai-wus3-std/gpt-4o w1 remote"));
  EXPECT_FALSE(gpt4o.splits(0).tiers(0).has_priority_limits());

  const v1::CompiledRoute& canary = table.routes(1);
  EXPECT_EQ(canary.locality(), v1::LOCALITY_PREFER_LOCAL);  // unspecified in the YAML
  ASSERT_EQ(canary.splits_size(), 2);
  EXPECT_EQ(canary.splits(0).percent(), 90u);
  EXPECT_EQ(canary.splits(1).percent(), 10u);
  EXPECT_THAT(TierPools(canary.splits(0)), ElementsAre("us-standard"));
  EXPECT_THAT(TierPools(canary.splits(1)), ElementsAre("us-standard-next"));
  // The shared pool points at the same backends as gpt-4o's Standard tier.
  EXPECT_EQ(canary.splits(0).tiers(0).members(0).backend(), 2u);
  EXPECT_EQ(canary.splits(0).tiers(0).members(1).backend(), 3u);
  EXPECT_THAT(Members(table, canary.splits(1).tiers(0)),
              ElementsAre("aoai-eus2-std/gpt-4o-next w1 local"));

  EXPECT_THAT(TenantNames(table), ElementsAre("checkout-assistant", "nightly-summaries"));
  const v1::CompiledTenant& checkout = table.tenants(0);
  EXPECT_EQ(checkout.priority(), v1::PRIORITY_CRITICAL);
  EXPECT_THAT(checkout.routes(), ElementsAre("gpt-4o", "text-embedding-3-large"));
  EXPECT_EQ(checkout.limits().tokens_per_minute(), 120000u);
  EXPECT_EQ(checkout.limits().requests_per_minute(), 720u);
  ASSERT_EQ(checkout.api_keys_size(), 1);
  EXPECT_EQ(checkout.api_keys(0).name(), "prod");
  EXPECT_EQ(checkout.api_keys(0).sha256(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(table.tenants(1).priority(), v1::PRIORITY_BATCH);
  EXPECT_EQ(table.tenants(1).limits().tokens_per_minute(), 300000u);
}

TEST(TopologyCompile, BackendFields) {
  const v1::RoutingTable table = MustCompile(ReferenceTopology(), "eastus2");
  ASSERT_EQ(table.backends_size(), 6);

  const v1::Backend& ptu = table.backends(0);
  EXPECT_EQ(ptu.instance(), "aoai-eus2-ptu");
  EXPECT_EQ(ptu.deployment(), "gpt-4o-ptu");
  EXPECT_EQ(ptu.region(), "eastus2");
  EXPECT_EQ(ptu.subscription(), "ai-platform-prod-1");
  EXPECT_EQ(ptu.endpoint(), "https://aoai-eus2-ptu.openai.azure.com");
  EXPECT_EQ(ptu.auth().method_case(), v1::InstanceAuth::kManagedIdentity);
  EXPECT_TRUE(ptu.auth().managed_identity());
  EXPECT_EQ(ptu.model(), "gpt-4o");
  EXPECT_EQ(ptu.model_version(), "2024-08-06");
  EXPECT_EQ(ptu.sku(), v1::SKU_PROVISIONED_MANAGED);
  EXPECT_EQ(ptu.capacity(), 100u);
  EXPECT_TRUE(ptu.provisioned());
  EXPECT_EQ(ptu.estimated_tokens_per_minute(), 100u * 2500u);

  const v1::Backend& pool = table.backends(1);
  EXPECT_EQ(pool.sku(), v1::SKU_DATA_ZONE_PROVISIONED_MANAGED);
  EXPECT_TRUE(pool.provisioned());
  EXPECT_EQ(pool.estimated_tokens_per_minute(), 300u * 2500u);
  EXPECT_EQ(pool.region(), "westus3");

  const v1::Backend& standard = table.backends(2);
  EXPECT_EQ(standard.sku(), v1::SKU_DATA_ZONE_STANDARD);
  EXPECT_FALSE(standard.provisioned());
  EXPECT_EQ(standard.estimated_tokens_per_minute(), 450u * 1000u);
  EXPECT_EQ(standard.auth().api_key_env(), "AOAI_EUS2_STD_KEY");

  EXPECT_EQ(table.backends(3).auth().api_key_file(), "/etc/spillway/keys/aoai-wus3-std");
  EXPECT_EQ(table.backends(3).subscription(), "ai-platform-prod-2");
  EXPECT_EQ(table.backends(4).model_version(), "2024-11-20");
  EXPECT_EQ(table.backends(5).model(), "text-embedding-3-large");
  EXPECT_EQ(table.backends(5).sku(), v1::SKU_STANDARD);
  EXPECT_EQ(table.backends(5).estimated_tokens_per_minute(), 350u * 1000u);
}

TEST(TopologyCompile, PtuRateComesFromOptions) {
  CompileOptions options;
  options.tokens_per_ptu_minute = 1000;
  const v1::RoutingTable table = MustCompile(ReferenceTopology(), "eastus2", options);
  EXPECT_EQ(table.backends(0).estimated_tokens_per_minute(), 100u * 1000u);
  EXPECT_EQ(table.backends(2).estimated_tokens_per_minute(), 450u * 1000u);  // Standard: as is
}

TEST(TopologyCompile, PtuRatesSetEachModelsTokensPerPtu) {
  // The reference's PTUs serve gpt-4o (2,500 tokens a minute a PTU in the shipped rates); on
  // gpt-4o-mini a PTU serves 37,000.
  v1::Topology topology = ReferenceTopology();
  for (v1::Deployment& deployment : *topology.mutable_deployments()) {
    if (deployment.model() == "gpt-4o") {
      deployment.set_model("gpt-4o-mini");
    }
  }
  absl::StatusOr<std::vector<PtuRates>> rates = LoadRates("");
  ASSERT_TRUE(rates.ok()) << rates.status();
  CompileOptions options;
  options.ptu_rates = std::make_shared<const std::vector<PtuRates>>(*std::move(rates));
  options.tokens_per_ptu_minute = 1000;
  v1::RoutingTable table = MustCompile(topology, "eastus2", options);
  EXPECT_EQ(table.backends(0).estimated_tokens_per_minute(), 100u * 37'000u) << "regional";
  EXPECT_EQ(table.backends(1).estimated_tokens_per_minute(), 300u * 37'000u) << "data zone";
  EXPECT_EQ(table.backends(2).estimated_tokens_per_minute(), 450u * 1000u) << "Standard: as is";

  // The row is chosen by deployment type; a model or type the rates do not list falls back to
  // tokens_per_ptu_minute.
  options.ptu_rates = std::make_shared<const std::vector<PtuRates>>(std::vector<PtuRates>{
      {.model = "gpt-4o-mini", .deployment_type = "regional", .input_tpm_per_ptu = 5}});
  table = MustCompile(topology, "eastus2", options);
  EXPECT_EQ(table.backends(0).estimated_tokens_per_minute(), 100u * 5u);
  EXPECT_EQ(table.backends(1).estimated_tokens_per_minute(), 300u * 1000u);
}

TEST(PtuRates, FlagsChooseTheRates) {
  CompileOptions options;
  ASSERT_TRUE(SetPtuThroughput("", 0, options).ok());
  ASSERT_NE(options.ptu_rates, nullptr) << "no flag: the built-in rates";
  EXPECT_NE(FindRates(*options.ptu_rates, "gpt-4o-mini", "global"), nullptr);
  EXPECT_EQ(options.tokens_per_ptu_minute, 2500u) << "for models the rates do not list";

  options = CompileOptions();
  ASSERT_TRUE(SetPtuThroughput("", 6000, options).ok());
  EXPECT_EQ(options.ptu_rates, nullptr)
      << "only --tokens-per-ptu-minute: that figure for every model";
  EXPECT_EQ(options.tokens_per_ptu_minute, 6000u);

  const std::string path = ::testing::TempDir() + "/own-rates.json";
  {
    std::ofstream out(path);
    out << R"({"models": [{"model": "m", "input_tpm_per_ptu": 7}]})";
  }
  options = CompileOptions();
  ASSERT_TRUE(SetPtuThroughput(path, 6000, options).ok());
  ASSERT_NE(options.ptu_rates, nullptr)
      << "--ptu-rates wins, the figure is for the models it leaves out";
  EXPECT_EQ(options.ptu_rates->size(), 1u);
  EXPECT_EQ(options.tokens_per_ptu_minute, 6000u);

  absl::Status missing = SetPtuThroughput("/nonexistent/rates.json", 0, options);
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), ::testing::HasSubstr("/nonexistent/rates.json"));
}

TEST(PtuRates, LoadNamesTheFileInItsErrors) {
  absl::StatusOr<std::vector<PtuRates>> missing = LoadRates("/nonexistent/rates.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), ::testing::HasSubstr("/nonexistent/rates.json"));
  const std::string path = ::testing::TempDir() + "/bad-rates.json";
  {
    std::ofstream out(path);
    out << R"({"models": [{"model": "m"}]})";
  }
  absl::StatusOr<std::vector<PtuRates>> bad = LoadRates(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              ::testing::HasSubstr(path + ": rates: model 'm' has no \"input_tpm_per_ptu\""));
}

TEST(TopologyCompile, WestUs3SeesTheSameRoutesWithItsOwnLocality) {
  const v1::RoutingTable east = MustCompile(ReferenceTopology(), "eastus2");
  const v1::RoutingTable west = MustCompile(ReferenceTopology(), "westus3");
  EXPECT_EQ(west.stamp(), "us");
  EXPECT_EQ(BackendIds(west), BackendIds(east));
  EXPECT_EQ(RouteNames(west), RouteNames(east));
  EXPECT_EQ(TenantNames(west), TenantNames(east));
  const v1::CompiledSplit& split = west.routes(0).splits(0);
  EXPECT_THAT(Members(west, split.tiers(0)), ElementsAre("aoai-eus2-ptu/gpt-4o-ptu w1 remote"));
  EXPECT_THAT(Members(west, split.tiers(1)), ElementsAre("aoai-wus3-ptu/gpt-4o-pool w1 local"));
  EXPECT_THAT(Members(west, split.tiers(2)),
              ElementsAre("aoai-eus2-std/gpt-4o w1 remote", "aoai-wus3-std/gpt-4o w1 local"));
}

TEST(TopologyCompile, SwedenCentral) {
  const v1::RoutingTable table = MustCompile(ReferenceTopology(), "swedencentral");
  EXPECT_EQ(table.stamp(), "eu");
  EXPECT_THAT(BackendIds(table), ElementsAre("aoai-swc-std/gpt-4o", "aoai-frc-std/gpt-4o"));
  EXPECT_THAT(RouteNames(table), ElementsAre("gpt-4o"));
  ASSERT_EQ(table.routes(0).splits_size(), 1);
  const v1::CompiledSplit& split = table.routes(0).splits(0);
  EXPECT_EQ(split.percent(), 100u);
  EXPECT_THAT(TierPools(split), ElementsAre("eu-standard"));
  EXPECT_THAT(Members(table, split.tiers(0)),
              ElementsAre("aoai-swc-std/gpt-4o w2 local", "aoai-frc-std/gpt-4o w1 remote"));
  EXPECT_THAT(TenantNames(table), ElementsAre("eu-helpdesk"));
  // Only the names of the us routes cross, so an agent can say "outside your stamp".
  EXPECT_THAT(table.foreign_routes(), UnorderedElementsAre(Pair("gpt-4o-canary", "us"),
                                                           Pair("text-embedding-3-large", "us")));
  EXPECT_THAT(MustCompile(ReferenceTopology(), "eastus2").foreign_routes(), IsEmpty())
      << "gpt-4o exists in both stamps: served here, so not foreign";
  EXPECT_EQ(table.tenants(0).priority(), v1::PRIORITY_STANDARD);
  EXPECT_EQ(table.tenants(0).limits().requests_per_minute(), 0u);

  const v1::RoutingTable france = MustCompile(ReferenceTopology(), "francecentral");
  EXPECT_THAT(Members(france, france.routes(0).splits(0).tiers(0)),
              ElementsAre("aoai-swc-std/gpt-4o w2 remote", "aoai-frc-std/gpt-4o w1 local"));
}

TEST(TopologyCompile, NothingCrossesAStamp) {
  absl::flat_hash_map<std::string, std::string> stamp_of_region;
  for (const v1::Region& region : ReferenceTopology().regions()) {
    stamp_of_region[region.name()] = region.stamp();
  }
  absl::flat_hash_map<std::string, std::string> stamp_of_tenant;
  for (const v1::Tenant& tenant : ReferenceTopology().tenants()) {
    stamp_of_tenant[tenant.name()] = tenant.stamp();
  }
  for (const std::string region : {"eastus2", "swedencentral"}) {
    SCOPED_TRACE(region);
    const v1::RoutingTable table = MustCompile(ReferenceTopology(), region);
    const std::string& stamp = stamp_of_region[region];
    for (const v1::Backend& backend : table.backends()) {
      EXPECT_EQ(stamp_of_region[backend.region()], stamp) << backend.id();
    }
    for (const v1::CompiledTenant& tenant : table.tenants()) {
      EXPECT_EQ(stamp_of_tenant[tenant.name()], stamp) << tenant.name();
    }
    // Every name of the other stamp's regions, instances, pools and tenants is absent. Only
    // its route names cross, in foreign_routes (checked in SwedenCentral), for the 403.
    v1::RoutingTable without_route_names = table;
    without_route_names.clear_foreign_routes();
    const std::string text = without_route_names.DebugString();
    const std::vector<std::string> foreign =
        stamp == "us"
            ? std::vector<std::string>{"swedencentral", "francecentral", "aoai-swc",
                                       "aoai-frc",      "eu-standard",   "eu-helpdesk"}
            : std::vector<std::string>{"eastus2",           "westus3",      "aoai-eus2",
                                       "aoai-wus3",         "us-",          "checkout-assistant",
                                       "nightly-summaries", "gpt-4o-canary"};
    for (const std::string& name : foreign) {
      EXPECT_THAT(text, ::testing::Not(HasSubstr(name)));
    }
  }
  // The same route name compiles to each stamp's own backends.
  const v1::RoutingTable us = MustCompile(ReferenceTopology(), "eastus2");
  const v1::RoutingTable eu = MustCompile(ReferenceTopology(), "swedencentral");
  const v1::CompiledRoute* us_route = FindRoute(us, "gpt-4o");
  const v1::CompiledRoute* eu_route = FindRoute(eu, "gpt-4o");
  ASSERT_NE(us_route, nullptr);
  ASSERT_NE(eu_route, nullptr);
  for (const v1::CompiledTier& tier : us_route->splits(0).tiers()) {
    for (const v1::TierMember& member : tier.members()) {
      EXPECT_EQ(stamp_of_region[us.backends(static_cast<int>(member.backend())).region()], "us");
    }
  }
  for (const v1::CompiledTier& tier : eu_route->splits(0).tiers()) {
    for (const v1::TierMember& member : tier.members()) {
      EXPECT_EQ(stamp_of_region[eu.backends(static_cast<int>(member.backend())).region()], "eu");
    }
  }
}

TEST(TopologyCompile, DefaultsAndCopiedLimits) {
  v1::Topology topology = ReferenceTopology();
  topology.mutable_tenants(0)->clear_priority();
  topology.mutable_routes(0)->set_locality(v1::LOCALITY_LOCAL_ONLY);
  topology.mutable_pools(0)->mutable_priority_limits()->set_standard(80);
  topology.mutable_pools(0)->mutable_priority_limits()->set_batch(50);
  const v1::RoutingTable table = MustCompile(topology, "eastus2");
  EXPECT_EQ(table.tenants(0).priority(), v1::PRIORITY_STANDARD);
  EXPECT_EQ(table.routes(0).locality(), v1::LOCALITY_LOCAL_ONLY);
  const v1::PriorityLimits& limits = table.routes(0).splits(0).tiers(0).priority_limits();
  EXPECT_EQ(limits.standard(), 80u);
  EXPECT_EQ(limits.batch(), 50u);
}

TEST(TopologyCompile, RegionOfAStampWithoutRoutes) {
  v1::Topology topology = ReferenceTopology();
  topology.add_stamps()->set_name("apac");
  v1::Region* region = topology.add_regions();
  region->set_name("japaneast");
  region->set_stamp("apac");
  const v1::RoutingTable table = MustCompile(topology, "japaneast");
  EXPECT_EQ(table.stamp(), "apac");
  EXPECT_THAT(table.backends(), IsEmpty());
  EXPECT_THAT(table.routes(), IsEmpty());
  EXPECT_THAT(table.tenants(), IsEmpty());
  EXPECT_FALSE(table.open_access()) << "tenants elsewhere do not open this stamp to everyone";
}

TEST(TopologyCompile, OnlyATopologyWithoutTenantsAdmitsEveryClient) {
  EXPECT_FALSE(MustCompile(ReferenceTopology(), "eastus2").open_access());
  v1::Topology topology = ReferenceTopology();
  topology.clear_tenants();
  EXPECT_TRUE(MustCompile(topology, "eastus2").open_access());
  EXPECT_TRUE(MustCompile(topology, "swedencentral").open_access());
}

TEST(TopologyCompile, Deterministic) {
  CompileOptions options;
  options.now_unix_ms = 42;
  for (const std::string region : {"eastus2", "westus3", "swedencentral"}) {
    const std::string first = DeterministicBytes(MustCompile(ReferenceTopology(), region, options));
    const std::string second =
        DeterministicBytes(MustCompile(ReferenceTopology(), region, options));
    EXPECT_FALSE(first.empty());
    EXPECT_EQ(first, second) << region;
  }
}

TEST(TopologyCompile, InvalidTopologyIsRefusedWithItsProblems) {
  v1::Topology topology = ReferenceTopology();
  topology.mutable_routes(0)->add_tiers("eu-standard");
  topology.mutable_deployments(0)->set_capacity(0);
  absl::StatusOr<v1::RoutingTable> table = CompileRoutingTable(topology, "eastus2", 1);
  ASSERT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(table.status().message(), HasSubstr("route 'gpt-4o': (stamp us) tier 'eu-standard'"));
  EXPECT_THAT(table.status().message(),
              HasSubstr("deployment 'aoai-eus2-ptu/gpt-4o-ptu': capacity 0"));
}

TEST(TopologyCompile, UnknownRegionIsNotFound) {
  absl::StatusOr<v1::RoutingTable> table = CompileRoutingTable(ReferenceTopology(), "centralus", 1);
  ASSERT_EQ(table.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(table.status().message(), HasSubstr("centralus"));
}

}  // namespace
}  // namespace spillway
