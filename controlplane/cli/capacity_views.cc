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
  table.headers = {"ROUTE",    "MODEL",     "REGION",        "TYPE",     "P95_TPM",
                   "PEAK_TPM", "THROTTLED", "PTU_NOW",       "ON_PTU",   "SPILL_NOW",
                   "PTU",      "SPILL",     "PTU+STD/MONTH", "STD/MONTH"};
  table.align.assign(table.headers.size(), Align::kRight);
  for (int i = 0; i < 4; ++i) {
    table.align[i] = Align::kLeft;
  }
  for (const v1::RouteCapacity& route : report.routes()) {
    const bool planned = route.has_monthly_cost();  // set only when the rates file has the model
    auto if_planned = [&](std::string text) { return planned ? text : std::string(); };
    table.AddRow({route.route(), route.model(), route.region(), route.deployment_type(),
                  Tpm(route.p95_tpm()), Tpm(route.peak_tpm()),
                  absl::StrCat(route.observed().throttled()), absl::StrCat(route.current_ptu()),
                  Percent(route.observed().ptu_share()),
                  if_planned(Percent(route.current_spill_share())),
                  if_planned(absl::StrCat(route.recommended_ptu())),
                  if_planned(Percent(route.spill_share())),
                  if_planned(Usd(route.monthly_cost().ptu_plus_standard_usd())),
                  if_planned(Usd(route.monthly_cost().all_standard_usd()))});
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
