// The control plane end to end: a real spillway-cp on a SQLite file, agents in two regions
// of the us stamp and one of the eu stamp, mock backends for every instance of the
// reference topology.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/topology_compile.h"
#include "tests/controlplane/fleet_fixture.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

constexpr char kChat[] = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
// SHA-256("test") is checkout-assistant's key in the reference topology.
const HttpHeaders kCheckoutKey = {{"api-key", "test"}};

std::set<std::string> BackendIds(const std::string& status_json) {
  std::set<std::string> ids;
  const boost::json::value status = boost::json::parse(status_json);
  for (const auto& backend : status.at("backends").as_array()) {
    ids.insert(std::string(backend.at("id").as_string()));
  }
  return ids;
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mocks = fleet_.AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
    ASSERT_TRUE(fleet_.StartControlPlane().ok());
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(fleet_);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *topology;
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(topology_);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 1u);
    ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2").ok());
    ASSERT_TRUE(fleet_.StartAgent("wus3", "westus3").ok());
    ASSERT_TRUE(fleet_.StartAgent("swc", "swedencentral").ok());
    ASSERT_TRUE(fleet_.WaitForAcks(1, 3).ok());
  }

  // Polls the agent's /status until `backend_id` is in `state` (any state but healthy when
  // `state` is empty).
  bool WaitForBackendState(const std::string& agent, const std::string& backend_id,
                           const std::string& state) {
    const absl::Time deadline = absl::Now() + kFleetWait;
    while (absl::Now() < deadline) {
      const std::string seen = fleet_.BackendState(agent, backend_id);
      if (!seen.empty() && (state.empty() ? seen != "healthy" : seen == state)) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Five chats through `agent` all succeed without touching `backend_id`.
  void ExpectChatsAvoid(const std::string& agent, const std::string& backend_id) {
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<HttpResponse> response =
          fleet_.AgentClient(agent)->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
      ASSERT_TRUE(response.ok());
      EXPECT_EQ(response->status, 200);
      EXPECT_NE(response->Header("x-spillway-backend"), backend_id);
    }
  }

  // Requests the mock `mock` received for `deployment`.
  int64_t MockRequests(const std::string& mock, const std::string& deployment) {
    HttpClient client("127.0.0.1", fleet_.mock(mock).port());
    absl::StatusOr<HttpResponse> stats = client.Send("GET", "/mock/stats");
    if (!stats.ok()) {
      return -1;
    }
    const boost::json::value parsed = boost::json::parse(stats->body);
    return parsed.at("deployments").at(deployment).at("requests").as_int64();
  }

  ControlPlaneFleet fleet_;
  v1::Topology topology_;
};

TEST_F(ControlPlaneTest, EachAgentReceivesExactlyItsRegionsTable) {
  for (const auto& [agent, region] : std::vector<std::pair<std::string, std::string>>{
           {"eus2", "eastus2"}, {"wus3", "westus3"}, {"swc", "swedencentral"}}) {
    absl::StatusOr<std::string> status = fleet_.AgentStatus(agent);
    ASSERT_TRUE(status.ok());
    EXPECT_THAT(*status, HasSubstr(absl::StrCat("\"region\":\"", region, "\"")));
    absl::StatusOr<v1::RoutingTable> expected = CompileRoutingTable(topology_, region, 1);
    ASSERT_TRUE(expected.ok());
    std::set<std::string> want;
    for (const v1::Backend& backend : expected->backends()) {
      want.insert(backend.id());
    }
    EXPECT_EQ(BackendIds(*status), want) << agent;
  }
  // Data sovereignty: the us agents know nothing of eu backends, and the eu agent nothing of us.
  absl::StatusOr<std::string> us_status = fleet_.AgentStatus("eus2");
  ASSERT_TRUE(us_status.ok()) << us_status.status();
  EXPECT_THAT(*us_status, ::testing::Not(HasSubstr("aoai-swc-std")));
  absl::StatusOr<std::string> eu_status = fleet_.AgentStatus("swc");
  ASSERT_TRUE(eu_status.ok()) << eu_status.status();
  EXPECT_THAT(*eu_status, ::testing::Not(HasSubstr("aoai-eus2")));
  // And they serve: the us route through the eastus2 agent, the eu route through swc.
  absl::StatusOr<HttpResponse> us =
      fleet_.AgentClient("eus2")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
  ASSERT_TRUE(us.ok());
  EXPECT_EQ(us->status, 200) << us->body;
  EXPECT_EQ(us->Header("x-spillway-backend"), "aoai-eus2-ptu/gpt-4o-ptu");
  absl::StatusOr<HttpResponse> eu =
      fleet_.AgentClient("swc")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
  ASSERT_TRUE(eu.ok());
  EXPECT_EQ(eu->status, 401) << "a us tenant's key means nothing in the eu stamp";
}

TEST_F(ControlPlaneTest, AnApplyReachesEveryAgentAndIsAcknowledged) {
  v1::Topology changed = topology_;
  changed.mutable_pools(5)->mutable_members(1)->set_weight(3);  // eu-standard
  changed.mutable_tenants(0)->mutable_limits()->set_requests_per_minute(900);
  absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(changed);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version(), 2u);
  EXPECT_TRUE(applied->changed());
  ASSERT_GE(applied->diff_size(), 2);
  ASSERT_TRUE(fleet_.WaitForAcks(2, 3).ok());
  for (const char* agent : {"eus2", "wus3", "swc"}) {
    EXPECT_TRUE(fleet_.WaitForAgentVersion(agent, 2).ok()) << agent;
  }
  // The same apply again changes nothing and pushes nothing.
  absl::StatusOr<v1::ApplyResponse> again = fleet_.Apply(changed);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed());
  EXPECT_EQ(again->version(), 2u);
}

TEST_F(ControlPlaneTest, AnInvalidApplyIsRefusedWithNamedErrorsAndChangesNothing) {
  v1::Topology broken = topology_;
  broken.mutable_routes(0)->set_tiers(1, "no-such-pool");
  broken.mutable_tenants(2)->add_routes("gpt-4o-canary");  // an eu tenant naming a us route
  absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(broken);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(applied.status().message());
  EXPECT_THAT(message, HasSubstr("no-such-pool"));
  EXPECT_THAT(message, HasSubstr("route 'gpt-4o'"));
  EXPECT_THAT(message, HasSubstr("tenant 'eu-helpdesk'"));
  grpc::ClientContext context;
  v1::GetResponse current;
  ASSERT_TRUE(fleet_.admin().Get(&context, {}, &current).ok());
  EXPECT_EQ(current.version(), 1u);
  EXPECT_EQ(current.topology().routes(0).tiers(1), "us-enterprise-ptu");
  EXPECT_TRUE(fleet_.WaitForAgentVersion("eus2", 1).ok());
}

TEST_F(ControlPlaneTest, AKilledControlPlaneComesBackWithEveryAcknowledgedChange) {
  v1::Topology changed = topology_;
  changed.mutable_stamps(0)->set_description("acknowledged before the crash");
  absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(changed);
  ASSERT_TRUE(applied.ok());
  ASSERT_EQ(applied->version(), 2u);
  fleet_.KillControlPlane();  // SIGKILL: no shutdown path runs
  ASSERT_TRUE(fleet_.StartControlPlane().ok());
  grpc::ClientContext context;
  v1::GetResponse current;
  ASSERT_TRUE(fleet_.admin().Get(&context, {}, &current).ok());
  EXPECT_EQ(current.version(), 2u);
  EXPECT_EQ(current.topology().stamps(0).description(), "acknowledged before the crash");
  // The agents reconnect on their own (to the same address: the fixture held the port) and,
  // already on version 2, are told nothing new.
  EXPECT_TRUE(fleet_.WaitForAcks(2, 3).ok());
}

TEST_F(ControlPlaneTest, AnAgentRestartedWhileTheControlPlaneIsDownServesItsPersistedTable) {
  fleet_.KillControlPlane();
  fleet_.KillAgent("eus2");
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2").ok());
  // With the control plane's port held and refusing, version 1 can only come from disk.
  EXPECT_TRUE(fleet_.WaitForAgentVersion("eus2", 1).ok());
  absl::StatusOr<HttpResponse> response =
      fleet_.AgentClient("eus2")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 200) << response->body;
}

TEST_F(ControlPlaneTest, AThrottleSeenByOneAgentSteersTheOtherAway) {
  // The workload PTU (first tier) is down for everyone; the enterprise PTU pool (second
  // tier, westus3) answers 429 once, asking for 5 minutes: the throttle must outlast the
  // wait for it to spread and the five chats below however slow the machine is, and it
  // stays under the 10 minutes the agents and the control plane cap a retry-after at.
  auto workload = std::make_unique<HttpClient>("127.0.0.1", fleet_.mock("aoai-eus2-ptu").port());
  // With retry-after: only a 503 that says so moves a request on (docs/choices.md).
  ASSERT_TRUE(
      workload->Send("POST", "/mock/faults", {}, R"({"status":503,"retry_after_ms":1})").ok());
  auto pool = std::make_unique<HttpClient>("127.0.0.1", fleet_.mock("aoai-wus3-ptu").port());
  absl::StatusOr<HttpResponse> fault =
      pool->Send("POST", "/mock/faults", {}, R"({"status":429,"count":1,"retry_after_ms":300000})");
  ASSERT_TRUE(fault.ok() && fault->status / 100 == 2);

  // The westus3 agent meets the 429 and spills to Standard.
  absl::StatusOr<HttpResponse> first =
      fleet_.AgentClient("wus3")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(first->Header("x-spillway-attempts"), "3");

  // The eastus2 agent hears of it through the control plane...
  ASSERT_TRUE(WaitForBackendState("eus2", "aoai-wus3-ptu/gpt-4o-pool", "throttled"))
      << "the throttle never reached the other agent";
  // ...and skips the throttled pool instead of trying it.
  ExpectChatsAvoid("eus2", "aoai-wus3-ptu/gpt-4o-pool");
  EXPECT_EQ(MockRequests("aoai-wus3-ptu", "gpt-4o-pool"), 1)
      << "only the first agent's request reached it";
}

TEST_F(ControlPlaneTest, ACircuitOpenedByOneAgentIsAvoidedByTheOthers) {
  // The westus3 agent runs with an open period of 5 minutes, far past every wait below
  // however slow the machine is (its default longest is one minute, raised to match).
  fleet_.KillAgent("wus3");
  ASSERT_TRUE(fleet_
                  .StartAgent("wus3", "westus3",
                              {"--circuit-open-ms", "300000", "--circuit-max-open-ms", "300000"})
                  .ok());
  ASSERT_TRUE(fleet_.WaitForAgentVersion("wus3", 1).ok());
  auto workload = std::make_unique<HttpClient>("127.0.0.1", fleet_.mock("aoai-eus2-ptu").port());
  // With retry-after: only a 503 that says so moves a request on (docs/choices.md).
  ASSERT_TRUE(
      workload->Send("POST", "/mock/faults", {}, R"({"status":503,"retry_after_ms":1})").ok());

  // Three failures in a row open the westus3 agent's circuit to the workload PTU.
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> response =
        fleet_.AgentClient("wus3")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
    ASSERT_TRUE(response.ok());
    EXPECT_EQ(response->status, 200) << "the next tier answers: " << response->body;
  }

  // The eastus2 agent never met the failure, yet hears the circuit is open...
  ASSERT_TRUE(WaitForBackendState("eus2", "aoai-eus2-ptu/gpt-4o-ptu", ""))
      << "the open circuit never reached the other agent";
  // ...and the fleet health names the backend and who found it.
  v1::HealthOverlay health;
  grpc::Status got = fleet_.admin().FleetHealth(fleet_.AdminContext().get(), {}, &health);
  ASSERT_TRUE(got.ok()) << got.error_message();
  bool reported = false;
  for (const v1::BackendHealth& backend : health.backends()) {
    reported |= backend.backend_id() == "aoai-eus2-ptu/gpt-4o-ptu" &&
                backend.state() == v1::HEALTH_STATE_UNHEALTHY &&
                absl::StartsWith(backend.reported_by(), "vm-westus3-");
  }
  EXPECT_TRUE(reported) << health.DebugString();

  ExpectChatsAvoid("eus2", "aoai-eus2-ptu/gpt-4o-ptu");
  EXPECT_EQ(MockRequests("aoai-eus2-ptu", "gpt-4o-ptu"), 3)
      << "only the westus3 agent's three requests reached it";
}

}  // namespace
}  // namespace spillway::test
