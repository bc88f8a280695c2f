// See replica_sync.h. Store errors (the database away) are logged and retried on the next
// tick: the replica keeps serving its agents from what it has.
#include "controlplane/fleet/replica_sync.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

namespace spillway {

ReplicaSync::ReplicaSync(Fleet& fleet, TopologyStore& store, std::string replica_id)
    : fleet_(fleet), store_(store), replica_id_(std::move(replica_id)) {}

void ReplicaSync::Attach() {
  fleet_.SetReplicaId(replica_id_);
  fleet_.SetHealthSink([this](const std::string& backend_id, const v1::BackendHealth* health) {
    Queue(backend_id, health);
  });
}

void ReplicaSync::Queue(const std::string& backend_id, const v1::BackendHealth* health) {
  absl::MutexLock lock(&mu_);
  if (pending_.size() >= kMaxPendingHealth && !pending_.contains(backend_id)) {
    spdlog::warn("replica {}: {} health changes wait for the database; dropped backend '{}'",
                 replica_id_, pending_.size(), backend_id);
    return;
  }
  pending_[backend_id] =
      health == nullptr ? std::nullopt : std::optional<v1::BackendHealth>(*health);
}

bool ReplicaSync::OnTopologyCommitted() {
  if (absl::Status status = fleet_.OnTopologyChanged(); !status.ok()) {
    spdlog::error("replica {}: reloading the topology another replica changed: {}", replica_id_,
                  std::string(status.message()));
    return false;
  }
  return true;
}

bool ReplicaSync::OnHealthChanged() {
  absl::StatusOr<std::vector<v1::BackendHealth>> shared =
      store_.SharedHealth(absl::ToUnixMillis(absl::Now()));
  if (!shared.ok()) {
    spdlog::error("replica {}: reading the fleet's health: {}", replica_id_,
                  std::string(shared.status().message()));
    return false;
  }
  // This replica's own changes not written yet stay as they are, not undone until the tick.
  absl::flat_hash_map<std::string, v1::BackendHealth> merged;
  for (v1::BackendHealth& entry : *shared) {
    merged[entry.backend_id()] = std::move(entry);
  }
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [backend_id, health] : pending_) {
      if (health.has_value()) {
        merged[backend_id] = *health;
      } else {
        merged.erase(backend_id);
      }
    }
  }
  std::vector<v1::BackendHealth> entries;
  entries.reserve(merged.size());
  for (auto& [backend_id, health] : merged) {
    entries.push_back(std::move(health));
  }
  fleet_.AdoptSharedHealth(entries);
  return true;
}

void ReplicaSync::WriteQueuedHealth() {
  absl::flat_hash_map<std::string, std::optional<v1::BackendHealth>> pending;
  {
    absl::MutexLock lock(&mu_);
    pending.swap(pending_);
  }
  for (auto it = pending.begin(); it != pending.end(); ++it) {
    const v1::BackendHealth* health = it->second.has_value() ? &*it->second : nullptr;
    if (absl::Status status = store_.ShareHealth(it->first, health); !status.ok()) {
      spdlog::error("replica {}: sharing the health of '{}': {}", replica_id_, it->first,
                    std::string(status.message()));
      // Back in the queue, unless a newer change of the same backend came in meanwhile.
      absl::MutexLock lock(&mu_);
      for (; it != pending.end(); ++it) {
        pending_.try_emplace(it->first, std::move(it->second));
      }
      return;
    }
  }
}

void ReplicaSync::ShareLimits() {
  const int64_t now = absl::ToUnixMillis(absl::Now());
  if (absl::Status status = store_.RecordReplicaAgents(replica_id_, fleet_.AgentsPerRegion(), now);
      !status.ok()) {
    spdlog::error("replica {}: publishing its agents: {}", replica_id_,
                  std::string(status.message()));
    return;
  }
  absl::StatusOr<std::vector<ReplicaAgents>> rows =
      store_.ReplicaAgentCounts(now - kReplicaTimeout.count());
  if (!rows.ok()) {
    spdlog::error("replica {}: reading the replicas' agents: {}", replica_id_,
                  std::string(rows.status().message()));
    return;
  }
  std::vector<PeerAgents> peers;
  peers.reserve(rows->size());
  for (ReplicaAgents& row : *rows) {
    peers.push_back({std::move(row.replica_id), std::move(row.region), row.agents});
  }
  fleet_.SetPeers(peers, replica_id_);
}

void ReplicaSync::Tick(bool holds_lease) {
  WriteQueuedHealth();
  ShareLimits();
  if (holds_lease) {
    if (absl::StatusOr<int64_t> pruned = store_.PruneSharedHealth(absl::ToUnixMillis(absl::Now()));
        !pruned.ok()) {
      spdlog::error("replica {}: pruning the fleet's health: {}", replica_id_,
                    std::string(pruned.status().message()));
    }
  }
}

}  // namespace spillway
