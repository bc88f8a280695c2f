// Realtime through a real agent (issue 16): WebSocket sessions relayed both ways and metered
// from the backend's response.done events, the key by header or query parameter, refusals
// before any backend is asked, a throttled handshake moving to the next backend, closes passed
// on either way with their code and reason, the idle timeout and the message limit; client
// secrets and WebRTC calls routed like other POSTs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/websocket_client.h"

namespace spillway::test {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

// Route gpt-realtime: deployment rt-a on mock "a", then (a second tier) rt-b on mock "b".
// Tenant "app" (key "test") may use it; "other" (key "other") may use only gpt-4o.
const std::string kTopology = std::string(kTwoInstancesYaml) + R"(
deployments:
  - { instance: a, name: rt-a, model: gpt-realtime, version: "1", sku: Standard, capacity: 100 }
  - { instance: b, name: rt-b, model: gpt-realtime, version: "1", sku: Standard, capacity: 100 }
  - { instance: a, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
pools:
  - { name: pa, members: [ { deployment: a/rt-a } ] }
  - { name: pb, members: [ { deployment: b/rt-b } ] }
  - { name: chat, members: [ { deployment: a/gpt-4o } ] }
routes:
  - { name: gpt-realtime, stamp: us, tiers: [ pa, pb ] }
  - { name: gpt-4o, stamp: us, tiers: [ chat ] }
tenants:
  - { name: app, stamp: us, routes: [ gpt-realtime, gpt-4o ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
  - { name: other, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa } ] }
)";

constexpr char kV1Target[] = "/openai/v1/realtime?model=gpt-realtime";
const HttpHeaders kKeyHeader = {{"api-key", kTenantKey}};

json::value Parse(const std::string& text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return value;
}

std::string Type(const json::value& event) {
  const json::value* type = event.is_object() ? event.as_object().if_contains("type") : nullptr;
  return type != nullptr && type->is_string() ? std::string(type->as_string()) : "";
}

class AgentRealtimeTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> agent_args = {}) {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "rt-a:model=gpt-realtime,gpt-4o"}).ok());
    ASSERT_TRUE(fleet_.AddMock("b", {"--deployments", "rt-b:model=gpt-realtime"}).ok());
    agent_args.insert(agent_args.end(), {"--usage-flush-ms", "50"});
    ASSERT_TRUE(fleet_.StartAgent(kTopology, "eastus2", agent_args).ok());
  }

  std::unique_ptr<WebSocketClient> Open(const std::string& target,
                                        const HttpHeaders& headers = kKeyHeader) {
    absl::StatusOr<std::unique_ptr<WebSocketClient>> ws =
        WebSocketClient::Connect(fleet_.agent_port(), target, headers);
    EXPECT_TRUE(ws.ok()) << ws.status();
    return ws.ok() ? *std::move(ws) : nullptr;
  }

  // The HTTP answer to an upgrade the agent refused.
  HttpResponse Refusal(const std::string& target, const HttpHeaders& headers = kKeyHeader) {
    HttpResponse refusal;
    absl::StatusOr<std::unique_ptr<WebSocketClient>> ws =
        WebSocketClient::Connect(fleet_.agent_port(), target, headers, &refusal);
    EXPECT_FALSE(ws.ok()) << "the upgrade was accepted";
    return refusal;
  }

  json::value Event(WebSocketClient& ws) {
    absl::StatusOr<WebSocketMessage> message = ws.Read();
    EXPECT_TRUE(message.ok()) << message.status();
    return message.ok() ? Parse(message->data) : json::value();
  }

  // A response of `tokens` output tokens: its events up to response.done, which is returned.
  json::value Respond(WebSocketClient& ws, int tokens) {
    EXPECT_TRUE(ws.Send(absl::StrCat(R"({"type":"response.create","response":{)",
                                     R"("max_output_tokens":)", tokens, "}}"))
                    .ok());
    for (int i = 0; i < tokens + 3; ++i) {
      json::value event = Event(ws);
      if (Type(event) == "response.done") {
        EXPECT_EQ(i, tokens + 2) << "created, deltas, text done, then response.done";
        return event;
      }
    }
    ADD_FAILURE() << "no response.done";
    return json::value();
  }

  json::value MockStats(const std::string& mock) {
    absl::StatusOr<std::string> stats = fleet_.MockStats(mock);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return Parse(stats.value_or("{}"));
  }

  // Mock stats once `ready` holds (sessions end asynchronously to the client's view).
  json::value MockStatsWhen(const std::string& mock,
                            const std::function<bool(const json::value&)>& ready) {
    json::value stats;
    for (int i = 0; i < 250; ++i) {
      stats = MockStats(mock);
      if (ready(stats)) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return stats;
  }

  static const json::array& Ends(const json::value& stats) {
    return stats.at("realtime").at("ends").as_array();
  }

  // The access log's lines, once it has `count` of them.
  std::vector<json::value> LogLines(std::size_t count) {
    std::vector<json::value> lines;
    // A guard against a hang (30 s), not a speed test: a loaded machine flushes late.
    for (int i = 0; i < 1500; ++i) {
      lines.clear();
      absl::StatusOr<std::string> content = ReadFile(fleet_.temp_dir() + "/access.log");
      if (content.ok()) {
        for (absl::string_view line : absl::StrSplit(*content, '\n', absl::SkipEmpty())) {
          lines.push_back(Parse(std::string(line)));
        }
      }
      if (lines.size() >= count) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_EQ(lines.size(), count);
    return lines;
  }

  std::string AccessLog() { return ReadFile(fleet_.temp_dir() + "/access.log").value_or(""); }

  AgentFleet fleet_;
};

TEST_F(AgentRealtimeTest, SessionRelaysBothWaysAndIsMeteredOnceAtItsEnd) {
  Start();
  std::unique_ptr<WebSocketClient> ws = Open(kV1Target);
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->handshake().Header("x-spillway-backend"), "a/rt-a");
  EXPECT_EQ(ws->handshake().Header("x-spillway-attempts"), "1");
  EXPECT_TRUE(ws->handshake().HasHeader("x-request-id"));  // the backend's, passed on

  json::value created = Event(*ws);
  ASSERT_EQ(Type(created), "session.created");
  EXPECT_EQ(created.at("session").at("model").as_string(), "gpt-realtime");
  ASSERT_TRUE(ws->Send(R"({"type":"session.update","session":{"instructions":"Be brief."}})").ok());
  json::value updated = Event(*ws);
  ASSERT_EQ(Type(updated), "session.updated");
  EXPECT_EQ(updated.at("session").at("instructions").as_string(), "Be brief.");
  ASSERT_TRUE(ws->Send(R"({"type":"conversation.item.create","item":{"type":"message",)"
                       R"("role":"user","content":[{"type":"input_text","text":"Hello!"}]}})")
                  .ok());
  EXPECT_EQ(Type(Event(*ws)), "conversation.item.added");

  // Messages pass byte for byte and keep their type, a large one included.
  const std::string text = R"({ "type":"mock.echo", "note": "spacing  kept, é" })";
  ASSERT_TRUE(ws->Send(text).ok());
  absl::StatusOr<WebSocketMessage> echoed = ws->Read();
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(echoed->data, text);
  EXPECT_FALSE(echoed->binary);
  std::string binary(3 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) {
    binary[i] = static_cast<char>(i * 131 % 251);
  }
  ASSERT_TRUE(ws->Send(binary, /*binary=*/true).ok());
  echoed = ws->Read();
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_TRUE(echoed->binary);
  EXPECT_TRUE(echoed->data == binary);

  int64_t input = 0, output = 0, cached = 0, total = 0;
  for (int tokens : {4, 6}) {
    const json::value done = Respond(*ws, tokens);
    const json::value& usage = done.at("response").at("usage");
    input += usage.at("input_tokens").as_int64();
    output += usage.at("output_tokens").as_int64();
    total += usage.at("total_tokens").as_int64();
    cached += usage.at("input_token_details").at("cached_tokens").as_int64();
  }
  EXPECT_EQ(output, 10);
  EXPECT_GT(cached, 0);
  ASSERT_TRUE(ws->Close(1000, "done").ok());

  // One line for the session, at its end, with the sums the backend reported.
  const std::vector<json::value> lines = LogLines(1);
  ASSERT_EQ(lines.size(), 1u);
  const json::value& line = lines[0];
  EXPECT_EQ(line.at("status").as_int64(), 101);
  EXPECT_EQ(line.at("route").as_string(), "gpt-realtime");
  EXPECT_EQ(line.at("tenant").as_string(), "app");
  EXPECT_EQ(line.at("backend").as_string(), "a/rt-a");
  EXPECT_EQ(line.at("prompt_tokens").as_int64(), input);
  EXPECT_EQ(line.at("completion_tokens").as_int64(), output);
  EXPECT_EQ(line.at("total_tokens").as_int64(), total);
  EXPECT_EQ(line.at("cached_tokens").as_int64(), cached);

  // The backend's own account agrees, and it saw the client's close.
  const json::value stats =
      MockStatsWhen("a", [](const json::value& s) { return !Ends(s).empty(); });
  const json::value& usage = stats.at("deployments").at("rt-a").at("usage");
  EXPECT_EQ(usage.at("prompt_tokens").as_int64(), input);
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), output);
  ASSERT_EQ(Ends(stats).size(), 1u);
  EXPECT_EQ(Ends(stats)[0].at("code").as_int64(), 1000);

  // ... and so do the metrics.
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<HttpResponse> scraped = fleet_.AgentClient()->Send("GET", "/metrics");
    metrics = scraped.ok() ? scraped->body : "";
    if (absl::StrContains(metrics, "spillway_tenant_requests_total{tenant=\"app\"")) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(metrics,
              HasSubstr("spillway_requests_total{route=\"gpt-realtime\",code=\"101\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(
                           "spillway_tokens_total{route=\"gpt-realtime\",kind=\"completion\"} ",
                           output, "\n")));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("spillway_tenant_tokens_total{tenant=\"app\",route="
                                              "\"gpt-realtime\",kind=\"prompt\"} ",
                                              input, "\n")));
}

TEST_F(AgentRealtimeTest, KeyInTheQueryOnThePreviewPath) {
  Start();
  std::unique_ptr<WebSocketClient> ws = Open(
      "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime&api-key=test", {});
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(Type(Event(*ws)), "session.created");
  EXPECT_EQ(Respond(*ws, 2).at("response").at("usage").at("output_tokens").as_int64(), 2);
  ASSERT_TRUE(ws->Close(1000, "").ok());
  const std::vector<json::value> lines = LogLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("status").as_int64(), 101);
  EXPECT_EQ(lines[0].at("completion_tokens").as_int64(), 2);
  // The backend got its own deployment name (the mock has no "gpt-realtime").
  EXPECT_EQ(MockStats("a").at("deployments").at("rt-a").at("by_status").at("101").as_int64(), 1);
}

TEST_F(AgentRealtimeTest, RefusedBeforeAnyBackendIsAsked) {
  Start();
  constexpr char kWrongKey[] = "sk-not-a-tenant-key-5c1e";
  HttpResponse refusal = Refusal(kV1Target, {{"api-key", kWrongKey}});
  EXPECT_EQ(refusal.status, 401);
  EXPECT_THAT(refusal.body, HasSubstr(R"("code":"401")"));
  EXPECT_THAT(refusal.body, HasSubstr("Access denied"));
  EXPECT_EQ(Refusal(absl::StrCat(kV1Target, "&api-key=", kWrongKey), {}).status, 401);
  EXPECT_EQ(Refusal(kV1Target, {}).status, 401);  // no key at all
  // Two keys that differ are a conflict, as on HTTP.
  EXPECT_EQ(Refusal(absl::StrCat(kV1Target, "&api-key=other")).status, 401);
  refusal = Refusal(kV1Target, {{"api-key", "other"}});
  EXPECT_EQ(refusal.status, 403);
  EXPECT_THAT(refusal.body, HasSubstr("not allowed to use route 'gpt-realtime'"));
  refusal = Refusal("/openai/v1/realtime?model=gpt-9");
  EXPECT_EQ(refusal.status, 404);
  EXPECT_THAT(refusal.body, HasSubstr("DeploymentNotFound"));
  EXPECT_EQ(Refusal("/openai/v1/realtime").status, 400);
  // A plain GET is no session.
  absl::StatusOr<HttpResponse> plain =
      fleet_.AgentClient()->Send("GET", kV1Target, {{"api-key", kTenantKey}});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->status, 400);

  for (const char* mock : {"a", "b"}) {
    const json::value stats = MockStats(mock);
    EXPECT_TRUE(stats.at("log").as_array().empty()) << mock << ": " << json::serialize(stats);
    EXPECT_EQ(stats.at("realtime").at("sessions").as_int64(), 0);
  }
  // No key reached the log, whichever way it came. Read once every refusal is logged: before,
  // an unflushed log passed this vacuously.
  const std::vector<json::value> lines = LogLines(8);
  ASSERT_EQ(lines.size(), 8u);
  const std::string log = AccessLog();
  EXPECT_THAT(log, Not(HasSubstr("api-key=")));
  EXPECT_THAT(log, Not(HasSubstr(kWrongKey)));
}

TEST_F(AgentRealtimeTest, AThrottledHandshakeMovesToTheNextBackend) {
  Start();
  ASSERT_TRUE(fleet_.SetFault("a", R"({"status":429,"retry_after_ms":5000,"count":1})").ok());
  std::unique_ptr<WebSocketClient> ws = Open(kV1Target);
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->handshake().Header("x-spillway-backend"), "b/rt-b");
  EXPECT_EQ(ws->handshake().Header("x-spillway-attempts"), "2");
  EXPECT_EQ(Type(Event(*ws)), "session.created");
  ASSERT_TRUE(ws->Close(1000, "").ok());
  EXPECT_EQ(StatusCount(MockStatsJson(fleet_, "a"), "rt-a", 429), 1);
  EXPECT_EQ(MockStats("b").at("deployments").at("rt-b").at("by_status").at("101").as_int64(), 1);

  // a is blocked for its retry-after; with b throttled too, the client gets 429 and when to
  // come back, as an HTTP request would.
  ASSERT_TRUE(fleet_.SetFault("b", R"({"status":429,"retry_after_ms":3000,"count":1})").ok());
  HttpResponse refusal = Refusal(kV1Target);
  EXPECT_EQ(refusal.status, 429);
  EXPECT_TRUE(refusal.HasHeader("retry-after-ms"));
  EXPECT_EQ(refusal.Header("x-should-retry"), "true");
  EXPECT_THAT(refusal.body, HasSubstr("throttled"));
}

TEST_F(AgentRealtimeTest, ABackendsOtherRefusalIsTheClientsAnswer) {
  Start();
  ASSERT_TRUE(fleet_.SetFault("a", R"({"status":400,"code":"BadRequest","count":1})").ok());
  HttpResponse refusal = Refusal(kV1Target);
  EXPECT_EQ(refusal.status, 400);
  EXPECT_EQ(refusal.Header("x-spillway-backend"), "a/rt-a");
  EXPECT_EQ(MockStats("b").at("realtime").at("sessions").as_int64(), 0);
}

TEST_F(AgentRealtimeTest, ClosesPassOnWithTheirCodeAndReason) {
  Start();
  // The client closes: the backend sees its code and reason.
  std::unique_ptr<WebSocketClient> ws = Open(kV1Target);
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(Type(Event(*ws)), "session.created");
  ASSERT_TRUE(ws->Close(4001, "client says bye").ok());
  EXPECT_EQ(ws->closed()->code, 4001);  // the agent answers the close with its code
  json::value stats = MockStatsWhen("a", [](const json::value& s) { return !Ends(s).empty(); });
  ASSERT_EQ(Ends(stats).size(), 1u);
  EXPECT_EQ(Ends(stats)[0].at("by").as_string(), "client");
  EXPECT_EQ(Ends(stats)[0].at("code").as_int64(), 4001);
  EXPECT_EQ(Ends(stats)[0].at("reason").as_string(), "client says bye");

  // The backend closes: the client sees its code and reason.
  ws = Open(kV1Target);
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(Type(Event(*ws)), "session.created");
  ASSERT_TRUE(ws->Send(R"({"type":"mock.close","code":4002,"reason":"backend is done"})").ok());
  EXPECT_FALSE(ws->Read().ok());
  ASSERT_TRUE(ws->closed().has_value());
  EXPECT_EQ(ws->closed()->code, 4002);
  EXPECT_EQ(ws->closed()->reason, "backend is done");
  stats = MockStatsWhen("a", [](const json::value& s) { return Ends(s).size() == 2; });
  ASSERT_EQ(Ends(stats).size(), 2u);
  EXPECT_EQ(Ends(stats)[1].at("by").as_string(), "mock");
  EXPECT_EQ(stats.at("realtime").at("open").as_int64(), 0);
  const std::vector<json::value> lines = LogLines(2);
  for (const json::value& line : lines) {
    EXPECT_EQ(line.at("status").as_int64(), 101);
    EXPECT_EQ(line.at("error").as_string(), "") << json::serialize(line);
  }
}

