// The agent's end of AgentSync: keeps one stream to a control-plane replica, applies and
// persists each routing table it receives (acking or nacking it), folds the fleet's health
// overlay into local circuit state, and reports throttles. It also carries object pins both
// ways between this agent and the region's others (docs/pinning.md). The request path never
// waits on it: it runs on its own threads and publishes snapshots.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/routing/backend_observer.h"
#include "dataplane/routing/backend_state.h"
#include "dataplane/routing/object_pins.h"
#include "dataplane/routing/routing_snapshot.h"
#include "dataplane/routing/snapshot_source.h"
#include "dataplane/sync/sync_outbox.h"
#include "spillway/v1/agent_sync.pb.h"

namespace grpc {
class ClientContext;
}

namespace spillway {

struct SyncClientOptions {
  // host:port of each spillway-cp replica (one for a single control plane); the stream moves
  // to the next when it ends.
  std::vector<std::string> targets;
  std::string token;      // agent bearer token; empty: none
  std::string ca_file;    // non-empty: TLS, verifying the control plane with this CA
  std::string cert_file;  // with ca_file: PEM client certificate chain for mutual TLS
  std::string key_file;   // the private key of cert_file
  std::string state_dir;  // where tables and the agent id persist
  std::string region;
  std::string listen_address;
  SnapshotOptions snapshot;  // how the tables it receives are built
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{10000};
  // Called on the sync thread with each tenant budget split the control plane sends.
  std::function<void(const v1::TenantBudgets&)> on_budgets;
  // Called on the sync thread when a stream starts (after the hello) and ends, and with each
  // usage ack: the usage shipper replays its spool on each new stream.
  std::function<void()> on_stream_started;
  std::function<void()> on_stream_ended;
  std::function<void(uint64_t sequence)> on_usage_ack;
  // Where pins the region's other agents learnt are adopted; null: none are kept.
  ObjectPins* pins = nullptr;
};

class SyncClient : public BackendObserver, public PinListener {
 public:
  SyncClient(SyncClientOptions options, SnapshotSource& snapshots, BackendStateRegistry& states);
  ~SyncClient() override;

  // Reads (or creates) the agent id and publishes the last persisted table, if any, so the
  // agent serves before the control plane answers. Returns the version loaded (0: none).
  absl::StatusOr<uint64_t> LoadState();
  const std::string& agent_id() const { return agent_id_; }

  void Start();
  void Stop();

  // Queues `message` only while a stream is up (for reports that are stale by the next one).
  void SendIfConnected(v1::AgentMessage message);

  void OnThrottled(const std::string& backend_id, std::chrono::milliseconds retry_after) override;
  void OnCircuitChanged(const std::string& backend_id, v1::HealthState state,
                        std::chrono::milliseconds open_for, absl::string_view reason) override;
  // Pins this agent learnt go to the control plane, for the region's other agents.
  void OnPinned(absl::string_view digest, const PinOwner& owner) override;
  void OnUnpinned(absl::string_view digest) override;

 private:
  struct StreamEnd {
    bool answered = false;  // the control plane sent something: a table, health, budgets...
    bool stopping = false;  // Stop ended it
    grpc::Status status;    // why it ended
  };

  void Run();
  // One connection to `target`: returns when the stream ends.
  StreamEnd RunStream(const std::string& target);
  // Applies, persists and acks `table`, or nacks it (keeping the table served now) when it is
  // for another region, older than the one served, invalid, or cannot be persisted.
  void ApplyTable(const v1::RoutingTable& table);
  void Refuse(const v1::RoutingTable& table, const absl::Status& reason);
  void ApplyHealth(const v1::HealthOverlay& overlay);
  void Enqueue(v1::AgentMessage message);
  // What wakes a stream's writer thread: a message to send, or the stream or client ending.
  bool WriterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What wakes a producer waiting for room in the outbox.
  bool OutboxHasRoomOrClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SyncClientOptions options_;
  SnapshotSource& snapshots_;
  BackendStateRegistry& states_;
  std::string agent_id_;
  uint64_t applied_version_ = 0;  // touched by the sync thread only (and LoadState before it)
  // Sync thread only: whether a stream was ever answered, and attempts since the last was.
  bool ever_answered_ = false;
  int failed_attempts_ = 0;

  // Waiters Await conditions on mu_ itself, so there is no condition variable to notify.
  absl::Mutex mu_;
  SyncOutbox outbox_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;  // the live stream, to cancel
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;  // the live stream still delivers messages
  std::thread thread_;
};

}  // namespace spillway
