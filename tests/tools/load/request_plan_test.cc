// The schedule and the requests of a run: how many are sent, when, which stream, and that a
// prompt of N tokens is N tokens by the mock's own count.
#include "tools/load/request_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/token_estimate.h"

namespace spillway::load {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(RequestPlanTest, CountIsWhatTheRateAndDurationGive) {
  EXPECT_EQ(RequestCount(600, seconds(6)), 60);
  EXPECT_EQ(RequestCount(60, seconds(60)), 60);
  EXPECT_EQ(RequestCount(7, std::chrono::minutes(1)), 7);
  EXPECT_EQ(RequestCount(60, milliseconds(1500)), 2);  // due at 0 s and 1 s
  EXPECT_EQ(RequestCount(60, milliseconds(1001)), 2);
  EXPECT_EQ(RequestCount(60, milliseconds(1000)), 1);  // the one due at 1 s is past the end
  EXPECT_EQ(RequestCount(1, std::chrono::nanoseconds(1)), 1);
  EXPECT_EQ(RequestCount(kMaxRpm, kMaxDuration), kMaxRpm * 60 * 24);  // no overflow
}

TEST(RequestPlanTest, DueTimesAreEvenlySpacedWithoutDrift) {
  EXPECT_EQ(DueOffset(0, 600), milliseconds(0));
  EXPECT_EQ(DueOffset(1, 600), milliseconds(100));
  EXPECT_EQ(DueOffset(59, 600), milliseconds(5900));
  // 7 rpm: 8.571428571 s apart, exact at each index (no summed rounding).
  EXPECT_EQ(DueOffset(7, 7), seconds(60));
  EXPECT_EQ(DueOffset(1, 7).count(), 8'571'428'571);
  // The last request of the longest, fastest run: no overflow on the way.
  const int64_t last = RequestCount(kMaxRpm, kMaxDuration) - 1;
  EXPECT_LT(DueOffset(last, kMaxRpm), kMaxDuration);
  EXPECT_GT(DueOffset(last, kMaxRpm), kMaxDuration - milliseconds(1));
}

TEST(RequestPlanTest, StreamShareIsSpreadEvenly) {
  auto streamed = [](double share, int64_t n) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) count += Streams(i, share) ? 1 : 0;
    return count;
  };
  EXPECT_EQ(streamed(0.5, 60), 30);
  EXPECT_EQ(streamed(0, 1000), 0);
  EXPECT_EQ(streamed(1, 1000), 1000);
  EXPECT_EQ(streamed(0.3, 1000), 300);
  EXPECT_EQ(streamed(0.25, 7), 1);
  // Any prefix of the run holds the share to within one request.
  for (int64_t n = 1; n <= 100; ++n) {
    EXPECT_NEAR(static_cast<double>(streamed(0.37, n)), 0.37 * static_cast<double>(n), 1.0);
  }
  EXPECT_FALSE(Streams(0, 0.5));
  EXPECT_TRUE(Streams(1, 0.5));
}

TEST(RequestPlanTest, PromptIsExactlyNTokensByTheMocksCount) {
  for (const int64_t tokens : {1, 2, 7, 8, 9, 200, 4096}) {
    const std::string prompt = BuildPrompt(tokens, 12345);
    EXPECT_EQ(prompt.size(), static_cast<size_t>(tokens) * 4);
    EXPECT_EQ(mock::EstimateTextTokens(prompt), tokens);
    // Words of one space and three letters: one token each for cl100k/o200k too.
    for (size_t i = 0; i < prompt.size(); i += 4) {
      EXPECT_EQ(prompt[i], ' ');
    }
  }
}

TEST(RequestPlanTest, PromptsDifferFromTheirFirstWords) {
  std::set<std::string> prefixes;
  for (uint64_t sequence = 0; sequence < 300; ++sequence) {
    prefixes.insert(BuildPrompt(200, sequence).substr(0, 32));
  }
  EXPECT_EQ(prefixes.size(), 300u);
}

TEST(RequestPlanTest, PlannerDrawsWithinRangesAndRepeats) {
  LoadOptions options;
  options.prompt_tokens = {10, 20};
  options.completion_tokens = {5, 5};
  options.stream_share = 0.5;
  RequestPlanner a(options);
  RequestPlanner b(options);
  std::set<int64_t> seen;
  for (int i = 0; i < 500; ++i) {
    const PlannedRequest p = a.Next();
    const PlannedRequest q = b.Next();
    EXPECT_EQ(p.index, i);
    EXPECT_EQ(p.prompt_tokens, q.prompt_tokens) << "a fixed seed: runs compare";
    EXPECT_GE(p.prompt_tokens, 10);
    EXPECT_LE(p.prompt_tokens, 20);
    EXPECT_EQ(p.max_tokens, 5);
    EXPECT_EQ(p.stream, i % 2 == 1);
    seen.insert(p.prompt_tokens);
  }
  EXPECT_EQ(seen.size(), 11u) << "every size of the range is drawn";
}

TEST(RequestPlanTest, HttpRequestIsTheAzureChatCompletion) {
  LoadOptions options;
  options.route = "gpt-4o";
  options.api_key = "the-key";
  options.address.host_header = "127.0.0.1:8080";
  PlannedRequest planned;
  planned.index = 3;
  planned.prompt_tokens = 50;
  planned.max_tokens = 70;
  for (const bool stream : {false, true}) {
    planned.stream = stream;
    const std::string request = BuildHttpRequest(options, planned);
    EXPECT_THAT(request, StartsWith("POST /openai/deployments/gpt-4o/chat/completions"
                                    "?api-version=2024-10-21 HTTP/1.1\r\n"));
    EXPECT_THAT(request, HasSubstr("\r\nHost: 127.0.0.1:8080\r\n"));
    EXPECT_THAT(request, HasSubstr("\r\napi-key: the-key\r\n"));
    const size_t split = request.find("\r\n\r\n");
    ASSERT_NE(split, std::string::npos);
    const std::string body = request.substr(split + 4);
    EXPECT_THAT(request, HasSubstr(absl::StrCat("\r\nContent-Length: ", body.size(), "\r\n")));
    const boost::json::object json = boost::json::parse(body).as_object();
    EXPECT_EQ(json.at("max_tokens").as_int64(), 70);
    const std::string content(
        json.at("messages").as_array()[0].as_object().at("content").as_string());
    EXPECT_EQ(mock::EstimateTextTokens(content), 50);
    EXPECT_EQ(json.contains("stream"), stream);
    if (stream) {
      EXPECT_TRUE(json.at("stream").as_bool());
      EXPECT_TRUE(json.at("stream_options").as_object().at("include_usage").as_bool());
    }
  }
}

}  // namespace
}  // namespace spillway::load
