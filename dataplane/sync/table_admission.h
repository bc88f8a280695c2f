// Which routing tables an agent accepts. Checked on the agent as well as in the control plane:
// a table from a confused or restored control plane, or one persisted by this state directory
// under another --region, must not move the agent backwards or into another region's routes.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spillway/v1/routing_table.pb.h"

namespace spillway {

// OK when `table` is for `region` and not older than `served_version` (0: none served). The
// same version again is accepted: a reconnect may resend it.
absl::Status TableAdmission(const v1::RoutingTable& table, absl::string_view region,
                            uint64_t served_version);

}  // namespace spillway
