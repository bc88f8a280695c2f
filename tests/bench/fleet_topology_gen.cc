// See fleet_topology_gen.h. Only pools with members and routes with tiers are emitted, so
// any shape (even a tiny one) validates.
#include "tests/bench/fleet_topology_gen.h"

#include <openssl/sha.h>

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace spillway::bench {
namespace {

struct Model {
  const char* name;
  const char* version;
};

// Every tier of a route must serve one model and version, so each model has exactly one.
constexpr Model kModels[] = {{"gpt-4o", "2024-08-06"},
                             {"gpt-4o-mini", "2024-07-18"},
                             {"gpt-4.1", "2025-04-14"},
                             {"o3-mini", "2025-01-31"},
                             {"text-embedding-3-large", "1"}};
constexpr int kModelCount = sizeof(kModels) / sizeof(kModels[0]);
constexpr int kSubscriptions = 8;

std::string StampName(int s) {
  constexpr const char* kNames[] = {"us", "eu", "apac"};
  return s < 3 ? kNames[s] : absl::StrCat("stamp-", s);
}

std::string RegionName(int r) { return absl::StrFormat("region-%02d", r); }

std::string InstanceName(int r, int i) { return absl::StrFormat("aoai-r%02d-i%d", r, i); }

bool IsPtuInstance(int i) { return i % 5 < 2; }

v1::Sku SkuOf(int i) {
  switch (i % 5) {
    case 0:
      return v1::SKU_PROVISIONED_MANAGED;
    case 1:
      return v1::SKU_DATA_ZONE_PROVISIONED_MANAGED;
    case 2:
      return v1::SKU_STANDARD;
    case 3:
      return v1::SKU_DATA_ZONE_STANDARD;
    default:
      return v1::SKU_GLOBAL_STANDARD;
  }
}

std::string Sha256Hex(absl::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

// Members of the pools being built, by pool name; std::map keeps the output deterministic.
using PoolMembers = std::map<std::string, std::vector<std::pair<std::string, bool>>>;

std::string PoolName(absl::string_view scope, int model, bool ptu) {
  return absl::StrCat(scope, "-", kModels[model].name, ptu ? "-ptu" : "-std");
}

void AddPools(const PoolMembers& members, v1::Topology& topology) {
  for (const auto& [name, deployments] : members) {
    v1::Pool* pool = topology.add_pools();
    pool->set_name(name);
    for (std::size_t k = 0; k < deployments.size(); ++k) {
      v1::PoolMember* member = pool->add_members();
      member->set_deployment(deployments[k].first);
      if (!deployments[k].second) {
        member->set_weight(1 + static_cast<uint32_t>(k % 3));  // uneven Standard quotas
      }
    }
    if (!deployments.empty() && deployments.front().second) {
      // Batch spills off PTU first, as operators configure it.
      pool->mutable_priority_limits()->set_standard(90);
      pool->mutable_priority_limits()->set_batch(70);
    }
  }
}

// Appends the tiers that exist among `pools` to `tiers`; false when none does.
bool AddTiers(const PoolMembers& pools, const std::vector<std::string>& candidates,
              google::protobuf::RepeatedPtrField<std::string>* tiers) {
  for (const std::string& pool : candidates) {
    if (pools.contains(pool)) {
      *tiers->Add() = pool;
    }
  }
  return !tiers->empty();
}

}  // namespace

std::vector<std::string> FleetRegions(const FleetShape& shape) {
  std::vector<std::string> regions;
  for (int r = 0; r < shape.regions; ++r) {
    regions.push_back(RegionName(r));
  }
  return regions;
}

v1::Topology GenerateFleetTopology(const FleetShape& shape) {
  v1::Topology topology;
  for (int s = 0; s < shape.stamps; ++s) {
    topology.add_stamps()->set_name(StampName(s));
  }
  for (int r = 0; r < shape.regions; ++r) {
    v1::Region* region = topology.add_regions();
    region->set_name(RegionName(r));
    region->set_stamp(StampName(r % shape.stamps));
  }
  for (int s = 0; s < kSubscriptions; ++s) {
    v1::Subscription* subscription = topology.add_subscriptions();
    subscription->set_name(absl::StrCat("ai-platform-", s));
    subscription->set_id(absl::StrFormat("00000000-0000-4000-8000-%012d", s));
  }
  for (int r = 0; r < shape.regions; ++r) {
    for (int i = 0; i < shape.instances_per_region; ++i) {
      v1::Instance* instance = topology.add_instances();
      instance->set_name(InstanceName(r, i));
      instance->set_region(RegionName(r));
      instance->set_subscription(
          absl::StrCat("ai-platform-", (r * shape.instances_per_region + i) % kSubscriptions));
      instance->set_endpoint(absl::StrCat("https://", instance->name(), ".openai.azure.com"));
      if (IsPtuInstance(i)) {
        instance->mutable_auth()->set_managed_identity(true);
      } else {
        instance->mutable_auth()->set_api_key_env(absl::AsciiStrToUpper(
            absl::StrReplaceAll(absl::StrCat(instance->name(), "_KEY"), {{"-", "_"}})));
      }
    }
  }

  PoolMembers stamp_pools;
  PoolMembers region_pools;
  for (int j = 0; j < shape.deployments; ++j) {
    const int r = j % shape.regions;
    const int index = j / shape.regions;  // within the region
    const int i = index % shape.instances_per_region;
    const int k = index / shape.instances_per_region;  // within the instance
    const int m = k % kModelCount;
    const bool ptu = IsPtuInstance(i);
    v1::Deployment* deployment = topology.add_deployments();
    deployment->set_instance(InstanceName(r, i));
    deployment->set_name(absl::StrCat(kModels[m].name, "-", k / kModelCount));
    deployment->set_model(kModels[m].name);
    deployment->set_version(kModels[m].version);
    deployment->set_sku(SkuOf(i));
    deployment->set_capacity(ptu ? 50 + (j % 10) * 25 : 100 + (j % 20) * 50);
    const std::string id = absl::StrCat(deployment->instance(), "/", deployment->name());
    stamp_pools[PoolName(StampName(r % shape.stamps), m, ptu)].emplace_back(id, ptu);
    region_pools[PoolName(RegionName(r), m, ptu)].emplace_back(id, ptu);
  }
  AddPools(stamp_pools, topology);
  AddPools(region_pools, topology);

  // Stamp-wide routes per model (what tenants use), then local-only routes per region.
  std::vector<std::vector<std::string>> stamp_routes(shape.stamps);
  for (int s = 0; s < shape.stamps; ++s) {
    const std::string stamp = StampName(s);
    for (int m = 0; m < kModelCount; ++m) {
      const std::string ptu = PoolName(stamp, m, true);
      const std::string standard = PoolName(stamp, m, false);
      v1::Route route;
      route.set_name(kModels[m].name);
      route.set_stamp(stamp);
      route.set_locality(v1::LOCALITY_PREFER_LOCAL);
      if (!AddTiers(stamp_pools, {ptu, standard}, route.mutable_tiers())) {
        continue;
      }
      *topology.add_routes() = route;
      stamp_routes[s].push_back(route.name());
      if (stamp_pools.contains(ptu) && stamp_pools.contains(standard)) {
        v1::Route* canary = topology.add_routes();
        canary->set_name(absl::StrCat(kModels[m].name, "-canary"));
        canary->set_stamp(stamp);
        canary->set_locality(v1::LOCALITY_ANY);
        v1::RouteSplit* main = canary->add_split();
        main->set_percent(90);
        main->add_tiers(ptu);
        main->add_tiers(standard);
        v1::RouteSplit* next = canary->add_split();
        next->set_percent(10);
        next->add_tiers(standard);
      }
    }
  }
  for (int r = 0; r < shape.regions; ++r) {
    for (int m = 0; m < kModelCount; ++m) {
      v1::Route route;
      route.set_name(absl::StrCat(kModels[m].name, "-", RegionName(r)));
      route.set_stamp(StampName(r % shape.stamps));
      route.set_locality(v1::LOCALITY_LOCAL_ONLY);
      if (AddTiers(region_pools,
                   {PoolName(RegionName(r), m, true), PoolName(RegionName(r), m, false)},
                   route.mutable_tiers())) {
        *topology.add_routes() = std::move(route);
      }
    }
  }

  constexpr v1::Priority kPriorities[] = {v1::PRIORITY_CRITICAL, v1::PRIORITY_STANDARD,
                                          v1::PRIORITY_STANDARD, v1::PRIORITY_BATCH};
  for (int t = 0; t < shape.tenants; ++t) {
    const int s = t % shape.stamps;
    const std::vector<std::string>& routes = stamp_routes[s];
    if (routes.empty()) {
      continue;  // a stamp without deployments has nothing to offer a tenant
    }
    v1::Tenant* tenant = topology.add_tenants();
    tenant->set_name(absl::StrFormat("tenant-%05d", t));
    tenant->set_stamp(StampName(s));
    tenant->set_priority(kPriorities[t % 4]);
    tenant->add_routes(routes[t % routes.size()]);
    if (t % 3 == 0 && routes.size() > 1) {
      tenant->add_routes(routes[(t + 1) % routes.size()]);
    }
    tenant->mutable_limits()->set_tokens_per_minute(10000 * (1 + t % 100));
    if (t % 10 != 9) {
      tenant->mutable_limits()->set_requests_per_minute(60 * (1 + t % 50));
    }
    for (int k = 0; k < (t % 4 == 0 ? 2 : 1); ++k) {
      v1::ApiKey* key = tenant->add_api_keys();
      key->set_name(k == 0 ? "prod" : "prod-2");
      key->set_sha256(Sha256Hex(absl::StrCat("bench-key-", t, "-", k)));
    }
  }
  return topology;
}

}  // namespace spillway::bench
