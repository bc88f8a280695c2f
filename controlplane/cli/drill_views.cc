// See drill_views.h.
#include "controlplane/cli/drill_views.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace spillway::cli {
namespace {

std::string Time(int64_t unix_ms) {
  if (unix_ms == 0) {
    return "-";
  }
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string Millis(int64_t ms, absl::string_view none) {
  return ms < 0 ? std::string(none) : absl::StrCat(ms, " ms");
}

// "503 x3, 429 x2", largest first; "none" when empty.
template <typename Map>
std::string Counts(const Map& counts, absl::string_view prefix = "") {
  std::vector<std::pair<std::string, uint64_t>> sorted;
  for (const auto& [key, count] : counts) {
    sorted.emplace_back(absl::StrCat(prefix, key), count);
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::string> parts;
  for (const auto& [key, count] : sorted) {
    parts.push_back(absl::StrCat(key, " x", count));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

}  // namespace

std::string DrillStateName(v1::Drill::State state) {
  switch (state) {
    case v1::Drill::STATE_PLANNED:
      return "planned";
    case v1::Drill::STATE_DRAINED:
      return "drained";
    case v1::Drill::STATE_RESTORED:
      return "restored";
    case v1::Drill::STATE_DONE:
      return "done";
    case v1::Drill::STATE_ABORTED:
      return "aborted";
    default:
      return "unknown";
  }
}

Table DrillPlanTable(const v1::Drill& drill) {
  Table table;
  table.headers = {"AGENT_REGION", "ROUTE", "BEFORE", "DURING"};
  for (const v1::DrillMove& move : drill.plan()) {
    table.AddRow({move.agent_region(), move.route(), absl::StrJoin(move.before(), ","),
                  move.during().empty() ? "none (503)" : absl::StrJoin(move.during(), ",")});
  }
  return table;
}

std::string RenderDrillReport(const v1::Drill& drill) {
  const v1::DrillReport& report = drill.report();
  std::string out = absl::StrCat(
      "drill ", drill.id(), ": region ", drill.region(), " drained at ",
      Time(drill.drained_unix_ms()), " (version ", drill.drain_version(), "), restored at ",
      Time(drill.restored_unix_ms()), " (version ", drill.restore_version(), "); ",
      DrillStateName(drill.state()), drill.error().empty() ? "" : absl::StrCat(": ", drill.error()),
      "\n\nwhen traffic left ", drill.region(), " and came back, per agent:\n");
  Table agents;
  agents.headers = {"AGENT",      "REGION",     "TO_REGION_BEFORE", "TO_REGION_DURING",
                    "LEFT_AFTER", "BACK_AFTER", "REQUESTS_DURING"};
  agents.align = {Align::kLeft,  Align::kLeft,  Align::kRight, Align::kRight,
                  Align::kRight, Align::kRight, Align::kRight};
  for (const v1::DrillAgentTraffic& agent : report.agents()) {
    agents.AddRow(
        {agent.agent_id(), agent.region(), absl::StrCat(agent.to_region_before()),
         absl::StrCat(agent.to_region_during()), Millis(agent.left_after_ms(), "never sent"),
         Millis(agent.back_after_ms(), "not seen"), absl::StrCat(agent.requests_during())});
  }
  absl::StrAppend(&out,
                  report.agents().empty() ? "no agent reported traffic\n" : RenderTable(agents));
  absl::StrAppend(&out, "\nwhere requests went while ", drill.region(), " was out (",
                  report.requests_during(), " requests):\n");
  Table shares;
  shares.headers = {"BACKEND", "REGION", "TIER", "REQUESTS", "SHARE"};
  shares.align = {Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight};
  for (const v1::DrillShare& share : report.during()) {
    const double percent = report.requests_during() == 0
                               ? 0
                               : 100.0 * static_cast<double>(share.requests()) /
                                     static_cast<double>(report.requests_during());
    shares.AddRow({share.backend_id().empty() ? "(answered by the agent)" : share.backend_id(),
                   share.region(), share.tier(), absl::StrCat(share.requests()),
                   absl::StrCat(static_cast<int>(percent + 0.5), "%")});
  }
  absl::StrAppend(&out, report.during().empty() ? "none\n" : RenderTable(shares));
  absl::StrAppend(&out, "\nclient-visible errors: ", Counts(report.client_errors()), "\n",
                  "shed with 429, by priority: ", Counts(report.shed_by_priority()), "\n",
                  "retried on another backend, by priority: ", Counts(report.retried_by_priority()),
                  "\n");
  if (report.slots_dropped() > 0) {
    absl::StrAppend(&out, "note: ", report.slots_dropped(),
                    " traffic slots were not kept; the figures are a floor\n");
  }
  return out;
}

Table DrillsTable(const v1::ListDrillsResponse& response) {
  Table table;
  table.headers = {"ID", "REGION", "STATE", "DRAINED_AT", "DURATION", "REQUESTS_DURING", "ERRORS"};
  table.align = {Align::kRight, Align::kLeft,  Align::kLeft, Align::kLeft,
                 Align::kRight, Align::kRight, Align::kLeft};
  for (const v1::Drill& drill : response.drills()) {
    table.AddRow({absl::StrCat(drill.id()), drill.region(), DrillStateName(drill.state()),
                  Time(drill.drained_unix_ms()), absl::StrCat(drill.duration_s(), "s"),
                  absl::StrCat(drill.report().requests_during()),
                  Counts(drill.report().client_errors())});
  }
  return table;
}

}  // namespace spillway::cli
