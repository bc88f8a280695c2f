// The agent over HTTP/2 to its backends (--upstream-http2): requests and streams share one
// connection per backend, and failover, streaming, metering and errors behave as over HTTP/1.1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <thread>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/sse.h"
#include "tests/support/tls_files.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

const std::string kTopology = SingleBackendTopology();
const std::vector<std::string> kHttp2 = {"--upstream-http2"};

int64_t Connections(const boost::json::object& stats, const char* protocol) {
  return stats.at("connections").at(protocol).as_int64();
}

int64_t InFlight(AgentFleet& fleet, const std::string& mock, const std::string& deployment) {
  const boost::json::object stats = MockStatsJson(fleet, mock);
  const auto* d = stats.at("deployments").as_object().if_contains(deployment);
  return d == nullptr ? 0 : d->at("in_flight").as_int64();
}

TEST(AgentHttp2, ConcurrentRequestsShareOneConnection) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o", "--region", "eastus2"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2", kHttp2).ok());
  constexpr int kClients = 8;
  constexpr int kRequestsEach = 5;
  std::vector<std::thread> clients;
  std::vector<int> ok(kClients, 0);
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = fleet.AgentClient();
      for (int i = 0; i < kRequestsEach; ++i) {
        absl::StatusOr<HttpResponse> r = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
        if (r.ok() && r->status == 200 &&
            r->body.find("\"chat.completion\"") != std::string::npos &&
            r->Header("x-ms-region") == "eastus2" && r->HasHeader("x-request-id") &&
            r->Header("x-spillway-backend") == "a/gpt-4o") {
          ++ok[c];
        }
      }
    });
  }
  for (std::thread& t : clients) {
    t.join();
  }
  for (int c = 0; c < kClients; ++c) {
    EXPECT_EQ(ok[c], kRequestsEach) << "client " << c;
  }
  const boost::json::object stats = MockStatsJson(fleet, "a");
  EXPECT_EQ(StatusCount(stats, "gpt-4o", 200), kClients * kRequestsEach);
  EXPECT_EQ(Connections(stats, "h2"), 1) << "every request multiplexed on one connection";
}

TEST(AgentHttp2, AFullConnectionMakesTheAgentOpenAnother) {
  AgentFleet fleet;
  // Two streams per connection at most; six slow streams at once need three connections.
  // Each stream lasts about 2 s (10 tokens, 200 ms apart), so the six overlap even when a
  // loaded machine is slow to start the client threads.
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "gpt-4o", "--h2-max-concurrent-streams", "2",
                                 "--ms-per-token", "200"})
                  .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2", kHttp2).ok());
  // One request first, so the backend's SETTINGS (the limit) are known before the burst.
  ASSERT_TRUE(fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(1)).ok());
  constexpr int kStreams = 6;
  std::vector<std::thread> clients;
  std::vector<std::string> last_event(kStreams);
  for (int c = 0; c < kStreams; ++c) {
    clients.emplace_back([&, c] {
      absl::StatusOr<HttpResponse> r = fleet.AgentClient()->Send(
          "POST", ChatTarget("gpt-4o"), {}, ChatBody(10, /*stream=*/true), absl::Seconds(60));
      if (r.ok() && r->status == 200) {
        std::vector<std::string> data = ParseSseData(r->body);
        last_event[c] = data.empty() ? "" : data.back();
      }
    });
  }
  for (std::thread& t : clients) {
    t.join();
  }
  for (int c = 0; c < kStreams; ++c) {
    EXPECT_EQ(last_event[c], "[DONE]") << "stream " << c;
  }
  EXPECT_GE(Connections(MockStatsJson(fleet, "a"), "h2"), 3)
      << "the agent honours SETTINGS_MAX_CONCURRENT_STREAMS instead of queueing";
}

