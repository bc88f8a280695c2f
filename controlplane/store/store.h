// The control plane's durable state, in one SQLite file or one PostgreSQL database shared by
// replicas (versioned schema with forward migrations): the topology entries, the topology
// version, agents and what they acknowledged, usage aggregates, drills. Every change is one
// transaction that bumps the version in the same transaction, so a crash exposes either the
// old or the new state; on PostgreSQL concurrent changes serialize, and each commit notifies
// every replica (kTopologyChannel).
// Backend secrets are never stored (the schema only has references); client keys only as
// SHA-256 hashes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controlplane/store/replica_tables.h"
#include "controlplane/store/sql.h"
#include "controlplane/store/store_location.h"
#include "controlplane/store/usage_table.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/agent_sync.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// The PostgreSQL channels a topology commit and a change of the shared health notify.
inline constexpr char kTopologyChannel[] = "spillway_topology";
inline constexpr char kHealthChannel[] = "spillway_health";

struct StoredTopology {
  uint64_t version = 0;  // 0: nothing applied yet
  v1::Topology topology;
};

struct KeyMaterial {
  std::string api_key;   // plaintext, returned once to the operator, never stored
  std::string key_name;  // as stored: RotateKey names the key itself when not told a name
  uint64_t version = 0;
};

// Thread-safe: calls are serialized on one connection (the control plane's write rate is
// tiny; reads of the current topology are served from memory by the callers).
class TopologyStore {
 public:
  // Creates the file or schema if needed, runs pending migrations. Errors name the path or
  // the URL (never its password).
  static absl::StatusOr<std::unique_ptr<TopologyStore>> Open(const StoreLocation& location);
  // A SQLite file.
  static absl::StatusOr<std::unique_ptr<TopologyStore>> Open(const std::string& path);
  ~TopologyStore();

  absl::StatusOr<StoredTopology> Load();

  // Replaces the whole desired state. Validates first (ValidateTopology): any problem is
  // InvalidArgument listing them all, and nothing changes. An identical topology is a
  // no-op (changed=false, version unchanged). dry_run validates and diffs only.
  absl::StatusOr<v1::ApplyResponse> Apply(const v1::Topology& desired, bool dry_run);
  // Adds or replaces the given entries, keeping the rest; validated as a whole.
  absl::StatusOr<v1::ApplyResponse> Create(const v1::Topology& entries, bool dry_run);
  // Removes one entry; NotFound if absent; validated as a whole (a deletion that leaves a
  // dangling reference is refused, naming it). For deployments `name` is
  // "instance/deployment"; for routes "stamp/route".
  absl::StatusOr<v1::ApplyResponse> Delete(v1::Kind kind, const std::string& name, bool dry_run);

  // Takes a region, instance or deployment out of service, or puts it back: a topology
  // change like any other (version, history, validation). An apply that declares no drains
  // keeps the stored ones (drain_edits.h).
  absl::StatusOr<v1::ApplyResponse> Drain(const v1::DrainRequest& request);
  absl::StatusOr<v1::ApplyResponse> Undrain(const v1::UndrainRequest& request);

  // Tenant keys: a fresh random key (at least 32 bytes of entropy), stored as its SHA-256.
  absl::StatusOr<KeyMaterial> CreateKey(const std::string& tenant, const std::string& key_name);
  // Adds a new key next to `key_name` (both valid until the old one is revoked).
  absl::StatusOr<KeyMaterial> RotateKey(const std::string& tenant, const std::string& key_name,
                                        const std::string& new_key_name);
  absl::StatusOr<v1::ApplyResponse> RevokeKey(const std::string& tenant,
                                              const std::string& key_name);

  // Agents: upserted on hello and on every ack/nack. Queued (the latest per agent) and written
  // together by FlushAgentRecords, which the control plane calls twice a second and which
  // ListAgents and the destructor call first; an error is only about the record itself.
  absl::Status RecordAgent(const v1::AgentInfo& agent);
  absl::Status FlushAgentRecords();
  absl::StatusOr<std::vector<v1::AgentInfo>> ListAgents();

  // Usage: a batch is stored once; a replay of the same (agent_id, sequence) is a no-op
  // that still returns OK (so the agent can drop it from its spool). `newly_stored`, if
  // given, says which of the two it was.
  absl::Status StoreUsage(const v1::UsageBatch& batch, bool* newly_stored = nullptr);
  // Answered from the finest level still kept for the whole range (usage_table.h).
  absl::StatusOr<v1::UsageQueryResponse> QueryUsage(const v1::UsageQuery& query);
  // How long each level of usage is kept (default: for ever), and the pruning to it: at most
  // `max_rows` deleted per call, so a backlog goes in steps between other writes.
  void SetUsageRetention(const UsageRetention& retention);
  absl::StatusOr<int64_t> PruneUsage(int64_t now_unix_ms, int64_t max_rows);
  // On PostgreSQL, creates the coming days' usage partitions (usage_partitions.h): done when
  // the store opens and by the pruning, so a day's first minute finds its partition.
  absl::Status PrepareUsageDays(int64_t now_unix_ms);

  // What replicas share (replica_tables.h). `health` null clears the backend's entry (an agent
  // reported it healthy); on PostgreSQL every change notifies kHealthChannel.
  absl::Status ShareHealth(const std::string& backend_id, const v1::BackendHealth* health);
  absl::StatusOr<std::vector<v1::BackendHealth>> SharedHealth(int64_t now_unix_ms);
  absl::StatusOr<int64_t> PruneSharedHealth(int64_t now_unix_ms);
  absl::Status RecordReplicaAgents(const std::string& replica_id,
                                   const absl::flat_hash_map<std::string, int64_t>& per_region,
                                   int64_t now_unix_ms);
  absl::StatusOr<std::vector<ReplicaAgents>> ReplicaAgentCounts(int64_t fresh_since_unix_ms);

  // Drills (drill_table.h): the stored record, its id assigned on insert.
  absl::StatusOr<uint64_t> InsertDrill(const v1::Drill& drill);
  absl::Status UpdateDrill(const v1::Drill& drill);
  absl::StatusOr<std::optional<v1::Drill>> GetDrill(uint64_t id);
  absl::StatusOr<std::vector<v1::Drill>> ListDrills(int limit, bool unfinished_only = false);

 private:
  friend class TopologyStoreTestPeer;  // tests inspect the connection

  explicit TopologyStore(std::unique_ptr<sql::Connection> db);
  std::unique_ptr<sql::Connection> db_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway
