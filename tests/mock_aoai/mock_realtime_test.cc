// The mock's Realtime API against the real binary: the WebSocket's events and usage, its key
// (header or query parameter), the 429 fault on the handshake, closes either way, binary
// echo; client secrets and WebRTC calls.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/websocket_client.h"

namespace spillway::mock {
namespace {

using test::WebSocketClient;
using ::testing::HasSubstr;

constexpr char kKey[] = "mock-key";

std::unique_ptr<WebSocketClient> Open(const test::MockAoaiProcess& mock, absl::string_view target,
                                      const test::HttpHeaders& headers = {{"api-key", kKey}}) {
  absl::StatusOr<std::unique_ptr<WebSocketClient>> ws =
      WebSocketClient::Connect(mock.port(), target, headers);
  EXPECT_TRUE(ws.ok()) << ws.status();
  return ws.ok() ? *std::move(ws) : nullptr;
}

boost::json::value ReadEvent(WebSocketClient& ws) {
  absl::StatusOr<test::WebSocketMessage> message = ws.Read();
  EXPECT_TRUE(message.ok()) << message.status();
  if (!message.ok()) {
    return boost::json::object();
  }
  EXPECT_FALSE(message->binary);
  return Json(message->data);
}

// Stats, parsed, once `ready` says they show what the test waits for (sessions end
// asynchronously to the client's view of them).
boost::json::value StatsWhen(const test::MockAoaiProcess& mock,
                             const std::function<bool(const boost::json::value&)>& ready) {
  boost::json::value stats;
  for (int i = 0; i < 250; ++i) {
    test::HttpClient control = Client(mock);
    stats = Json(MustSend(control, "GET", "/mock/stats").body);
    if (ready(stats)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return stats;
}

TEST(MockRealtimeTest, SessionAnswersEventsAndReportsUsage) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", kKey, "--deployments", "rt:model=gpt-realtime"});
  std::unique_ptr<WebSocketClient> ws = Open(*mock, "/openai/v1/realtime?model=rt");
  ASSERT_NE(ws, nullptr);
  EXPECT_TRUE(ws->handshake().HasHeader("x-request-id"));
  boost::json::value created = ReadEvent(*ws);
  EXPECT_EQ(Str(created.at("type")), "session.created");
  EXPECT_EQ(Str(created.at("session").at("model")), "gpt-realtime");

  ASSERT_TRUE(ws->Send(R"({"type":"session.update","session":{"type":"realtime",)"
                       R"("instructions":"Be brief and kind.","output_modalities":["text"]}})")
                  .ok());
  boost::json::value updated = ReadEvent(*ws);
  EXPECT_EQ(Str(updated.at("type")), "session.updated");
  EXPECT_EQ(Str(updated.at("session").at("instructions")), "Be brief and kind.");

  ASSERT_TRUE(ws->Send(R"({"type":"conversation.item.create","item":{"type":"message",)"
                       R"("role":"user","content":[{"type":"input_text","text":"Hello there"}]}})")
                  .ok());
  EXPECT_EQ(Str(ReadEvent(*ws).at("type")), "conversation.item.added");

  int64_t total_input = 0;
  int64_t total_output = 0;
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(ws->Send(R"({"type":"response.create","response":{"max_output_tokens":5}})").ok());
    EXPECT_EQ(Str(ReadEvent(*ws).at("type")), "response.created");
    std::string text;
    for (int i = 0; i < 5; ++i) {
      boost::json::value delta = ReadEvent(*ws);
      ASSERT_EQ(Str(delta.at("type")), "response.output_text.delta");
      text += Str(delta.at("delta"));
    }
    boost::json::value text_done = ReadEvent(*ws);
    EXPECT_EQ(Str(text_done.at("type")), "response.output_text.done");
    EXPECT_EQ(Str(text_done.at("text")), text);
    boost::json::value done = ReadEvent(*ws);
    ASSERT_EQ(Str(done.at("type")), "response.done");
    const boost::json::value& usage = done.at("response").at("usage");
    EXPECT_EQ(usage.at("output_tokens").as_int64(), 5);
    EXPECT_GT(usage.at("input_tokens").as_int64(), 0);
    EXPECT_EQ(usage.at("total_tokens").as_int64(),
              usage.at("input_tokens").as_int64() + usage.at("output_tokens").as_int64());
    // The second response reads the first one's input again: that much is cached.
    EXPECT_EQ(usage.at("input_token_details").at("cached_tokens").as_int64() > 0, round == 1);
    total_input += usage.at("input_tokens").as_int64();
    total_output += 5;
  }
  ASSERT_TRUE(ws->Close(1000, "bye").ok());
  EXPECT_EQ(ws->closed()->code, 1000);

  boost::json::value stats = StatsWhen(*mock, [](const boost::json::value& s) {
    return !s.at("realtime").at("ends").as_array().empty();
  });
  const boost::json::value& rt = stats.at("deployments").at("rt");
  EXPECT_EQ(rt.at("by_status").at("101").as_int64(), 1);
  EXPECT_EQ(rt.at("usage").at("prompt_tokens").as_int64(), total_input);
  EXPECT_EQ(rt.at("usage").at("completion_tokens").as_int64(), total_output);
  const boost::json::value& end = stats.at("realtime").at("ends").at(0);
  EXPECT_EQ(Str(end.at("by")), "client");
  EXPECT_EQ(end.at("code").as_int64(), 1000);
  EXPECT_EQ(Str(end.at("reason")), "bye");
  EXPECT_EQ(stats.at("realtime").at("open").as_int64(), 0);
}

TEST(MockRealtimeTest, KeyByHeaderOrQueryParameterElse401) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", kKey, "--deployments", "rt"});
  EXPECT_NE(Open(*mock,
                 absl::StrCat("/openai/realtime?api-version=2025-04-01-preview&"
                              "deployment=rt&api-key=",
                              kKey),
                 {}),
            nullptr);
  test::HttpResponse refusal;
  absl::StatusOr<std::unique_ptr<WebSocketClient>> ws = WebSocketClient::Connect(
      mock->port(), "/openai/v1/realtime?model=rt", {{"api-key", "wrong"}}, &refusal);
  ASSERT_FALSE(ws.ok());
  EXPECT_EQ(refusal.status, 401);
  EXPECT_THAT(refusal.body, HasSubstr("Access denied"));
  ws = WebSocketClient::Connect(mock->port(), "/openai/v1/realtime?model=nope", {{"api-key", kKey}},
                                &refusal);
  ASSERT_FALSE(ws.ok());
  EXPECT_EQ(refusal.status, 404);
  EXPECT_THAT(refusal.body, HasSubstr("DeploymentNotFound"));
}

TEST(MockRealtimeTest, A429FaultRefusesTheHandshake) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "rt"});
  test::HttpClient control = Client(*mock);
  ASSERT_EQ(
      MustSend(control, "POST", "/mock/faults", R"({"status":429,"retry_after_ms":700,"count":1})")
          .status,
      200);
  test::HttpResponse refusal;
  absl::StatusOr<std::unique_ptr<WebSocketClient>> ws =
      WebSocketClient::Connect(mock->port(), "/openai/v1/realtime?model=rt", {}, &refusal);
  ASSERT_FALSE(ws.ok());
  EXPECT_EQ(refusal.status, 429);
  EXPECT_EQ(refusal.Header("retry-after-ms"), "700");
  EXPECT_NE(Open(*mock, "/openai/v1/realtime?model=rt", {}), nullptr);  // the fault is spent
}

