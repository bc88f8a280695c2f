// RealtimeConversation: the mock's Realtime events, without a socket.
#include "tests/mock_aoai/realtime_conversation.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace spillway::mock {
namespace {

namespace json = boost::json;

std::string Type(const std::string& event) {
  return std::string(json::parse(event).at("type").as_string());
}

TEST(RealtimeConversation, SessionUpdateIsEchoedMerged) {
  RealtimeConversation conversation("gpt-realtime", 16);
  EXPECT_EQ(Type(conversation.SessionCreated()), "session.created");
  const RealtimeReply reply = conversation.OnClientEvent(
      R"({"type":"session.update","session":{"instructions":"Hi","voice":"marin"}})");
  ASSERT_EQ(reply.events.size(), 1u);
  const json::value updated = json::parse(reply.events[0].text);
  EXPECT_EQ(updated.at("type").as_string(), "session.updated");
  EXPECT_EQ(updated.at("session").at("voice").as_string(), "marin");
  EXPECT_EQ(updated.at("session").at("model").as_string(), "gpt-realtime");
}

TEST(RealtimeConversation, ResponseIsDeltasThenDoneWithUsage) {
  RealtimeConversation conversation("m", 3);
  conversation.OnClientEvent(
      R"({"type":"conversation.item.create","item":{"type":"message",)"
      R"("role":"user","content":[{"type":"input_text","text":"abcdefgh"}]}})");
  const RealtimeReply reply = conversation.OnClientEvent(R"({"type":"response.create"})");
  ASSERT_EQ(reply.events.size(), 6u);  // created, 3 deltas, text done, response.done
  EXPECT_EQ(Type(reply.events[0].text), "response.created");
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(reply.events[i].token);
    EXPECT_EQ(Type(reply.events[i].text), "response.output_text.delta");
  }
  EXPECT_EQ(Type(reply.events[5].text), "response.done");
  ASSERT_TRUE(reply.usage.has_value());
  EXPECT_EQ(reply.usage->prompt_tokens, 2);  // 8 characters
  EXPECT_EQ(reply.usage->completion_tokens, 3);
  EXPECT_EQ(reply.usage->cached_tokens, 0);
  const json::value done = json::parse(reply.events[5].text);
  EXPECT_EQ(done.at("response").at("usage").at("input_tokens").as_int64(), 2);
}

TEST(RealtimeConversation, MockExtensionsAndErrors) {
  RealtimeConversation conversation("m", 1);
  EXPECT_TRUE(conversation.OnClientEvent(R"({"type":"mock.echo"})").echo);
  const RealtimeReply close =
      conversation.OnClientEvent(R"({"type":"mock.close","code":4001,"reason":"r"})");
  EXPECT_TRUE(close.close);
  EXPECT_EQ(close.close_code, 4001);
  EXPECT_EQ(close.close_reason, "r");
  EXPECT_EQ(Type(conversation.OnClientEvent("not json").events.at(0).text), "error");
  EXPECT_EQ(Type(conversation.OnClientEvent(R"({"type":"x"})").events.at(0).text), "error");
}

}  // namespace
}  // namespace spillway::mock
