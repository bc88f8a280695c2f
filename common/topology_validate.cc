// The topology rules the control plane enforces before storing and a standalone agent
// before serving: one pass that indexes the entries, then one check per entry kind. Rules
// that need no other entry live in topology_entry_rules.cc.
#include "common/topology_validate.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/drain_names.h"
#include "common/topology_entry_rules.h"
#include "common/topology_index.h"

namespace spillway {
namespace {

using topology_rules::NameProblem;

constexpr uint32_t kMaxWeight = 1000;
constexpr int kMaxTiers = 8;

// A reason is a sentence for the people who read /readyz and error messages, not a document.
constexpr std::size_t kMaxDrainReasonBytes = 500;

std::string DeploymentId(const v1::Deployment& deployment) {
  return absl::StrCat(deployment.instance(), "/", deployment.name());
}

// How an entry is named in problems: its name, or its position when it has none.
std::string Display(absl::string_view name, int index) {
  return name.empty() ? absl::StrCat("#", index + 1) : std::string(name);
}

template <typename T>
using Index = TopologyIndex<T>;

// The indexed entry, or null.
template <typename Map, typename Key>
typename Map::mapped_type Find(const Map& index, const Key& key) {
  auto it = index.find(key);
  return it == index.end() ? nullptr : it->second;
}

class Validator {
 public:
  explicit Validator(const v1::Topology& topology) : topology_(topology) {}

  std::vector<ValidationProblem> Run() {
    BuildIndexes();
    CheckEach(topology_.stamps(), [this](const v1::Stamp& stamp, int i) {
      CheckNamed("stamp", stamp.name(), i, stamps_, &stamp);
    });
    CheckEach(topology_.regions(), [this](const v1::Region& r, int i) { CheckRegion(r, i); });
    CheckEach(topology_.subscriptions(), [this](const v1::Subscription& subscription, int i) {
      CheckNamed("subscription", subscription.name(), i, subscriptions_, &subscription);
    });
    CheckEach(topology_.instances(), [this](const v1::Instance& e, int i) { CheckInstance(e, i); });
    CheckEach(topology_.deployments(),
              [this](const v1::Deployment& e, int i) { CheckDeployment(e, i); });
    CheckEach(topology_.pools(), [this](const v1::Pool& e, int i) { CheckPool(e, i); });
    CheckEach(topology_.routes(), [this](const v1::Route& e, int i) { CheckRoute(e, i); });
    CheckEach(topology_.tenants(), [this](const v1::Tenant& e, int i) { CheckTenant(e, i); });
    absl::flat_hash_set<std::string> drains;
    CheckEach(topology_.drains(), [&](const v1::Drain& e, int i) { CheckDrain(e, i, drains); });
    return std::move(problems_);
  }

 private:
  using RouteKey = std::pair<std::string, std::string>;  // stamp, name

  // A deployment a route's tiers reach, and through which tier.
  struct Reached {
    const v1::Deployment* deployment;
    std::string tier;
  };

  // What one failover list has seen so far, to report each mismatch once.
  struct TierWalk {
    std::optional<Reached> first;
    absl::flat_hash_set<const v1::Deployment*> mismatch_reported;
  };

  template <typename T, typename Check>
  static void CheckEach(const google::protobuf::RepeatedPtrField<T>& entries, Check check) {
    for (int i = 0; i < entries.size(); ++i) {
      check(entries.Get(i), i);
    }
  }

  // The first entry of a name wins; later ones are reported as duplicates by the checks.
  void BuildIndexes() {
    IndexByName(topology_.stamps(), stamps_);
    IndexByName(topology_.regions(), regions_);
    IndexByName(topology_.subscriptions(), subscriptions_);
    IndexByName(topology_.instances(), instances_);
    IndexByName(topology_.pools(), pools_);
    IndexByName(topology_.tenants(), tenants_);
    for (const v1::Deployment& d : topology_.deployments()) {
      deployments_.try_emplace(DeploymentId(d), &d);
    }
    for (const v1::Route& r : topology_.routes()) {
      routes_.try_emplace(RouteKey(r.stamp(), r.name()), &r);
      route_stamp_by_name_.try_emplace(r.name(), r.stamp());
    }
  }

