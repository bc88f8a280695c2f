// Usage aggregates in the control plane's store: batches stored exactly once, summed
// per minute, hour and day and key, kept per level for as long as UsageRetention says, and
// the chargeback queries over them. TopologyStore serializes calls.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// How long each level of usage is kept, in days; 0 keeps it for ever. The markers that
// recognize a replayed batch are kept as long as the minutes.
struct UsageRetention {
  int64_t minute_days = 0;
  int64_t hour_days = 0;
  int64_t day_days = 0;
};

// Adds a batch's aggregates to the per-minute, per-hour and per-day sums, in one transaction with
// the batch's (agent_id, sequence) marker; a batch already marked is an OK no-op. `newly_stored`
// (may be null) is set when this call added the batch.
absl::Status StoreUsageBatch(sql::Connection* db, const v1::UsageBatch& batch,
                             bool* newly_stored = nullptr);

// Sums over the minutes in [since, until) (until 0: no end), grouped by the requested
// dimensions (tenant, route, deployment = the backend id "<instance>/<deployment>",
// instance, region, status, minute = the minute's start in Unix ms, answered from minute rows
// only) and ordered by them; no dimension gives one row of totals.
// Requests that ended in 429 count as throttled; in any other 4xx/5xx or in no response at
// all (status 0), as failed. An unknown dimension is InvalidArgument naming it.
// The query is answered from the finest level still kept for its whole range at `now_ms`:
// minutes, else hours, else days, its bounds widened to that level's periods; or from a
// coarser level kept for the range when both bounds fall on its periods (the same sums from
// fewer rows). The response says which level and the range it covers.
absl::StatusOr<v1::UsageQueryResponse> QueryUsageTable(sql::Connection* db,
                                                       const v1::UsageQuery& query,
                                                       const UsageRetention& retention,
                                                       int64_t now_ms);

// Deletes at most `max_rows` rows past their level's retention at `now_ms` (minutes, then
// hours, then days, then batch markers), in one transaction; returns how many it deleted, so
// a caller deletes a large backlog in bounded steps between other writes.
absl::StatusOr<int64_t> PruneUsageTable(sql::Connection* db, const UsageRetention& retention,
                                        int64_t now_ms, int64_t max_rows);

}  // namespace spillway
