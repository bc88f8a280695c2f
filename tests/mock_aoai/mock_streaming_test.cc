// Streamed completions against the real binary: Azure's SSE event sequence, the optional usage
// chunk, and events leaving the mock one by one as they are produced.
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/sse.h"

namespace spillway::mock {
namespace {

using ::testing::StartsWith;

test::HttpResponse MustStream(test::HttpClient& client, absl::string_view target,
                              absl::string_view body, test::SseCollector* collector) {
  absl::StatusOr<test::HttpResponse> response = client.SendStreaming(
      "POST", target, {}, body,
      [&](absl::string_view piece, absl::Time at) { collector->Feed(piece, at); });
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *std::move(response) : test::HttpResponse{};
}

TEST(MockStreamingTest, ChatStreamFollowsAzureEventOrder) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "chat:model=gpt-4o-mini"});
  test::HttpClient client = Client(*mock);
  test::SseCollector collector;
  const test::HttpResponse response =
      MustStream(client, ChatPath("chat"),
                 ChatBody("hello world", R"("stream":true,"max_tokens":5)"), &collector);
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("content-type"), "text/event-stream");
  EXPECT_EQ(response.Header("transfer-encoding"), "chunked");
  EXPECT_TRUE(response.HasHeader("x-ratelimit-remaining-tokens"));

  const std::vector<std::string> events = test::ParseSseData(response.body);
  // prompt filter, 5 deltas, finish, [DONE]
  ASSERT_EQ(events.size(), 8u) << response.body;
  const boost::json::value first = Json(events[0]);
  EXPECT_TRUE(first.at("choices").as_array().empty());
  EXPECT_EQ(first.at("prompt_filter_results").at(0).at("prompt_index").as_int64(), 0);

  std::string content;
  std::set<std::string> ids;
  for (size_t i = 1; i <= 5; ++i) {
    const boost::json::value chunk = Json(events[i]);
    EXPECT_EQ(Str(chunk.at("object")), "chat.completion.chunk");
    EXPECT_EQ(Str(chunk.at("model")), "gpt-4o-mini");
    EXPECT_THAT(Str(chunk.at("id")), StartsWith("chatcmpl-"));
    ids.insert(Str(chunk.at("id")));
    const boost::json::value& delta = chunk.at("choices").at(0).at("delta");
    EXPECT_EQ(delta.as_object().contains("role"), i == 1) << events[i];
    if (i == 1) {
      EXPECT_EQ(Str(delta.at("role")), "assistant");
    }
    content += Str(delta.at("content"));
    EXPECT_TRUE(chunk.at("choices").at(0).at("finish_reason").is_null());
  }
  EXPECT_EQ(ids.size(), 1u);
  const boost::json::value finish = Json(events[6]);
  EXPECT_EQ(Str(finish.at("choices").at(0).at("finish_reason")), "length");
  EXPECT_FALSE(finish.as_object().contains("usage"));
  EXPECT_EQ(events[7], "[DONE]");

  // The streamed text is the text a non-streamed answer carries.
  const test::HttpResponse whole =
      MustSend(client, "POST", ChatPath("chat"), ChatBody("hello world", R"("max_tokens":5)"));
  EXPECT_EQ(Str(Json(whole.body).at("choices").at(0).at("message").at("content")), content);
  EXPECT_EQ(collector.events().size(), events.size());
}

TEST(MockStreamingTest, UsageChunkOnlyWhenAsked) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  test::SseCollector collector;
  const test::HttpResponse response = MustStream(
      client, ChatPath("gpt-4o"),
      ChatBody("hello world",
               R"("stream":true,"max_tokens":3,"stream_options":{"include_usage":true})"),
      &collector);
  const std::vector<std::string> events = test::ParseSseData(response.body);
  ASSERT_EQ(events.size(), 1u + 3 + 1 + 1 + 1) << response.body;
  EXPECT_EQ(events.back(), "[DONE]");
  const boost::json::value usage_chunk = Json(events[events.size() - 2]);
  EXPECT_TRUE(usage_chunk.at("choices").as_array().empty());
  const boost::json::value& usage = usage_chunk.at("usage");
  EXPECT_EQ(usage.at("prompt_tokens").as_int64(), 3);
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), 3);
  EXPECT_EQ(usage.at("total_tokens").as_int64(), 6);
  EXPECT_EQ(usage.at("prompt_tokens_details").at("cached_tokens").as_int64(), 0);
  // No other chunk carries usage.
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    EXPECT_FALSE(Json(events[i]).as_object().contains("usage")) << events[i];
  }

  // include_usage false: no usage chunk at all.
  test::SseCollector plain;
  const test::HttpResponse without = MustStream(
      client, ChatPath("gpt-4o"),
      ChatBody("hi", R"("stream":true,"max_tokens":3,"stream_options":{"include_usage":false})"),
      &plain);
  for (const std::string& event : test::ParseSseData(without.body)) {
    EXPECT_EQ(event.find("\"usage\""), std::string::npos) << event;
  }
}