TEST_F(AgentRealtimeTest, IdleSessionsAndOversizedMessagesAreClosed) {
  Start({"--realtime-idle-timeout-ms", "400", "--realtime-max-message-bytes", "4096"});
  std::unique_ptr<WebSocketClient> ws = Open(kV1Target);
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(Type(Event(*ws)), "session.created");
  EXPECT_FALSE(ws->Read(absl::Seconds(5)).ok());
  ASSERT_TRUE(ws->closed().has_value());
  EXPECT_EQ(ws->closed()->code, 1001);
  EXPECT_EQ(ws->closed()->reason, "idle timeout");
  json::value stats = MockStatsWhen("a", [](const json::value& s) { return !Ends(s).empty(); });
  ASSERT_EQ(Ends(stats).size(), 1u);
  EXPECT_EQ(Ends(stats)[0].at("code").as_int64(), 1001);

  ws = Open(kV1Target);
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(Type(Event(*ws)), "session.created");
  ASSERT_TRUE(ws->Send(std::string(5000, 'x'), /*binary=*/true).ok());
  EXPECT_FALSE(ws->Read().ok());
  ASSERT_TRUE(ws->closed().has_value());
  EXPECT_EQ(ws->closed()->code, 1009);  // too big
  stats = MockStatsWhen("a", [](const json::value& s) { return Ends(s).size() == 2; });
  ASSERT_EQ(Ends(stats).size(), 2u);
  EXPECT_EQ(Ends(stats)[1].at("code").as_int64(), 1001);  // the client went away
  const std::vector<json::value> lines = LogLines(2);
  EXPECT_THAT(std::string(lines[0].at("error").as_string()), HasSubstr("idle"));
  EXPECT_THAT(std::string(lines[1].at("error").as_string()), HasSubstr("client connection failed"));
}

TEST_F(AgentRealtimeTest, ClientSecretsAndCallsAreRoutedLikeOtherPosts) {
  Start();
  auto client = fleet_.AgentClient();
  absl::StatusOr<HttpResponse> secret =
      client->Send("POST", "/openai/v1/realtime/client_secrets", kKeyHeader,
                   R"({"session":{"type":"realtime","model":"gpt-realtime"}})");
  ASSERT_TRUE(secret.ok());
  ASSERT_EQ(secret->status, 200) << secret->body;
  // The backend was asked with its own deployment name.
  EXPECT_EQ(Parse(secret->body).at("session").at("model").as_string(), "rt-a");
  EXPECT_EQ(secret->Header("x-spillway-backend"), "a/rt-a");
  absl::StatusOr<HttpResponse> no_model =
      client->Send("POST", "/openai/v1/realtime/client_secrets", kKeyHeader, R"({"session":{}})");
  ASSERT_TRUE(no_model.ok());
  EXPECT_EQ(no_model->status, 400);

  absl::StatusOr<HttpResponse> call =
      client->Send("POST", "/openai/v1/realtime/calls?model=gpt-realtime",
                   {{"api-key", kTenantKey}, {"Content-Type", "application/sdp"}}, "v=0\r\n");
  ASSERT_TRUE(call.ok());
  ASSERT_EQ(call->status, 201) << call->body;
  EXPECT_THAT(call->body, HasSubstr("s=rt-a"));
  EXPECT_EQ(call->Header("content-type"), "application/sdp");
  absl::StatusOr<HttpResponse> unnamed =
      client->Send("POST", "/openai/v1/realtime/calls",
                   {{"api-key", kTenantKey}, {"Content-Type", "application/sdp"}}, "v=0\r\n");
  ASSERT_TRUE(unnamed.ok());
  EXPECT_EQ(unnamed->status, 400);
  EXPECT_THAT(unnamed->body, HasSubstr("\\\"model\\\" parameter"));
}

}  // namespace
}  // namespace spillway::test