  void Add(absl::string_view kind, absl::string_view name, std::string message) {
    problems_.push_back({std::string(kind), std::string(name), std::move(message)});
  }

  void AddAll(absl::string_view kind, absl::string_view name, std::vector<std::string> messages) {
    for (std::string& message : messages) {
      Add(kind, name, std::move(message));
    }
  }

  // Name rules and uniqueness for entries identified by their name alone.
  template <typename T>
  void CheckNamed(absl::string_view kind, const std::string& name, int index,
                  const Index<T>& by_name, const T* entry) {
    const std::string display = Display(name, index);
    if (std::optional<std::string> problem = NameProblem(name)) {
      Add(kind, display, *std::move(problem));
    } else if (Find(by_name, name) != entry) {
      Add(kind, display, "is declared more than once");
    }
  }

  // Reports an unset or unknown reference; returns the entry it names, if any.
  template <typename T>
  const T* Resolve(absl::string_view kind, absl::string_view display, absl::string_view field,
                   const std::string& value, const Index<T>& index) {
    if (value.empty()) {
      Add(kind, display, absl::StrCat(field, " is not set"));
      return nullptr;
    }
    const T* found = Find(index, value);
    if (found == nullptr) {
      Add(kind, display, absl::StrCat(field, " '", value, "' does not exist"));
    }
    return found;
  }

  // The stamp a deployment lives in, through instance -> region -> stamp; empty when a link
  // is missing (that is reported where the link is declared).
  std::string StampOf(const v1::Deployment& deployment) const {
    const v1::Instance* instance = Find(instances_, deployment.instance());
    const v1::Region* region = instance == nullptr ? nullptr : Find(regions_, instance->region());
    if (region == nullptr || Find(stamps_, region->stamp()) == nullptr) {
      return "";
    }
    return region->stamp();
  }

  void CheckRegion(const v1::Region& region, int index) {
    CheckNamed("region", region.name(), index, regions_, &region);
    Resolve("region", Display(region.name(), index), "stamp", region.stamp(), stamps_);
  }

  void CheckInstance(const v1::Instance& instance, int index) {
    const std::string display = Display(instance.name(), index);
    CheckNamed("instance", instance.name(), index, instances_, &instance);
    Resolve("instance", display, "region", instance.region(), regions_);
    Resolve("instance", display, "subscription", instance.subscription(), subscriptions_);
    if (std::optional<std::string> problem =
            topology_rules::EndpointProblem(instance.endpoint(), instance.insecure_http())) {
      Add("instance", display, *std::move(problem));
    }
    AddAll("instance", display, topology_rules::AuthProblems(instance.auth()));
  }

  void CheckDeployment(const v1::Deployment& deployment, int index) {
    const std::string id = DeploymentId(deployment);
    const std::string display =
        deployment.instance().empty() && deployment.name().empty() ? Display("", index) : id;
    Resolve("deployment", display, "instance", deployment.instance(), instances_);
    if (std::optional<std::string> problem = NameProblem(deployment.name())) {
      Add("deployment", display, *std::move(problem));
    } else if (Find(deployments_, id) != &deployment) {
      Add("deployment", display, "is declared more than once on its instance");
    }
    AddAll("deployment", display, topology_rules::DeploymentFieldProblems(deployment));
  }

  void CheckPool(const v1::Pool& pool, int index) {
    const std::string display = Display(pool.name(), index);
    CheckNamed("pool", pool.name(), index, pools_, &pool);
    if (pool.members_size() == 0) {
      Add("pool", display, "has no members");
    }
    CheckPoolStamps(display, CheckPoolMembers(pool, display));
    AddAll("pool", display, topology_rules::PriorityLimitsProblems(pool.priority_limits()));
  }

