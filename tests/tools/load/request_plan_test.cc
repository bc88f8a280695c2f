// The requests of a run: which stream, their sizes (drawn or dealt from a file), their key and
// route, and that a prompt of N tokens is N tokens by the mock's own count.
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
  options.prompt_tokens = TokenRange::Between(10, 20);
  options.completion_tokens = TokenRange::Fixed(5);
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
  options.routes = {"gpt-4o"};
  options.api_keys = {{"key-1", "the-key"}};
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

TEST(RequestPlanTest, RequestsGoRoundTheKeyAndRouteCombinations) {
  // Two keys, three routes: k1 r1, k1 r2, k1 r3, k2 r1, k2 r2, k2 r3, then again.
  const std::vector<std::pair<size_t, size_t>> expected = {{0, 0}, {0, 1}, {0, 2}, {1, 0},
                                                           {1, 1}, {1, 2}, {0, 0}, {0, 1}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(Combination(static_cast<int64_t>(i), 2, 3), expected[i]) << i;
  }
  EXPECT_EQ(Combination(5, 1, 1), std::make_pair(size_t{0}, size_t{0}));
  LoadOptions options;
  options.api_keys = {{"a", "key-a"}, {"b", "key-b"}};
  options.routes = {"r1", "r2"};
  options.address.host_header = "h";
  RequestPlanner planner(options);
  for (int i = 0; i < 8; ++i) {
    const PlannedRequest planned = planner.Next();
    const size_t c = static_cast<size_t>(i % 4);
    EXPECT_EQ(planned.key, c / 2) << i;
    EXPECT_EQ(planned.route, c % 2) << i;
    const std::string request = BuildHttpRequest(options, planned);
    EXPECT_THAT(request, StartsWith("POST /openai/deployments/" + options.routes[c % 2] + "/"));
    EXPECT_THAT(request, HasSubstr("\r\napi-key: " + options.api_keys[c / 2].key + "\r\n"));
  }
}

TEST(RequestPlanTest, PlannerDealsFileSizes) {
  LoadOptions options;
  options.prompt_tokens.samples =
      std::make_shared<std::vector<int32_t>>(std::vector<int32_t>{10, 20, 60});
  options.completion_tokens = TokenRange::Fixed(5);
  RequestPlanner planner(options);
  int64_t total = 0;
  for (int i = 0; i < 30; ++i) {
    total += planner.Next().prompt_tokens;
  }
  EXPECT_EQ(total, 10 * (10 + 20 + 60)) << "ten passes through the file: its mean exactly";
}

}  // namespace
}  // namespace spillway::load
