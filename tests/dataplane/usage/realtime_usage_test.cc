// RealtimeUsage: a session's tokens are the sum of its response.done events' usage; nothing
// else (deltas, other events, a response.done without usage, broken JSON) counts.
#include "dataplane/usage/realtime_usage.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

constexpr char kDone[] =
    R"({"type":"response.done","event_id":"event_1","response":{"object":"realtime.response",)"
    R"("id":"resp_1","status":"completed","output":[{"type":"message","content":[{"type":)"
    R"("output_text","text":"Hi"}]}],"usage":{"total_tokens":253,"input_tokens":132,)"
    R"("output_tokens":121,"input_token_details":{"text_tokens":119,"audio_tokens":13,)"
    R"("cached_tokens":64},"output_token_details":{"text_tokens":30,"audio_tokens":91}},)"
    R"("metadata":null}})";

TEST(RealtimeUsage, SumsEveryResponseDone) {
  RealtimeUsage usage;
  std::optional<Usage> one = usage.OnBackendMessage(kDone);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->prompt_tokens, 132);
  EXPECT_EQ(one->completion_tokens, 121);
  EXPECT_EQ(one->total_tokens, 253);
  EXPECT_EQ(one->cached_tokens, 64);
  ASSERT_TRUE(usage.OnBackendMessage(kDone).has_value());
  EXPECT_TRUE(usage.total().reported);
  EXPECT_EQ(usage.total().prompt_tokens, 264);
  EXPECT_EQ(usage.total().completion_tokens, 242);
  EXPECT_EQ(usage.total().total_tokens, 506);
  EXPECT_EQ(usage.total().cached_tokens, 128);
  EXPECT_EQ(usage.responses(), 2);
}

TEST(RealtimeUsage, IgnoresEverythingElse) {
  RealtimeUsage usage;
  for (const char* message : {
           R"({"type":"response.output_text.delta","delta":"\"response.done\""})",
           R"({"type":"session.created","session":{"usage":{"input_tokens":5}}})",
           R"({"type":"response.done","response":{"status":"cancelled","usage":null}})",
           R"({"type":"response.done","response":{"usage":{"input_tokens":)",
           R"(["response.done"])",
       }) {
    EXPECT_FALSE(usage.OnBackendMessage(message).has_value()) << message;
  }
  EXPECT_FALSE(usage.total().reported);
  EXPECT_EQ(usage.responses(), 0);
}

TEST(RealtimeUsage, TotalDefaultsToInputPlusOutput) {
  RealtimeUsage usage;
  std::optional<Usage> one = usage.OnBackendMessage(
      R"({"type":"response.done","response":{"usage":{"input_tokens":3,"output_tokens":4}}})");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->total_tokens, 7);
  EXPECT_EQ(one->cached_tokens, 0);
}

}  // namespace
}  // namespace spillway