TEST(AgentHttp2, StreamsArriveInOrderAndAreMetered) {
  AgentFleet fleet;
  // 100 ms between tokens: a client thread that a loaded machine leaves unscheduled for a few
  // milliseconds would otherwise read several events at once.
  ASSERT_TRUE(
      fleet.AddMock("a", {"--deployments", "gpt-4o", "--ttft-ms", "10", "--ms-per-token", "100"})
          .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2", kHttp2).ok());
  auto client = fleet.AgentClient();
  SseCollector events;
  int pieces = 0;
  // No include_usage: the agent asks for usage upstream and strips that event again.
  absl::StatusOr<HttpResponse> response = client->SendStreaming(
      "POST", ChatTarget("gpt-4o"), {}, ChatBody(10, /*stream=*/true),
      [&](absl::string_view piece, absl::Time arrival) {
        ++pieces;
        events.Feed(piece, arrival);
      },
      absl::Seconds(60));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->Header("content-type").value_or(""), HasSubstr("text/event-stream"));
  const auto& e = events.events();
  ASSERT_GE(e.size(), 12u);  // filter results, 10 deltas, finish, [DONE]
  EXPECT_EQ(e.back().data, "[DONE]");
  std::string content;
  for (const auto& event : e) {
    EXPECT_THAT(event.data, ::testing::Not(HasSubstr("\"usage\":{")));
    if (event.data == "[DONE]") {
      continue;
    }
    boost::json::value v = boost::json::parse(event.data);
    for (const auto& choice : v.at("choices").as_array()) {
      if (const auto* delta = choice.as_object().if_contains("delta")) {
        if (const auto* text = delta->as_object().if_contains("content")) {
          content += std::string(text->as_string());
        }
      }
    }
  }
  EXPECT_FALSE(content.empty());
  // A buffering proxy delivers the stream in one piece; half of the events arriving on their
  // own proves forwarding event by event, and leaves room for a few that a stalled reader
  // picked up together.
  EXPECT_GE(pieces, 6) << "forwarded event by event, not buffered";
  // Metered from the usage the backend sent on the stream the client never saw.
  EXPECT_TRUE(WaitForFileContaining(fleet.temp_dir() + "/access.log", "\"completion_tokens\":10",
                                    absl::Seconds(30))
                  .ok());
  EXPECT_EQ(Connections(MockStatsJson(fleet, "a"), "h2"), 1);
}

TEST(AgentHttp2, ThrottledBackendFailsOver) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(TieredTopology({"std1"}), "eastus2", kHttp2).ok());
  // A minute of retry-after: the three requests below fall inside it however slow the machine.
  ASSERT_TRUE(
      fleet.SetFault("ptu", R"({"mode":"status","status":429,"count":1,"retry_after_ms":60000})")
          .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> r = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->Header("x-spillway-backend"), "std1/gpt-4o");
    EXPECT_EQ(r->Header("x-spillway-attempts"), i == 0 ? "2" : "1")
        << "after the 429 the PTU is skipped for its retry-after";
  }
  const boost::json::object ptu = MockStatsJson(fleet, "ptu");
  EXPECT_EQ(StatusCount(ptu, "gpt-4o-ptu", 429), 1);
  EXPECT_EQ(Connections(ptu, "h2"), 1);
  EXPECT_EQ(StatusCount(MockStatsJson(fleet, "std1"), "gpt-4o", 200), 3);
}

TEST(AgentHttp2, StreamResetAfterTheRequestIsNotRetriedAndKeepsTheConnection) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(TieredTopology({"std1"}), "eastus2", kHttp2).ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> warm = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(warm.ok() && warm->status == 200);
  EXPECT_EQ(warm->Header("x-spillway-backend"), "ptu/gpt-4o-ptu");
  // The backend had the whole request when it reset the stream (not REFUSED_STREAM): it may
  // have processed it, so it is not sent again (docs/choices.md, "Retries").
  ASSERT_TRUE(fleet.SetFault("ptu", R"({"mode":"reset","count":1})").ok());
  absl::StatusOr<HttpResponse> r = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 502) << r->body;
  EXPECT_EQ(r->Header("x-spillway-attempts"), "1");
  EXPECT_EQ(MockStatsJson(fleet, "std1")["deployments"].as_object().count("gpt-4o"), 0u);
  // Only that stream was reset: the PTU's connection carried the next request as well.
  absl::StatusOr<HttpResponse> after = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(after.ok() && after->status == 200);
  EXPECT_EQ(after->Header("x-spillway-backend"), "ptu/gpt-4o-ptu");
  EXPECT_EQ(Connections(MockStatsJson(fleet, "ptu"), "h2"), 1);
}

TEST(AgentHttp2, ASilentConnectionGetsNoNewStreams) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  // A 2 s first-byte deadline: short enough to wait for, long enough that a loaded machine
  // does not miss it on the ordinary requests (which would open connections of their own).
  ASSERT_TRUE(fleet
                  .StartAgent(kTopology, "eastus2",
                              {"--upstream-http2", "--first-byte-timeout-ms", "2000",
                               "--failure-threshold", "10"})
                  .ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> warm = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(warm.ok()) << warm.status();
  ASSERT_EQ(warm->status, 200) << warm->body;
  // Nothing comes back for this stream, nor anything else on its connection: that connection
  // might be dead without a reset, so the next request opens a new one.
  ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"hang","count":1})").ok());
  // Only the agent's deadline ends this request; the client's 60 s is a guard against a hang.
  absl::StatusOr<HttpResponse> hung =
      client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(), absl::Seconds(60));
  ASSERT_TRUE(hung.ok()) << hung.status();
  EXPECT_EQ(hung->status, 504) << hung->body;
  absl::StatusOr<HttpResponse> next =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->status, 200) << next->body;
  EXPECT_EQ(Connections(MockStatsJson(fleet, "a"), "h2"), 2);
}

