// The topology rules the control plane enforces before storing and a standalone agent
// before serving: one pass that indexes the entries, then one check per entry kind.
#include "common/topology_validate.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/topology_index.h"

namespace spillway {
namespace {

constexpr std::size_t kMaxNameLength = 64;
constexpr uint32_t kMaxCapacity = 100000;
constexpr uint32_t kMaxWeight = 1000;
constexpr int kMaxTiers = 8;
constexpr uint64_t kMaxTokensPerMinute = 10'000'000'000ull;
constexpr uint64_t kMaxRequestsPerMinute = 100'000'000ull;

// Why `name` is not a usable name, or nothing. Names end up in URLs, metric labels and log
// lines, so they are kept to a small alphabet.
std::optional<std::string> NameProblem(absl::string_view name) {
  if (name.empty()) {
    return "name is empty";
  }
  if (name.size() > kMaxNameLength) {
    return absl::StrCat("name is longer than ", kMaxNameLength, " characters");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return absl::StrCat("name '", name, "' may only contain letters, digits, '-', '_' and '.'");
    }
  }
  return std::nullopt;
}

// The agent splits endpoints into host and port and appends the API path itself
// (dataplane/routing_snapshot.cc), so anything beyond scheme://host[:port][/] is refused.
std::optional<std::string> EndpointProblem(absl::string_view url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "https://") && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::StrCat("endpoint '", url, "' must start with http:// or https://");
  }
  absl::ConsumeSuffix(&rest, "/");
  for (char c : rest) {
    if (c == '/' || c == '?' || c == '#' || c == '@' || absl::ascii_isspace(c)) {
      return absl::StrCat("endpoint '", url,
                          "' must be scheme://host[:port], without path, query or credentials");
    }
  }
  absl::string_view host = rest;
  absl::string_view port;
  bool has_port = false;
  if (const std::size_t colon = rest.rfind(':'); colon != absl::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    has_port = true;
  }
  if (host.empty()) {
    return absl::StrCat("endpoint '", url, "' has no host");
  }
  // Host names ('_' for container networks) and IPv4 addresses only: the agent does not
  // parse bracketed IPv6 literals.
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.' && c != '_') {
      return absl::StrCat("endpoint '", url, "' has a malformed host");
    }
  }
  uint32_t port_number = 0;
  if (has_port &&
      (!absl::SimpleAtoi(port, &port_number) || port_number == 0 || port_number > 65535)) {
    return absl::StrCat("endpoint '", url, "' has a bad port");
  }
  return std::nullopt;
}

bool IsEnvVarName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name.front())) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') {
      return false;
    }
  }
  return true;
}

