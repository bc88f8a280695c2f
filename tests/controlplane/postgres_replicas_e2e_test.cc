// Three spillway-cp replicas on one PostgreSQL database (issue 20), Debian's PostgreSQL 15
// started by the test itself: a change applied through any replica reaches agents connected to
// the others; SIGKILL the replica holding the fleet lease, then another, during a stream of
// applies and key rotations, and every acknowledged change is there, whole, the lease moves,
// and the agent converges; restart the database and the replicas refuse changes (Unavailable)
// while it is away, keep their agents, and resume. A throttle reported to one replica reaches
// agents on the others, and a tenant's shares across replicas sum to its limit.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/controlplane/fleet_fixture.h"
#include "tests/support/postgres_server.h"
#include "tests/support/wait_for.h"

namespace spillway::test {
namespace {

constexpr char kChat[] = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
// SHA-256("test") is checkout-assistant's key in the reference topology.
const HttpHeaders kCheckoutKey = {{"api-key", "test"}};
constexpr char kLeaseLine[] = "holds the fleet lease";
// Usage reported five times a second, so the totals are checked without a long wait.
const std::vector<std::string> kAgentArgs = {"--usage-flush-ms", "200"};

class PostgresReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (PostgresServer::BinDir().empty()) {
      GTEST_SKIP() << "PostgreSQL 15 is not installed (deploy/install-deps.sh installs it)";
    }
    absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    absl::StatusOr<std::string> url = server_->CreateDatabase("spillway");
    ASSERT_TRUE(url.ok()) << url.status();
    absl::Status mocks = replicas_[0].AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
    std::vector<std::string> addresses;
    for (ControlPlaneFleet& replica : replicas_) {
      replica.SetControlPlaneStore(*url);
      absl::Status started = replica.StartControlPlane();
      ASSERT_TRUE(started.ok()) << started;
      addresses.push_back(absl::StrCat("127.0.0.1:", replica.cp_port()));
    }
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(replicas_[0]);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *topology;
    absl::StatusOr<v1::ApplyResponse> applied = replicas_[1].Apply(topology_);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 1u);
    agents().SetAgentControlPlanes(absl::StrJoin(addresses, ","));
    ASSERT_TRUE(agents().StartAgent("eus2", "eastus2", kAgentArgs).ok());
    ASSERT_TRUE(agents().WaitForAgentVersion("eus2", 1).ok());
  }

  // Requests replica `i` has on record for the whole fleet (any replica's agents), or -1.
  int64_t UsageRequests(int i) {
    std::unique_ptr<grpc::ClientContext> context = replicas_[i].AdminContext();
    v1::UsageQueryResponse usage;
    if (!replicas_[i].admin().QueryUsage(context.get(), v1::UsageQuery(), &usage).ok()) {
      return -1;
    }
    return usage.rows_size() == 0 ? 0 : static_cast<int64_t>(usage.rows(0).requests());
  }

  // replicas_[0] also owns the mocks and the agent.
  ControlPlaneFleet& agents() { return replicas_[0]; }

  // The replicas whose log says they took the lease and which are still running.
  std::vector<int> LeaseHolders(const std::vector<bool>& alive) {
    std::vector<int> holders;
    for (int i = 0; i < 3; ++i) {
      if (alive[i] && replicas_[i].cp_process().Output().find(kLeaseLine) != std::string::npos) {
        holders.push_back(i);
      }
    }
    return holders;
  }

  // The version every live replica serves (ListAgents' current_version), or 0 if they differ.
  uint64_t CommonVersion(const std::vector<bool>& alive) {
    uint64_t common = 0;
    for (int i = 0; i < 3; ++i) {
      if (!alive[i]) {
        continue;
      }
      absl::StatusOr<v1::ListAgentsResponse> agents = replicas_[i].ListAgents();
      if (!agents.ok() || (common != 0 && agents->current_version() != common)) {
        return 0;
      }
      common = agents->current_version();
    }
    return common;
  }

  absl::StatusOr<v1::CreateKeyResponse> RotateKey(ControlPlaneFleet& replica) {
    std::unique_ptr<grpc::ClientContext> context = replica.AdminContext();
    v1::RotateKeyRequest request;
    request.set_tenant("checkout-assistant");
    request.set_key_name("prod");
    v1::CreateKeyResponse response;
    if (absl::Status status =
            FromGrpc(replica.admin().RotateKey(context.get(), request, &response));
        !status.ok()) {
      return status;
    }
    return response;
  }

  // Starts agent `name` in `region` following replica `replica` alone.
  void StartAgentOn(const std::string& name, const std::string& region, int replica) {
    agents().SetAgentControlPlanes(absl::StrCat("127.0.0.1:", replicas_[replica].cp_port()));
    ASSERT_TRUE(agents().StartAgent(name, region, kAgentArgs).ok());
  }

  // checkout-assistant's TPM share `agent` enforces, or -1 while it has none.
  double Share(const std::string& agent) {
    return agents().TenantShare(agent, "checkout-assistant");
  }

  bool SeesThrottled(const std::string& agent, const std::string& backend_id) {
    return agents().BackendState(agent, backend_id) == "throttled";
  }

  // Whether replica `i`'s overlay (FleetHealth) has `backend_id` throttled.
  bool ReplicaSeesThrottled(int i, const std::string& backend_id) {
    std::unique_ptr<grpc::ClientContext> context = replicas_[i].AdminContext();
    v1::HealthOverlay overlay;
    if (!replicas_[i].admin().FleetHealth(context.get(), {}, &overlay).ok()) {
      return false;
    }
    for (const v1::BackendHealth& health : overlay.backends()) {
      if (health.backend_id() == backend_id && health.state() == v1::HEALTH_STATE_THROTTLED) {
        return true;
      }
    }
    return false;
  }

  std::unique_ptr<PostgresServer> server_;
  ControlPlaneFleet replicas_[3];
  v1::Topology topology_;
};

