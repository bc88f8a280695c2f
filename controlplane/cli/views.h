// What spillwayctl shows for each Admin answer (topology kinds, diffs, agents, health, usage) as
// Tables or text. No RPCs here; `now` is a parameter so relative times are testable.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controlplane/cli/output.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/routing_table.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway::cli {

// The kinds in topology order, and their command-line spellings.
const std::vector<v1::Kind>& AllKinds();
absl::string_view KindSingular(v1::Kind kind);  // "deployment"
absl::string_view KindPlural(v1::Kind kind);    // "deployments"
// Singular or plural, case-insensitive; InvalidArgument listing the kinds otherwise.
absl::StatusOr<v1::Kind> ParseKind(absl::string_view text);

// The entries of one kind in `topology` (an unspecified kind counts all).
int CountOfKind(const v1::Topology& topology, v1::Kind kind);

// The table of one kind, e.g. deployments: INSTANCE NAME MODEL VERSION SKU CAPACITY.
Table KindTable(const v1::Topology& topology, v1::Kind kind);
// `get` without a kind: one titled table per non-empty kind, separated by blank lines.
std::string RenderTopologyTables(const v1::Topology& topology);

// "+ deployment aoai-eus2-ptu/gpt-4o-ptu" lines, then the outcome: "applied version 8",
// "dry run: nothing stored (version 7)" or "no changes (version 7)".
std::string RenderDiff(const v1::ApplyResponse& response, bool dry_run);

// AGENT REGION ACKED_VERSION CONNECTED LAST_SEEN NACK, sorted by region then agent.
Table AgentsTable(const v1::ListAgentsResponse& response, absl::Time now);
// BACKEND STATE UNTIL REPORTED_BY REASON, sorted by backend.
Table HealthTable(const v1::HealthOverlay& overlay, absl::Time now);
// The group-by dimensions, then REQUESTS PROMPT COMPLETION CACHED TOTAL FAILED THROTTLED.
Table UsageTable(const v1::UsageQueryResponse& response, const std::vector<std::string>& group_by);

// "45s", "12m", "5h", "3d": how people read ages in a table.
std::string ShortDuration(absl::Duration duration);

}  // namespace spillway::cli
