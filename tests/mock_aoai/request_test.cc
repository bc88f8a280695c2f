// Routing and request-body facts: what the mock charges and answers depends on these.
#include "tests/mock_aoai/request.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

TEST(MatchRouteTest, ClassicSurfaceKeepsDeploymentAndApiVersion) {
  const Route route = MatchRoute(
      "POST", "/openai/deployments/gpt-4o/chat/completions?foo=1&api-version=2024-10-21");
  EXPECT_EQ(route.kind, Route::Kind::kApi);
  EXPECT_EQ(route.op, Operation::kChatCompletions);
  EXPECT_FALSE(route.v1);
  EXPECT_EQ(route.deployment, "gpt-4o");
  EXPECT_TRUE(route.has_api_version);
  EXPECT_EQ(route.api_version, "2024-10-21");
}

TEST(MatchRouteTest, OperationsAndV1) {
  EXPECT_EQ(MatchRoute("POST", "/openai/deployments/d/completions?api-version=1").op,
            Operation::kCompletions);
  EXPECT_EQ(MatchRoute("POST", "/openai/deployments/d/embeddings?api-version=1").op,
            Operation::kEmbeddings);
  const Route v1 = MatchRoute("POST", "/openai/v1/chat/completions");
  EXPECT_EQ(v1.kind, Route::Kind::kApi);
  EXPECT_TRUE(v1.v1);
  EXPECT_FALSE(v1.has_api_version);
}

TEST(MatchRouteTest, ResponsesOnBothSurfacesWithAnyMethod) {
  Route route = MatchRoute("POST", "/openai/v1/responses");
  EXPECT_EQ(route.kind, Route::Kind::kResponses);
  EXPECT_TRUE(route.v1);
  EXPECT_EQ(route.responses_path, "");
  route = MatchRoute("GET", "/openai/v1/responses/resp_1?stream=true&starting_after=3");
  EXPECT_EQ(route.kind, Route::Kind::kResponses);
  EXPECT_EQ(route.responses_path, "/resp_1");
  EXPECT_EQ(route.query, "stream=true&starting_after=3");
  route =
      MatchRoute("DELETE", "/openai/responses/resp_1/input_items?api-version=2025-04-01-preview");
  EXPECT_EQ(route.kind, Route::Kind::kResponses);
  EXPECT_FALSE(route.v1);
  EXPECT_EQ(route.responses_path, "/resp_1/input_items");
  EXPECT_EQ(route.api_version, "2025-04-01-preview");
  EXPECT_EQ(MatchRoute("POST", "/openai/v1/responsesx").kind, Route::Kind::kNotFound);
}

TEST(MatchRouteTest, ConversationsOnV1OnlyWithAnyMethod) {
  Route route = MatchRoute("POST", "/openai/v1/conversations");
  EXPECT_EQ(route.kind, Route::Kind::kConversations);
  EXPECT_TRUE(route.v1);
  EXPECT_EQ(route.conversations_path, "");
  route = MatchRoute("DELETE", "/openai/v1/conversations/conv_1/items/msg_1?api-version=preview");
  EXPECT_EQ(route.kind, Route::Kind::kConversations);
  EXPECT_EQ(route.conversations_path, "/conv_1/items/msg_1");
  EXPECT_EQ(route.api_version, "preview");
  route = MatchRoute("GET", "/openai/v1/conversations/conv_1/items?limit=2");
  EXPECT_EQ(route.conversations_path, "/conv_1/items");
  EXPECT_EQ(route.query, "limit=2");
  EXPECT_EQ(MatchRoute("POST", "/openai/v1/conversationsx").kind, Route::Kind::kNotFound);
  EXPECT_EQ(MatchRoute("GET", "/openai/conversations/conv_1?api-version=2025-04-01-preview").kind,
            Route::Kind::kNotFound);
}

TEST(MatchRouteTest, EverythingElseIsNotFound) {
  EXPECT_EQ(MatchRoute("GET", "/openai/deployments/d/chat/completions").kind,
            Route::Kind::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/openai/deployments//chat/completions").kind,
            Route::Kind::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/openai/deployments/d/images/generations").kind,
            Route::Kind::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/").kind, Route::Kind::kNotFound);
  EXPECT_EQ(MatchRoute("PUT", "/mock/faults").kind, Route::Kind::kNotFound);
}

TEST(MatchRouteTest, ControlEndpoints) {
  EXPECT_EQ(MatchRoute("GET", "/mock/stats").control, ControlAction::kGetStats);
  EXPECT_EQ(MatchRoute("POST", "/mock/faults").control, ControlAction::kAddFault);
  EXPECT_EQ(MatchRoute("DELETE", "/mock/faults").control, ControlAction::kClearFaults);
  EXPECT_EQ(MatchRoute("GET", "/mock/faults").control, ControlAction::kListFaults);
  EXPECT_EQ(MatchRoute("POST", "/mock/reset").control, ControlAction::kReset);
  EXPECT_EQ(MatchRoute("POST", "/mock/reset").kind, Route::Kind::kControl);
}

TEST(ParseApiRequestTest, ChatMessagesEstimateEachMessage) {
  absl::StatusOr<ApiRequest> request =
      ParseApiRequest(Operation::kChatCompletions,
                      R"({"messages":[{"role":"system","content":"You are helpful."},
                      {"role":"user","content":[{"type":"text","text":"hello "},
                                                {"type":"text","text":"world"}]},
                      {"role":"assistant","content":null}],
          "max_completion_tokens":7,"n":2,"stream":true,
          "stream_options":{"include_usage":true},"model":"m"})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->prompt_tokens, 4 + 3 + 1);
  EXPECT_EQ(request->max_tokens, 7);
  EXPECT_EQ(request->n, 2);
  EXPECT_TRUE(request->stream);
  EXPECT_TRUE(request->include_usage);
  EXPECT_EQ(request->model, "m");
}