bool IsLowerHexSha256(absl::string_view hash) {
  if (hash.size() != 64) {
    return false;
  }
  for (char c : hash) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return true;
}

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
    for (int i = 0; i < topology_.stamps_size(); ++i) {
      CheckNamed("stamp", topology_.stamps(i).name(), i, stamps_, &topology_.stamps(i));
    }
    for (int i = 0; i < topology_.regions_size(); ++i) {
      CheckRegion(topology_.regions(i), i);
    }
    for (int i = 0; i < topology_.subscriptions_size(); ++i) {
      CheckNamed("subscription", topology_.subscriptions(i).name(), i, subscriptions_,
                 &topology_.subscriptions(i));
    }
    for (int i = 0; i < topology_.instances_size(); ++i) {
      CheckInstance(topology_.instances(i), i);
    }
    for (int i = 0; i < topology_.deployments_size(); ++i) {
      CheckDeployment(topology_.deployments(i), i);
    }
    for (int i = 0; i < topology_.pools_size(); ++i) {
      CheckPool(topology_.pools(i), i);
    }
    for (int i = 0; i < topology_.routes_size(); ++i) {
      CheckRoute(topology_.routes(i), i);
    }
    for (int i = 0; i < topology_.tenants_size(); ++i) {
      CheckTenant(topology_.tenants(i), i);
    }
    return std::move(problems_);
  }

 private:
  using RouteKey = std::pair<std::string, std::string>;  // stamp, name

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
    if (std::optional<std::string> problem = EndpointProblem(instance.endpoint())) {
      Add("instance", display, *std::move(problem));
    }
    const v1::InstanceAuth& auth = instance.auth();
    switch (auth.method_case()) {
      case v1::InstanceAuth::METHOD_NOT_SET:
        Add("instance", display,
            "auth sets no method; give one of managed_identity, api_key_env, api_key_file, "
            "client_credentials");
        break;
      case v1::InstanceAuth::kManagedIdentity:
        if (!auth.managed_identity()) {
          Add("instance", display, "auth.managed_identity must be true when given");
        }
        break;
      case v1::InstanceAuth::kApiKeyEnv:
        if (!IsEnvVarName(auth.api_key_env())) {
          Add("instance", display,
              absl::StrCat("auth.api_key_env '", auth.api_key_env(),
                           "' is not an environment variable name"));
        }
        break;
      case v1::InstanceAuth::kApiKeyFile:
        if (auth.api_key_file().empty()) {
          Add("instance", display, "auth.api_key_file is empty");
        }
        break;
      case v1::InstanceAuth::kClientCredentials: {
        const v1::ClientCredentials& cc = auth.client_credentials();
        if (cc.tenant_id().empty()) {
          Add("instance", display, "auth.client_credentials.tenant_id is not set");
        }
        if (cc.client_id().empty()) {
          Add("instance", display, "auth.client_credentials.client_id is not set");
        }
        if (cc.client_secret_env().empty() == cc.client_secret_file().empty()) {
          Add("instance", display,
              "auth.client_credentials needs exactly one of client_secret_env and "
              "client_secret_file");
        }
        break;
      }
    }
    if (!auth.managed_identity_client_id().empty() &&
        auth.method_case() != v1::InstanceAuth::kManagedIdentity) {
      Add("instance", display,
          "auth.managed_identity_client_id is only used with managed_identity");
    }
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
    if (deployment.sku() == v1::SKU_UNSPECIFIED) {
      Add("deployment", display, "sku is not set");
    } else if (!v1::Sku_IsValid(deployment.sku())) {
      Add("deployment", display,
          absl::StrCat("sku ", static_cast<int>(deployment.sku()), " is not a known value"));
    }
    if (deployment.model().empty()) {
      Add("deployment", display, "model is not set");
    }
    if (deployment.version().empty()) {
      Add("deployment", display, "version is not set");
    }
    if (deployment.capacity() < 1 || deployment.capacity() > kMaxCapacity) {
      Add("deployment", display,
          absl::StrCat("capacity ", deployment.capacity(), " is outside 1..", kMaxCapacity));
    }
  }

  void CheckPool(const v1::Pool& pool, int index) {
    const std::string display = Display(pool.name(), index);
    CheckNamed("pool", pool.name(), index, pools_, &pool);
    if (pool.members_size() == 0) {
      Add("pool", display, "has no members");
    }
    absl::flat_hash_set<std::string> seen;
    // First member of each stamp, in member order, to explain a pool that crosses stamps.
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
    if (stamps.size() > 1) {
      std::vector<std::string> where;
      for (const auto& [stamp, deployment] : stamps) {
        where.push_back(absl::StrCat("'", deployment, "' is in stamp ", stamp));
      }
      Add("pool", display,
          absl::StrCat("members span stamps (", absl::StrJoin(where, ", "),
                       "); a pool must stay within one stamp"));
    }
    const v1::PriorityLimits& limits = pool.priority_limits();
    if (limits.has_standard() && (limits.standard() < 1 || limits.standard() > 100)) {
      Add("pool", display,
          absl::StrCat("priority_limits.standard ", limits.standard(), " is outside 1..100"));
    }
    if (limits.has_batch() && (limits.batch() < 1 || limits.batch() > 100)) {
      Add("pool", display,
          absl::StrCat("priority_limits.batch ", limits.batch(), " is outside 1..100"));
    }
    if (limits.has_standard() && limits.has_batch() && limits.batch() > limits.standard()) {
      Add("pool", display,
          absl::StrCat("priority_limits.batch ", limits.batch(),
                       " is above priority_limits.standard ", limits.standard(),
                       "; batch traffic must be shed first"));
    }
  }

  struct Reached {
    const v1::Deployment* deployment;
    std::string tier;
  };

  // One failover list. `where` is empty for a plain route and "split <n>: " for a split.
  void CheckTierList(const v1::Route& route, absl::string_view display, absl::string_view prefix,
                     absl::string_view where,
                     const google::protobuf::RepeatedPtrField<std::string>& tiers,
                     absl::flat_hash_set<std::string>& stamp_reported) {
    auto add = [&](absl::string_view message) {
      Add("route", display, absl::StrCat(prefix, message));
    };
    if (tiers.size() > kMaxTiers) {
      add(absl::StrCat(where, "lists ", tiers.size(), " tiers; at most ", kMaxTiers,
                       " are allowed"));
    }
    const bool stamp_known = Find(stamps_, route.stamp()) != nullptr;
    absl::flat_hash_set<std::string> seen;
    std::optional<Reached> first;
    absl::flat_hash_set<const v1::Deployment*> mismatch_reported;
    for (const std::string& tier : tiers) {
      if (!seen.insert(tier).second) {
        add(absl::StrCat(where, "lists pool '", tier, "' more than once"));
        continue;
      }
      const v1::Pool* pool = Find(pools_, tier);
      if (pool == nullptr) {
        add(absl::StrCat(where, "pool '", tier, "' does not exist"));
        continue;
      }
      for (const v1::PoolMember& member : pool->members()) {
        const v1::Deployment* deployment = Find(deployments_, member.deployment());
        if (deployment == nullptr) {
          continue;  // reported on the pool
        }
        const std::string stamp = StampOf(*deployment);
        if (stamp_known && !stamp.empty() && stamp != route.stamp() &&
            stamp_reported.insert(absl::StrCat(tier, "|", member.deployment())).second) {
          add(absl::StrCat("tier '", tier, "' reaches deployment '", member.deployment(),
                           "' in stamp ", stamp));
        }
        if (!first.has_value()) {
          first = Reached{deployment, tier};
          continue;
        }
        const v1::Deployment& f = *first->deployment;
        if ((deployment->model() != f.model() || deployment->version() != f.version()) &&
            mismatch_reported.insert(deployment).second) {
          add(absl::StrCat(where, "tier '", tier, "' reaches '", member.deployment(), "' serving ",
                           deployment->model(), " ", deployment->version(), ", but tier '",
                           first->tier, "' reaches '", DeploymentId(f), "' serving ", f.model(),
                           " ", f.version(), "; failover tiers must serve one model and version"));
        }
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
    if (has_split && total != 100) {
      add(absl::StrCat("split percents add up to ", total, ", not 100"));
    }
  }

  void CheckTenant(const v1::Tenant& tenant, int index) {
    const std::string display = Display(tenant.name(), index);
    auto add = [&](std::string message) { Add("tenant", display, std::move(message)); };
    CheckNamed("tenant", tenant.name(), index, tenants_, &tenant);
    Resolve("tenant", display, "stamp", tenant.stamp(), stamps_);
    if (!v1::Priority_IsValid(tenant.priority())) {
      add(absl::StrCat("priority ", static_cast<int>(tenant.priority()), " is not a known value"));
    }
    if (tenant.limits().tokens_per_minute() > kMaxTokensPerMinute) {
      add(absl::StrCat("limits.tokens_per_minute ", tenant.limits().tokens_per_minute(),
                       " is above ", kMaxTokensPerMinute));
    }
    if (tenant.limits().requests_per_minute() > kMaxRequestsPerMinute) {
      add(absl::StrCat("limits.requests_per_minute ", tenant.limits().requests_per_minute(),
                       " is above ", kMaxRequestsPerMinute));
    }
    if (tenant.routes_size() == 0) {
      add("has no routes");
    }
    for (const std::string& route : tenant.routes()) {
      if (Find(routes_, RouteKey(tenant.stamp(), route)) != nullptr) {
        continue;
      }
      auto elsewhere = route_stamp_by_name_.find(route);
      if (tenant.stamp().empty() && elsewhere != route_stamp_by_name_.end()) {
        continue;  // its stamp is the problem, already reported
      }
      if (elsewhere == route_stamp_by_name_.end()) {
        add(absl::StrCat("route '", route, "' does not exist"));
      } else {
        add(absl::StrCat("route '", route, "' is in stamp ", elsewhere->second,
                         ", tenant is in stamp ", tenant.stamp()));
      }
    }
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
      if (!IsLowerHexSha256(key.sha256())) {
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
