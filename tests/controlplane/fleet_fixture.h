// A whole fleet on 127.0.0.1 for control-plane tests: spillway-cp on a SQLite file, agents
// in chosen regions following it, mock backends behind them. Ports are picked at run time and
// a killed process's port stays reserved; every process dies with the fixture.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "spillway/v1/admin.grpc.pb.h"
#include "tests/support/chat_target.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/mock_aoai_process.h"
#include "tests/support/port_hold.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_for.h"

namespace spillway::test {

inline constexpr char kFleetBackendKey[] = "fleet-backend-secret";
// How long the fleet's waits (a process listening, a version served or acknowledged) may
// take: a guard against hangs, generous for a loaded 2-core machine, never a measurement.
inline constexpr absl::Duration kFleetWait = absl::Seconds(30);

// A gRPC call's status as absl::Status, code and message kept.
absl::Status FromGrpc(const grpc::Status& status);

// The versions an agent's log says it applied, in order.
std::vector<uint64_t> AppliedVersions(const std::string& log);

class ControlPlaneFleet {
 public:
  ControlPlaneFleet();

  // Starts (or restarts, on the same port and database) the control plane. `extra_args`
  // are remembered for restarts (tokens, TLS). The agents follow a fixed address, so a
  // restart keeps the port: it stays held from the kill until the new process has bound it.
  absl::Status StartControlPlane(std::vector<std::string> extra_args = {});
  ChildProcess& cp_process() { return *cp_; }
  // The control plane's --store (e.g. a PostgreSQL URL shared by replicas); by default a SQLite
  // file in dir(). Takes effect at the next StartControlPlane.
  void SetControlPlaneStore(std::string store) { cp_store_ = std::move(store); }
  // The Admin channel's credentials and token (for TLS or token-protected control planes).
  void SetAdminCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials,
                           std::string token);
  // SIGKILL. Its port refuses connections (and cannot be taken by another test) until
  // StartControlPlane.
  void KillControlPlane();
  int cp_port() const { return cp_port_; }
  v1::Admin::Stub& admin() { return *admin_; }

  absl::Status AddMock(const std::string& name, std::vector<std::string> args);
  // One mock per instance of the reference topology, serving its deployments.
  absl::Status AddReferenceMocks();
  MockAoaiProcess& mock(const std::string& name) { return *mocks_.at(name); }
  std::string MockEndpoint(const std::string& name) { return "http://" + mock(name).address(); }
  // Requests each named mock has logged so far (its /mock/stats log); -1 when unreadable.
  std::map<std::string, int64_t> MockRequestCounts(const std::vector<std::string>& names);

  // Starts (or restarts with the same state directory) an agent named `name`; `extra_args`
  // are added to its command line (token file, CA). A restarted agent gets a fresh port
  // (nothing outside the fixture knows an agent's port; AgentClient follows it).
  absl::Status StartAgent(const std::string& name, const std::string& region,
                          std::vector<std::string> extra_args = {});
  ChildProcess& agent_process(const std::string& name) { return *agents_.at(name).process; }
  // Agents started from now on are given `targets` as --control-plane (replicas: several
  // comma-separated) instead of this fleet's control plane.
  void SetAgentControlPlanes(std::string targets) { agent_control_planes_ = std::move(targets); }
  // SIGKILL. Its port refuses connections until the agent is started again.
  void KillAgent(const std::string& name);
  int agent_port(const std::string& name) const { return agents_.at(name).port; }
  std::unique_ptr<HttpClient> AgentClient(const std::string& name) const;
  // The agent's /status JSON.
  absl::StatusOr<std::string> AgentStatus(const std::string& name) const;
  // From that /status: the TPM share agent `name` enforces for `tenant`, or -1 while it has
  // none from the control plane; the state it gives `backend_id` ("healthy", "throttled",
  // ...), or "" when it lists no such backend or cannot be asked.
  double TenantShare(const std::string& name, const std::string& tenant) const;
  std::string BackendState(const std::string& name, const std::string& backend_id) const;
  // Polls /status until the agent serves `version`.
  absl::Status WaitForAgentVersion(const std::string& name, uint64_t version,
                                   absl::Duration timeout = kFleetWait);

  // A client context carrying the admin token (if any) and a deadline (10 s unless told).
  std::unique_ptr<grpc::ClientContext> AdminContext(
      std::chrono::seconds deadline = std::chrono::seconds(10)) const;
  absl::StatusOr<v1::ApplyResponse> Apply(const v1::Topology& topology, bool dry_run = false);
  absl::StatusOr<v1::ListAgentsResponse> ListAgents();
  // Polls ListAgents until every connected agent acknowledged `version`.
  absl::Status WaitForAcks(uint64_t version, int agents, absl::Duration timeout = kFleetWait);

  const std::string& dir() const { return dir_.path(); }

 private:
  struct Agent {
    PortHold killed_port;  // declared first: released only after the process is gone
    std::unique_ptr<ChildProcess> process;
    int port = 0;
    std::string region;
  };
  ScopedTempDir dir_;
  PortHold cp_port_hold_;  // from KillControlPlane until the restarted process listens
  std::unique_ptr<ChildProcess> cp_;
  int cp_port_ = 0;
  std::vector<std::string> cp_args_;
  std::string cp_store_;              // empty: a SQLite file in dir()
  std::string agent_control_planes_;  // empty: 127.0.0.1:cp_port_
  std::shared_ptr<grpc::ChannelCredentials> admin_credentials_;
  std::string admin_token_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::map<std::string, std::unique_ptr<MockAoaiProcess>> mocks_;
  std::map<std::string, Agent> agents_;
};

// The reference topology (examples/topology.yaml) with every instance pointed at
// the mock of the same name (mocks must exist for all six) and authenticated by api-key.
absl::StatusOr<v1::Topology> ReferenceTopologyOnMocks(ControlPlaneFleet& fleet);
// The reference topology with every instance at endpoint_of(instance name), authenticated
// by the api-key in FLEET_BACKEND_KEY.
v1::Topology ReferenceTopologyAt(absl::FunctionRef<std::string(const std::string&)> endpoint_of);

}  // namespace spillway::test