TEST_F(PostgresReplicasTest, AChangeThroughAnyReplicaReachesEveryReplicaAndTheAgent) {
  const std::vector<bool> alive = {true, true, true};
  for (int i = 0; i < 3; ++i) {
    v1::Topology changed = topology_;
    changed.mutable_stamps(0)->set_description(absl::StrCat("through replica ", i));
    absl::StatusOr<v1::ApplyResponse> applied = replicas_[i].Apply(changed);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 2u + i);
    EXPECT_TRUE(WaitFor([&] { return CommonVersion(alive) == 2u + i; }, kFleetWait))
        << "every replica serves version " << 2 + i;
    EXPECT_TRUE(agents().WaitForAgentVersion("eus2", 2 + i).ok());
  }
  // Exactly one replica holds the lease.
  EXPECT_TRUE(WaitFor([&] { return LeaseHolders(alive).size() == 1; }, kFleetWait));
  EXPECT_EQ(LeaseHolders(alive).size(), 1u);
}

TEST_F(PostgresReplicasTest, KillingLeaseHoldersDuringChangesLosesNothingAndMovesTheLease) {
  std::vector<bool> alive = {true, true, true};
  ASSERT_TRUE(WaitFor([&] { return LeaseHolders(alive).size() == 1; }, kFleetWait));
  uint64_t last_acked = 1;
  std::string last_description;
  int rotations = 0;
  int64_t chats = 0;
  auto change = [&](int round) {
    for (int i = 0; i < 3; ++i) {
      const int r = (round + i) % 3;
      if (!alive[r]) {
        continue;
      }
      v1::Topology changed = topology_;
      const std::string description = absl::StrCat("round ", round);
      changed.mutable_stamps(0)->set_description(description);
      absl::StatusOr<v1::ApplyResponse> applied = replicas_[r].Apply(changed);
      ASSERT_TRUE(applied.ok()) << applied.status();
      ASSERT_GT(applied->version(), last_acked);
      last_acked = applied->version();
      last_description = description;
      absl::StatusOr<v1::CreateKeyResponse> key = RotateKey(replicas_[r]);
      ASSERT_TRUE(key.ok()) << key.status();
      ASSERT_GT(key->version(), last_acked);
      last_acked = key->version();
      ++rotations;
      // Traffic through the agent, whichever replica it follows now: metered, and reported
      // to that replica, all of it to be found afterwards.
      absl::StatusOr<HttpResponse> chat =
          agents().AgentClient("eus2")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
      ASSERT_TRUE(chat.ok()) << chat.status();
      ASSERT_EQ(chat->status, 200) << chat->body;
      ++chats;
      return;
    }
  };
  for (int round = 0; round < 30; ++round) {
    ASSERT_NO_FATAL_FAILURE(change(round));
    if (round == 10 || round == 20) {
      const std::vector<int> holders = LeaseHolders(alive);
      ASSERT_EQ(holders.size(), 1u);
      replicas_[holders[0]].KillControlPlane();
      alive[holders[0]] = false;
      // Another replica takes the lease once the database sees the session end.
      EXPECT_TRUE(WaitFor([&] { return LeaseHolders(alive).size() == 1; }, kFleetWait))
          << "no surviving replica took the lease after replica " << holders[0] << " died";
    }
  }
  // Every acknowledged change is there, whole, on the survivor and at the agent.
  EXPECT_TRUE(WaitFor([&] { return CommonVersion(alive) == last_acked; }, kFleetWait));
  EXPECT_TRUE(agents().WaitForAgentVersion("eus2", last_acked).ok());
  for (int i = 0; i < 3; ++i) {
    if (!alive[i]) {
      continue;
    }
    std::unique_ptr<grpc::ClientContext> context = replicas_[i].AdminContext();
    v1::GetRequest request;
    v1::GetResponse got;
    ASSERT_TRUE(replicas_[i].admin().Get(context.get(), request, &got).ok());
    EXPECT_EQ(got.version(), last_acked);
    EXPECT_EQ(got.topology().stamps(0).description(), last_description);
    int keys = 0;
    for (const v1::Tenant& tenant : got.topology().tenants()) {
      keys += tenant.name() == "checkout-assistant" ? tenant.api_keys_size() : 0;
    }
    EXPECT_EQ(keys, 1 + rotations) << "every rotation acknowledged is kept";
  }
  // Usage the agent sent to three replicas in turn adds up, exactly, on the survivor.
  const int survivor = alive[0] ? 0 : alive[1] ? 1 : 2;
  EXPECT_TRUE(WaitFor([&] { return UsageRequests(survivor) == chats; }, kFleetWait))
      << "usage on record " << UsageRequests(survivor) << ", chats served " << chats;
  // The agent is the stamp's only one: the dead replicas' parts are gone, its share is the
  // whole limit (120,000 TPM), not a part of it.
  EXPECT_TRUE(WaitFor([&] { return Share("eus2") == 120000; }, kFleetWait))
      << "share " << Share("eus2");
}

