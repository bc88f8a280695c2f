// Drains end to end (docs/operations.md, "Drains and drills"): spillway-cp, an agent in each
// of two regions and a mock per region's instance. A drained region, instance or deployment
// gets no new requests from any agent once the command returns, the drained region's agent
// answers /readyz 503 with the reason while it keeps serving, streams in flight finish, and
// objects a drained backend holds answer 503 naming the drain unless it keeps them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <future>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/topology_yaml.h"
#include "tests/controlplane/fleet_fixture.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

// Prefer-local: each agent sends a route's requests to its own region's deployment while it
// can, so a drain is seen as traffic moving to the other region.
constexpr char kTopology[] = R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us }, { name: westus, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", insecure_http: true, auth: { api_key_env: FLEET_BACKEND_KEY } }
  - { name: b, region: westus, subscription: s, endpoint: "{b}", insecure_http: true, auth: { api_key_env: FLEET_BACKEND_KEY } }
deployments:
  - { instance: a, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
  - { instance: b, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
pools:
  - { name: p, members: [ { deployment: a/gpt-4o }, { deployment: b/gpt-4o } ] }
routes:
  - { name: gpt-4o, stamp: us, locality: prefer-local, tiers: [ p ] }
)";

constexpr char kChat[] = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";
constexpr char kChatBody[] = R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":8})";
// How long a drain took to be in force goes into the test's properties (ctest's XML), not
// into an assertion: the benchmark holds it to a second, at 100 agents
// (controlplane.drain_and_undrain_*), where a loaded machine cannot fail the suite.
void RecordInForce(const std::string& what, absl::Duration took) {
  ::testing::Test::RecordProperty(what, absl::StrCat(absl::ToInt64Milliseconds(took), " ms"));
}

class DrainE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    // a streams slowly (30 tokens, 20 ms apart) so a stream can be in flight during a drain.
    ASSERT_TRUE(fleet_
                    .AddMock("a", {"--deployments", "gpt-4o", "--ms-per-token", "20",
                                   "--completion-tokens", "30"})
                    .ok());
    ASSERT_TRUE(fleet_.AddMock("b", {"--deployments", "gpt-4o"}).ok());
    ASSERT_TRUE(fleet_.StartControlPlane().ok());
    absl::StatusOr<v1::Topology> topology = ParseTopologyYaml(
        absl::StrReplaceAll(kTopology,
                            {{"{a}", fleet_.MockEndpoint("a")}, {"{b}", fleet_.MockEndpoint("b")}}),
        "topology.yaml");
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *topology;
    ASSERT_TRUE(fleet_.Apply(topology_).ok());
    ASSERT_TRUE(fleet_.StartAgent("east", "eastus2").ok());
    ASSERT_TRUE(fleet_.StartAgent("west", "westus").ok());
    ASSERT_TRUE(fleet_.WaitForAcks(1, 2).ok());
  }

  absl::StatusOr<v1::ApplyResponse> Drain(v1::DrainScope scope, const std::string& name,
                                          const std::string& reason, bool keep_pinned = false) {
    v1::DrainRequest request;
    request.set_scope(scope);
    request.set_name(name);
    request.set_reason(reason);
    request.set_keep_pinned(keep_pinned);
    v1::ApplyResponse response;
    grpc::Status status = fleet_.admin().Drain(fleet_.AdminContext().get(), request, &response);
    if (!status.ok()) {
      return FromGrpc(status);
    }
    return response;
  }

  absl::StatusOr<v1::ApplyResponse> Undrain(v1::DrainScope scope, const std::string& name) {
    v1::UndrainRequest request;
    request.set_scope(scope);
    request.set_name(name);
    v1::ApplyResponse response;
    grpc::Status status = fleet_.admin().Undrain(fleet_.AdminContext().get(), request, &response);
    if (!status.ok()) {
      return FromGrpc(status);
    }
    return response;
  }

  HttpResponse Get(const std::string& agent, const std::string& target) {
    absl::StatusOr<HttpResponse> r = fleet_.AgentClient(agent)->Send("GET", target, {}, "");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse{};
  }

  HttpResponse Post(const std::string& agent, const std::string& target, const std::string& body) {
    absl::StatusOr<HttpResponse> r = fleet_.AgentClient(agent)->Send(
        "POST", target, {{"api-key", "client"}, {"content-type", "application/json"}}, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse{};
  }

  // The backend that served one chat request through `agent` ("" when it failed).
  std::string ServedBy(const std::string& agent) {
    HttpResponse r = Post(agent, kChat, kChatBody);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.Header("x-spillway-backend").value_or("");
  }

  // Polls until `agent` serves from `backend`; the time it took, or an error after `limit`.
  absl::StatusOr<absl::Duration> TimeUntilServedBy(const std::string& agent,
                                                   const std::string& backend, absl::Time since) {
    const absl::Time deadline = since + kFleetWait;
    while (absl::Now() < deadline) {
      if (ServedBy(agent) == backend) {
        return absl::Now() - since;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return absl::DeadlineExceededError(absl::StrCat(agent, " never served from ", backend));
  }

  // Polls /readyz until it answers `status`; the time it took.
  absl::StatusOr<absl::Duration> TimeUntilReadyz(const std::string& agent, int status,
                                                 absl::Time since, std::string* body = nullptr) {
    const absl::Time deadline = since + kFleetWait;
    while (absl::Now() < deadline) {
      HttpResponse r = Get(agent, "/readyz");
      if (r.status == status) {
        if (body != nullptr) {
          *body = r.body;
        }
        return absl::Now() - since;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return absl::DeadlineExceededError(absl::StrCat(agent, " /readyz never answered ", status));
  }

  // Requests each mock has seen so far.
  std::map<std::string, int64_t> Seen() { return fleet_.MockRequestCounts({"a", "b"}); }

  absl::StatusOr<v1::Drill> StartDrill(const std::string& region, uint32_t seconds, bool dry_run) {
    v1::DrillRequest request;
    request.set_region(region);
    request.set_duration_s(seconds);
    request.set_dry_run(dry_run);
    v1::Drill drill;
    grpc::Status status = fleet_.admin().StartDrill(fleet_.AdminContext().get(), request, &drill);
    if (!status.ok()) {
      return FromGrpc(status);
    }
    return drill;
  }

  // Polls the drill until it reaches `state`.
  absl::StatusOr<v1::Drill> WaitForDrill(uint64_t id, v1::Drill::State state) {
    const absl::Time deadline = absl::Now() + kFleetWait;
    while (absl::Now() < deadline) {
      v1::GetDrillRequest request;
      request.set_id(id);
      v1::Drill drill;
      grpc::Status status = fleet_.admin().GetDrill(fleet_.AdminContext().get(), request, &drill);
      if (status.ok() && drill.state() >= state) {
        return drill;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError(absl::StrCat("drill ", id, " never reached ", state));
  }

  ControlPlaneFleet fleet_;
  v1::Topology topology_;
};

TEST_F(DrainE2e, ARegionDrainMovesTrafficAwayAndFlipsReadyzOnceTheCommandReturns) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(ServedBy("east"), "a/gpt-4o");
  }
  ASSERT_EQ(Get("east", "/readyz").status, 200);

  absl::StatusOr<v1::ApplyResponse> drained =
      Drain(v1::DRAIN_SCOPE_REGION, "eastus2", "DR drill: eastus2 out");
  ASSERT_TRUE(drained.ok()) << drained.status();
  EXPECT_TRUE(drained->changed());
  EXPECT_EQ(drained->version(), 2u);
  const absl::Time command_returned = absl::Now();
  std::string why;
  absl::StatusOr<absl::Duration> readyz = TimeUntilReadyz("east", 503, command_returned, &why);
  ASSERT_TRUE(readyz.ok()) << readyz.status();
  RecordInForce("drain_readyz", *readyz);
  EXPECT_THAT(why, HasSubstr("region eastus2 is drained: DR drill: eastus2 out"));
  absl::StatusOr<absl::Duration> moved = TimeUntilServedBy("east", "b/gpt-4o", command_returned);
  ASSERT_TRUE(moved.ok()) << moved.status();
  RecordInForce("drain_traffic", *moved);
  // The drained region's agent keeps serving what reaches it; the other region is ready.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ServedBy("east"), "b/gpt-4o");
    EXPECT_EQ(ServedBy("west"), "b/gpt-4o");
  }
  EXPECT_EQ(Get("west", "/readyz").status, 200);
  // A probe that gates a regional Service keeps the drained region's agents in it.
  EXPECT_EQ(Get("east", "/readyz?drain=ignore").status, 200);
  absl::StatusOr<std::string> status = fleet_.AgentStatus("east");
  ASSERT_TRUE(status.ok());
  EXPECT_THAT(*status, HasSubstr(R"("state":"drained")"));

  absl::StatusOr<v1::ApplyResponse> restored = Undrain(v1::DRAIN_SCOPE_REGION, "eastus2");
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->version(), 3u);
  const absl::Time undrain_returned = absl::Now();
  readyz = TimeUntilReadyz("east", 200, undrain_returned);
  ASSERT_TRUE(readyz.ok()) << readyz.status();
  RecordInForce("undrain_readyz", *readyz);
  moved = TimeUntilServedBy("east", "a/gpt-4o", undrain_returned);
  ASSERT_TRUE(moved.ok()) << moved.status();
  RecordInForce("undrain_traffic", *moved);
}

TEST_F(DrainE2e, InstanceAndDeploymentDrainsMoveOnlyTheirBackends) {
  ASSERT_TRUE(Drain(v1::DRAIN_SCOPE_DEPLOYMENT, "a/gpt-4o", "model upgrade").ok());
  ASSERT_TRUE(TimeUntilServedBy("east", "b/gpt-4o", absl::Now()).ok());
  // Only the region drain makes an agent unready: the route still has a live backend.
  EXPECT_EQ(Get("east", "/readyz").status, 200);
  ASSERT_TRUE(Undrain(v1::DRAIN_SCOPE_DEPLOYMENT, "a/gpt-4o").ok());
  ASSERT_TRUE(TimeUntilServedBy("east", "a/gpt-4o", absl::Now()).ok());

  ASSERT_TRUE(Drain(v1::DRAIN_SCOPE_INSTANCE, "b", "").ok());
  ASSERT_TRUE(TimeUntilServedBy("west", "a/gpt-4o", absl::Now()).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ServedBy("west"), "a/gpt-4o");
    EXPECT_EQ(ServedBy("east"), "a/gpt-4o");
  }
  // With every backend of the route drained, clients get a clear 503, and /readyz says why.
  ASSERT_TRUE(Drain(v1::DRAIN_SCOPE_INSTANCE, "a", "").ok());
  const absl::Time drained_all = absl::Now();
  std::string why;
  ASSERT_TRUE(TimeUntilReadyz("east", 503, drained_all, &why).ok());
  EXPECT_THAT(why, HasSubstr("route gpt-4o has no live backend"));
  HttpResponse refused = Post("east", kChat, kChatBody);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("\"error\""));
}

TEST_F(DrainE2e, StreamsInFlightFinishWhenTheirBackendIsDrained) {
  // 30 tokens 20 ms apart from a: the drain lands while the stream is running.
  auto stream = std::async(std::launch::async, [&] {
    return Post("east", kChat,
                R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":30,"stream":true})");
  });
  absl::SleepFor(absl::Milliseconds(150));
  ASSERT_TRUE(Drain(v1::DRAIN_SCOPE_REGION, "eastus2", "drill").ok());
  HttpResponse streamed = stream.get();
  EXPECT_EQ(streamed.status, 200);
  EXPECT_EQ(streamed.Header("x-spillway-backend").value_or(""), "a/gpt-4o");
  EXPECT_THAT(streamed.body, HasSubstr("data: [DONE]"));
  ASSERT_TRUE(TimeUntilServedBy("east", "b/gpt-4o", absl::Now()).ok());
}

TEST_F(DrainE2e, ObjectsOnADrainedBackendAnswer503UnlessTheDrainKeepsThem) {
  constexpr char kResponses[] = "/openai/v1/responses";
  HttpResponse created =
      Post("east", kResponses, R"({"model":"gpt-4o","input":"Hi","max_output_tokens":8})");
  ASSERT_EQ(created.status, 200) << created.body;
  ASSERT_EQ(created.Header("x-spillway-backend").value_or(""), "a/gpt-4o");
  const std::string id(boost::json::parse(created.body).at("id").as_string());

  ASSERT_TRUE(Drain(v1::DRAIN_SCOPE_DEPLOYMENT, "a/gpt-4o", "moving to PTU").ok());
  ASSERT_TRUE(TimeUntilServedBy("east", "b/gpt-4o", absl::Now()).ok());
  HttpResponse held = Get("east", absl::StrCat(kResponses, "/", id));
  EXPECT_EQ(held.status, 503) << held.body;
  EXPECT_THAT(held.body, HasSubstr("BackendDrained"));
  EXPECT_THAT(held.body, HasSubstr("drained: deployment a/gpt-4o, moving to PTU"));

  // Draining again with --keep-pinned changes the rule in place: the object is reachable,
  // new requests still go elsewhere.
  absl::StatusOr<v1::ApplyResponse> kept =
      Drain(v1::DRAIN_SCOPE_DEPLOYMENT, "a/gpt-4o", "moving to PTU", /*keep_pinned=*/true);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->changed());
  ASSERT_TRUE(fleet_.WaitForAgentVersion("east", kept->version()).ok());
  HttpResponse reached = Get("east", absl::StrCat(kResponses, "/", id));
  EXPECT_EQ(reached.status, 200) << reached.body;
  EXPECT_EQ(reached.Header("x-spillway-backend").value_or(""), "a/gpt-4o");
  EXPECT_EQ(ServedBy("east"), "b/gpt-4o");
}

TEST_F(DrainE2e, DrainsAreTopologyChangesThatAnApplyKeeps) {
  absl::StatusOr<v1::ApplyResponse> drained = Drain(v1::DRAIN_SCOPE_REGION, "eastus2", "drill");
  ASSERT_TRUE(drained.ok());
  // Draining the same thing again with the same words changes nothing.
  absl::StatusOr<v1::ApplyResponse> again = Drain(v1::DRAIN_SCOPE_REGION, "eastus2", "drill");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed());
  EXPECT_EQ(again->version(), drained->version());
  // Re-applying the operator's file (which declares no drain) does not put the region back.
  absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(topology_);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_FALSE(applied->changed());
  EXPECT_EQ(Get("east", "/readyz").status, 503);

  // Unknown targets and undrains of what is not drained are refused, naming them.
  absl::StatusOr<v1::ApplyResponse> unknown = Drain(v1::DRAIN_SCOPE_REGION, "mars", "");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("region 'mars' does not exist"));
  absl::StatusOr<v1::ApplyResponse> not_drained = Undrain(v1::DRAIN_SCOPE_INSTANCE, "b");
  EXPECT_EQ(not_drained.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(not_drained.status().message()),
              HasSubstr("instance 'b' is not drained"));

  // The drain is an entry of the topology, with its reason and when it began.
  v1::GetRequest get;
  get.set_kind(v1::KIND_DRAIN);
  v1::GetResponse got;
  ASSERT_TRUE(fleet_.admin().Get(fleet_.AdminContext().get(), get, &got).ok());
  ASSERT_EQ(got.topology().drains_size(), 1);
  EXPECT_EQ(got.topology().drains(0).name(), "eastus2");
  EXPECT_EQ(got.topology().drains(0).reason(), "drill");
  EXPECT_FALSE(got.topology().drains(0).since().empty());
}

