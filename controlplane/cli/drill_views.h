// How spillwayctl prints drills: the dry run's plan, the report of a finished drill and the
// list of past ones, as tables people read during an incident review.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "controlplane/cli/output.h"
#include "spillway/v1/admin.pb.h"

namespace spillway::cli {

// Where each route's new requests go from each region, before and during the drill.
Table DrillPlanTable(const v1::Drill& drill);
// The whole report: a heading, when traffic left and came back per agent, where it went,
// and what clients saw.
std::string RenderDrillReport(const v1::Drill& drill);
Table DrillsTable(const v1::ListDrillsResponse& response);

// "drained", "done", ...
std::string DrillStateName(v1::Drill::State state);

}  // namespace spillway::cli
