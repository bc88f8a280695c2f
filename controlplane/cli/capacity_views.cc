// See capacity_views.h.
#include "controlplane/cli/capacity_views.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace spillway::cli {
namespace {

std::string Tpm(double tpm) { return absl::StrFormat("%.0f", tpm); }
std::string Percent(double share) { return absl::StrFormat("%.1f%%", 100 * share); }
std::string Usd(double usd) { return absl::StrFormat("$%.0f", usd); }

}  // namespace

Table CapacityTable(const v1::CapacityReport& report) {
  Table table;
  table.headers = {"ROUTE",    "MODEL",     "REGION",        "TYPE",      "P95_TPM",
                   "PEAK_TPM", "PTU_SHARE", "SPILL_MIN",     "THROTTLED", "PTU_NOW",
                   "PTU",      "SPILL",     "PTU+STD/MONTH", "STD/MONTH"};
  table.align = {Align::kLeft,  Align::kLeft,  Align::kLeft,  Align::kLeft,  Align::kRight,
                 Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
                 Align::kRight, Align::kRight, Align::kRight, Align::kRight};
  for (const v1::RouteCapacity& route : report.routes()) {
    const bool planned = route.has_monthly_cost();  // set only when the rates file has the model
    table.AddRow(
        {route.route(), route.model(), route.region(), route.deployment_type(),
         Tpm(route.p95_tpm()), Tpm(route.peak_tpm()), Percent(route.observed().ptu_share()),
         absl::StrCat(route.observed().spill_minutes()), absl::StrCat(route.observed().throttled()),
         absl::StrCat(route.current_ptu()), planned ? absl::StrCat(route.recommended_ptu()) : "",
         planned ? Percent(route.spill_share()) : "",
         planned ? Usd(route.monthly_cost().ptu_plus_standard_usd()) : "",
         planned ? Usd(route.monthly_cost().all_standard_usd()) : ""});
  }
  return table;
}

std::string CapacityExplanations(const v1::CapacityReport& report) {
  std::string text;
  for (const v1::RouteCapacity& route : report.routes()) {
    absl::StrAppend(&text, route.route(), ": ", route.explanation(), "\n");
  }
  for (const std::string& note : report.notes()) {
    absl::StrAppend(&text, "note: ", note, "\n");
  }
  return text;
}

}  // namespace spillway::cli