  // Member references, repeats and weights. Returns the first member of each stamp the
  // members live in, in member order, to explain a pool that crosses stamps.
  std::vector<std::pair<std::string, std::string>> CheckPoolMembers(const v1::Pool& pool,
                                                                    absl::string_view display) {
    absl::flat_hash_set<std::string> seen;
    std::vector<std::pair<std::string, std::string>> stamps;
    for (const v1::PoolMember& member : pool.members()) {
      const v1::Deployment* deployment =
          Resolve("pool", display, "member deployment", member.deployment(), deployments_);
      if (!member.deployment().empty() && !seen.insert(member.deployment()).second) {
        Add("pool", display,
            absl::StrCat("lists deployment '", member.deployment(), "' more than once"));
      }
      if (member.has_weight() && (member.weight() < 1 || member.weight() > kMaxWeight)) {
        Add("pool", display,
            absl::StrCat("member '", member.deployment(), "' weight ", member.weight(),
                         " is outside 1..", kMaxWeight));
      }
      if (deployment != nullptr) {
        std::string stamp = StampOf(*deployment);
        bool known = stamp.empty();
        for (const auto& [s, unused] : stamps) {
          known = known || s == stamp;
        }
        if (!known) {
          stamps.emplace_back(std::move(stamp), member.deployment());
        }
      }
    }
    return stamps;
  }

  // `stamps` holds (stamp, first member there) pairs.
  void CheckPoolStamps(absl::string_view display,
                       const std::vector<std::pair<std::string, std::string>>& stamps) {
    if (stamps.size() <= 1) {
      return;
    }
    std::vector<std::string> where;
    for (const auto& [stamp, deployment] : stamps) {
      where.push_back(absl::StrCat("'", deployment, "' is in stamp ", stamp));
    }
    Add("pool", display,
        absl::StrCat("members span stamps (", absl::StrJoin(where, ", "),
                     "); a pool must stay within one stamp"));
  }

  // One failover list. `where` is empty for a plain route and "split <n>: " for a split.
  void CheckTierList(const v1::Route& route, absl::string_view display, absl::string_view prefix,
                     absl::string_view where,
                     const google::protobuf::RepeatedPtrField<std::string>& tiers,
                     absl::flat_hash_set<std::string>& stamp_reported) {
    if (tiers.size() > kMaxTiers) {
      Add("route", display,
          absl::StrCat(prefix, where, "lists ", tiers.size(), " tiers; at most ", kMaxTiers,
                       " are allowed"));
    }
    absl::flat_hash_set<std::string> seen;
    TierWalk walk;
    for (const std::string& tier : tiers) {
      if (!seen.insert(tier).second) {
        Add("route", display,
            absl::StrCat(prefix, where, "lists pool '", tier, "' more than once"));
        continue;
      }
      const v1::Pool* pool = Find(pools_, tier);
      if (pool == nullptr) {
        Add("route", display, absl::StrCat(prefix, where, "pool '", tier, "' does not exist"));
        continue;
      }
      CheckTierReach(route, display, prefix, where, *pool, walk, stamp_reported);
    }
  }

  // The deployments one tier reaches: each in the route's stamp, and all serving the model and
  // version of the first deployment the list reaches.
  void CheckTierReach(const v1::Route& route, absl::string_view display, absl::string_view prefix,
                      absl::string_view where, const v1::Pool& pool, TierWalk& walk,
                      absl::flat_hash_set<std::string>& stamp_reported) {
    const std::string& tier = pool.name();
    const bool stamp_known = Find(stamps_, route.stamp()) != nullptr;
    for (const v1::PoolMember& member : pool.members()) {
      const v1::Deployment* deployment = Find(deployments_, member.deployment());
      if (deployment == nullptr) {
        continue;  // reported on the pool
      }
      const std::string stamp = StampOf(*deployment);
      if (stamp_known && !stamp.empty() && stamp != route.stamp() &&
          stamp_reported.insert(absl::StrCat(tier, "|", member.deployment())).second) {
        Add("route", display,
            absl::StrCat(prefix, "tier '", tier, "' reaches deployment '", member.deployment(),
                         "' in stamp ", stamp));
      }
      if (!walk.first.has_value()) {
        walk.first = Reached{deployment, tier};
        continue;
      }
      const v1::Deployment& f = *walk.first->deployment;
      if ((deployment->model() != f.model() || deployment->version() != f.version()) &&
          walk.mismatch_reported.insert(deployment).second) {
        Add("route", display,
            absl::StrCat(prefix, where, "tier '", tier, "' reaches '", member.deployment(),
                         "' serving ", deployment->model(), " ", deployment->version(),
                         ", but tier '", walk.first->tier, "' reaches '", DeploymentId(f),
                         "' serving ", f.model(), " ", f.version(),
                         "; failover tiers must serve one model and version"));
      }
    }
  }

