// Keeps one replica's Fleet in step with the other replicas sharing its PostgreSQL database:
// the health its agents report goes to the shared table (queued, so an agent's stream never
// waits on the database), the shared overlay and other replicas' topology commits come back,
// and every tick it publishes its agents per region and takes its part of each stamp's tenant
// limits from all live replicas' counts, so the shares across replicas sum to the limits.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/fleet/fleet.h"
#include "controlplane/store/store.h"

namespace spillway {

class ReplicaSync {
 public:
  // A replica that has not refreshed its counts for this long is gone: its part goes to the
  // others (its agents have moved to them by then).
  static constexpr std::chrono::milliseconds kReplicaTimeout{3000};
  // Health changes waiting for the database, by backend; more are dropped (and logged): a
  // hostile agent reporting made-up backends must not grow the control plane.
  static constexpr std::size_t kMaxPendingHealth = 10'000;

  ReplicaSync(Fleet& fleet, TopologyStore& store, std::string replica_id);

  // Names the fleet's replica and routes its health reports to the queue; call once before
  // serving.
  void Attach();
  // ReplicaSession's listeners: false when the store could not be read (tried again).
  bool OnTopologyCommitted();
  bool OnHealthChanged();
  // Every Fleet::kBudgetFlushInterval: writes the queued health, publishes this replica's
  // agents, applies the parts, and (`holds_lease`) deletes expired health rows.
  void Tick(bool holds_lease);

  const std::string& replica_id() const { return replica_id_; }

 private:
  void Queue(const std::string& backend_id, const v1::BackendHealth* health);
  void WriteQueuedHealth();
  void ShareLimits();

  Fleet& fleet_;
  TopologyStore& store_;
  const std::string replica_id_;
  absl::Mutex mu_;
  // nullopt: healthy again.
  absl::flat_hash_map<std::string, std::optional<v1::BackendHealth>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway
