// An agent given several control-plane addresses (issue 20): it follows one, and when that
// one dies it moves to another and takes the changes applied there. Two spillway-cp
// processes on SQLite files of their own, both given the same topology, stand in for two
// replicas of one database.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/controlplane/fleet_fixture.h"
#include "tests/support/closed_port.h"
#include "tests/support/wait_for.h"

namespace spillway::test {
namespace {

constexpr char kChat[] = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
// SHA-256("test") is checkout-assistant's key in the reference topology.
const HttpHeaders kCheckoutKey = {{"api-key", "test"}};

// Whether `fleet`'s control plane has `agent_id` on a live stream.
bool Connected(ControlPlaneFleet& fleet, const std::string& agent_id) {
  absl::StatusOr<v1::ListAgentsResponse> agents = fleet.ListAgents();
  if (!agents.ok()) {
    return false;
  }
  for (const v1::AgentInfo& agent : agents->agents()) {
    if (agent.agent_id() == agent_id && agent.connected()) {
      return true;
    }
  }
  return false;
}

class ControlPlaneReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mocks = a_.AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
    ASSERT_TRUE(a_.StartControlPlane().ok());
    ASSERT_TRUE(b_.StartControlPlane().ok());
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(a_);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *topology;
    for (ControlPlaneFleet* replica : {&a_, &b_}) {
      absl::StatusOr<v1::ApplyResponse> applied = replica->Apply(topology_);
      ASSERT_TRUE(applied.ok()) << applied.status();
      ASSERT_EQ(applied->version(), 1u);
    }
    a_.SetAgentControlPlanes(
        absl::StrCat("127.0.0.1:", a_.cp_port(), ", 127.0.0.1:", b_.cp_port()));
    ASSERT_TRUE(a_.StartAgent("eus2", "eastus2").ok());
    ASSERT_TRUE(a_.WaitForAgentVersion("eus2", 1).ok());
  }

  // The agent's id, from whichever replica has it connected; empty when neither does yet.
  std::string ConnectedAgentId(ControlPlaneFleet*& holder) {
    for (ControlPlaneFleet* replica : {&a_, &b_}) {
      absl::StatusOr<v1::ListAgentsResponse> agents = replica->ListAgents();
      if (!agents.ok()) {
        continue;
      }
      for (const v1::AgentInfo& agent : agents->agents()) {
        if (agent.connected()) {
          holder = replica;
          return agent.agent_id();
        }
      }
    }
    return "";
  }

  ControlPlaneFleet a_;  // owns the mocks and the agent
  ControlPlaneFleet b_;
  v1::Topology topology_;
};

TEST_F(ControlPlaneReplicasTest, AnAgentWhoseReplicaDiesMovesToAnotherAndTakesItsChanges) {
  ControlPlaneFleet* holder = nullptr;
  std::string agent_id;
  ASSERT_TRUE(WaitFor([&] { return !(agent_id = ConnectedAgentId(holder)).empty(); }, kFleetWait))
      << "no replica lists the agent as connected";
  ControlPlaneFleet* survivor = holder == &a_ ? &b_ : &a_;
  EXPECT_FALSE(Connected(*survivor, agent_id)) << "one stream, to one replica";

  holder->KillControlPlane();  // SIGKILL; its port stays held and refuses
  // A change applied on the survivor reaches the agent only once it has moved there.
  v1::Topology changed = topology_;
  changed.mutable_stamps(0)->set_description("applied on the surviving replica");
  absl::StatusOr<v1::ApplyResponse> applied = survivor->Apply(changed);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_EQ(applied->version(), 2u);
  EXPECT_TRUE(a_.WaitForAgentVersion("eus2", 2).ok());
  EXPECT_TRUE(survivor->WaitForAcks(2, 1).ok());
  EXPECT_TRUE(Connected(*survivor, agent_id));

  absl::StatusOr<HttpResponse> response =
      a_.AgentClient("eus2")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200) << response->body;
  // The move is in the agent's log, naming both replicas.
  const std::string log = a_.agent_process("eus2").Output();
  EXPECT_THAT(log, ::testing::HasSubstr("next try 127.0.0.1:"));
}

TEST_F(ControlPlaneReplicasTest, AReplicaThatRefusesCostsARetryNotTheStream) {
  ClosedPort down;  // bound, never listening: a replica that is down
  a_.KillAgent("eus2");
  a_.SetAgentControlPlanes(
      absl::StrCat(down.address(), ",127.0.0.1:", a_.cp_port(), ",127.0.0.1:", b_.cp_port()));
  ASSERT_TRUE(a_.StartAgent("eus2", "eastus2").ok());
  v1::Topology changed = topology_;
  changed.mutable_stamps(0)->set_description("applied on both");
  for (ControlPlaneFleet* replica : {&a_, &b_}) {
    absl::StatusOr<v1::ApplyResponse> applied = replica->Apply(changed);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 2u);
  }
  EXPECT_TRUE(a_.WaitForAgentVersion("eus2", 2).ok());
  ControlPlaneFleet* holder = nullptr;
  EXPECT_TRUE(WaitFor([&] { return !ConnectedAgentId(holder).empty(); }, kFleetWait));
}

}  // namespace
}  // namespace spillway::test
