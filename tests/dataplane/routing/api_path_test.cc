// The operations table: what the agent forwards, how each names its route, and the object
// ids the stateful ones carry.
#include "dataplane/routing/api_path.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

TEST(ApiPath, DeploymentOperationsNameTheirRouteInThePath) {
  const ApiPath path =
      ClassifyTarget("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21");
  ASSERT_EQ(path.surface, ApiSurface::kDeployment);
  EXPECT_EQ(path.route, "gpt-4o");
  EXPECT_EQ(path.suffix, "/chat/completions?api-version=2024-10-21");
  EXPECT_EQ(path.operation->source, RouteSource::kPathRoute);
  EXPECT_TRUE(MethodAllowed(*path.operation, "POST"));
  EXPECT_FALSE(MethodAllowed(*path.operation, "GET"));
}

TEST(ApiPath, ResponsesCreateNamesItsRouteInTheBodyAndCreatesAPin) {
  for (const char* target :
       {"/openai/v1/responses", "/openai/responses?api-version=2025-04-01-preview"}) {
    const ApiPath path = ClassifyTarget(target);
    ASSERT_EQ(path.surface, ApiSurface::kV1) << target;
    EXPECT_EQ(path.operation->source, RouteSource::kBodyModel);
    EXPECT_EQ(path.operation->creates, "resp_");
    EXPECT_EQ(AllowedMethods(*path.operation), "POST");
  }
}

TEST(ApiPath, ResponsesByIdAreRoutedToTheirOwner) {
  struct Case {
    const char* target;
    const char* allowed;
  };
  for (const Case& c :
       {Case{"/openai/v1/responses/resp_abc", "GET or DELETE"},
        Case{"/openai/v1/responses/resp_abc?stream=true&starting_after=3", "GET or DELETE"},
        Case{"/openai/v1/responses/resp_abc/cancel", "POST"},
        Case{"/openai/v1/responses/resp_abc/input_items", "GET"},
        Case{"/openai/responses/resp_abc?api-version=2025-04-01-preview", "GET or DELETE"}}) {
    const ApiPath path = ClassifyTarget(c.target);
    ASSERT_EQ(path.surface, ApiSurface::kV1) << c.target;
    EXPECT_EQ(path.operation->source, RouteSource::kObjectOwner) << c.target;
    EXPECT_EQ(path.object_id, "resp_abc") << c.target;
    EXPECT_EQ(AllowedMethods(*path.operation), c.allowed) << c.target;
    EXPECT_TRUE(path.operation->creates.empty());
  }
}

TEST(ApiPath, ObjectIdsMustBeOfTheOperationsKind) {
  for (const char* target :
       {"/openai/v1/responses/resp_", "/openai/v1/responses/file-abc",
        "/openai/v1/responses/resp_abc/unknown", "/openai/v1/responses/resp_abc/cancel/more",
        "/openai/responses/resp_abc/cancel/x", "/openai/v1/fine_tuning/jobs", "/openai/files",
        "/openai/v1/responses/resp_a/input_items/x"}) {
    EXPECT_EQ(ClassifyTarget(target).surface, ApiSurface::kUnknownOpenAi) << target;
  }
}

TEST(ApiPath, ConversationsAreCreatedOnTheDefaultRouteAndRoutedToTheirOwner) {
  const ApiPath create = ClassifyTarget("/openai/v1/conversations");
  ASSERT_EQ(create.surface, ApiSurface::kV1);
  EXPECT_EQ(create.operation->source, RouteSource::kTenantDefault);
  EXPECT_EQ(create.operation->creates, "conv_");
  struct Case {
    const char* target;
    const char* allowed;
  };
  for (const Case& c : {Case{"/openai/v1/conversations/conv_abc", "POST or GET or DELETE"},
                        Case{"/openai/v1/conversations/conv_abc/items?limit=5", "POST or GET"},
                        Case{"/openai/v1/conversations/conv_abc/items/msg_1", "GET or DELETE"}}) {
    const ApiPath path = ClassifyTarget(c.target);
    ASSERT_EQ(path.surface, ApiSurface::kV1) << c.target;
    EXPECT_EQ(path.operation->source, RouteSource::kObjectOwner) << c.target;
    EXPECT_EQ(path.object_id, "conv_abc") << c.target << ": the conversation, not its item";
    EXPECT_EQ(AllowedMethods(*path.operation), c.allowed) << c.target;
  }
  for (const char* target :
       {"/openai/v1/conversations/resp_abc", "/openai/v1/conversations/conv_abc/items/msg_1/x",
        "/openai/conversations", "/openai/v1/conversations/conv_abc/other"}) {
    EXPECT_EQ(ClassifyTarget(target).surface, ApiSurface::kUnknownOpenAi) << target;
  }
}

TEST(ApiPath, TheModelListIsTheGatewaysOwn) {
  for (const char* target : {"/openai/v1/models", "/openai/v1/models/gpt-4o"}) {
    const ApiPath path = ClassifyTarget(target);
    ASSERT_EQ(path.surface, ApiSurface::kV1) << target;
    EXPECT_EQ(path.operation->source, RouteSource::kGateway) << target;
    EXPECT_EQ(AllowedMethods(*path.operation), "GET");
  }
}

TEST(ApiPath, RealtimeWebSocketsNameTheirRouteInTheQuery) {
  ApiPath path = ClassifyTarget("/openai/v1/realtime?model=gpt-rt&api-key=k");
  ASSERT_EQ(path.surface, ApiSurface::kRealtime);
  EXPECT_EQ(path.operation->source, RouteSource::kQueryModel);
  EXPECT_EQ(path.route, "gpt-rt");
  EXPECT_EQ(AllowedMethods(*path.operation), "GET");
  EXPECT_EQ(RouteParam(path.operation->source), "model");

  path = ClassifyTarget("/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-rt");
  ASSERT_EQ(path.surface, ApiSurface::kRealtime);
  EXPECT_EQ(path.operation->source, RouteSource::kQueryDeployment);
  EXPECT_EQ(path.route, "gpt-rt");
  EXPECT_EQ(RouteParam(path.operation->source), "deployment");

  // No route named: classified all the same (the handler answers 400).
  path = ClassifyTarget("/openai/v1/realtime");
  ASSERT_EQ(path.surface, ApiSurface::kRealtime);
  EXPECT_EQ(path.route, "");
  EXPECT_EQ(ClassifyTarget("/openai/v1/realtime/other").surface, ApiSurface::kUnknownOpenAi);
  EXPECT_EQ(ClassifyTarget("/openai/realtime/x").surface, ApiSurface::kUnknownOpenAi);
}

TEST(ApiPath, RealtimeClientSecretsAndCallsArePosts) {
  ApiPath path = ClassifyTarget("/openai/v1/realtime/client_secrets");
  ASSERT_EQ(path.surface, ApiSurface::kV1);
  EXPECT_EQ(path.operation->source, RouteSource::kSessionModel);
  EXPECT_EQ(AllowedMethods(*path.operation), "POST");
  EXPECT_EQ(RouteParam(path.operation->source), "");

  path = ClassifyTarget("/openai/v1/realtime/calls?model=gpt-rt");
  ASSERT_EQ(path.surface, ApiSurface::kV1);
  EXPECT_EQ(path.operation->source, RouteSource::kQueryModel);
  EXPECT_EQ(path.route, "gpt-rt");
  EXPECT_EQ(AllowedMethods(*path.operation), "POST");
}

}  // namespace
}  // namespace spillway