TEST_F(PostgresReplicasTest, WhileTheDatabaseIsAwayChangesAreRefusedAndAgentsKeepServing) {
  ASSERT_TRUE(server_->Stop().ok());
  v1::Topology changed = topology_;
  changed.mutable_stamps(0)->set_description("while the database was away");
  for (ControlPlaneFleet& replica : replicas_) {
    absl::StatusOr<v1::ApplyResponse> refused = replica.Apply(changed);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  }
  absl::StatusOr<HttpResponse> response =
      agents().AgentClient("eus2")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200) << response->body;

  ASSERT_TRUE(server_->Restart().ok());
  // A replica tries the database again within a second of its last failure; until then an
  // apply is refused as before (nothing was sent), and an operator retries.
  absl::StatusOr<v1::ApplyResponse> applied;
  EXPECT_TRUE(WaitFor(
      [&] {
        applied = replicas_[2].Apply(changed);
        return applied.ok() || applied.status().code() != absl::StatusCode::kUnavailable;
      },
      kFleetWait));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version(), 2u);
  const std::vector<bool> alive = {true, true, true};
  EXPECT_TRUE(WaitFor([&] { return CommonVersion(alive) == 2u; }, kFleetWait));
  EXPECT_TRUE(agents().WaitForAgentVersion("eus2", 2).ok());
}