TEST_F(DrainE2e, ADryRunSaysWhatWouldMoveWhereAndChangesNothing) {
  absl::StatusOr<v1::Drill> plan = StartDrill("eastus2", 120, /*dry_run=*/true);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->state(), v1::Drill::STATE_PLANNED);
  EXPECT_EQ(plan->id(), 0u);
  ASSERT_EQ(plan->plan_size(), 2);  // two regions, one route
  for (const v1::DrillMove& move : plan->plan()) {
    ASSERT_EQ(move.during_size(), 1);
    EXPECT_EQ(move.during(0), "b/gpt-4o");
    ASSERT_EQ(move.before_size(), 1);
    EXPECT_EQ(move.before(0), move.agent_region() == "eastus2" ? "a/gpt-4o" : "b/gpt-4o");
  }
  EXPECT_EQ(fleet_.ListAgents()->current_version(), 1u);
  EXPECT_EQ(Get("east", "/readyz").status, 200);
  EXPECT_EQ(StartDrill("atlantis", 60, true).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StartDrill("eastus2", 0, true).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DrainE2e, ADrillDrainsRestoresAndReportsWhatTheMocksSaw) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(ServedBy("east"), "a/gpt-4o");
  }
  absl::StatusOr<v1::Drill> drill = StartDrill("eastus2", 6, /*dry_run=*/false);
  ASSERT_TRUE(drill.ok()) << drill.status();
  EXPECT_EQ(drill->state(), v1::Drill::STATE_DRAINED);
  ASSERT_GT(drill->id(), 0u);
  const absl::Time started = absl::Now();
  // One drill at a time.
  EXPECT_EQ(StartDrill("westus", 5, false).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(TimeUntilReadyz("east", 503, started).ok());

  // While the region is out: every request through either agent lands on b.
  const std::map<std::string, int64_t> before = Seen();
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(ServedBy("east"), "b/gpt-4o");
  }
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(ServedBy("west"), "b/gpt-4o");
  }
  const std::map<std::string, int64_t> after = Seen();
  // Still out: every request above finished while the region was drained.
  absl::StatusOr<v1::Drill> during = WaitForDrill(drill->id(), v1::Drill::STATE_DRAINED);
  ASSERT_TRUE(during.ok()) << during.status();
  ASSERT_EQ(during->state(), v1::Drill::STATE_DRAINED)
      << "the drill ended before the requests did: the counts below would mix both sides";

  // The control plane restores the region by itself; traffic comes back.
  ASSERT_TRUE(WaitForDrill(drill->id(), v1::Drill::STATE_RESTORED).ok());
  ASSERT_TRUE(TimeUntilServedBy("east", "a/gpt-4o", absl::Now()).ok());
  // The polls above that the east agent still sent to b, before it applied the restored table,
  // went there under the drill's table: the report may count them as during (a loaded host
  // makes the window wide enough for one or two).
  const int64_t late_b = Seen().at("b") - after.at("b");
  EXPECT_EQ(Get("east", "/readyz").status, 200);
  absl::StatusOr<v1::Drill> done = WaitForDrill(drill->id(), v1::Drill::STATE_DONE);
  ASSERT_TRUE(done.ok()) << done.status();
  const v1::DrillReport& report = done->report();
  SCOPED_TRACE(done->DebugString());

  // What the report says went where is what the mocks saw.
  uint64_t to_a = 0;
  uint64_t to_b = 0;
  for (const v1::DrillShare& share : report.during()) {
    (share.backend_id() == "a/gpt-4o" ? to_a : to_b) += share.requests();
    if (share.backend_id() == "b/gpt-4o") {
      EXPECT_EQ(share.region(), "westus");
      EXPECT_EQ(share.tier(), "standard");
    }
  }
  EXPECT_GE(static_cast<int64_t>(to_b), after.at("b") - before.at("b"));
  EXPECT_LE(static_cast<int64_t>(to_b), after.at("b") - before.at("b") + late_b);
  EXPECT_EQ(static_cast<int64_t>(to_a), after.at("a") - before.at("a"));
  EXPECT_GE(report.requests_during(), 18u);
  EXPECT_LE(report.requests_during(), 18u + late_b);
  EXPECT_EQ(report.requests_during(), to_a + to_b);
  EXPECT_TRUE(report.client_errors().empty());
  ASSERT_EQ(report.agents_size(), 2);
  for (const v1::DrillAgentTraffic& agent : report.agents()) {
    EXPECT_EQ(agent.to_region_during(), 0u) << agent.agent_id();
    if (agent.region() == "eastus2") {
      EXPECT_EQ(agent.to_region_before(), 3u);
      EXPECT_EQ(agent.left_after_ms(), 0);
      EXPECT_GE(agent.back_after_ms(), 0);
      EXPECT_GE(agent.requests_during(), 12u);
      EXPECT_LE(agent.requests_during(), 12u + late_b);
    } else {
      EXPECT_EQ(agent.left_after_ms(), -1);
      EXPECT_EQ(agent.requests_during(), 6u);
    }
  }
  // The report is stored: listed, and read back after the control plane restarts.
  fleet_.KillControlPlane();
  ASSERT_TRUE(fleet_.StartControlPlane().ok());
  v1::ListDrillsResponse listed;
  ASSERT_TRUE(fleet_.admin()
                  .ListDrills(fleet_.AdminContext().get(), v1::ListDrillsRequest(), &listed)
                  .ok());
  ASSERT_EQ(listed.drills_size(), 1);
  EXPECT_EQ(listed.drills(0).state(), v1::Drill::STATE_DONE);
  EXPECT_EQ(listed.drills(0).report().requests_during(), report.requests_during());
}

}  // namespace
}  // namespace spillway::test
