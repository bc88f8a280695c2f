// Responses API create bodies: input items as input_items lists them, the prompt estimate,
// and OpenAI's validation errors.
#include "tests/mock_aoai/responses_request.h"

#include <boost/json/value.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Str(const boost::json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : std::string();
}

TEST(ResponsesRequestTest, StringInputIsOneUserMessage) {
  ResponsesRequest request;
  ASSERT_FALSE(ParseResponsesRequest(
      R"({"model":"d","input":"hello world!","instructions":"Be brief.","max_output_tokens":5,
          "store":false,"stream":true,"background":true,"previous_response_id":"resp_x"})",
      request));
  EXPECT_EQ(request.model, "d");
  EXPECT_EQ(request.instructions, "Be brief.");
  EXPECT_EQ(request.previous_response_id, "resp_x");
  EXPECT_EQ(request.max_output_tokens, 5);
  EXPECT_FALSE(request.store);
  EXPECT_TRUE(request.stream);
  EXPECT_TRUE(request.background);
  // 9 characters -> 3 tokens, 12 -> 3.
  EXPECT_EQ(request.input_tokens, 6);
  ASSERT_EQ(request.input_items.size(), 1u);
  const boost::json::value& item = request.input_items[0];
  EXPECT_THAT(Str(item.at("id")), StartsWith("msg_"));
  EXPECT_EQ(Str(item.at("id")).size(), 4u + 32);
  EXPECT_EQ(Str(item.at("type")), "message");
  EXPECT_EQ(Str(item.at("role")), "user");
  EXPECT_EQ(Str(item.at("content").at(0).at("type")), "input_text");
  EXPECT_EQ(Str(item.at("content").at(0).at("text")), "hello world!");
}

TEST(ResponsesRequestTest, DefaultsAndNulls) {
  ResponsesRequest request;
  ASSERT_FALSE(ParseResponsesRequest(
      R"({"model":"d","input":"x","store":null,"instructions":null,"max_output_tokens":null})",
      request));
  EXPECT_TRUE(request.store);
  EXPECT_FALSE(request.stream);
  EXPECT_FALSE(request.background);
  EXPECT_FALSE(request.instructions.has_value());
  EXPECT_FALSE(request.max_output_tokens.has_value());
  EXPECT_FALSE(request.previous_response_id.has_value());
  EXPECT_EQ(request.input_tokens, 1);
}

TEST(ResponsesRequestTest, ItemsAreNormalizedAndKeepTheirIds) {
  ResponsesRequest request;
  ASSERT_FALSE(ParseResponsesRequest(
      R"({"model":"d","input":[
            {"role":"user","content":"abcd"},
            {"type":"message","id":"msg_given","role":"assistant","content":"abcdefgh"},
            {"role":"user","content":[{"type":"input_text","text":"abcd"},
                                      {"type":"input_text","text":"efgh"}]},
            {"type":"function_call_output","call_id":"c1","output":"abcdabcdabcd"}]})",
      request));
  ASSERT_EQ(request.input_items.size(), 4u);
  EXPECT_EQ(Str(request.input_items[1].at("id")), "msg_given");
  EXPECT_EQ(Str(request.input_items[1].at("content").at(0).at("type")), "output_text");
  EXPECT_EQ(request.input_items[2].at("content").as_array().size(), 2u);
  EXPECT_EQ(Str(request.input_items[3].at("type")), "function_call_output");
  EXPECT_EQ(Str(request.input_items[3].at("call_id")), "c1");
  EXPECT_THAT(Str(request.input_items[3].at("id")), StartsWith("item_"));
  // 1 + 2 + 2 + 3 tokens.
  EXPECT_EQ(request.input_tokens, 8);
}

TEST(ResponsesRequestTest, SamePromptSameHash) {
  ResponsesRequest a;
  ResponsesRequest b;
  ResponsesRequest c;
  ASSERT_FALSE(ParseResponsesRequest(R"({"model":"d","input":"same"})", a));
  ASSERT_FALSE(
      ParseResponsesRequest(R"({"model":"e","input":[{"role":"user","content":"same"}]})", b));
  ASSERT_FALSE(ParseResponsesRequest(R"({"model":"d","input":"other"})", c));
  EXPECT_EQ(a.input_hash, b.input_hash);
  EXPECT_NE(a.input_hash, c.input_hash);
}

TEST(ResponsesRequestTest, ErrorsNameTheParam) {
  struct Case {
    const char* body;
    const char* param;
    const char* code;
    const char* message;
  };
  for (const Case& c : {
           Case{"{nope", "", "", "could not parse the JSON body"},
           Case{"[]", "", "", "could not parse the JSON body"},
           Case{R"({"model":1})", "model", "invalid_type", "expected a string, but got an integer"},
           Case{R"({"model":"d","input":{}})", "input", "invalid_type",
                "expected one of a string or array of input items, but got an object"},
           Case{R"({"model":"d","input":["x"]})", "input[0]", "invalid_type", "an object"},
           Case{R"({"model":"d","input":[{"content":"x"}]})", "input[0].role",
                "missing_required_parameter", "Missing required parameter"},
           Case{R"({"model":"d","stream":"yes"})", "stream", "invalid_type", "a boolean"},
           Case{R"({"model":"d","previous_response_id":"abc"})", "previous_response_id",
                "invalid_value", "Expected an ID that begins with 'resp'"},
           Case{R"({"model":"d","max_output_tokens":0})", "max_output_tokens",
                "integer_below_min_value", "Expected a value >= 1"},
           Case{R"({"model":"d","max_output_tokens":1.5})", "max_output_tokens", "invalid_type",
                "an integer"},
       }) {
    SCOPED_TRACE(c.body);
    ResponsesRequest request;
    const std::optional<OpenAiError> error = ParseResponsesRequest(c.body, request);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->status, 400);
    EXPECT_EQ(error->type, "invalid_request_error");
    EXPECT_EQ(error->param, c.param);
    EXPECT_EQ(error->code, c.code);
    EXPECT_THAT(error->message, HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace spillway::mock
