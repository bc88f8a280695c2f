// The operations table: what the agent forwards, how each names its route, and the object
// ids the stateful ones carry.
#include "dataplane/routing/api_path.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

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

// The path is checked, never rewritten: an empty, "." or ".." segment, a trailing '/', or a
// byte beyond the unreserved characters makes it a bad path; a segment that only starts with
// dots is a name like any other.
TEST(ApiPath, OnlyNormalPathsAreClassified) {
  for (const char* target : {
           "/openai/deployments/gpt-4o/chat/completions/",
           "/openai/deployments/gpt-4o/chat/completions/.",
           "/openai/deployments/gpt-4o/chat/completions/..",
           "/openai/deployments/gpt-4o/../gpt-4o/chat/completions",
           "/openai/./deployments/gpt-4o/chat/completions",
           "/openai/deployments//gpt-4o/chat/completions",
           "/openai//",
           "/openai/deployments/gpt 4o/chat/completions",
           "/openai/deployments/gpt%2D4o/chat/completions",
           "/openai/deployments/gpt-4o/chat\\completions",
           "/openai/deployments/gpt-4o/chat/completions\x80",
       }) {
    EXPECT_EQ(ClassifyTarget(target).surface, ApiSurface::kBadPath) << target;
  }
  for (const char* route : {".gpt", "gpt.4o", "...", "..a", "a.", "~_-"}) {
    const ApiPath path =
        ClassifyTarget(absl::StrCat("/openai/deployments/", route, "/chat/completions?a=/./"));
    EXPECT_EQ(path.surface, ApiSurface::kDeployment) << route;
    EXPECT_EQ(path.route, route);
  }
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
        "/openai/responses/resp_abc/cancel/x", "/openai/v1/fine_tuning/jobs", "/openai/uploads",
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

TEST(ApiPath, FilesBatchesVectorStoresAndAssistantsArePinnedOnBothSurfaces) {
  struct Case {
    const char* path;  // after /openai/v1/ or /openai/
    const char* method;
    RouteSource source;
    const char* object_id;
    const char* creates;
    BodyHandling body;
  };
  constexpr RouteSource kOwner = RouteSource::kObjectOwner;
  constexpr RouteSource kDefault = RouteSource::kTenantDefault;
  constexpr BodyHandling kBuffered = BodyHandling::kBuffered;
  for (const Case& c : {
           Case{"files", "POST", kDefault, "", "file-", BodyHandling::kStreamed},
           Case{"files", "GET", kDefault, "", "", kBuffered},
           Case{"files/file-1/content", "GET", kOwner, "file-1", "", kBuffered},
           Case{"batches", "POST", kDefault, "", "batch_", kBuffered},
           Case{"batches/batch_1/cancel", "POST", kOwner, "batch_1", "", kBuffered},
           Case{"vector_stores", "POST", kDefault, "", "vs_", kBuffered},
           Case{"vector_stores/vs_1/files/file-2", "DELETE", kOwner, "vs_1", "", kBuffered},
           Case{"vector_stores/vs_1/file_batches/vsfb_1/cancel", "POST", kOwner, "vs_1", "",
                kBuffered},
           Case{"assistants", "POST", RouteSource::kBodyModel, "", "asst_", kBuffered},
           Case{"assistants", "GET", kDefault, "", "", kBuffered},
           Case{"assistants/asst_1", "DELETE", kOwner, "asst_1", "", kBuffered},
           Case{"threads", "POST", kDefault, "", "thread_", kBuffered},
           Case{"threads/runs", "POST", kDefault, "", "thread_", kBuffered},
           Case{"threads/thread_1/runs/run_2/steps/step_3", "GET", kOwner, "thread_1", "",
                kBuffered},
       }) {
    for (const char* surface : {"/openai/v1/", "/openai/"}) {
      const std::string target = absl::StrCat(surface, c.path, "?api-version=2025-04-01-preview");
      const ApiPath path = ClassifyTarget(target, c.method);
      ASSERT_EQ(path.surface, ApiSurface::kV1) << target;
      EXPECT_TRUE(MethodAllowed(*path.operation, c.method)) << c.method << " " << target;
      EXPECT_EQ(path.operation->source, c.source) << c.method << " " << target;
      EXPECT_EQ(path.object_id, c.object_id) << target;
      EXPECT_EQ(path.operation->creates, c.creates) << c.method << " " << target;
      EXPECT_EQ(path.operation->body, c.body) << c.method << " " << target;
    }
  }
  // A method the path does not take still finds the path, so the answer is a 405.
  const ApiPath put = ClassifyTarget("/openai/v1/assistants", "PUT");
  ASSERT_EQ(put.surface, ApiSurface::kV1);
  EXPECT_FALSE(MethodAllowed(*put.operation, "PUT"));
  for (const char* target : {"/openai/v1/files/batch_1", "/openai/v1/threads/runs/run_1",
                             "/openai/v1/vector_stores/vs_1/other", "/openai/v1/batches/batch_1/x",
                             "/openai/v1/threads/thread_1/runs/run_1/steps/step_1/x"}) {
    EXPECT_EQ(ClassifyTarget(target, "GET").surface, ApiSurface::kUnknownOpenAi) << target;
  }
}

TEST(ApiPath, UploadsAreStreamed) {
  for (const char* target : {"/openai/deployments/whisper/audio/transcriptions?api-version=x",
                             "/openai/deployments/whisper/audio/translations?api-version=x",
                             "/openai/deployments/img/images/edits?api-version=x"}) {
    const ApiPath path = ClassifyTarget(target, "POST");
    ASSERT_EQ(path.surface, ApiSurface::kDeployment) << target;
    EXPECT_EQ(path.operation->body, BodyHandling::kStreamed) << target;
  }
  EXPECT_EQ(ClassifyTarget("/openai/deployments/d/chat/completions", "POST").operation->body,
            BodyHandling::kBuffered);
  for (const char* target : {"/openai/v1/audio/transcriptions", "/openai/v1/audio/translations",
                             "/openai/v1/images/edits"}) {
    const ApiPath path = ClassifyTarget(target, "POST");
    ASSERT_EQ(path.surface, ApiSurface::kV1) << target;
    EXPECT_EQ(path.operation->source, RouteSource::kFormModel) << target;
    EXPECT_EQ(path.operation->body, BodyHandling::kStreamed) << target;
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
