// How `spillwayctl capacity` prints its report for people: one row per route, then each
// route's explanation, so an operator can check which minutes and which rates row gave it.
#pragma once

#include <string>

#include "controlplane/cli/output.h"
#include "spillway/v1/capacity.pb.h"

namespace spillway::cli {

// ROUTE MODEL REGION TYPE P95_TPM PEAK_TPM PTU_SHARE SPILL_MIN THROTTLED PTU_NOW PTU SPILL
// PTU+STD/MONTH STD/MONTH, in the report's route order.
Table CapacityTable(const v1::CapacityReport& report);

// "route: explanation" lines, then the notes as "note: ..." lines.
std::string CapacityExplanations(const v1::CapacityReport& report);

}  // namespace spillway::cli