TEST(MockRealtimeTest, MockCloseAndBinaryEchoAndEcho) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "rt"});
  std::unique_ptr<WebSocketClient> ws = Open(*mock, "/openai/v1/realtime?model=rt", {});
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(Str(ReadEvent(*ws).at("type")), "session.created");
  const std::string bytes("\x00\x01\xfe\xff binary", 11);
  ASSERT_TRUE(ws->Send(bytes, /*binary=*/true).ok());
  absl::StatusOr<test::WebSocketMessage> echoed = ws->Read();
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_TRUE(echoed->binary);
  EXPECT_EQ(echoed->data, bytes);
  const std::string text = R"({ "type" : "mock.echo",  "x": "é" })";
  ASSERT_TRUE(ws->Send(text).ok());
  echoed = ws->Read();
  ASSERT_TRUE(echoed.ok());
  EXPECT_EQ(echoed->data, text);
  ASSERT_TRUE(ws->Send(R"({"type":"unknown.thing"})").ok());
  EXPECT_EQ(Str(ReadEvent(*ws).at("type")), "error");
  ASSERT_TRUE(ws->Send(R"({"type":"mock.close","code":4002,"reason":"done here"})").ok());
  EXPECT_FALSE(ws->Read().ok());
  ASSERT_TRUE(ws->closed().has_value());
  EXPECT_EQ(ws->closed()->code, 4002);
  EXPECT_EQ(ws->closed()->reason, "done here");
}

TEST(MockRealtimeTest, ClientSecretsAndCalls) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "rt"});
  test::HttpClient client = Client(*mock);
  test::HttpResponse secret = MustSend(client, "POST", "/openai/v1/realtime/client_secrets",
                                       R"({"expires_after":{"anchor":"created_at","seconds":600},)"
                                       R"("session":{"type":"realtime","model":"rt"}})");
  ASSERT_EQ(secret.status, 200) << secret.body;
  boost::json::value parsed = Json(secret.body);
  EXPECT_THAT(Str(parsed.at("value")), ::testing::StartsWith("ek_"));
  EXPECT_EQ(Str(parsed.at("session").at("model")), "rt");
  EXPECT_EQ(MustSend(client, "POST", "/openai/v1/realtime/client_secrets",
                     R"({"session":{"model":"nope"}})")
                .status,
            404);

  test::HttpResponse call = MustSend(client, "POST", "/openai/v1/realtime/calls?model=rt",
                                     "v=0\r\n", {{"Content-Type", "application/sdp"}});
  ASSERT_EQ(call.status, 201) << call.body;
  EXPECT_EQ(call.Header("content-type"), "application/sdp");
  EXPECT_THAT(call.body, HasSubstr("s=rt"));
  EXPECT_THAT(call.Header("location").value_or(""), HasSubstr("/v1/realtime/calls/rtc_"));
}

}  // namespace
}  // namespace spillway::mock
