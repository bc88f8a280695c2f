// Faults on demand against the real binary: each mode, count and duration, the deployment
// filter, the --fault flag and the control endpoint's grammar.
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/sse.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

void AddFault(const test::MockAoaiProcess& mock, absl::string_view json) {
  test::HttpClient control = Client(mock);
  const test::HttpResponse response = MustSend(control, "POST", "/mock/faults", json);
  ASSERT_EQ(response.status, 200) << response.body;
}

TEST(MockFaultsTest, StatusFaultForCountThenRecovers) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"status","status":503,"count":2})");
  test::HttpClient client = Client(*mock);
  for (int i = 0; i < 2; ++i) {
    const test::HttpResponse response =
        MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"));
    EXPECT_EQ(response.status, 503);
    const boost::json::value error = Json(response.body);
    EXPECT_EQ(Str(error.at("error").at("code")), "503");
    EXPECT_FALSE(Str(error.at("error").at("message")).empty());
    EXPECT_TRUE(response.HasHeader("x-request-id"));
    EXPECT_TRUE(response.HasHeader("x-ratelimit-remaining-tokens"));
  }
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

TEST(MockFaultsTest, Status429CarriesRetryAfter) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"status":429,"retry_after_ms":1500,"count":1})");
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response = MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"));
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.Header("retry-after-ms"), "1500");
  EXPECT_EQ(response.Header("retry-after"), "2");
  EXPECT_THAT(Str(Json(response.body).at("error").at("message")),
              HasSubstr("exceeded token rate limit"));
}

TEST(MockFaultsTest, CodeAndMessageCanBeGiven) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"status":400,"code":"content_filter","message":"filtered","count":1})");
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response = MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"));
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.body, R"({"error":{"code":"content_filter","message":"filtered"}})");
}

TEST(MockFaultsTest, DurationFaultExpires) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"status":500,"duration_ms":300})");
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 500);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 500);
  absl::SleepFor(absl::Milliseconds(350));
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

TEST(MockFaultsTest, DeploymentFilter) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d1,d2"});
  AddFault(*mock, R"({"status":503,"deployment":"d2"})");
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d1"), ChatBody("hi")).status, 200);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d2"), ChatBody("hi")).status, 503);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d2"), ChatBody("hi")).status, 503);
}

TEST(MockFaultsTest, DeleteClearsAndGetLists) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"status":502})");
  test::HttpClient client = Client(*mock);
  EXPECT_THAT(MustSend(client, "GET", "/mock/faults").body, HasSubstr(R"("status":502)"));
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 502);
  EXPECT_EQ(MustSend(client, "DELETE", "/mock/faults").status, 200);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
  EXPECT_EQ(MustSend(client, "GET", "/mock/faults").body, R"({"faults":[]})");
}

TEST(MockFaultsTest, BadFaultIs400) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response =
      MustSend(client, "POST", "/mock/faults", R"({"mode":"explode"})");
  EXPECT_EQ(response.status, 400);
  EXPECT_THAT(response.body, HasSubstr("explode"));
}

TEST(MockFaultsTest, FlagFaultIsActiveFromStartup) {
  SPILLWAY_START_MOCK(mock, {"--fault", "status=503,count=1"});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 503);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

TEST(MockFaultsTest, ResetClosesTheConnectionUnanswered) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"reset","count":1})");
  test::HttpClient client = Client(*mock);
  absl::StatusOr<test::HttpResponse> response =
      client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"), absl::Seconds(5));
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

