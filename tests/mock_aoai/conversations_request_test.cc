// Conversations API bodies (create, update, add items) and the Responses create's
// `conversation`: what is kept, and OpenAI's validation errors.
#include "tests/mock_aoai/conversations_request.h"

#include <boost/json/value.hpp>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/responses_request.h"

namespace spillway::mock {
namespace {

using ::testing::StartsWith;

TEST(ConversationsRequestTest, CreateKeepsItemsWithIdsAndTheirTexts) {
  ConversationCreateRequest request;
  ASSERT_FALSE(ParseConversationCreate(
      R"({"metadata":{"k":"v"},"items":[{"type":"message","role":"user","content":"hello"},
          {"type":"function_call_output","call_id":"c","output":"42"},
          {"id":"msg_given","role":"assistant","content":[{"type":"output_text","text":"hi"}]}]})",
      request));
  EXPECT_EQ(request.metadata, (boost::json::object{{"k", "v"}}));
  ASSERT_EQ(request.items.items.size(), 3u);
  EXPECT_THAT(std::string(request.items.items[0].at("id").as_string()), StartsWith("msg_"));
  EXPECT_EQ(request.items.items[0].at("content").at(0).at("type").as_string(), "input_text");
  EXPECT_THAT(std::string(request.items.items[1].at("id").as_string()), StartsWith("item_"));
  EXPECT_EQ(request.items.items[2].at("id").as_string(), "msg_given");
  EXPECT_THAT(request.items.texts, ::testing::ElementsAre("hello", "42", "hi"));
}

TEST(ConversationsRequestTest, EmptyBodiesAndNulls) {
  ConversationCreateRequest request;
  for (const char* body : {"", "  ", "{}", R"({"items":null,"metadata":null})"}) {
    ASSERT_FALSE(ParseConversationCreate(body, request)) << body;
    EXPECT_TRUE(request.items.items.empty());
    EXPECT_TRUE(request.metadata.empty());
  }
  boost::json::object metadata{{"old", "x"}};
  ASSERT_FALSE(ParseConversationUpdate(R"({"metadata":null})", metadata));
  EXPECT_TRUE(metadata.empty());
}

TEST(ConversationsRequestTest, Errors) {
  ConversationCreateRequest request;
  std::optional<OpenAiError> error = ParseConversationCreate("[1]", request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->status, 400);
  error = ParseConversationCreate(R"({"metadata":{"k":["v"]}})", request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message,
            "Invalid type for 'metadata.k': expected a string, but got an array instead.");
  error =
      ParseConversationCreate(R"({"metadata":{")" + std::string(65, 'k') + R"(":"v"}})", request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->param, "metadata");
  error = ParseConversationCreate(R"({"items":[3]})", request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->param, "items[0]");
  EXPECT_EQ(error->code, "invalid_type");

  boost::json::object metadata;
  error = ParseConversationUpdate(R"({"metadata":[]})", metadata);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "invalid_type");
  InputItems items;
  error = ParseConversationItems(R"({"items":null})", items);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message, "Missing required parameter: 'items'.");

  EXPECT_EQ(ConversationNotFound("conv_x").status, 404);
  EXPECT_EQ(ConversationNotFound("conv_x").message, "Conversation with id 'conv_x' not found.");
  EXPECT_TRUE(ConversationNotFound("conv_x").param.empty());
  EXPECT_EQ(ItemNotFound("msg_x").message, "Item with id 'msg_x' not found.");
}

TEST(ConversationsRequestTest, ResponsesCreateTakesAConversationAsStringOrObject) {
  ResponsesRequest request;
  ASSERT_FALSE(
      ParseResponsesRequest(R"({"model":"d","input":"x","conversation":"conv_a"})", request));
  EXPECT_EQ(request.conversation_id, "conv_a");
  ASSERT_FALSE(ParseResponsesRequest(R"({"model":"d","input":"x","conversation":{"id":"conv_b"}})",
                                     request));
  EXPECT_EQ(request.conversation_id, "conv_b");
  ASSERT_FALSE(ParseResponsesRequest(R"({"model":"d","input":"x","conversation":null})", request));
  EXPECT_FALSE(request.conversation_id.has_value());
  // The input texts line up with the input items.
  ASSERT_FALSE(ParseResponsesRequest(
      R"({"model":"d","input":[{"role":"user","content":"a"},{"role":"user","content":null}]})",
      request));
  EXPECT_THAT(request.input_texts, ::testing::ElementsAre("a", ""));

  std::optional<OpenAiError> error = ParseResponsesRequest(
      R"({"model":"d","conversation":"conv_a","previous_response_id":"resp_a"})", request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "mutually_exclusive_parameters");
  error = ParseResponsesRequest(R"({"model":"d","conversation":{"id":3}})", request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->param, "conversation.id");
  error = ParseResponsesRequest(R"({"model":"d","conversation":[]})", request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message,
            "Invalid type for 'conversation': expected one of a string or an object, but got an "
            "array instead.");
}

}  // namespace
}  // namespace spillway::mock
