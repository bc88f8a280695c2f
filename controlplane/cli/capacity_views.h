// How `spillwayctl capacity` prints its report for people: one row per route, then each
// route's explanation, so an operator can check which minutes and which rates row gave it.
#pragma once

#include <string>

#include "controlplane/cli/output.h"
#include "spillway/v1/capacity.pb.h"

namespace spillway::cli {

// ROUTE MODEL REGION TYPE P95_TPM PEAK_TPM THROTTLED, then today: PTU_NOW, the share of
// tokens served ON_PTU and the SPILL_NOW the rates predict at PTU_NOW (the check that the
// rates fit), then the recommendation: PTU, SPILL, PTU+STD/MONTH, STD/MONTH.
Table CapacityTable(const v1::CapacityReport& report);

// "route: explanation" lines, then the notes as "note: ..." lines.
std::string CapacityExplanations(const v1::CapacityReport& report);

}  // namespace spillway::cli
