// Object pins across the agents of a region (docs/pinning.md): behind a load balancer a
// follow-up lands on another agent than the one that created the response, and must still
// reach the backend that holds it, through pins relayed by the control plane, or, for an id
// not relayed yet, by asking the route's backends. Pins outlive restarts of an agent and of
// the control plane.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <csignal>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/topology_yaml.h"
#include "tests/controlplane/fleet_fixture.h"
#include "tests/support/topology_snippets.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

constexpr char kAppKey[] = "test";    // tenant "app"
constexpr char kOtherKey[] = "beta";  // tenant "other"
const std::string kTopology = std::string(R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", insecure_http: true, auth: { api_key_env: FLEET_BACKEND_KEY } }
  - { name: b, region: eastus2, subscription: s, endpoint: "{b}", insecure_http: true, auth: { api_key_env: FLEET_BACKEND_KEY } }
)") + kGpt4oOverAAndBYaml + R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
  - { name: other, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: f44e64e75f3948e9f73f8dfa94721c4ce8cbb4f265c4790c702b2d41cfbf2753 } ] }
)";

std::string ResponseBody(const std::string& previous = "") {
  return absl::StrCat(
      R"({"model":"gpt-4o","input":"Tell me more.","max_output_tokens":8)",
      previous.empty() ? "" : absl::StrCat(R"(,"previous_response_id":")", previous, "\""), "}");
}

class PinSharingE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* mock : {"a", "b"}) {
      ASSERT_TRUE(fleet_.AddMock(mock, {"--deployments", "gpt-4o"}).ok());
    }
    ASSERT_TRUE(fleet_.StartControlPlane().ok());
    absl::StatusOr<v1::Topology> topology = ParseTopologyYaml(
        absl::StrReplaceAll(kTopology,
                            {{"{a}", fleet_.MockEndpoint("a")}, {"{b}", fleet_.MockEndpoint("b")}}),
        "topology.yaml");
    ASSERT_TRUE(topology.ok()) << topology.status();
    ASSERT_TRUE(fleet_.Apply(*topology).ok());
    for (const char* agent : {"one", "two"}) {
      ASSERT_TRUE(fleet_.StartAgent(agent, "eastus2").ok());
    }
    ASSERT_TRUE(fleet_.WaitForAcks(1, 2).ok());
  }

  // Requests each mock has seen so far.
  std::map<std::string, int64_t> Seen() { return fleet_.MockRequestCounts({"a", "b"}); }

  HttpResponse Send(const std::string& agent, const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& key = kAppKey) {
    absl::StatusOr<HttpResponse> r =
        fleet_.AgentClient(agent)->Send(method, target, {{"api-key", key}}, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse{};
  }

  // Creates a response through `agent`; returns its id and the mock that holds it.
  std::pair<std::string, std::string> Create(const std::string& agent) {
    const std::map<std::string, int64_t> before = Seen();
    HttpResponse created = Send(agent, "POST", "/openai/v1/responses", ResponseBody());
    EXPECT_EQ(created.status, 200) << created.body;
    if (created.status != 200) {
      return {"", ""};
    }
    const std::string id(boost::json::parse(created.body).at("id").as_string());
    return {id, Seen().at("a") > before.at("a") ? "a" : "b"};
  }

  // Polls the agent's spillway_object_pins gauge until it reaches `count`.
  bool WaitForPins(const std::string& agent, int count) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    const std::string wanted = absl::StrCat("\nspillway_object_pins ", count, "\n");
    while (absl::Now() < deadline) {
      absl::StatusOr<HttpResponse> metrics =
          fleet_.AgentClient(agent)->Send("GET", "/metrics", {}, "");
      if (metrics.ok() && metrics->body.find(wanted) != std::string::npos) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  ControlPlaneFleet fleet_;
};

TEST_F(PinSharingE2e, FollowUpsThroughAnotherAgentRightAfterCreationReachTheOwner) {
  // No wait at all between the creation on one agent and the follow-ups on the other: the
  // relayed pin or, if it has not arrived, a probe of the route's backends finds the owner.
  for (int turn = 0; turn < 6; ++turn) {
    const std::string creator = turn % 2 == 0 ? "one" : "two";
    const std::string follower = turn % 2 == 0 ? "two" : "one";
    const auto [id, owner] = Create(creator);
    ASSERT_FALSE(id.empty());
    HttpResponse chained = Send(follower, "POST", "/openai/v1/responses", ResponseBody(id));
    EXPECT_EQ(chained.status, 200) << chained.body;
    HttpResponse read = Send(follower, "GET", "/openai/v1/responses/" + id);
    EXPECT_EQ(read.status, 200) << read.body;
    EXPECT_THAT(read.body, HasSubstr(id));
  }
}

TEST_F(PinSharingE2e, AssistantsThreadsAndVectorStoresAreFoundThroughTheOtherAgent) {
  // Objects that name no model (a vector store) and those that do (an assistant), then a
  // thread made with its run: each followed through the other agent at once.
  for (const char* creator : {"one", "two"}) {
    const std::string follower = std::string(creator) == "one" ? "two" : "one";
    HttpResponse store = Send(creator, "POST", "/openai/v1/vector_stores", R"({"name":"docs"})");
    ASSERT_EQ(store.status, 200) << store.body;
    const std::string store_id(boost::json::parse(store.body).at("id").as_string());
    HttpResponse assistant =
        Send(creator, "POST", "/openai/v1/assistants", R"({"model":"gpt-4o","name":"helper"})");
    ASSERT_EQ(assistant.status, 200) << assistant.body;
    const std::string assistant_id(boost::json::parse(assistant.body).at("id").as_string());
    HttpResponse run =
        Send(creator, "POST", "/openai/v1/threads/runs",
             absl::StrCat(R"({"assistant_id":")", assistant_id,
                          R"(","thread":{"messages":[{"role":"user","content":"Hi"}]}})"));
    ASSERT_EQ(run.status, 200) << run.body;
    const std::string thread(boost::json::parse(run.body).at("thread_id").as_string());
    for (int i = 0; i < 3; ++i) {
      HttpResponse got = Send(follower, "GET", "/openai/v1/vector_stores/" + store_id);
      EXPECT_EQ(got.status, 200) << got.body;
      got = Send(follower, "GET", "/openai/v1/assistants/" + assistant_id);
      EXPECT_EQ(got.status, 200) << got.body;
      got = Send(follower, "POST", "/openai/v1/threads/" + thread + "/runs",
                 absl::StrCat(R"({"assistant_id":")", assistant_id, "\"}"));
      EXPECT_EQ(got.status, 200) << got.body;
    }
  }
}

