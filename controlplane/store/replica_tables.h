// What control-plane replicas on one database share besides the topology: the fleet's health
// overlay (one row per backend an agent reported) and each replica's agent count per region,
// from which each takes its part of the tenants' limits. TopologyStore serializes calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// Stores `health` as its backend's entry, replacing any.
absl::Status PutHealthRow(sql::Connection* db, const v1::BackendHealth& health);
// Removes the backend's entry (an agent reported it healthy); absent is fine.
absl::Status DeleteHealthRow(sql::Connection* db, const std::string& backend_id);
// The entries still in force at `now_ms` (deadline 0 or later than now).
absl::StatusOr<std::vector<v1::BackendHealth>> ReadHealthRows(sql::Connection* db, int64_t now_ms);
// Deletes entries whose deadline passed; returns how many.
absl::StatusOr<int64_t> PruneHealthRows(sql::Connection* db, int64_t now_ms);

// One replica's agents in one region.
struct ReplicaAgents {
  std::string replica_id;
  std::string region;
  int64_t agents = 0;
  bool operator==(const ReplicaAgents&) const = default;
};
// Replaces `replica_id`'s rows with `agents_per_region`, all seen at `now_ms`.
absl::Status WriteReplicaAgents(sql::Connection* db, const std::string& replica_id,
                                const absl::flat_hash_map<std::string, int64_t>& agents_per_region,
                                int64_t now_ms);
// The rows seen since `fresh_since_ms` (older ones are replicas that died), ordered by region
// and replica, so every replica reading the same rows computes the same split.
absl::StatusOr<std::vector<ReplicaAgents>> ReadReplicaAgents(sql::Connection* db,
                                                             int64_t fresh_since_ms);

}  // namespace spillway