TEST(MockStreamingTest, SeveralChoicesStreamInterleaved) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  test::SseCollector collector;
  const test::HttpResponse response =
      MustStream(client, ChatPath("gpt-4o"),
                 ChatBody("hi", R"("stream":true,"max_tokens":2,"n":2)"), &collector);
  const std::vector<std::string> events = test::ParseSseData(response.body);
  ASSERT_EQ(events.size(), 1u + 2 * 2 + 2 + 1) << response.body;
  EXPECT_EQ(Json(events[1]).at("choices").at(0).at("index").as_int64(), 0);
  EXPECT_EQ(Json(events[2]).at("choices").at(0).at("index").as_int64(), 1);
  EXPECT_EQ(Str(Json(events[6]).at("choices").at(0).at("finish_reason")), "length");
}

TEST(MockStreamingTest, TextCompletionStream) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  test::SseCollector collector;
  const test::HttpResponse response =
      MustStream(client, DeploymentPath("gpt-4o", "completions"),
                 R"({"prompt":"hi","stream":true,"max_tokens":2})", &collector);
  const std::vector<std::string> events = test::ParseSseData(response.body);
  ASSERT_EQ(events.size(), 1u + 2 + 1 + 1) << response.body;
  const boost::json::value chunk = Json(events[1]);
  EXPECT_EQ(Str(chunk.at("object")), "text_completion");
  EXPECT_EQ(Str(chunk.at("choices").at(0).at("text")), "Hello");
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST(MockStreamingTest, EventsArriveAsTheyAreProduced) {
  SPILLWAY_START_MOCK(mock, {"--ttft-ms", "20", "--ms-per-token", "50"});
  test::HttpClient client = Client(*mock);
  test::HttpClient observer = Client(*mock);
  test::SseCollector collector;
  int64_t in_flight_at_first_delta = -1;
  const absl::Time sent = absl::Now();
  absl::StatusOr<test::HttpResponse> response = client.SendStreaming(
      "POST", ChatPath("gpt-4o"), {}, ChatBody("hi", R"("stream":true,"max_tokens":10)"),
      [&](absl::string_view piece, absl::Time at) {
        collector.Feed(piece, at);
        if (in_flight_at_first_delta < 0 && collector.events().size() >= 2) {
          // Holding the first token, ask the mock whether it is still producing this stream.
          const test::HttpResponse stats = MustSend(observer, "GET", "/mock/stats");
          in_flight_at_first_delta =
              Json(stats.body).at("deployments").at("gpt-4o").at("in_flight").as_int64();
        }
      });
  ASSERT_TRUE(response.ok()) << response.status();
  const std::vector<test::SseEvent>& events = collector.events();
  ASSERT_EQ(events.size(), 1u + 10 + 1 + 1);
  // The first token reached the client while the rest was still being produced (another
  // 9 x 50 ms): the stream is written as it goes, not buffered.
  EXPECT_EQ(in_flight_at_first_delta, 1);
  EXPECT_LT(events[1].arrival, events[10].arrival);
  // Once finished, the answer is no longer in flight.
  EXPECT_EQ(Json(MustSend(observer, "GET", "/mock/stats").body)
                .at("deployments")
                .at("gpt-4o")
                .at("in_flight")
                .as_int64(),
            0);
  // The latency model was honoured: nothing before ttft, the whole stream no sooner than
  // ttft + 9 per-token delays.
  EXPECT_GE(events.front().arrival - sent, absl::Milliseconds(20));
  EXPECT_GE(events.back().arrival - sent, absl::Milliseconds(20 + 9 * 50));
}

TEST(MockStreamingTest, NonStreamedAnswerWaitsForItsLastToken) {
  SPILLWAY_START_MOCK(mock, {"--ttft-ms", "30", "--ms-per-token", "20"});
  test::HttpClient client = Client(*mock);
  const absl::Time sent = absl::Now();
  const test::HttpResponse response =
      MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi", R"("max_tokens":4)"));
  ASSERT_EQ(response.status, 200);
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(30 + 3 * 20));
}

}  // namespace
}  // namespace spillway::mock
