// Usage aggregates in the control plane's SQLite file: batches stored exactly once, summed
// per minute and key, and the chargeback queries over them. TopologyStore serializes calls.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/agent_sync.pb.h"

struct sqlite3;

namespace spillway {

// Adds a batch's aggregates to the per-minute sums, in one transaction with the batch's
// (agent_id, sequence) marker; a batch already marked is an OK no-op. `newly_stored` (may be
// null) is set when this call added the batch.
absl::Status StoreUsageBatch(sqlite3* db, const v1::UsageBatch& batch,
                             bool* newly_stored = nullptr);

// Sums over the minutes in [since, until) (until 0: no end), grouped by the requested
// dimensions (tenant, route, deployment = the backend id "<instance>/<deployment>",
// instance, region, status) and ordered by them; no dimension gives one row of totals.
// Requests that ended in 429 count as throttled; in any other 4xx/5xx or in no response at
// all (status 0), as failed. An unknown dimension is InvalidArgument naming it.
absl::StatusOr<v1::UsageQueryResponse> QueryUsageTable(sqlite3* db, const v1::UsageQuery& query);

}  // namespace spillway
