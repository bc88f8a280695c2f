// The control plane's live view: the current topology (mirroring the store), each region's
// compiled routing table, the fleet-wide health overlay, and the agents connected right
// now. Changes to any of them are pushed to the agents that need them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/topology_compile.h"
#include "controlplane/fleet/budget_allocator.h"
#include "controlplane/fleet/fleet_metrics.h"
#include "controlplane/fleet/traffic_log.h"
#include "controlplane/store/store.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// One connected agent's stream, as the fleet sees it. Send must not block. Messages are
// shared and immutable: one region's table goes to all of that region's agents uncopied.
class AgentStream {
 public:
  virtual ~AgentStream() = default;
  virtual void Send(std::shared_ptr<const v1::ControlMessage> message) = 0;
  // For what may be lost (pin updates): dropped, returning false, when the stream is too far
  // behind, so one slow agent cannot grow the control plane.
  virtual bool SendDroppable(std::shared_ptr<const v1::ControlMessage> message) {
    Send(std::move(message));
    return true;
  }
};

struct AgentIdentity {
  std::string agent_id;
  std::string region;
  std::string listen_address;
  bool reads_budget_columns = false;  // AgentHello.reads_budget_columns
};

class Fleet {
 public:
  Fleet(TopologyStore& store, const CompileOptions& options);

  // Loads the stored topology; call once before serving.
  absl::Status Init();
  // After the store committed a change: reload, recompile, push to every connected agent.
  absl::Status OnTopologyChanged();
  // Makes `loaded` current and pushes it, unless it is not newer than the current version:
  // concurrent applies load the store in any order, and the one that read the older
  // version must not replace (and push) the newer one. Returns whether it was adopted.
  bool Adopt(StoredTopology loaded);

  uint64_t version() const;
  v1::Topology topology() const;

  // A stream said hello: it gets its region's table if it runs an older version, and the
  // current health overlay. Returns the reason it got no table, if any.
  std::string Register(AgentStream* stream, const AgentIdentity& identity,
                       uint64_t applied_version);
  // `gone(still_connected)` runs under the fleet's lock once the stream is removed, saying
  // whether the agent has another stream here (it reconnected before the old one ended): the
  // agent's record is written there, so a reconnect's "connected" is never overwritten by
  // its old stream's end.
  void Unregister(
      AgentStream* stream, absl::FunctionRef<void(bool still_connected)> gone = [](bool) {});
  // The agent on `stream` acknowledged `version` (for /metrics: its lag behind the current).
  void RecordAck(AgentStream* stream, uint64_t version);
  bool IsConnected(const std::string& agent_id) const;

  // What agents report about backends; folded into the overlay every agent of the stamp
  // receives, so one agent's 429 steers the others away until retry-after passes. Deadlines
  // are capped at kMaxReportedBlock from now (one agent must not take a backend out of the
  // whole fleet for years) and reports already past are ignored.
  static constexpr absl::Duration kMaxReportedBlock = absl::Minutes(10);
  void ReportThrottle(const v1::ThrottleEvent& event, const std::string& reporter);
  void ReportHealth(const v1::HealthTransition& transition, const std::string& reporter);
  v1::HealthOverlay Health() const;

  // Replicas sharing one database (controlplane/store/replica_session.h). What this replica's
  // agents report about backends also goes to `sink` (set before serving; called outside the
  // fleet's lock; a null `health` means healthy again), and the overlay all replicas' agents
  // built comes back through AdoptSharedHealth, which replaces this replica's own.
  using HealthSink =
      std::function<void(const std::string& backend_id, const v1::BackendHealth* health)>;
  void SetHealthSink(HealthSink sink);
  // This replica's id, recorded with its agents so other replicas can tell they are connected
  // (set before serving; empty for a control plane on its own).
  void SetReplicaId(std::string replica_id) { replica_id_ = std::move(replica_id); }
  const std::string& replica_id() const { return replica_id_; }
  void AdoptSharedHealth(const std::vector<v1::BackendHealth>& entries);
  // This replica's agents per region (for the other replicas), and the other replicas'
  // counts, from which it takes its part of each stamp's tenant limits (budget_allocator.h).
  absl::flat_hash_map<std::string, int64_t> AgentsPerRegion() const;
  void SetPeers(const std::vector<PeerAgents>& peers, const std::string& me);

  // An agent's per-tenant demand: tenants' limits are re-split among the stamp's agents.
  void ReportDemand(AgentStream* stream, const v1::DemandReport& report);
  // Sends the tenant budget splits held back by the once-per-interval bound (agents that
  // joined or left just after a push); spillway-cp calls it every kBudgetFlushInterval.
  static constexpr std::chrono::milliseconds kBudgetFlushInterval{500};
  void FlushBudgets();

  // Object pins an agent learnt go to the other agents of its region (docs/pinning.md).
  // Malformed updates (digest not 16 bytes, oversized strings) and those past
  // kMaxPinUpdatesPerMessage are left out; returns how many were relayed.
  static constexpr int kMaxPinUpdatesPerMessage = 1024;
  int SharePins(AgentStream* stream, const v1::PinUpdates& updates);

  // What agents served, for drill reports (has its own lock).
  TrafficLog& traffic() { return traffic_; }
  // For /metrics: the fleet now, copied under the lock (rendering happens after), and the
  // counters the services bump.
  FleetSnapshot Snapshot() const;
  FleetCounters& counters() { return counters_; }
  const FleetCounters& counters() const { return counters_; }

 private:
  using BackendIds = std::shared_ptr<const absl::flat_hash_set<std::string>>;
  struct Connected {
    AgentIdentity identity;
    BackendIds backend_ids;      // what its table lets it see; null until it has one
    uint64_t budget_key = 0;     // its key in budgets_
    uint64_t acked_version = 0;  // from its hello, then its acks
  };
  // A region's table of the current version, ready to send with the health overlay as of
  // `health_generation`.
  struct RegionTable {
    std::shared_ptr<const v1::ControlMessage> message;
    BackendIds backend_ids;
    uint64_t health_generation = 0;
  };

  // `until_unix_ms` capped at kMaxReportedBlock from now; nullopt when it is not in the future.
  static std::optional<int64_t> CapReportedDeadline(int64_t until_unix_ms);
  // Compiled on first use per (region, version); the overlay is refreshed when health moved.
  absl::StatusOr<const RegionTable*> TableFor(const std::string& region)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::HealthOverlay OverlayFor(const BackendIds& backend_ids) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushHealth() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneExpired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends each agent whose tenant budget split changed its new shares.
  void PushBudgets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TopologyStore& store_;
  const CompileOptions options_;
  mutable absl::Mutex mu_;
  StoredTopology current_ ABSL_GUARDED_BY(mu_);
  // Validates and indexes current_ once for all its regions; empty until first needed.
  std::optional<RoutingTableCompiler> compiler_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, RegionTable> tables_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, v1::BackendHealth> health_ ABSL_GUARDED_BY(mu_);
  uint64_t health_generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on every change of health_
  absl::flat_hash_map<AgentStream*, Connected> streams_ ABSL_GUARDED_BY(mu_);
  BudgetAllocator budgets_ ABSL_GUARDED_BY(mu_);
  uint64_t next_budget_key_ ABSL_GUARDED_BY(mu_) = 0;
  TrafficLog traffic_;
  FleetCounters counters_;  // lock-free
  HealthSink health_sink_;  // set before serving, then only read
  std::string replica_id_;
};

}  // namespace spillway
