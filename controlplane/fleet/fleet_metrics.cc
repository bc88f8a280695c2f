// See fleet_metrics.h. Label values come from agents' hellos, so they are escaped per the format.
#include "controlplane/fleet/fleet_metrics.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace spillway {
namespace {

constexpr std::array<absl::string_view, 4> kApplyResultNames = {"changed", "unchanged", "dry_run",
                                                                "failed"};
constexpr std::array<absl::string_view, 3> kUsageOutcomeNames = {"stored", "duplicate", "failed"};

std::string Label(absl::string_view value) {
  return absl::StrReplaceAll(value.substr(0, 200), {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

void Family(std::string& out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

uint64_t Load(const std::atomic<uint64_t>& value) { return value.load(std::memory_order_relaxed); }

}  // namespace

void FleetCounters::RecordApply(ApplyResult result, absl::Duration took) {
  applies_[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
  const double seconds = absl::ToDoubleSeconds(took);
  const auto bucket =
      std::lower_bound(kApplyBucketsSeconds.begin(), kApplyBucketsSeconds.end(), seconds);
  apply_buckets_[static_cast<std::size_t>(bucket - kApplyBucketsSeconds.begin())].fetch_add(
      1, std::memory_order_relaxed);
  apply_micros_sum_.fetch_add(
      static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Microseconds(took))),
      std::memory_order_relaxed);
}

void FleetCounters::RecordUsageBatch(UsageOutcome outcome, uint64_t rows) {
  usage_batches_[static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  if (outcome == UsageOutcome::kStored) {
    usage_rows_.fetch_add(rows, std::memory_order_relaxed);
  }
}

std::string RenderFleetMetrics(const FleetSnapshot& snapshot, const FleetCounters& counters) {
  std::string out;
  Family(out, "spillway_cp_topology_version", "gauge",
         "The current topology version (every apply, create, delete or key change bumps it).");
  absl::StrAppend(&out, "spillway_cp_topology_version ", snapshot.version, "\n");

  std::map<std::string, uint64_t> per_region;
  for (const std::string& region : snapshot.regions) {
    per_region[region] = 0;
  }
  for (const FleetSnapshot::Agent& agent : snapshot.agents) {
    ++per_region[agent.region];
  }
  Family(out, "spillway_cp_agents_connected", "gauge",
         "Agents holding an AgentSync stream, by region (every region of the topology, and any "
         "an agent named).");
  for (const auto& [region, count] : per_region) {
    absl::StrAppend(&out, "spillway_cp_agents_connected{region=\"", Label(region), "\"} ", count,
                    "\n");
  }

  std::vector<const FleetSnapshot::Agent*> agents;
  agents.reserve(snapshot.agents.size());
  for (const FleetSnapshot::Agent& agent : snapshot.agents) {
    agents.push_back(&agent);
  }
  std::sort(agents.begin(), agents.end(), [](const auto* a, const auto* b) {
    return std::tie(a->agent_id, a->region) < std::tie(b->agent_id, b->region);
  });
  Family(out, "spillway_cp_agent_acked_version", "gauge",
         "The routing table version each connected agent last acknowledged.");
  for (const FleetSnapshot::Agent* agent : agents) {
    absl::StrAppend(&out, "spillway_cp_agent_acked_version{agent=\"", Label(agent->agent_id),
                    "\",region=\"", Label(agent->region), "\"} ", agent->acked_version, "\n");
  }
  Family(out, "spillway_cp_agent_version_lag", "gauge",
         "Versions each connected agent is behind the current topology version (0: current).");
  for (const FleetSnapshot::Agent* agent : agents) {
    // Signed: an agent ahead of the control plane (a database put back) reads negative.
    const int64_t lag =
        static_cast<int64_t>(snapshot.version) - static_cast<int64_t>(agent->acked_version);
    absl::StrAppend(&out, "spillway_cp_agent_version_lag{agent=\"", Label(agent->agent_id),
                    "\",region=\"", Label(agent->region), "\"} ", lag, "\n");
  }

  Family(out, "spillway_cp_applies_total", "counter",
         "Topology changes requested (apply, create, delete), by result: changed, unchanged (a "
         "no-op), dry_run, failed.");
  for (std::size_t i = 0; i < kApplyResultNames.size(); ++i) {
    absl::StrAppend(&out, "spillway_cp_applies_total{result=\"", kApplyResultNames[i], "\"} ",
                    Load(counters.applies_[i]), "\n");
  }
  Family(out, "spillway_cp_apply_duration_seconds", "histogram",
         "Time to validate, store and push a topology change, seconds.");
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counters.apply_buckets_.size(); ++i) {
    cumulative += Load(counters.apply_buckets_[i]);
    const std::string le = i < FleetCounters::kApplyBucketsSeconds.size()
                               ? absl::StrCat(FleetCounters::kApplyBucketsSeconds[i])
                               : "+Inf";
    absl::StrAppend(&out, "spillway_cp_apply_duration_seconds_bucket{le=\"", le, "\"} ", cumulative,
                    "\n");
  }
  absl::StrAppend(&out, "spillway_cp_apply_duration_seconds_sum ",
                  static_cast<double>(Load(counters.apply_micros_sum_)) / 1e6,
                  "\nspillway_cp_apply_duration_seconds_count ", cumulative, "\n");

  Family(out, "spillway_cp_nacks_total", "counter",
         "Routing tables agents refused to apply (spillwayctl agents shows the reason).");
  absl::StrAppend(&out, "spillway_cp_nacks_total ", Load(counters.nacks_), "\n");

  Family(out, "spillway_cp_fleet_health_entries", "gauge",
         "Backends the fleet's shared health map holds as not healthy, by state.");
  for (const auto& [state, count] : snapshot.health_by_state) {
    absl::StrAppend(&out, "spillway_cp_fleet_health_entries{state=\"", Label(state), "\"} ", count,
                    "\n");
  }

  Family(out, "spillway_cp_usage_batches_received_total", "counter",
         "Usage batches agents sent, by outcome: stored, duplicate (a replay already stored), "
         "failed (not acked; the agent sends it again).");
  for (std::size_t i = 0; i < kUsageOutcomeNames.size(); ++i) {
    absl::StrAppend(&out, "spillway_cp_usage_batches_received_total{outcome=\"",
                    kUsageOutcomeNames[i], "\"} ", Load(counters.usage_batches_[i]), "\n");
  }
  Family(out, "spillway_cp_usage_rows_stored_total", "counter",
         "Usage aggregates (tenant, route, backend, minute, status) added to the store.");
  absl::StrAppend(&out, "spillway_cp_usage_rows_stored_total ", Load(counters.usage_rows_), "\n");

  Family(out, "spillway_cp_drains", "gauge",
         "Parts of the fleet an operator drained (spillwayctl drain), 1 per drain.");
  for (const FleetSnapshot::Drain& drain : snapshot.drains) {
    absl::StrAppend(&out, "spillway_cp_drains{scope=\"", Label(drain.scope), "\",name=\"",
                    Label(drain.name), "\",region=\"", Label(drain.region), "\"} 1\n");
  }
  Family(out, "spillway_cp_drill_running", "gauge",
         "1 while a drill (spillwayctl drill) has a region drained.");
  absl::StrAppend(&out, "spillway_cp_drill_running ", snapshot.drill_running ? 1 : 0, "\n");
  return out;
}

}  // namespace spillway