TEST(AgentHttp2, BackendCutMidStreamEndsWithAnErrorEvent) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2", kHttp2).ok());
  ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"cut","cut_after_chunks":3,"count":1})").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> response =
      client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(10, true));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  std::vector<std::string> data = ParseSseData(response->body);
  ASSERT_FALSE(data.empty());
  EXPECT_THAT(response->body, HasSubstr("event: error"));
  EXPECT_THAT(data.back(), HasSubstr("upstream_error"));
  // The agent closed that client connection; the next request, on the same backend
  // connection, is served normally.
  absl::StatusOr<HttpResponse> next =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(10, true));
  ASSERT_TRUE(next.ok()) << next.status();
  const std::vector<std::string> next_data = ParseSseData(next->body);
  ASSERT_FALSE(next_data.empty()) << next->body;
  EXPECT_EQ(next_data.back(), "[DONE]");
  EXPECT_EQ(Connections(MockStatsJson(fleet, "a"), "h2"), 1);
}

TEST(AgentHttp2, ClientLeavingMidStreamCancelsTheBackendStream) {
  AgentFleet fleet;
  // 1,000 tokens at 100 ms each: the stream would run for 100 s.
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "gpt-4o", "--ms-per-token", "100",
                                 "--completion-tokens", "1000"})
                  .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2", kHttp2).ok());
  {
    auto client = fleet.AgentClient();
    int pieces = 0;
    // 5 s: time for the first pieces to arrive on a loaded machine, a small part of the 100 s.
    absl::StatusOr<HttpResponse> response = client->SendStreaming(
        "POST", ChatTarget("gpt-4o"), {}, ChatBody(1000, true),
        [&](absl::string_view, absl::Time) { ++pieces; }, absl::Seconds(5));
    EXPECT_FALSE(response.ok());  // the client gave up after 5 s
    EXPECT_GT(pieces, 0);
  }
  // The agent reset the backend's stream: the mock stops producing it long before its end
  // (the 60 s guard ends about 35 s before it would).
  int64_t in_flight = InFlight(fleet, "a", "gpt-4o");
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);
       in_flight != 0 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(100));
    in_flight = InFlight(fleet, "a", "gpt-4o");
  }
  EXPECT_EQ(in_flight, 0);
}

// An HTTPS mock "a" (self-signed, `mock_args` added) behind an agent that offers h2 by ALPN;
// three requests through it, one of them streamed, all answered. Sets `stats` to the mock's
// stats, fetched over HTTPS/1.1 (the fixture's stats client speaks plain HTTP). Fails fatally
// (call it under ASSERT_NO_FATAL_FAILURE) when a step it depends on fails.
void ThreeRequestsToTlsBackend(std::vector<std::string> mock_args, boost::json::object* stats) {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<TlsFiles> tls = MakeSelfSignedCert(dir->path());
  ASSERT_TRUE(tls.ok()) << tls.status();
  AgentFleet fleet;
  mock_args.insert(mock_args.end(), {"--deployments", "gpt-4o", "--tls-cert", tls->cert_file,
                                     "--tls-key", tls->key_file});
  ASSERT_TRUE(fleet.AddMock("a", mock_args).ok());
  const std::string yaml = absl::StrReplaceAll(
      kTopology, {{"{a}", "https://127.0.0.1:" + std::to_string(fleet.mock("a").port())}});
  ASSERT_TRUE(
      fleet.StartAgent(yaml, "eastus2", {"--upstream-http2", "--upstream-ca-file", tls->cert_file})
          .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> r =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(5, /*stream=*/i == 1));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    // Learning the backend's protocol costs a connection, never an attempt.
    EXPECT_EQ(r->Header("x-spillway-attempts"), "1");
  }
  HttpClient stats_client("127.0.0.1", fleet.mock("a").port(), /*tls=*/true, tls->cert_file);
  absl::StatusOr<HttpResponse> response = stats_client.Send("GET", "/mock/stats");
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200) << response->body;
  *stats = boost::json::parse(response->body).as_object();
}

TEST(AgentHttp2, TlsBackendNegotiatesH2ByAlpn) {
  boost::json::object stats;
  ASSERT_NO_FATAL_FAILURE(ThreeRequestsToTlsBackend({}, &stats));
  ASSERT_TRUE(stats.contains("connections"));
  EXPECT_EQ(Connections(stats, "h2"), 1) << "three requests, one ALPN-negotiated h2 connection";
  EXPECT_EQ(Connections(stats, "http1"), 1) << "only the stats request itself";
}

TEST(AgentHttp2, TlsBackendWithoutH2IsUsedOverHttp11) {
  boost::json::object stats;
  ASSERT_NO_FATAL_FAILURE(ThreeRequestsToTlsBackend({"--http2=false"}, &stats));
  ASSERT_TRUE(stats.contains("connections"));
  EXPECT_EQ(Connections(stats, "h2"), 0);
  // The ALPN probe, one pooled HTTP/1.1 connection for all three requests, and the stats one.
  EXPECT_EQ(Connections(stats, "http1"), 3);
}

}  // namespace
}  // namespace spillway::test