  void CheckRoute(const v1::Route& route, int index) {
    const std::string display = Display(route.name(), index);
    const std::string prefix =
        route.stamp().empty() ? "" : absl::StrCat("(stamp ", route.stamp(), ") ");
    auto add = [&](absl::string_view message) {
      Add("route", display, absl::StrCat(prefix, message));
    };
    if (std::optional<std::string> problem = NameProblem(route.name())) {
      add(*problem);
    } else if (Find(routes_, RouteKey(route.stamp(), route.name())) != &route) {
      add("is declared more than once in its stamp");
    }
    if (route.stamp().empty()) {
      add("stamp is not set");
    } else if (Find(stamps_, route.stamp()) == nullptr) {
      add(absl::StrCat("stamp '", route.stamp(), "' does not exist"));
    }
    if (!v1::Locality_IsValid(route.locality())) {
      add(absl::StrCat("locality ", static_cast<int>(route.locality()), " is not a known value"));
    }
    for (const std::string& problem : topology_rules::RouteFieldProblems(route)) {
      add(problem);
    }
    const bool has_tiers = route.tiers_size() > 0;
    const bool has_split = route.split_size() > 0;
    if (has_tiers && has_split) {
      add("has both tiers and split; give one of them");
    } else if (!has_tiers && !has_split) {
      add("has neither tiers nor split");
    }
    absl::flat_hash_set<std::string> stamp_reported;
    if (has_tiers) {
      CheckTierList(route, display, prefix, "", route.tiers(), stamp_reported);
    }
    CheckSplits(route, display, prefix, stamp_reported);
  }

  void CheckSplits(const v1::Route& route, absl::string_view display, absl::string_view prefix,
                   absl::flat_hash_set<std::string>& stamp_reported) {
    auto add = [&](absl::string_view message) {
      Add("route", display, absl::StrCat(prefix, message));
    };
    uint64_t total = 0;
    for (int i = 0; i < route.split_size(); ++i) {
      const v1::RouteSplit& split = route.split(i);
      const std::string label = absl::StrCat("split ", i + 1);
      total += split.percent();
      if (split.percent() < 1 || split.percent() > 100) {
        add(absl::StrCat(label, " percent ", split.percent(), " is outside 1..100"));
      }
      if (split.tiers_size() == 0) {
        add(absl::StrCat(label, " has no tiers"));
      }
      CheckTierList(route, display, prefix, absl::StrCat(label, ": "), split.tiers(),
                    stamp_reported);
    }
    if (route.split_size() > 0 && total != 100) {
      add(absl::StrCat("split percents add up to ", total, ", not 100"));
    }
  }

  void CheckTenant(const v1::Tenant& tenant, int index) {
    const std::string display = Display(tenant.name(), index);
    CheckNamed("tenant", tenant.name(), index, tenants_, &tenant);
    Resolve("tenant", display, "stamp", tenant.stamp(), stamps_);
    AddAll("tenant", display, topology_rules::TenantFieldProblems(tenant));
    if (tenant.routes_size() == 0) {
      Add("tenant", display, "has no routes");
    }
    CheckTenantRoutes(tenant, display);
    CheckTenantKeys(tenant, display);
  }

  void CheckTenantRoutes(const v1::Tenant& tenant, absl::string_view display) {
    for (const std::string& route : tenant.routes()) {
      if (Find(routes_, RouteKey(tenant.stamp(), route)) != nullptr) {
        continue;
      }
      auto elsewhere = route_stamp_by_name_.find(route);
      if (tenant.stamp().empty() && elsewhere != route_stamp_by_name_.end()) {
        continue;  // its stamp is the problem, already reported
      }
      if (elsewhere == route_stamp_by_name_.end()) {
        Add("tenant", display, absl::StrCat("route '", route, "' does not exist"));
      } else {
        Add("tenant", display,
            absl::StrCat("route '", route, "' is in stamp ", elsewhere->second,
                         ", tenant is in stamp ", tenant.stamp()));
      }
    }
  }

