// See views.h. Columns favour what an operator scans for (names, models, capacity, limits);
// everything else is one `-o yaml` away. Key hashes never appear in a table.
#include "controlplane/cli/views.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_yaml.h"
#include "common/topology_compile.h"

namespace spillway::cli {
namespace {

struct KindNames {
  v1::Kind kind;
  absl::string_view singular;
  absl::string_view plural;
};

constexpr KindNames kKindNames[] = {
    {v1::KIND_STAMP, "stamp", "stamps"},
    {v1::KIND_REGION, "region", "regions"},
    {v1::KIND_SUBSCRIPTION, "subscription", "subscriptions"},
    {v1::KIND_INSTANCE, "instance", "instances"},
    {v1::KIND_DEPLOYMENT, "deployment", "deployments"},
    {v1::KIND_POOL, "pool", "pools"},
    {v1::KIND_ROUTE, "route", "routes"},
    {v1::KIND_TENANT, "tenant", "tenants"},
    {v1::KIND_DRAIN, "drain", "drains"},
};

// The spelling operators write in YAML (ProvisionedManaged, prefer-local, batch).
std::string YamlName(const google::protobuf::EnumDescriptor* type, int number) {
  const google::protobuf::EnumValueDescriptor* value = type->FindValueByNumber(number);
  if (value == nullptr) {
    return absl::StrCat(number);
  }
  return EnumYamlName(value);
}

std::string Limit(uint64_t value) { return value == 0 ? "unlimited" : absl::StrCat(value); }

std::string AuthSummary(const v1::InstanceAuth& auth) {
  switch (auth.method_case()) {
    case v1::InstanceAuth::kManagedIdentity:
      return auth.managed_identity_client_id().empty()
                 ? "managed-identity"
                 : absl::StrCat("managed-identity:", auth.managed_identity_client_id());
    case v1::InstanceAuth::kApiKeyEnv:
      return absl::StrCat("env:", auth.api_key_env());
    case v1::InstanceAuth::kApiKeyFile:
      return absl::StrCat("file:", auth.api_key_file());
    case v1::InstanceAuth::kClientCredentials:
      return absl::StrCat("client-credentials:", auth.client_credentials().client_id());
    case v1::InstanceAuth::METHOD_NOT_SET:
      break;
  }
  return "";
}

std::string Tiers(const google::protobuf::RepeatedPtrField<std::string>& tiers) {
  return absl::StrJoin(tiers, " > ");
}

std::string RouteTiers(const v1::Route& route) {
  if (route.split_size() == 0) {
    return Tiers(route.tiers());
  }
  std::vector<std::string> splits;
  for (const v1::RouteSplit& split : route.split()) {
    splits.push_back(absl::StrCat(split.percent(), "% ", Tiers(split.tiers())));
  }
  return absl::StrJoin(splits, " | ");
}

std::string PoolMembers(const v1::Pool& pool) {
  std::vector<std::string> members;
  for (const v1::PoolMember& member : pool.members()) {
    members.push_back(member.has_weight() ? absl::StrCat(member.deployment(), "=", member.weight())
                                          : member.deployment());
  }
  return absl::StrJoin(members, ",");
}

std::string PriorityLimits(const v1::Pool& pool) {
  std::vector<std::string> limits;
  if (pool.priority_limits().has_standard()) {
    limits.push_back(absl::StrCat("standard<=", pool.priority_limits().standard(), "%"));
  }
  if (pool.priority_limits().has_batch()) {
    limits.push_back(absl::StrCat("batch<=", pool.priority_limits().batch(), "%"));
  }
  return absl::StrJoin(limits, ",");
}

// "12s ago" or "in 12s"; `zero_text` when the timestamp is unset.
std::string Relative(int64_t unix_ms, absl::Time now, absl::string_view zero_text) {
  if (unix_ms == 0) {
    return std::string(zero_text);
  }
  const absl::Duration delta = absl::FromUnixMillis(unix_ms) - now;
  if (delta > absl::ZeroDuration()) {
    return absl::StrCat("in ", ShortDuration(delta));
  }
  return absl::StrCat(ShortDuration(-delta), " ago");
}

}  // namespace

const std::vector<v1::Kind>& AllKinds() {
  static const std::vector<v1::Kind> kinds = [] {
    std::vector<v1::Kind> all;
    for (const KindNames& names : kKindNames) {
      all.push_back(names.kind);
    }
    return all;
  }();
  return kinds;
}

absl::string_view KindSingular(v1::Kind kind) {
  for (const KindNames& names : kKindNames) {
    if (names.kind == kind) {
      return names.singular;
    }
  }
  return "entry";
}

absl::string_view KindPlural(v1::Kind kind) {
  for (const KindNames& names : kKindNames) {
    if (names.kind == kind) {
      return names.plural;
    }
  }
  return "entries";
}

absl::StatusOr<v1::Kind> ParseKind(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  std::vector<absl::string_view> known;
  for (const KindNames& names : kKindNames) {
    if (lower == names.singular || lower == names.plural) {
      return names.kind;
    }
    known.push_back(names.plural);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown kind '", text, "' (known: ", absl::StrJoin(known, ", "), ")"));
}

int CountOfKind(const v1::Topology& topology, v1::Kind kind) {
  switch (kind) {
    case v1::KIND_STAMP:
      return topology.stamps_size();
    case v1::KIND_REGION:
      return topology.regions_size();
    case v1::KIND_SUBSCRIPTION:
      return topology.subscriptions_size();
    case v1::KIND_INSTANCE:
      return topology.instances_size();
    case v1::KIND_DEPLOYMENT:
      return topology.deployments_size();
    case v1::KIND_POOL:
      return topology.pools_size();
    case v1::KIND_ROUTE:
      return topology.routes_size();
    case v1::KIND_TENANT:
      return topology.tenants_size();
    case v1::KIND_DRAIN:
      return topology.drains_size();
    default:
      break;
  }
  int total = 0;
  for (v1::Kind each : AllKinds()) {
    total += CountOfKind(topology, each);
  }
  return total;
}

Table KindTable(const v1::Topology& topology, v1::Kind kind) {
  Table table;
  switch (kind) {
    case v1::KIND_STAMP:
      table.headers = {"NAME", "DESCRIPTION"};
      for (const v1::Stamp& stamp : topology.stamps()) {
        table.AddRow({stamp.name(), stamp.description()});
      }
      break;
    case v1::KIND_REGION:
      table.headers = {"NAME", "STAMP"};
      for (const v1::Region& region : topology.regions()) {
        table.AddRow({region.name(), region.stamp()});
      }
      break;
    case v1::KIND_SUBSCRIPTION:
      table.headers = {"NAME", "ID"};
      for (const v1::Subscription& subscription : topology.subscriptions()) {
        table.AddRow({subscription.name(), subscription.id()});
      }
      break;
    case v1::KIND_INSTANCE:
      table.headers = {"NAME", "REGION", "SUBSCRIPTION", "ENDPOINT", "AUTH"};
      for (const v1::Instance& instance : topology.instances()) {
        table.AddRow({instance.name(), instance.region(), instance.subscription(),
                      instance.endpoint(), AuthSummary(instance.auth())});
      }
      break;
    case v1::KIND_DEPLOYMENT:
      table.headers = {"INSTANCE", "NAME", "MODEL", "VERSION", "SKU", "CAPACITY"};
      table.align = {Align::kLeft, Align::kLeft, Align::kLeft,
                     Align::kLeft, Align::kLeft, Align::kRight};
      for (const v1::Deployment& deployment : topology.deployments()) {
        // Azure sizes provisioned deployments in PTU, the others in thousands of TPM.
        const std::string capacity = IsProvisioned(deployment.sku())
                                         ? absl::StrCat(deployment.capacity(), " PTU")
                                         : absl::StrCat(deployment.capacity(), "K TPM");
        table.AddRow({deployment.instance(), deployment.name(), deployment.model(),
                      deployment.version(), YamlName(v1::Sku_descriptor(), deployment.sku()),
                      capacity});
      }
      break;
    case v1::KIND_POOL:
      table.headers = {"NAME", "MEMBERS", "PRIORITY_LIMITS"};
      for (const v1::Pool& pool : topology.pools()) {
        table.AddRow({pool.name(), PoolMembers(pool), PriorityLimits(pool)});
      }
      break;
    case v1::KIND_ROUTE:
      table.headers = {"STAMP", "NAME", "LOCALITY", "TIERS"};
      for (const v1::Route& route : topology.routes()) {
        // An unspecified locality means prefer-local; say what the agent will do.
        const v1::Locality locality = route.locality() == v1::LOCALITY_UNSPECIFIED
                                          ? v1::LOCALITY_PREFER_LOCAL
                                          : route.locality();
        table.AddRow({route.stamp(), route.name(), YamlName(v1::Locality_descriptor(), locality),
                      RouteTiers(route)});
      }
      break;
    case v1::KIND_TENANT:
      table.headers = {"NAME", "STAMP", "PRIORITY", "ROUTES", "TPM", "RPM", "KEYS"};
      table.align = {Align::kLeft,  Align::kLeft,  Align::kLeft, Align::kLeft,
                     Align::kRight, Align::kRight, Align::kLeft};
      for (const v1::Tenant& tenant : topology.tenants()) {
        const v1::Priority priority = tenant.priority() == v1::PRIORITY_UNSPECIFIED
                                          ? v1::PRIORITY_STANDARD
                                          : tenant.priority();
        std::vector<std::string> keys;
        for (const v1::ApiKey& key : tenant.api_keys()) {
          keys.push_back(key.name());
        }
        table.AddRow({tenant.name(), tenant.stamp(), YamlName(v1::Priority_descriptor(), priority),
                      absl::StrJoin(tenant.routes(), ","),
                      Limit(tenant.limits().tokens_per_minute()),
                      Limit(tenant.limits().requests_per_minute()), absl::StrJoin(keys, ",")});
      }
      break;
    case v1::KIND_DRAIN:
      table.headers = {"SCOPE", "NAME", "SINCE", "KEEP_PINNED", "REASON"};
      for (const v1::Drain& drain : topology.drains()) {
        table.AddRow({YamlName(v1::DrainScope_descriptor(), drain.scope()), drain.name(),
                      drain.since(), drain.keep_pinned() ? "yes" : "no", drain.reason()});
      }
      break;
    default:
      break;
  }
  return table;
}

std::string RenderTopologyTables(const v1::Topology& topology) {
  std::string out;
  for (v1::Kind kind : AllKinds()) {
    if (CountOfKind(topology, kind) == 0) {
      continue;
    }
    if (!out.empty()) {
      out += "\n";
    }
    absl::StrAppend(&out, absl::AsciiStrToUpper(KindPlural(kind)), ":\n",
                    RenderTable(KindTable(topology, kind)));
  }
  return out;
}

std::string RenderDiff(const v1::ApplyResponse& response, bool dry_run) {
  std::string out;
  for (const v1::DiffEntry& entry : response.diff()) {
    absl::string_view mark = "?";
    switch (entry.change()) {
      case v1::DiffEntry::CHANGE_ADDED:
        mark = "+";
        break;
      case v1::DiffEntry::CHANGE_CHANGED:
        mark = "~";
        break;
      case v1::DiffEntry::CHANGE_REMOVED:
        mark = "-";
        break;
      default:
        break;
    }
    absl::StrAppend(&out, mark, " ", KindSingular(entry.kind()), " ", entry.name(), "\n");
  }
  if (response.diff_size() == 0 && !response.changed()) {
    absl::StrAppend(&out, "no changes (version ", response.version(), ")\n");
  } else if (dry_run) {
    absl::StrAppend(&out, "dry run: nothing stored (version ", response.version(), ")\n");
  } else {
    absl::StrAppend(&out, "applied version ", response.version(), "\n");
  }
  return out;
}

Table AgentsTable(const v1::ListAgentsResponse& response, absl::Time now) {
  std::vector<const v1::AgentInfo*> agents;
  for (const v1::AgentInfo& agent : response.agents()) {
    agents.push_back(&agent);
  }
  std::sort(agents.begin(), agents.end(), [](const v1::AgentInfo* a, const v1::AgentInfo* b) {
    return std::tie(a->region(), a->agent_id()) < std::tie(b->region(), b->agent_id());
  });
  // Which replica an agent's stream is on, where control planes run as replicas.
  const bool replicas = std::any_of(agents.begin(), agents.end(), [](const v1::AgentInfo* agent) {
    return !agent->replica().empty();
  });
  Table table;
  table.headers = {"AGENT", "REGION", "ACKED_VERSION", "CONNECTED", "LAST_SEEN", "NACK"};
  if (replicas) {
    table.headers.insert(table.headers.begin() + 4, "REPLICA");
  }
  table.align = {Align::kLeft, Align::kLeft, Align::kRight};
  for (const v1::AgentInfo* agent : agents) {
    std::vector<std::string> row = {agent->agent_id(),
                                    agent->region(),
                                    absl::StrCat(agent->acked_version()),
                                    agent->connected() ? "yes" : "no",
                                    Relative(agent->last_seen_unix_ms(), now, "never"),
                                    agent->last_nack_reason()};
    if (replicas) {
      row.insert(row.begin() + 4, agent->replica());
    }
    table.AddRow(std::move(row));
  }
  return table;
}

Table HealthTable(const v1::HealthOverlay& overlay, absl::Time now) {
  std::vector<const v1::BackendHealth*> backends;
  for (const v1::BackendHealth& backend : overlay.backends()) {
    backends.push_back(&backend);
  }
  std::sort(backends.begin(), backends.end(),
            [](const v1::BackendHealth* a, const v1::BackendHealth* b) {
              return a->backend_id() < b->backend_id();
            });
  Table table;
  table.headers = {"BACKEND", "STATE", "UNTIL", "REPORTED_BY", "REASON"};
  for (const v1::BackendHealth* backend : backends) {
    std::string state = "unknown";
    switch (backend->state()) {
      case v1::HEALTH_STATE_HEALTHY:
        state = "healthy";
        break;
      case v1::HEALTH_STATE_THROTTLED:
        state = "throttled";
        break;
      case v1::HEALTH_STATE_UNHEALTHY:
        state = "unhealthy";
        break;
      case v1::HEALTH_STATE_HALF_OPEN:
        state = "half-open";
        break;
      default:
        break;
    }
    table.AddRow({backend->backend_id(), state, Relative(backend->until_unix_ms(), now, ""),
                  backend->reported_by(), backend->reason()});
  }
  return table;
}

Table UsageTable(const v1::UsageQueryResponse& response, const std::vector<std::string>& group_by) {
  Table table;
  for (const std::string& dimension : group_by) {
    table.headers.push_back(absl::AsciiStrToUpper(dimension));
    table.align.push_back(Align::kLeft);
  }
  for (absl::string_view counter :
       {"REQUESTS", "PROMPT", "COMPLETION", "CACHED", "TOTAL", "FAILED", "THROTTLED"}) {
    table.headers.emplace_back(counter);
    table.align.push_back(Align::kRight);
  }
  for (const v1::UsageRow& row : response.rows()) {
    std::vector<std::string> cells;
    for (const std::string& dimension : group_by) {
      const auto it = row.key().find(dimension);
      cells.push_back(it == row.key().end() ? "" : it->second);
    }
    for (uint64_t count :
         {row.requests(), row.prompt_tokens(), row.completion_tokens(), row.cached_tokens(),
          row.total_tokens(), row.failed_requests(), row.throttled_requests()}) {
      cells.push_back(absl::StrCat(count));
    }
    table.AddRow(std::move(cells));
  }
  return table;
}

std::string ShortDuration(absl::Duration duration) {
  const int64_t seconds = absl::ToInt64Seconds(duration);
  if (seconds < 120) {
    return absl::StrCat(seconds, "s");
  }
  if (seconds < 120 * 60) {
    return absl::StrCat(seconds / 60, "m");
  }
  if (seconds < 48 * 3600) {
    return absl::StrCat(seconds / 3600, "h");
  }
  return absl::StrCat(seconds / 86400, "d");
}

}  // namespace spillway::cli
