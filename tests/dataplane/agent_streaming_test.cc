// Streams pass through the agent chunk by chunk, end cleanly when the backend fails
// mid-way, and survive a graceful shutdown.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/sse.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

const std::string kTopology = SingleBackendTopology();

TEST(AgentStreaming, ChunksArriveIncrementally) {
  AgentFleet fleet;
  // 100 ms between tokens: a client thread that a loaded machine leaves unscheduled for a few
  // milliseconds would otherwise read several events at once.
  ASSERT_TRUE(
      fleet.AddMock("a", {"--deployments", "gpt-4o", "--ttft-ms", "20", "--ms-per-token", "100"})
          .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  auto client = fleet.AgentClient();
  SseCollector events;
  int pieces = 0;
  absl::StatusOr<HttpResponse> response = client->SendStreaming(
      "POST", ChatTarget("gpt-4o"), {}, ChatBody(10, /*stream=*/true, /*include_usage=*/true),
      [&](absl::string_view piece, absl::Time arrival) {
        ++pieces;
        events.Feed(piece, arrival);
      },
      absl::Seconds(60));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->Header("content-type").value_or(""), HasSubstr("text/event-stream"));
  const auto& e = events.events();
  ASSERT_GE(e.size(), 13u);  // filter results, 10 deltas, finish, usage, [DONE]
  EXPECT_EQ(e.back().data, "[DONE]");
  EXPECT_THAT(e[e.size() - 2].data, HasSubstr("\"usage\""));
  // A buffering proxy would deliver the stream in one piece; this one forwards each event as
  // the backend writes it, so the first event reached us before the last was produced. Half
  // of the events arriving on their own proves it, with room for a few that a stalled reader
  // picked up together.
  EXPECT_GE(pieces, 7);
  EXPECT_LT(e.front().arrival, e.back().arrival);
}

TEST(AgentStreaming, BackendCutMidStreamEndsWithAnErrorEvent) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"cut","cut_after_chunks":3,"count":1})").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> response =
      client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(10, true));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  std::vector<std::string> data = ParseSseData(response->body);
  ASSERT_FALSE(data.empty());
  EXPECT_NE(data.back(), "[DONE]");
  EXPECT_THAT(response->body, HasSubstr("event: error"));
  EXPECT_THAT(data.back(), HasSubstr("upstream_error"));
  // The agent logged it.
  EXPECT_TRUE(WaitForFileContaining(fleet.temp_dir() + "/access.log", "failed mid-response",
                                    absl::Seconds(30))
                  .ok());
}

TEST(AgentStreaming, SigtermLetsInFlightStreamsFinish) {
  AgentFleet fleet;
  // A stream of about 4 s (40 tokens, 100 ms apart): still running when the signal comes,
  // however slowly a loaded machine gets from seeing it in flight to sending the signal, and
  // well inside the agent's 20 s drain.
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "gpt-4o", "--ms-per-token", "100",
                                 "--completion-tokens", "40"})
                  .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  absl::StatusOr<HttpResponse> response;
  std::thread streamer([&] {
    auto client = fleet.AgentClient();
    response =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(40, true), absl::Seconds(60));
  });
  // Once the agent has the request in flight, ask it to stop. No ASSERT until the streamer is
  // joined: leaving the test with a joinable std::thread would end the binary.
  bool in_flight = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       !in_flight && absl::Now() < deadline;) {
    absl::StatusOr<HttpResponse> status = fleet.AgentClient()->Send("GET", "/status");
    in_flight = status.ok() && absl::StrContains(status->body, "\"requests_in_flight\":1");
    if (!in_flight) {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  const absl::Status signalled = fleet.agent().Signal(SIGTERM);
  streamer.join();
  ASSERT_TRUE(in_flight) << "the stream was never seen in flight";
  ASSERT_TRUE(signalled.ok()) << signalled;
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  const std::vector<std::string> data = ParseSseData(response->body);
  ASSERT_FALSE(data.empty()) << response->body;
  EXPECT_EQ(data.back(), "[DONE]");
  absl::StatusOr<int> exit_code = fleet.agent().Wait(absl::Seconds(60));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

}  // namespace
}  // namespace spillway::test
