// The agent against several real mock backends: spillover from a throttled PTU tier,
// failover past a dead backend, circuits that open and close, and 429 retry-after honoured
// to the millisecond.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

TEST(AgentRouting, ThrottledPtuSpillsToStandardWithNoClientErrors) {
  AgentFleet fleet;
  // 1 PTU at 600 tokens/minute over a 10 s window: about 100 tokens, two requests, then 429.
  ASSERT_TRUE(fleet
                  .AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o:ptu=1",
                                   "--tokens-per-ptu-minute", "600"})
                  .ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  // The agent's own PTU estimate is generous, so the backend's 429 is what moves traffic.
  ASSERT_TRUE(
      fleet.StartAgent(TieredTopology({"std1"}), "eastus2", {"--tokens-per-ptu-minute", "1000000"})
          .ok());
  auto client = fleet.AgentClient();
  std::map<std::string, int> served_by;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<HttpResponse> response =
        client->Send("POST", ChatTarget("gpt-4o"), {{"api-key", "anything"}}, ChatBody(20));
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200) << response->body;
    ++served_by[response->Header("x-spillway-backend").value_or("?")];
  }
  EXPECT_GE(served_by["ptu/gpt-4o-ptu"], 1) << "the PTU tier is tried first";
  EXPECT_GE(served_by["std1/gpt-4o"], 10) << "then traffic spills to Standard";
  boost::json::object ptu = MockStatsJson(fleet, "ptu");
  EXPECT_EQ(StatusCount(ptu, "gpt-4o-ptu", 429), 1)
      << "one 429 is enough: the PTU is skipped for its retry-after";
}

TEST(AgentRouting, KilledBackendCostsNoClientError) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(TieredTopology({"std1"}), "eastus2").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> warm = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(warm.ok() && warm->status == 200);
  EXPECT_EQ(warm->Header("x-spillway-backend"), "ptu/gpt-4o-ptu");

  ASSERT_TRUE(fleet.KillMock("ptu").ok());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<HttpResponse> response =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->Header("x-spillway-backend"), "std1/gpt-4o");
  }
}

TEST(AgentRouting, FailingBackendIsTakenOutAndReadmittedAfterRecovery) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  // The circuit stays open for 10 s: /status must still read "open" after the ten requests
  // below, which on a loaded machine (ctest -j2, sanitizer builds) can take far longer than
  // the few milliseconds they take when it is idle. Readmission then waits out those 10 s.
  ASSERT_TRUE(fleet
                  .StartAgent(TieredTopology({"std1"}), "eastus2",
                              {"--failure-threshold", "3", "--circuit-open-ms", "10000"})
                  .ok());
  // Only a 503 with retry-after moves the request on (docs/choices.md, "Retries").
  ASSERT_TRUE(fleet.SetFault("ptu", R"({"mode":"status","status":503,"retry_after_ms":1})").ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<HttpResponse> response =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200) << "a 503 moves the request on: " << response->body;
    EXPECT_EQ(response->Header("x-spillway-backend"), "std1/gpt-4o");
  }
  // Ten requests, but the open circuit kept most of them away from the failing backend.
  const int64_t failed = StatusCount(MockStatsJson(fleet, "ptu"), "gpt-4o-ptu", 503);
  EXPECT_GE(failed, 3);
  EXPECT_LT(failed, 10);
  absl::StatusOr<HttpResponse> status = client->Send("GET", "/status");
  ASSERT_TRUE(status.ok());
  EXPECT_THAT(status->body, HasSubstr(R"("state":"open")"));

  ASSERT_TRUE(fleet.SetFault("ptu", "").ok());
  bool readmitted = false;
  // The open period plus a generous guard.
  const absl::Time deadline = absl::Now() + absl::Seconds(70);
  while (!readmitted && absl::Now() < deadline) {
    absl::StatusOr<HttpResponse> response =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200) << response->body;
    readmitted = response->Header("x-spillway-backend") == "ptu/gpt-4o-ptu";
    if (!readmitted) {
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  EXPECT_TRUE(readmitted) << "the half-open probe succeeds and the backend serves again";
}

TEST(AgentRouting, RetryAfterIsHonouredToTheMillisecond) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(TieredTopology({"std1"}), "eastus2").ok());
  ASSERT_TRUE(
      fleet.SetFault("ptu", R"({"mode":"status","status":429,"count":1,"retry_after_ms":700})")
          .ok());
  auto client = fleet.AgentClient();
  // Keep traffic flowing until the PTU serves again (the first request is the one it refused).
  bool served_by_ptu_after = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (int i = 0; !served_by_ptu_after && absl::Now() < deadline; ++i) {
    absl::StatusOr<HttpResponse> response =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200) << response->body;
    served_by_ptu_after = i > 0 && response->Header("x-spillway-backend") == "ptu/gpt-4o-ptu";
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(served_by_ptu_after) << "the backend is used again after its retry-after";
  // In the backend's own log: nothing arrived between the 429 and 700 ms after it.
  boost::json::object stats = MockStatsJson(fleet, "ptu");
  double throttled_at = -1;
  int after = 0;
  for (const auto& entry : stats.at("log").as_array()) {
    const auto& e = entry.as_object();
    const double at = e.at("arrival_ms").to_number<double>();
    if (e.at("status").as_int64() == 429) {
      throttled_at = at;
      continue;
    }
    if (throttled_at >= 0) {
      EXPECT_GE(at, throttled_at + 700) << "a request reached the backend before retry-after";
      ++after;
    }
  }
  EXPECT_GE(throttled_at, 0);
  EXPECT_GT(after, 0);
}

TEST(AgentRouting, PreferLocalUsesTheAgentsRegionFirst) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("local", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("remote", {"--deployments", "gpt-4o"}).ok());
  const std::string yaml = R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us }, { name: westus3, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: local, region: westus3, subscription: s, endpoint: "{local}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
  - { name: remote, region: eastus2, subscription: s, endpoint: "{remote}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
deployments:
  - { instance: local, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
  - { instance: remote, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
pools:
  - { name: p, members: [ { deployment: remote/gpt-4o }, { deployment: local/gpt-4o } ] }
routes:
  - { name: gpt-4o, stamp: us, locality: prefer-local, tiers: [ p ] }
)";
  ASSERT_TRUE(fleet.StartAgent(yaml, "westus3").ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<HttpResponse> response =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(response.ok() && response->status == 200);
    EXPECT_EQ(response->Header("x-spillway-backend"), "local/gpt-4o");
  }
  ASSERT_TRUE(fleet.KillMock("local").ok());
  absl::StatusOr<HttpResponse> response =
      client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("x-spillway-backend"), "remote/gpt-4o")
      << "with the local backend gone, prefer-local still fails over within the stamp";
}

}  // namespace
}  // namespace spillway::test
