// See drill_report.h.
#include "controlplane/fleet/drill_report.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/drain_names.h"

namespace spillway {
namespace {

// The agents' slot length (dataplane/usage/traffic_slots.h; the control plane does not
// include agent code).
constexpr int64_t kSlotMs = 100;

struct BackendFacts {
  std::string region;
  std::string tier;
};

absl::flat_hash_map<std::string, BackendFacts> FactsByBackend(const v1::Topology& topology) {
  absl::flat_hash_map<std::string, std::string> region_of_instance;
  for (const v1::Instance& instance : topology.instances()) {
    region_of_instance[instance.name()] = instance.region();
  }
  absl::flat_hash_map<std::string, BackendFacts> facts;
  for (const v1::Deployment& deployment : topology.deployments()) {
    facts[absl::StrCat(deployment.instance(), "/", deployment.name())] = {
        region_of_instance[deployment.instance()],
        IsProvisioned(deployment.sku()) ? "provisioned" : "standard"};
  }
  return facts;
}

std::string PriorityName(v1::Priority priority) {
  switch (priority) {
    case v1::PRIORITY_CRITICAL:
      return "critical";
    case v1::PRIORITY_BATCH:
      return "batch";
    case v1::PRIORITY_STANDARD:
      return "standard";
    default:
      return "none";
  }
}

// One agent's line of the report, and what its slots add to the fleet's totals.
v1::DrillAgentTraffic AgentLine(const AgentTraffic& agent, const DrillWindow& window,
                                const absl::flat_hash_map<std::string, BackendFacts>& facts,
                                v1::DrillReport& report,
                                absl::flat_hash_map<std::string, uint64_t>& shares) {
  v1::DrillAgentTraffic line;
  line.set_agent_id(agent.agent_id);
  line.set_region(agent.region);
  int64_t last_to_region = -1;  // end of the last slot with requests to the region, in drill
  int64_t first_back = -1;      // start of the first such slot after the restore
  for (const v1::TrafficSlot& slot : agent.slots) {
    const auto found = facts.find(slot.backend_id());
    const bool to_region = found != facts.end() && found->second.region == window.region;
    const int64_t at = slot.slot_unix_ms();
    // A slot holding the drain or the restore is split by where its requests went: those to
    // the region on the side where the region was in, the others on the drill's side. The
    // report is exact to a slot, 100 ms.
    const bool in_drill_for_others =
        at + kSlotMs > window.drained_ms && (window.restored_ms == 0 || at < window.restored_ms);
    const bool in_drill_for_region =
        at >= window.drained_ms && (window.restored_ms == 0 || at + kSlotMs <= window.restored_ms);
    if (at < window.drained_ms && (to_region || !in_drill_for_others)) {
      line.set_to_region_before(line.to_region_before() + (to_region ? slot.requests() : 0));
      continue;
    }
    if (to_region ? in_drill_for_region : in_drill_for_others) {
      line.set_requests_during(line.requests_during() + slot.requests());
      report.set_requests_during(report.requests_during() + slot.requests());
      if (to_region) {
        line.set_to_region_during(line.to_region_during() + slot.requests());
        last_to_region = std::max(last_to_region, at + kSlotMs);
      }
      if (!slot.backend_id().empty()) {
        shares[slot.backend_id()] += slot.requests();
      }
      if (slot.status() >= 400) {
        (*report.mutable_client_errors())[slot.status()] += slot.requests();
      }
      if (slot.status() == 429) {
        (*report.mutable_shed_by_priority())[PriorityName(slot.priority())] += slot.requests();
      }
      if (slot.retried() > 0) {
        (*report.mutable_retried_by_priority())[PriorityName(slot.priority())] += slot.retried();
      }
    } else if (to_region && (first_back < 0 || at < first_back)) {
      first_back = at;
    }
  }
  if (line.to_region_before() == 0 && line.to_region_during() == 0) {
    line.set_left_after_ms(-1);
  } else {
    line.set_left_after_ms(last_to_region < 0 ? 0 : last_to_region - window.drained_ms);
  }
  line.set_back_after_ms(first_back < 0 ? -1
                                        : std::max<int64_t>(0, first_back - window.restored_ms));
  report.set_slots_dropped(report.slots_dropped() + agent.dropped);
  return line;
}

// The backends a new request of `route` tries first: the first tier with an eligible member,
// its local members when the route prefers or requires them (as the agents' router does).
std::vector<std::string> FirstChoice(const v1::RoutingTable& table,
                                     const v1::CompiledRoute& route) {
  std::vector<std::string> ids;
  for (const v1::CompiledSplit& split : route.splits()) {
    for (const v1::CompiledTier& tier : split.tiers()) {
      std::vector<const v1::TierMember*> live;
      bool any_local = false;
      for (const v1::TierMember& member : tier.members()) {
        const v1::Backend& backend = table.backends(static_cast<int>(member.backend()));
        if (backend.has_drain() ||
            (route.locality() == v1::LOCALITY_LOCAL_ONLY && !member.local())) {
          continue;
        }
        live.push_back(&member);
        any_local |= member.local();
      }
      for (const v1::TierMember* member : live) {
        if (!any_local || route.locality() == v1::LOCALITY_ANY || member->local()) {
          ids.push_back(table.backends(static_cast<int>(member->backend())).id());
        }
      }
      if (!ids.empty()) {
        break;
      }
    }
    if (!ids.empty()) {
      break;  // the first split stands for the route: a canary moves the same way
    }
  }
  return ids;
}

}  // namespace

v1::DrillReport BuildDrillReport(const v1::Topology& topology, const DrillWindow& window,
                                 const std::vector<AgentTraffic>& traffic) {
  const absl::flat_hash_map<std::string, BackendFacts> facts = FactsByBackend(topology);
  v1::DrillReport report;
  absl::flat_hash_map<std::string, uint64_t> shares;
  for (const AgentTraffic& agent : traffic) {
    *report.add_agents() = AgentLine(agent, window, facts, report, shares);
  }
  std::sort(report.mutable_agents()->begin(), report.mutable_agents()->end(),
            [](const v1::DrillAgentTraffic& a, const v1::DrillAgentTraffic& b) {
              return std::tie(a.region(), a.agent_id()) < std::tie(b.region(), b.agent_id());
            });
  for (const auto& [backend, requests] : shares) {
    v1::DrillShare* share = report.add_during();
    share->set_backend_id(backend);
    if (const auto found = facts.find(backend); found != facts.end()) {
      share->set_region(found->second.region);
      share->set_tier(found->second.tier);
    }
    share->set_requests(requests);
  }
  std::sort(report.mutable_during()->begin(), report.mutable_during()->end(),
            [](const v1::DrillShare& a, const v1::DrillShare& b) {
              return a.requests() != b.requests() ? a.requests() > b.requests()
                                                  : a.backend_id() < b.backend_id();
            });
  return report;
}

absl::StatusOr<std::vector<v1::DrillMove>> PlanDrill(const v1::Topology& topology,
                                                     const std::string& region,
                                                     const CompileOptions& options) {
  v1::Topology drained = topology;
  v1::Drain* drain = drained.add_drains();
  drain->set_scope(v1::DRAIN_SCOPE_REGION);
  drain->set_name(region);
  std::string stamp;
  for (const v1::Region& each : topology.regions()) {
    if (each.name() == region) {
      stamp = each.stamp();
    }
  }
  if (stamp.empty()) {
    return absl::NotFoundError(absl::StrCat("region '", region, "' is not in the topology"));
  }
  absl::StatusOr<RoutingTableCompiler> before = RoutingTableCompiler::Create(topology, options);
  if (!before.ok()) {
    return before.status();
  }
  absl::StatusOr<RoutingTableCompiler> during = RoutingTableCompiler::Create(drained, options);
  if (!during.ok()) {
    return during.status();  // e.g. the region is drained already
  }
  std::vector<v1::DrillMove> plan;
  for (const v1::Region& each : topology.regions()) {
    if (each.stamp() != stamp) {
      continue;
    }
    absl::StatusOr<v1::RoutingTable> was = before->Compile(each.name(), 0, 0);
    absl::StatusOr<v1::RoutingTable> will = during->Compile(each.name(), 0, 0);
    if (!was.ok() || !will.ok()) {
      return was.ok() ? will.status() : was.status();
    }
    for (int i = 0; i < was->routes_size(); ++i) {
      v1::DrillMove move;
      move.set_agent_region(each.name());
      move.set_route(was->routes(i).name());
      for (std::string& id : FirstChoice(*was, was->routes(i))) {
        move.add_before(std::move(id));
      }
      for (std::string& id : FirstChoice(*will, will->routes(i))) {
        move.add_during(std::move(id));
      }
      plan.push_back(std::move(move));
    }
  }
  return plan;
}

}  // namespace spillway
