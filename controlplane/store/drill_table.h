// Drills (spillwayctl drill) in the control plane's store: one row per drill holding its
// record, so a report outlives the process and a drill left running by a crash is restored
// when the control plane starts again. TopologyStore serializes calls.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"
#include "spillway/v1/admin.pb.h"

namespace spillway {

// Stores a new drill; returns the id it was given (ids only grow).
absl::StatusOr<uint64_t> InsertDrillRow(sql::Connection* db, const v1::Drill& drill);
// Replaces the stored record of drill.id(); NotFound when there is none.
absl::Status UpdateDrillRow(sql::Connection* db, const v1::Drill& drill);
absl::StatusOr<std::optional<v1::Drill>> ReadDrillRow(sql::Connection* db, uint64_t id);
// The newest `limit` drills, newest first; `unfinished_only` keeps those not done or aborted.
absl::StatusOr<std::vector<v1::Drill>> ReadDrillRows(sql::Connection* db, int limit,
                                                     bool unfinished_only);

}  // namespace spillway