TEST(ParseApiRequestTest, SamePromptSameHashDifferentPromptDifferentHash) {
  auto a = ParseApiRequest(Operation::kChatCompletions, R"({"messages":[{"content":"ab"}]})");
  auto b = ParseApiRequest(Operation::kChatCompletions,
                           R"({"messages":[{"content":"ab"}],"max_tokens":3})");
  auto c = ParseApiRequest(Operation::kChatCompletions,
                           R"({"messages":[{"content":"a"},{"content":"b"}]})");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->prompt_hash, b->prompt_hash);
  EXPECT_NE(a->prompt_hash, c->prompt_hash);
}

TEST(ParseApiRequestTest, EmbeddingsInputs) {
  auto request = ParseApiRequest(Operation::kEmbeddings,
                                 R"({"input":["abcd","abcdefgh",[1,2,3]],"dimensions":4})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->prompt_tokens, 1 + 2 + 3);
  EXPECT_EQ(request->input_hashes.size(), 3u);
  EXPECT_EQ(request->dimensions, 4);
}

TEST(ParseApiRequestTest, RejectsWhatAzureRejects) {
  EXPECT_THAT(ParseApiRequest(Operation::kChatCompletions, "{not json").status().message(),
              HasSubstr("not valid JSON"));
  EXPECT_FALSE(ParseApiRequest(Operation::kChatCompletions, "[1]").ok());
  EXPECT_THAT(ParseApiRequest(Operation::kChatCompletions, "{}").status().message(),
              HasSubstr("messages"));
  EXPECT_FALSE(
      ParseApiRequest(Operation::kChatCompletions, R"({"messages":[],"max_tokens":1})").ok());
  EXPECT_FALSE(ParseApiRequest(Operation::kChatCompletions,
                               R"({"messages":[{"content":"x"}],"max_tokens":0})")
                   .ok());
  EXPECT_FALSE(ParseApiRequest(Operation::kChatCompletions,
                               R"({"messages":[{"content":"x"}],"stream":"yes"})")
                   .ok());
  EXPECT_FALSE(ParseApiRequest(Operation::kCompletions, R"({"max_tokens":3})").ok());
  EXPECT_FALSE(ParseApiRequest(Operation::kEmbeddings, R"({"input":[]})").ok());
}

TEST(PlanTokensTest, ChargesPromptPlusMaxTokensPerGeneration) {
  ApiRequest request;
  request.prompt_tokens = 10;
  request.max_tokens = 100;
  request.n = 2;
  TokenPlan plan = PlanTokens(Operation::kChatCompletions, request, 16);
  EXPECT_EQ(plan.charge, 10 + 100 * 2);
  EXPECT_EQ(plan.completion_tokens_per_choice, 16);
  EXPECT_EQ(plan.actual, 10 + 16 * 2);
  EXPECT_FALSE(plan.truncated);

  request.best_of = 3;
  EXPECT_EQ(PlanTokens(Operation::kCompletions, request, 16).charge, 10 + 100 * 3);
}

TEST(PlanTokensTest, MaxTokensBelowDefaultTruncates) {
  ApiRequest request;
  request.prompt_tokens = 3;
  request.max_tokens = 5;
  const TokenPlan plan = PlanTokens(Operation::kChatCompletions, request, 16);
  EXPECT_EQ(plan.completion_tokens_per_choice, 5);
  EXPECT_TRUE(plan.truncated);
  EXPECT_EQ(plan.charge, plan.actual);
}

TEST(PlanTokensTest, DefaultLengthWhenNoMaxTokens) {
  ApiRequest request;
  request.prompt_tokens = 3;
  const TokenPlan plan = PlanTokens(Operation::kChatCompletions, request, 16);
  EXPECT_EQ(plan.charge, 3 + 16);
  EXPECT_EQ(plan.actual, 3 + 16);
}

TEST(PlanTokensTest, EmbeddingsChargeThePromptOnly) {
  ApiRequest request;
  request.prompt_tokens = 7;
  request.max_tokens = 100;
  const TokenPlan plan = PlanTokens(Operation::kEmbeddings, request, 16);
  EXPECT_EQ(plan.charge, 7);
  EXPECT_EQ(plan.actual, 7);
}

}  // namespace
}  // namespace spillway::mock