  // Key names are unique within a tenant, key hashes across the whole topology.
  void CheckTenantKeys(const v1::Tenant& tenant, const std::string& display) {
    auto add = [&](std::string message) { Add("tenant", display, std::move(message)); };
    absl::flat_hash_set<std::string> key_names;
    for (int i = 0; i < tenant.api_keys_size(); ++i) {
      const v1::ApiKey& key = tenant.api_keys(i);
      const std::string key_display =
          key.name().empty() ? absl::StrCat("#", i + 1) : absl::StrCat("'", key.name(), "'");
      if (std::optional<std::string> problem = NameProblem(key.name())) {
        add(absl::StrCat("api key ", key_display, ": ", *problem));
      } else if (!key_names.insert(key.name()).second) {
        add(absl::StrCat("api key name '", key.name(), "' is used more than once"));
      }
      if (!topology_rules::IsLowerHexSha256(key.sha256())) {
        add(absl::StrCat("api key ", key_display, ": sha256 must be 64 lowercase hex characters"));
        continue;
      }
      auto [it, inserted] = key_owner_.try_emplace(key.sha256(), display, key_display);
      if (!inserted) {
        add(absl::StrCat("api key ", key_display, " has the same sha256 as api key ",
                         it->second.second, " of tenant '", it->second.first, "'"));
      }
    }
  }

  const v1::Topology& topology_;
  Index<v1::Stamp> stamps_;
  Index<v1::Region> regions_;
  Index<v1::Subscription> subscriptions_;
  Index<v1::Instance> instances_;
  Index<v1::Deployment> deployments_;  // by "<instance>/<name>"
  Index<v1::Pool> pools_;
  Index<v1::Tenant> tenants_;
  absl::flat_hash_map<RouteKey, const v1::Route*> routes_;
  // Some stamp holding a route of that name, to tell "wrong stamp" from "no such route".
  absl::flat_hash_map<std::string, std::string> route_stamp_by_name_;
  // sha256 -> (tenant, key) of its first holder.
  absl::flat_hash_map<std::string, std::pair<std::string, std::string>> key_owner_;
  // A drain names an existing region, instance or deployment, once.
  void CheckDrain(const v1::Drain& drain, int index, absl::flat_hash_set<std::string>& seen) {
    const std::string display = Display(drain.name().empty() ? "" : DrainId(drain), index);
    switch (drain.scope()) {
      case v1::DRAIN_SCOPE_REGION:
        Resolve("drain", display, "region", drain.name(), regions_);
        break;
      case v1::DRAIN_SCOPE_INSTANCE:
        Resolve("drain", display, "instance", drain.name(), instances_);
        break;
      case v1::DRAIN_SCOPE_DEPLOYMENT:
        Resolve("drain", display, "deployment", drain.name(), deployments_);
        break;
      default:
        Add("drain", display, "scope must be region, instance or deployment");
        return;
    }
    if (!seen.insert(DrainId(drain)).second) {
      Add("drain", display, "is declared more than once");
    }
    if (drain.reason().size() > kMaxDrainReasonBytes) {
      Add("drain", display,
          absl::StrCat("reason is ", drain.reason().size(), " bytes; at most ",
                       kMaxDrainReasonBytes));
    }
    // The reason travels in /readyz bodies, error messages and log lines.
    if (absl::c_any_of(drain.reason(), [](char c) { return absl::ascii_iscntrl(c); })) {
      Add("drain", display, "reason must not hold control characters");
    }
  }

  std::vector<ValidationProblem> problems_;
};

}  // namespace

std::vector<ValidationProblem> ValidateTopology(const v1::Topology& topology) {
  return Validator(topology).Run();
}

absl::Status ValidationStatus(const std::vector<ValidationProblem>& problems) {
  if (problems.empty()) {
    return absl::OkStatus();
  }
  // A header then one indented line per problem: readable when printed as is by a CLI.
  std::string message = absl::StrCat("topology invalid (", problems.size(),
                                     problems.size() == 1 ? " problem):" : " problems):");
  for (const ValidationProblem& problem : problems) {
    absl::StrAppend(&message, "\n  ", problem.kind, " '", problem.name, "': ", problem.message);
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace spillway
