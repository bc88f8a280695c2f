// UsageScanner: the backend-reported usage is found at the end of a completion body or in
// the last SSE event, however the bytes were split, and nothing else is mistaken for it.
#include "dataplane/usage/usage_scanner.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_replace.h"

namespace spillway {
namespace {

constexpr char kCompletion[] =
    R"({"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],)"
    R"("usage":{"completion_tokens":16,"completion_tokens_details":{"accepted_prediction_tokens":0,)"
    R"("reasoning_tokens":3},"prompt_tokens":11,"prompt_tokens_details":{"audio_tokens":0,)"
    R"("cached_tokens":5},"total_tokens":27}})";

Usage Scan(const std::string& body, std::size_t piece) {
  UsageScanner scanner;
  for (std::size_t at = 0; at < body.size(); at += piece) {
    scanner.Feed(absl::string_view(body).substr(at, piece));
  }
  return scanner.Finish();
}

TEST(UsageScanner, ReadsEveryCountOfACompletionHoweverItIsSplit) {
  for (std::size_t piece : {1u, 7u, 64u, 100000u}) {
    const Usage usage = Scan(kCompletion, piece);
    ASSERT_TRUE(usage.reported) << piece;
    EXPECT_EQ(usage.prompt_tokens, 11);
    EXPECT_EQ(usage.completion_tokens, 16);
    EXPECT_EQ(usage.total_tokens, 27);
    // Only prompt_tokens_details holds cached_tokens; other nested counts are not taken.
    EXPECT_EQ(usage.cached_tokens, 5);
  }
}

TEST(UsageScanner, TakesTheLastStreamEventsUsageAndSkipsNullOnes) {
  const std::string stream =
      "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":50,"
      "\"total_tokens\":54}}\n\n"
      "data: [DONE]\n\n";
  const Usage usage = Scan(stream, 13);
  ASSERT_TRUE(usage.reported);
  EXPECT_EQ(usage.prompt_tokens, 4);
  EXPECT_EQ(usage.completion_tokens, 50);
  EXPECT_EQ(usage.total_tokens, 54);
  EXPECT_EQ(usage.cached_tokens, 0);
}

// The Responses API names the counts input/output tokens; a stream carries them in the
// response.completed event's response object, and sends no [DONE].
TEST(UsageScanner, ReadsResponsesApiUsageFromABodyAndFromResponseCompleted) {
  const std::string body =
      R"({"id":"resp_1","object":"response","output":[],"usage":{"input_tokens":36,)"
      R"("input_tokens_details":{"cached_tokens":8},"output_tokens":87,)"
      R"("output_tokens_details":{"reasoning_tokens":64},"total_tokens":123},"user":null})";
  const std::string stream =
      "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
      "\"delta\":\"a\",\"sequence_number\":4}\n\n"
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":" +
      body + ",\"sequence_number\":5}\n\n";
  for (const std::string* text : {&body, &stream}) {
    const Usage usage = Scan(*text, 9);
    ASSERT_TRUE(usage.reported) << *text;
    EXPECT_EQ(usage.prompt_tokens, 36);
    EXPECT_EQ(usage.completion_tokens, 87);
    EXPECT_EQ(usage.total_tokens, 123);
    EXPECT_EQ(usage.cached_tokens, 8) << "input_tokens_details, not output_tokens_details";
  }
}

TEST(UsageScanner, ReportsNothingWithoutAUsageObject) {
  EXPECT_FALSE(Scan(R"({"error":{"code":"429","message":"slow down"}})", 5).reported);
  EXPECT_FALSE(Scan("data: {\"usage\":null}\n\ndata: [DONE]\n\n", 4).reported);
  EXPECT_FALSE(Scan(R"({"usage":{"prompt_tokens":)", 100).reported) << "cut short";
  EXPECT_FALSE(Scan("", 1).reported);
}

TEST(UsageScanner, KeepsOnlyTheTailOfALongBody) {
  std::string body(3 * UsageScanner::kTailBytes, 'x');
  body = "{\"pad\":\"" + body + "\"," + std::string(kCompletion).substr(1);
  const Usage usage = Scan(body, 4096);
  ASSERT_TRUE(usage.reported);
  EXPECT_EQ(usage.total_tokens, 27);
}

// Every cut into two reads, the key or its value split anywhere, gives the same counts; a null
// "usage" after the object (or a key whose value comes in the next read) does not hide it.
TEST(UsageScanner, AnyCutFindsTheSameObject) {
  const std::string stream =
      "data: {\"choices\":[],\"usage\" : {\"prompt_tokens\":4,\"completion_tokens\":50,"
      "\"total_tokens\":54}}\n\ndata: {\"choices\":[],\"usage\":\n null}\n\ndata: [DONE]\n\n";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    UsageScanner scanner;
    scanner.Feed(absl::string_view(stream).substr(0, cut));
    scanner.Feed(absl::string_view(stream).substr(cut));
    const Usage usage = scanner.Finish();
    ASSERT_TRUE(usage.reported) << "cut at " << cut;
    EXPECT_EQ(usage.prompt_tokens, 4) << "cut at " << cut;
    EXPECT_EQ(usage.total_tokens, 54) << "cut at " << cut;
  }
}

TEST(UsageScanner, TheLastObjectWins) {
  const std::string first = R"({"usage":{"total_tokens":1}})";
  const std::string second = R"({"usage":{"total_tokens":2}})";
  EXPECT_EQ(Scan(first + "\n" + second, 3).total_tokens, 2);
  EXPECT_EQ(Scan(first + "\n" + second, 1000).total_tokens, 2);
}

// What Feed tells the stripper about a read: where its first whole key is (a key begun in the
// read before does not count) and whether it holds a CR.
TEST(UsageScanner, FeedSaysWhereTheFirstWholeKeyIsAndWhetherACrCame) {
  const std::string events =
      "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4}}\n\n";
  UsageScanner scanner;
  ReadScan scan = scanner.Feed(events);
  EXPECT_EQ(scan.first_key, absl::string_view(events).find(kUsageKey));
  EXPECT_FALSE(scan.may_have_cr);

  const std::string crlf = absl::StrReplaceAll(events, {{"\n", "\r\n"}});
  UsageScanner crlf_scanner;
  scan = crlf_scanner.Feed(crlf);
  EXPECT_EQ(scan.first_key, absl::string_view(crlf).find(kUsageKey));
  EXPECT_TRUE(scan.may_have_cr);

  UsageScanner split;
  const std::size_t cut =
      absl::string_view(events).find(kUsageKey) + 3;  // the first key in two reads
  EXPECT_EQ(split.Feed(absl::string_view(events).substr(0, cut)).first_key,
            absl::string_view::npos);
  const absl::string_view rest = absl::string_view(events).substr(cut);
  EXPECT_EQ(split.Feed(rest).first_key, rest.find(kUsageKey));
  EXPECT_EQ(split.Feed("data: [DONE]\n\n").first_key, absl::string_view::npos);
}

}  // namespace
}  // namespace spillway