// `spillwayctl agents` through any replica: every replica's agents, connected where their
// stream is, with the replica that holds it; a replica that dies takes its agents' "connected"
// with it once its counts go stale.
TEST_F(PostgresReplicasTest, AnyReplicaListsEveryReplicasAgentsAsConnected) {
  agents().KillAgent("eus2");
  ASSERT_NO_FATAL_FAILURE(StartAgentOn("eus2", "eastus2", 0));
  ASSERT_NO_FATAL_FAILURE(StartAgentOn("wus3", "westus3", 2));
  ASSERT_TRUE(agents().WaitForAgentVersion("eus2", 1).ok());
  ASSERT_TRUE(agents().WaitForAgentVersion("wus3", 1).ok());
  // agent id -> (connected, replica) as replica `i` lists them.
  auto listed = [&](int i) {
    std::map<std::string, std::pair<bool, std::string>> out;
    absl::StatusOr<v1::ListAgentsResponse> response = replicas_[i].ListAgents();
    if (response.ok()) {
      for (const v1::AgentInfo& agent : response->agents()) {
        out[agent.region()] = {agent.connected(), agent.replica()};
      }
    }
    return out;
  };
  auto all_connected = [&](int i) {
    auto agents = listed(i);
    return agents["eastus2"].first && agents["westus3"].first;
  };
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return all_connected(i); }, kFleetWait))
        << "replica " << i << " does not list both agents as connected";
  }
  auto on_1 = listed(1);
  EXPECT_FALSE(on_1["eastus2"].second.empty());
  EXPECT_NE(on_1["eastus2"].second, on_1["westus3"].second) << "two replicas hold them";

  replicas_[2].KillControlPlane();  // SIGKILL: wus3 follows it alone and cannot move
  EXPECT_TRUE(WaitFor([&] { return !listed(1)["westus3"].first; }, kFleetWait))
      << "a dead replica's agent still listed as connected";
  EXPECT_TRUE(listed(1)["eastus2"].first);
  EXPECT_TRUE(listed(0)["eastus2"].first);
}

TEST_F(PostgresReplicasTest, AThrottleReachesAgentsOnOtherReplicasAndSharesSumToTheLimit) {
  // eus2 follows replica 0 alone, wus3 replica 1 alone: both in stamp "us".
  agents().KillAgent("eus2");
  ASSERT_NO_FATAL_FAILURE(StartAgentOn("eus2", "eastus2", 0));
  ASSERT_NO_FATAL_FAILURE(StartAgentOn("wus3", "westus3", 1));
  ASSERT_TRUE(agents().WaitForAgentVersion("eus2", 1).ok());
  ASSERT_TRUE(agents().WaitForAgentVersion("wus3", 1).ok());

  // checkout-assistant's 120,000 TPM: each replica splits its part (by its agents: one each)
  // among its own agents, so the two agents hold 120,000 between them, not 120,000 each.
  EXPECT_TRUE(WaitFor([&] { return Share("eus2") + Share("wus3") == 120000; }, kFleetWait))
      << "eus2 " << Share("eus2") << " + wus3 " << Share("wus3");
  EXPECT_EQ(Share("eus2"), 60000);

  // The workload PTU is down for everyone; the enterprise PTU pool answers wus3 with a 429
  // asking for 5 minutes (far past every wait below, under the 10-minute cap).
  HttpClient workload("127.0.0.1", agents().mock("aoai-eus2-ptu").port());
  ASSERT_TRUE(
      workload.Send("POST", "/mock/faults", {}, R"({"status":503,"retry_after_ms":1})").ok());
  HttpClient pool("127.0.0.1", agents().mock("aoai-wus3-ptu").port());
  absl::StatusOr<HttpResponse> fault =
      pool.Send("POST", "/mock/faults", {}, R"({"status":429,"count":1,"retry_after_ms":300000})");
  ASSERT_TRUE(fault.ok() && fault->status / 100 == 2);
  absl::StatusOr<HttpResponse> first =
      agents().AgentClient("wus3")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 200) << first->body;

  // Reported to replica 1, it reaches the other replicas and eus2, on replica 0.
  const std::string throttled = "aoai-wus3-ptu/gpt-4o-pool";
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReplicaSeesThrottled(i, throttled); }, kFleetWait))
        << "replica " << i << " never heard of the throttle";
  }
  EXPECT_TRUE(WaitFor([&] { return SeesThrottled("eus2", throttled); }, kFleetWait))
      << "the throttle never reached the agent on another replica";
}

}  // namespace
}  // namespace spillway::test