TEST_F(PinSharingE2e, ARelayedPinSendsTheOtherAgentStraightToTheOwner) {
  const auto [id, owner] = Create("one");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForPins("two", 1)) << "agent two never heard of the pin";
  const std::string other = owner == "a" ? "b" : "a";
  const int64_t other_before = Seen().at(other);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Send("two", "GET", "/openai/v1/responses/" + id).status, 200);
    HttpResponse chained = Send("two", "POST", "/openai/v1/responses", ResponseBody(id));
    EXPECT_EQ(chained.status, 200) << chained.body;
    EXPECT_EQ(chained.Header("x-spillway-attempts").value_or(""), "1");
  }
  EXPECT_EQ(Seen().at(other), other_before) << "the backend without the response was asked";

  // The pin carries its tenant: another tenant is refused on the agent that did not create it.
  const std::map<std::string, int64_t> before = Seen();
  EXPECT_EQ(Send("two", "GET", "/openai/v1/responses/" + id, "", kOtherKey).status, 404);
  EXPECT_EQ(Seen(), before) << "another tenant's request reached a backend";

  // A delete on one agent is known on the other: 404 at once, no backend asked.
  EXPECT_EQ(Send("one", "DELETE", "/openai/v1/responses/" + id).status, 200);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  HttpResponse gone;
  do {
    gone = Send("two", "GET", "/openai/v1/responses/" + id);
  } while (gone.body.find("was deleted") == std::string::npos && absl::Now() < deadline &&
           (absl::SleepFor(absl::Milliseconds(20)), true));
  EXPECT_EQ(gone.status, 404);
  EXPECT_THAT(gone.body, HasSubstr("was deleted"));
}

TEST_F(PinSharingE2e, PinsSurviveRestartsOfAnAgentAndOfTheControlPlane) {
  const auto [id, owner] = Create("one");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForPins("two", 1));
  const std::string other = owner == "a" ? "b" : "a";

  // The control plane goes away and agent two restarts meanwhile: it still knows the pin.
  fleet_.KillControlPlane();
  ASSERT_TRUE(fleet_.agent_process("two").Signal(SIGTERM).ok());
  ASSERT_TRUE(fleet_.agent_process("two").Wait().ok());
  ASSERT_TRUE(fleet_.StartAgent("two", "eastus2").ok());
  int64_t other_before = Seen().at(other);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Send("two", "GET", "/openai/v1/responses/" + id).status, 200);
  }
  EXPECT_EQ(Seen().at(other), other_before);

  // Back with the control plane (same database): new pins travel again, old ones still hold.
  ASSERT_TRUE(fleet_.StartControlPlane().ok());
  ASSERT_TRUE(fleet_.WaitForAcks(1, 2).ok());
  const auto [second, second_owner] = Create("two");
  ASSERT_FALSE(second.empty());
  ASSERT_TRUE(WaitForPins("one", 2)) << "agent one never heard of the second pin";
  const std::string second_other = second_owner == "a" ? "b" : "a";
  other_before = Seen().at(second_other);
  EXPECT_EQ(Send("one", "GET", "/openai/v1/responses/" + second).status, 200);
  EXPECT_EQ(Send("one", "POST", "/openai/v1/responses", ResponseBody(second)).status, 200);
  EXPECT_EQ(Seen().at(second_other), other_before);
}

}  // namespace
}  // namespace spillway::test