// The close fault: a normal answer whose head promises keep-alive, then the connection is
// closed, so the client's next request on it fails before any answer (the keep-alive race).
TEST(MockFaultsTest, CloseAnswersThenClosesTheKeptAliveConnection) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"close","count":1})");
  test::HttpClient client = Client(*mock);
  const test::HttpResponse answered = MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"));
  EXPECT_EQ(answered.status, 200);
  EXPECT_EQ(Str(Json(answered.body).at("object")), "chat.completion");
  EXPECT_NE(answered.Header("connection"), "close");
  absl::StatusOr<test::HttpResponse> stale =
      client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"), absl::Seconds(10));
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(absl::IsUnavailable(stale.status())) << stale.status();
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
  test::HttpClient control = Client(*mock);
  const boost::json::value stats = Json(MustSend(control, "GET", "/mock/stats").body);
  EXPECT_EQ(stats.at("deployments").at("gpt-4o").at("by_status").at("200").as_int64(), 2)
      << "the request sent on the closed connection never arrived";
  EXPECT_EQ(Str(stats.at("log").at(0).at("fault")), "close");
}

// HTTP/1.1 has no GOAWAY: the goaway fault closes the connection with the request unanswered.
TEST(MockFaultsTest, GoawayOverHttp11ClosesUnanswered) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"goaway","count":1})");
  test::HttpClient client = Client(*mock);
  absl::StatusOr<test::HttpResponse> response =
      client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"), absl::Seconds(10));
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

TEST(MockFaultsTest, HangNeverAnswers) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"hang","count":1})");
  test::HttpClient client = Client(*mock);
  absl::StatusOr<test::HttpResponse> response =
      client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"), absl::Milliseconds(300));
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(response.status())) << response.status();
  // Others are still served meanwhile.
  test::HttpClient other = Client(*mock);
  EXPECT_EQ(MustSend(other, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

TEST(MockFaultsTest, SlowDripSpacesTheEvents) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"slow_drip","drip_ms":30,"count":1})");
  test::HttpClient client = Client(*mock);
  test::SseCollector collector;
  const absl::Time sent = absl::Now();
  absl::StatusOr<test::HttpResponse> response = client.SendStreaming(
      "POST", ChatPath("gpt-4o"), {}, ChatBody("hi", R"("stream":true,"max_tokens":3)"),
      [&](absl::string_view piece, absl::Time at) { collector.Feed(piece, at); });
  ASSERT_TRUE(response.ok()) << response.status();
  const std::vector<test::SseEvent>& events = collector.events();
  ASSERT_EQ(events.size(), 6u);  // prompt filter, 3 deltas, finish, [DONE]
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_LT(events.front().arrival, events.back().arrival);
  EXPECT_GE(events.back().arrival - sent, absl::Milliseconds(5 * 30));
}

TEST(MockFaultsTest, SlowDripOfANonStreamedBody) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"slow_drip","drip_ms":5,"count":1})");
  test::HttpClient client = Client(*mock);
  int pieces = 0;
  absl::StatusOr<test::HttpResponse> response =
      client.SendStreaming("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"),
                           [&](absl::string_view, absl::Time) { ++pieces; });
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(Json(response->body).is_object());
  EXPECT_GT(pieces, 1);
}

TEST(MockFaultsTest, CutEndsTheStreamWithoutDone) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"cut","cut_after_chunks":3,"count":1})");
  test::HttpClient client = Client(*mock);
  test::SseCollector collector;
  absl::StatusOr<test::HttpResponse> response = client.SendStreaming(
      "POST", ChatPath("gpt-4o"), {}, ChatBody("hi", R"("stream":true)"),
      [&](absl::string_view piece, absl::Time at) { collector.Feed(piece, at); });
  EXPECT_FALSE(response.ok());
  ASSERT_EQ(collector.events().size(), 3u);
  for (const test::SseEvent& event : collector.events()) {
    EXPECT_NE(event.data, "[DONE]");
  }
  // The next request is whole again.
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

TEST(MockFaultsTest, CutOfANonStreamedBodyIsATruncatedBody) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"cut","count":1})");
  test::HttpClient client = Client(*mock);
  absl::StatusOr<test::HttpResponse> response =
      client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"));
  EXPECT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
}

TEST(MockFaultsTest, FaultedRequestsAreNotCharged) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000"});  // one request per window
  AddFault(*mock, R"({"status":500,"count":3})");
  test::HttpClient client = Client(*mock);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 500);
  }
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 200);
}

}  // namespace
}  // namespace spillway::mock
