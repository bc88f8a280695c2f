// Reading answers: a stream's token events timed as they arrive however the bytes are split,
// the usage chunk, [DONE] and error events; a completion's usage.
#include "tools/load/answer_body.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace spillway::load {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// Azure's shapes: the prompt-filter chunk with no choices, a role-only delta, content deltas,
// the finish chunk, the usage chunk, [DONE].
const char kStream[] =
    "data: {\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"index\":0}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"},\"index\":0}]}\r\n\r\n"
    ": a comment\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\" world\"},\"index\":0}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]},\"index\":0}]}\n\n"
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":200,\"completion_tokens\":3,"
    "\"total_tokens\":203}}\n\n"
    "data: [DONE]\n\n";

TEST(SseTimingTest, TokenEventsUsageAndDone) {
  std::vector<microseconds> gaps;
  SseTiming sse([&](microseconds gap) { gaps.push_back(gap); });
  const Clock::time_point t0{};
  ASSERT_TRUE(sse.Feed(kStream, t0 + milliseconds(5)));
  EXPECT_EQ(sse.token_events(), 3);
  EXPECT_EQ(sse.first_token(), t0 + milliseconds(5));
  EXPECT_EQ(gaps, (std::vector<microseconds>{microseconds(0), microseconds(0)}));
  EXPECT_EQ(sse.usage().prompt_tokens, 200);
  EXPECT_EQ(sse.usage().completion_tokens, 3);
  EXPECT_TRUE(sse.done());
  EXPECT_FALSE(sse.error_event());
}

TEST(SseTimingTest, EachByteInItsOwnReadTimesEachEventWhenItsLastByteCame) {
  std::vector<microseconds> gaps;
  SseTiming sse([&](microseconds gap) { gaps.push_back(gap); });
  const std::string stream = kStream;
  const Clock::time_point t0{};
  for (size_t i = 0; i < stream.size(); ++i) {
    ASSERT_TRUE(sse.Feed(stream.substr(i, 1), t0 + microseconds(i)));
  }
  EXPECT_EQ(sse.token_events(), 3);
  // An event counts when its blank line arrives: the first token's is the "\r\n" ending it.
  const size_t hello_end = stream.find("\"Hello\"");
  const size_t hello_blank = stream.find("\r\n\r\n", hello_end) + 3;
  EXPECT_EQ(sse.first_token(), t0 + microseconds(hello_blank));
  ASSERT_EQ(gaps.size(), 2u);
  const size_t world_blank = stream.find("\n\n", stream.find("\" world\"")) + 1;
  EXPECT_EQ(gaps[0], microseconds(world_blank - hello_blank));
  EXPECT_TRUE(sse.done());
}

TEST(SseTimingTest, ErrorEventsAndStreamsWithoutDone) {
  SseTiming named([](microseconds) {});
  named.Feed("event: error\ndata: {\"message\":\"upstream failed\"}\n\n", Clock::now());
  EXPECT_TRUE(named.error_event());
  EXPECT_FALSE(named.done());

  SseTiming object([](microseconds) {});
  object.Feed("data: {\"error\":{\"code\":\"content_filter\"}}\n\n", Clock::now());
  EXPECT_TRUE(object.error_event());

  SseTiming cut([](microseconds) {});
  cut.Feed("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"cho", Clock::now());
  EXPECT_EQ(cut.token_events(), 1);
  EXPECT_FALSE(cut.done());
  EXPECT_FALSE(cut.error_event());
}

TEST(SseTimingTest, CompletionsTextCountsAsAToken) {
  SseTiming sse([](microseconds) {});
  sse.Feed("data: {\"choices\":[{\"text\":\"x\",\"index\":0}]}\n\n", Clock::now());
  EXPECT_EQ(sse.token_events(), 1);
}

TEST(SseTimingTest, AnEventPastTheLimitStopsTheStream) {
  SseTiming sse([](microseconds) {});
  const std::string huge(SseTiming::kMaxEventBytes + 10, 'x');
  EXPECT_FALSE(sse.Feed("data: " + huge, Clock::now()));
  EXPECT_TRUE(sse.oversized());
  SseTiming lines([](microseconds) {});
  bool ok = true;
  for (int i = 0; i < 20 && ok; ++i) {  // many data lines of one event add up
    ok = lines.Feed("data: " + std::string(SseTiming::kMaxEventBytes / 10, 'y') + "\n",
                    Clock::now());
  }
  EXPECT_FALSE(ok);
}

TEST(CompletionUsageTest, ReadsUsageOrNothing) {
  const Usage usage = ParseCompletionUsage(
      R"({"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34}})");
  EXPECT_EQ(usage.prompt_tokens, 12);
  EXPECT_EQ(usage.completion_tokens, 34);
  EXPECT_FALSE(ParseCompletionUsage(R"({"id":"x"})").completion_tokens.has_value());
  EXPECT_FALSE(ParseCompletionUsage("not json").prompt_tokens.has_value());
  EXPECT_FALSE(ParseCompletionUsage(R"({"usage":null})").prompt_tokens.has_value());
}

}  // namespace
}  // namespace spillway::load
