// See table_admission.h.
#include "dataplane/sync/table_admission.h"

#include "absl/strings/str_cat.h"

namespace spillway {

absl::Status TableAdmission(const v1::RoutingTable& table, absl::string_view region,
                            uint64_t served_version) {
  if (table.region() != region) {
    return absl::InvalidArgumentError(absl::StrCat("table version ", table.version(),
                                                   " is for region '", table.region(),
                                                   "', this agent serves '", region, "'"));
  }
  if (table.version() < served_version) {
    return absl::FailedPreconditionError(absl::StrCat("table version ", table.version(),
                                                      " is older than version ", served_version,
                                                      " served here"));
  }
  return absl::OkStatus();
}

}  // namespace spillway
