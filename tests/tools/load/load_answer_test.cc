// What an answer comes to, whichever protocol carried it: the head's fields kept, a body taken
// piece by piece, and the result: ok, throttled with its retry-after, or an error by kind.
#include "tools/load/load_answer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace spillway::load {
namespace {

using std::chrono::milliseconds;

AnswerHead Head(unsigned status, std::vector<std::pair<std::string, std::string>> fields) {
  AnswerHead head;
  head.status = status;
  for (const auto& [name, value] : fields) head.Field(name, value);
  return head;
}

LoadAnswer Answer(std::vector<std::chrono::microseconds>* gaps = nullptr) {
  return LoadAnswer([gaps](std::chrono::microseconds gap) {
    if (gaps != nullptr) gaps->push_back(gap);
  });
}

constexpr char kToken[] = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"index\":0}]}\n\n";
constexpr char kUsage[] =
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n";

TEST(AnswerHeadTest, KeepsTheFieldsAReportNeedsInAnyCase) {
  // HTTP/2 names are lowercase, HTTP/1.1's as the server wrote them.
  const AnswerHead head = Head(429, {{"Content-Type", "text/event-stream; charset=utf-8"},
                                     {"RETRY-AFTER", "3"},
                                     {"retry-after-ms", "2500"},
                                     {"x-spillway-backend", "east/gpt-4o"},
                                     {"x-other", "ignored"}});
  EXPECT_TRUE(head.event_stream);
  EXPECT_TRUE(head.has_retry_after());
  EXPECT_EQ(head.RetryAfter(), milliseconds(2500)) << "retry-after-ms wins";
  EXPECT_EQ(head.backend, "east/gpt-4o");
  EXPECT_EQ(Head(429, {{"retry-after", "3"}}).RetryAfter(), milliseconds(3000));
  EXPECT_FALSE(Head(429, {}).has_retry_after());
}

TEST(LoadAnswerTest, AStreamTakenInPiecesIsTimedAndOk) {
  std::vector<std::chrono::microseconds> gaps;
  LoadAnswer answer = Answer(&gaps);
  const AnswerHead head = Head(200, {{"content-type", "text/event-stream"}});
  const Clock::time_point start = Clock::now();
  const std::string first = kToken;
  ASSERT_TRUE(answer.Take(head, first.substr(0, 10), start + milliseconds(5)));
  ASSERT_TRUE(answer.Take(head, first.substr(10), start + milliseconds(10)));
  ASSERT_TRUE(answer.Take(head, kToken, start + milliseconds(30)));
  ASSERT_TRUE(
      answer.Take(head, std::string(kUsage) + "data: [DONE]\n\n", start + milliseconds(31)));
  const RequestResult result = answer.Result(head, "", start);
  EXPECT_EQ(result.outcome, Outcome::kOk);
  EXPECT_EQ(result.ttft, std::chrono::microseconds(10'000)) << "when the event's end arrived";
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0], std::chrono::microseconds(20'000));
  EXPECT_EQ(result.prompt_tokens, 7);
  EXPECT_EQ(result.completion_tokens, 2);
}

TEST(LoadAnswerTest, OutcomesByHeadAndErrorKind) {
  const Clock::time_point start = Clock::now();
  const RequestResult throttled =
      Answer().Result(Head(429, {{"retry-after-ms", "1500"}}), "h2_reset", start);
  EXPECT_EQ(throttled.outcome, Outcome::kThrottled) << "a 429 whatever its body came to";
  EXPECT_EQ(throttled.retry_after, milliseconds(1500));
  const RequestResult reset = Answer().Result(Head(200, {}), "h2_reset", start);
  EXPECT_EQ(reset.outcome, Outcome::kError);
  EXPECT_EQ(reset.error_kind, "h2_reset");
  EXPECT_EQ(reset.status, 200u);
  EXPECT_EQ(Answer().Result(Head(503, {}), "", start).error_kind, "http_503");
  EXPECT_EQ(Answer().Result(AnswerHead{}, "timeout", start).error_kind, "timeout");
  // A stream that ended without [DONE], one with an error event.
  const AnswerHead sse = Head(200, {{"content-type", "text/event-stream"}});
  LoadAnswer cut = Answer();
  ASSERT_TRUE(cut.Take(sse, kToken, start));
  EXPECT_EQ(cut.Result(sse, "", start).error_kind, "no_done");
  LoadAnswer failed = Answer();
  ASSERT_TRUE(failed.Take(sse, "event: error\ndata: {\"error\":{}}\n\ndata: [DONE]\n\n", start));
  EXPECT_EQ(failed.Result(sse, "", start).error_kind, "stream_error");
}

TEST(LoadAnswerTest, ACompletionsUsageFromItsPieces) {
  const Clock::time_point start = Clock::now();
  LoadAnswer answer = Answer();
  const AnswerHead ok = Head(200, {{"content-type", "application/json"}});
  ASSERT_TRUE(answer.Take(ok, "{\"usage\":{\"prompt_tokens\":3,", start));
  ASSERT_TRUE(answer.Take(ok, "\"completion_tokens\":4}}", start));
  const RequestResult result = answer.Result(ok, "", start);
  EXPECT_EQ(result.outcome, Outcome::kOk);
  EXPECT_EQ(result.prompt_tokens, 3);
  EXPECT_EQ(result.completion_tokens, 4);
}

TEST(LoadAnswerTest, AnEventPastTheLimitEndsTheStream) {
  LoadAnswer answer = Answer();
  const AnswerHead sse = Head(200, {{"content-type", "text/event-stream"}});
  EXPECT_FALSE(answer.Take(sse, std::string(SseTiming::kMaxEventBytes + 1, 'x'), Clock::now()));
}

}  // namespace
}  // namespace spillway::load
