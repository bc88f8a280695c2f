// The Assistants API against the real binary: assistants, threads and messages created, listed,
// read, modified and deleted; runs that complete at once, add their reply and meter their usage,
// streamed or not; thread-and-run; unknown ids; two mocks (two Azure resources) that share no
// ids; the dated and v1 surfaces; validation; the bounds.
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"

namespace spillway::mock {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kDated[] = "?api-version=2024-05-01-preview";

// `path` ("/assistants", "/threads/x/runs"...) on the dated surface, or on /openai/v1.
std::string Dated(absl::string_view path, absl::string_view query = "") {
  return absl::StrCat("/openai", path, kDated, query.empty() ? "" : "&", query);
}
std::string V1(absl::string_view path) { return absl::StrCat("/openai/v1", path); }

std::string NotFoundBody(absl::string_view kind, absl::string_view id) {
  return absl::StrCat(R"({"error":{"message":"No )", kind, " found with id '", id,
                      R"('.","type":"invalid_request_error","param":null,"code":null}})");
}

// POSTs `body` to `target`, requires a 200 and returns the object's id.
std::string Create(test::HttpClient& client, absl::string_view target, absl::string_view body) {
  const test::HttpResponse created = MustSend(client, "POST", target, body);
  EXPECT_EQ(created.status, 200) << target << ": " << created.body;
  return Str(Json(created.body).at("id"));
}

std::string CreateAssistant(test::HttpClient& client, absl::string_view model = "d") {
  return Create(client, Dated("/assistants"), absl::StrCat(R"({"model":")", model, R"("})"));
}

std::vector<std::string> Ids(const boost::json::value& list) {
  std::vector<std::string> ids;
  for (const boost::json::value& item : list.at("data").as_array()) {
    ids.push_back(Str(item.at("id")));
  }
  return ids;
}

boost::json::value Stats(const test::MockAoaiProcess& mock) {
  test::HttpClient client = Client(mock);
  return Json(MustSend(client, "GET", "/mock/stats").body);
}

struct Event {
  std::string type;
  std::string data;
};

std::vector<Event> ParseEvents(absl::string_view body) {
  std::vector<Event> events;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    Event event;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "event: ")) event.type = std::string(line);
      if (absl::ConsumePrefix(&line, "data: ")) event.data = std::string(line);
    }
    events.push_back(std::move(event));
  }
  return events;
}

TEST(MockAssistantsTest, AssistantsAreCreatedListedReadModifiedAndDeleted) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d,e"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse created = MustSend(
      client, "POST", Dated("/assistants"),
      R"({"model":"d","name":"Helper","instructions":"Be brief.","tools":[{"type":"file_search"}],
          "tool_resources":{"file_search":{"vector_store_ids":["vs_1"]}},"metadata":{"k":"v"}})");
  ASSERT_EQ(created.status, 200) << created.body;
  const boost::json::value assistant = Json(created.body);
  const std::string id = Str(assistant.at("id"));
  EXPECT_TRUE(std::regex_match(id, std::regex("asst_[A-Za-z0-9]{24}"))) << id;
  EXPECT_EQ(Str(assistant.at("object")), "assistant");
  EXPECT_EQ(Str(assistant.at("model")), "d");
  EXPECT_EQ(Str(assistant.at("name")), "Helper");
  EXPECT_TRUE(assistant.at("description").is_null());
  EXPECT_EQ(Str(assistant.at("instructions")), "Be brief.");
  EXPECT_EQ(assistant.at("tools"), Json(R"([{"type":"file_search"}])"));
  EXPECT_EQ(assistant.at("tool_resources"),
            Json(R"({"file_search":{"vector_store_ids":["vs_1"]}})"));
  EXPECT_EQ(assistant.at("metadata"), Json(R"({"k":"v"})"));
  EXPECT_EQ(Str(assistant.at("response_format")), "auto");
  EXPECT_EQ(assistant.as_object().size(), 13u);
  EXPECT_EQ(Json(MustSend(client, "GET", Dated("/assistants/" + id)).body), assistant);

  // A modify changes what it names, and a model must be a deployment here too.
  const test::HttpResponse modified = MustSend(client, "POST", V1("/assistants/" + id),
                                               R"({"model":"e","name":null,"metadata":{}})");
  ASSERT_EQ(modified.status, 200) << modified.body;
  const boost::json::value after = Json(modified.body);
  EXPECT_EQ(Str(after.at("model")), "e");
  EXPECT_TRUE(after.at("name").is_null());
  EXPECT_EQ(Str(after.at("instructions")), "Be brief.");
  EXPECT_EQ(Json(MustSend(client, "GET", V1("/assistants/" + id)).body), after);
  EXPECT_EQ(MustSend(client, "POST", V1("/assistants/" + id), R"({"model":"x"})").status, 400);

  // Lists: newest first by default, pages after and before an id.
  const std::string second = CreateAssistant(client);
  const std::string third = CreateAssistant(client);
  boost::json::value list = Json(MustSend(client, "GET", Dated("/assistants")).body);
  EXPECT_EQ(Str(list.at("object")), "list");
  EXPECT_THAT(Ids(list), ElementsAre(third, second, id));
  EXPECT_EQ(Str(list.at("first_id")), third);
  EXPECT_EQ(Str(list.at("last_id")), id);
  EXPECT_FALSE(list.at("has_more").as_bool());
  list = Json(MustSend(client, "GET", Dated("/assistants", "order=asc&limit=2")).body);
  EXPECT_THAT(Ids(list), ElementsAre(id, second));
  EXPECT_TRUE(list.at("has_more").as_bool());
  list = Json(MustSend(client, "GET", Dated("/assistants", "order=asc&after=" + second)).body);
  EXPECT_THAT(Ids(list), ElementsAre(third));
  list = Json(MustSend(client, "GET", Dated("/assistants", "limit=1&before=" + id)).body);
  EXPECT_THAT(Ids(list), ElementsAre(second));
  EXPECT_TRUE(list.at("has_more").as_bool());
  EXPECT_EQ(MustSend(client, "GET", Dated("/assistants", "limit=0")).status, 400);

  const test::HttpResponse deleted = MustSend(client, "DELETE", Dated("/assistants/" + id));
  ASSERT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.body,
            absl::StrCat(R"({"id":")", id, R"(","object":"assistant.deleted","deleted":true})"));
  for (const absl::string_view method : {"GET", "POST", "DELETE"}) {
    const test::HttpResponse gone = MustSend(client, method, Dated("/assistants/" + id), "{}");
    EXPECT_EQ(gone.status, 404) << method;
    EXPECT_EQ(gone.body, NotFoundBody("assistant", id)) << method;
  }
}

TEST(MockAssistantsTest, ValidationIsOpenAiShaped) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse unknown =
      MustSend(client, "POST", Dated("/assistants"), R"({"model":"gpt-4o"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.body,
            R"({"error":{"message":"The requested model 'gpt-4o' does not exist.",)"
            R"("type":"invalid_request_error","param":"model","code":"model_not_found"}})");
  for (const std::string& target : {Dated("/assistants"), V1("/threads")}) {
    const test::HttpResponse bad = MustSend(client, "POST", target, "{not json");
    EXPECT_EQ(bad.status, 400) << target;
    EXPECT_THAT(Str(Json(bad.body).at("error").at("message")),
                HasSubstr("We could not parse the JSON body"));
    EXPECT_EQ(Str(Json(bad.body).at("error").at("type")), "invalid_request_error");
  }
  boost::json::value error =
      Json(MustSend(client, "POST", Dated("/assistants"), "{}").body).at("error");
  EXPECT_EQ(Str(error.at("code")), "missing_required_parameter");
  EXPECT_EQ(Str(error.at("param")), "model");
  const std::string thread = Create(client, Dated("/threads"), "");
  error = Json(MustSend(client, "POST", Dated("/threads/" + thread + "/messages"),
                        R"({"role":"system","content":"x"})")
                   .body)
              .at("error");
  EXPECT_EQ(Str(error.at("code")), "invalid_value");
  EXPECT_EQ(Str(error.at("param")), "role");
  error =
      Json(MustSend(client, "POST", Dated("/threads/" + thread + "/runs"), "{}").body).at("error");
  EXPECT_EQ(Str(error.at("param")), "assistant_id");
}

TEST(MockAssistantsTest, ThreadsAndMessages) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse created = MustSend(client, "POST", Dated("/threads"),
                                              R"({"messages":[{"role":"user","content":"one"},
                   {"role":"assistant","content":[{"type":"text","text":"two"}]}],
                   "metadata":{"a":"b"},"tool_resources":{"file_search":{"vector_store_ids":[]}}})");
  ASSERT_EQ(created.status, 200) << created.body;
  const boost::json::value thread = Json(created.body);
  const std::string id = Str(thread.at("id"));
  EXPECT_TRUE(std::regex_match(id, std::regex("thread_[A-Za-z0-9]{24}"))) << id;
  EXPECT_EQ(Str(thread.at("object")), "thread");
  EXPECT_EQ(thread.at("metadata"), Json(R"({"a":"b"})"));
  EXPECT_EQ(thread.at("tool_resources"), Json(R"({"file_search":{"vector_store_ids":[]}})"));
  EXPECT_EQ(Json(MustSend(client, "GET", Dated("/threads/" + id)).body), thread);
  const test::HttpResponse modified =
      MustSend(client, "POST", V1("/threads/" + id), R"({"metadata":{"c":"d"}})");
  EXPECT_EQ(Json(modified.body).at("metadata"), Json(R"({"c":"d"})"));
  EXPECT_EQ(Json(modified.body).at("tool_resources"), thread.at("tool_resources"));

  const std::string messages = Dated("/threads/" + id + "/messages");
  const test::HttpResponse added =
      MustSend(client, "POST", messages, R"({"role":"user","content":"three"})");
  ASSERT_EQ(added.status, 200) << added.body;
  const boost::json::value message = Json(added.body);
  const std::string message_id = Str(message.at("id"));
  EXPECT_EQ(Str(message.at("object")), "thread.message");
  EXPECT_EQ(Str(message.at("thread_id")), id);
  EXPECT_TRUE(message.at("run_id").is_null());
  EXPECT_EQ(message.at("content"), Json(R"([{"type":"text","text":{"value":"three",)"
                                        R"("annotations":[]}}])"));
  const boost::json::value list = Json(MustSend(client, "GET", messages).body);
  ASSERT_EQ(list.at("data").as_array().size(), 3u);
  EXPECT_EQ(list.at("data").at(0), message);  // newest first
  EXPECT_EQ(Str(list.at("data").at(2).at("role")), "user");

  const std::string message_path = Dated("/threads/" + id + "/messages/" + message_id);
  EXPECT_EQ(Json(MustSend(client, "GET", message_path).body), message);
  const test::HttpResponse tagged =
      MustSend(client, "POST", message_path, R"({"metadata":{"x":"y"}})");
  EXPECT_EQ(Json(tagged.body).at("metadata"), Json(R"({"x":"y"})"));
  EXPECT_EQ(Json(MustSend(client, "GET", message_path).body).at("metadata"), Json(R"({"x":"y"})"));
  const test::HttpResponse removed = MustSend(client, "DELETE", message_path);
  EXPECT_EQ(removed.body, absl::StrCat(R"({"id":")", message_id,
                                       R"(","object":"thread.message.deleted","deleted":true})"));
  EXPECT_EQ(MustSend(client, "GET", message_path).body, NotFoundBody("message", message_id));

  ASSERT_EQ(MustSend(client, "DELETE", Dated("/threads/" + id)).body,
            absl::StrCat(R"({"id":")", id, R"(","object":"thread.deleted","deleted":true})"));
  for (const std::string& path : {Dated("/threads/" + id), messages, message_path}) {
    EXPECT_EQ(MustSend(client, "GET", path).body, NotFoundBody("thread", id)) << path;
  }
}

TEST(MockAssistantsTest, RunCompletesAddsTheReplyAndMetersItsUsage) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d,e", "--completion-tokens", "4"});
  test::HttpClient client = Client(*mock);
  const std::string assistant =
      Create(client, Dated("/assistants"), R"({"model":"d","instructions":"Be brief."})");
  const std::string thread = Create(client, Dated("/threads"),
                                    R"({"messages":[{"role":"user","content":"hello there"}]})");
  const std::string runs = Dated("/threads/" + thread + "/runs");
  const test::HttpResponse ran =
      MustSend(client, "POST", runs, absl::StrCat(R"({"assistant_id":")", assistant, "\"}"));
  ASSERT_EQ(ran.status, 200) << ran.body;
  EXPECT_TRUE(ran.HasHeader("x-ratelimit-remaining-tokens"));
  const boost::json::value run = Json(ran.body);
  const std::string run_id = Str(run.at("id"));
  EXPECT_EQ(Str(run.at("object")), "thread.run");
  EXPECT_EQ(Str(run.at("status")), "completed");
  EXPECT_EQ(Str(run.at("assistant_id")), assistant);
  EXPECT_EQ(Str(run.at("thread_id")), thread);
  EXPECT_EQ(Str(run.at("model")), "d");
  EXPECT_EQ(Str(run.at("instructions")), "Be brief.");
  // "hello there" (3 tokens) and the instructions (3) in, 4 out.
  EXPECT_EQ(run.at("usage"),
            Json(R"({"prompt_tokens":6,"completion_tokens":4,"total_tokens":10})"));

  const boost::json::value messages =
      Json(MustSend(client, "GET", Dated("/threads/" + thread + "/messages", "order=asc")).body);
  ASSERT_EQ(messages.at("data").as_array().size(), 2u);
  const boost::json::value& reply = messages.at("data").at(1);
  EXPECT_EQ(Str(reply.at("role")), "assistant");
  EXPECT_EQ(Str(reply.at("run_id")), run_id);
  EXPECT_EQ(Str(reply.at("assistant_id")), assistant);
  EXPECT_EQ(Str(reply.at("content").at(0).at("text").at("value")),
            absl::StrCat("Message 2 of ", thread, ". Hello from the"));
  EXPECT_THAT(Ids(Json(MustSend(client, "GET",
                                Dated("/threads/" + thread + "/messages", "run_id=" + run_id))
                           .body)),
              ElementsAre(Str(reply.at("id"))));

  // The next run reads the reply too, and a run may name another deployment.
  const boost::json::value second =
      Json(MustSend(client, "POST", runs,
                    absl::StrCat(R"({"assistant_id":")", assistant, R"(","model":"e"})"))
               .body);
  EXPECT_EQ(second.at("usage").at("prompt_tokens").as_int64(), 6 + 4);
  EXPECT_EQ(Str(second.at("model")), "e");

  EXPECT_EQ(Json(MustSend(client, "GET", Dated("/threads/" + thread + "/runs/" + run_id)).body),
            run);
  EXPECT_THAT(Ids(Json(MustSend(client, "GET", runs).body)),
              ElementsAre(Str(second.at("id")), run_id));
  const boost::json::value steps = Json(
      MustSend(client, "GET", Dated("/threads/" + thread + "/runs/" + run_id + "/steps")).body);
  ASSERT_EQ(steps.at("data").as_array().size(), 1u);
  const boost::json::value& step = steps.at("data").at(0);
  EXPECT_EQ(Str(step.at("object")), "thread.run.step");
  EXPECT_EQ(Str(step.at("step_details").at("message_creation").at("message_id")),
            Str(reply.at("id")));
  EXPECT_EQ(step.at("usage"), run.at("usage"));
  EXPECT_EQ(Json(MustSend(client, "GET",
                          Dated("/threads/" + thread + "/runs/" + run_id + "/steps/" +
                                Str(step.at("id"))))
                     .body),
            step);
  const test::HttpResponse cancel =
      MustSend(client, "POST", Dated("/threads/" + thread + "/runs/" + run_id + "/cancel"));
  EXPECT_EQ(cancel.status, 400);
  EXPECT_EQ(Str(Json(cancel.body).at("error").at("message")),
            "Cannot cancel run with status 'completed'.");

  // Metered per deployment, as a gateway's own count can be compared with.
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(stats.at("deployments").at("d").at("usage").at("total_tokens").as_int64(), 10);
  EXPECT_EQ(stats.at("deployments").at("e").at("usage").at("prompt_tokens").as_int64(), 10);
}

TEST(MockAssistantsTest, StreamedRunSendsTheAssistantsEvents) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d", "--completion-tokens", "3"});
  test::HttpClient client = Client(*mock);
  const std::string assistant = CreateAssistant(client);
  const std::string thread =
      Create(client, V1("/threads"), R"({"messages":[{"role":"user","content":"abcd"}]})");
  const test::HttpResponse streamed =
      MustSend(client, "POST", V1("/threads/" + thread + "/runs"),
               absl::StrCat(R"({"assistant_id":")", assistant, R"(","stream":true})"));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(streamed.Header("content-type"), "text/event-stream");
  const std::vector<Event> events = ParseEvents(streamed.body);
  std::vector<std::string> types;
  std::string text;
  for (const Event& event : events) {
    types.push_back(event.type);
    if (event.type == "thread.message.delta") {
      text += Str(Json(event.data).at("delta").at("content").at(0).at("text").at("value"));
    }
  }
  EXPECT_THAT(
      types,
      ElementsAre("thread.run.created", "thread.run.queued", "thread.run.in_progress",
                  "thread.run.step.created", "thread.run.step.in_progress",
                  "thread.message.created", "thread.message.in_progress", "thread.message.delta",
                  "thread.message.delta", "thread.message.delta", "thread.message.completed",
                  "thread.run.step.completed", "thread.run.completed", "done"));
  EXPECT_EQ(Str(Json(events[0].data).at("status")), "queued");
  EXPECT_TRUE(Json(events[0].data).at("usage").is_null());
  EXPECT_EQ(text, absl::StrCat("Message 2 of ", thread, ". Hello from"));
  const boost::json::value completed = Json(events[12].data);
  EXPECT_EQ(Str(completed.at("status")), "completed");
  EXPECT_EQ(completed.at("usage"),
            Json(R"({"prompt_tokens":1,"completion_tokens":3,"total_tokens":4})"));
  EXPECT_EQ(events[13].data, "[DONE]");
  EXPECT_EQ(Str(Json(events[10].data).at("content").at(0).at("text").at("value")), text);
  EXPECT_EQ(Stats(*mock).at("deployments").at("d").at("usage").at("total_tokens").as_int64(), 4);
}

TEST(MockAssistantsTest, ThreadAndRunInOneRequest) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d", "--completion-tokens", "2"});
  test::HttpClient client = Client(*mock);
  const std::string assistant = CreateAssistant(client);
  const test::HttpResponse ran =
      MustSend(client, "POST", V1("/threads/runs"),
               absl::StrCat(R"({"assistant_id":")", assistant,
                            R"(","thread":{"messages":[{"role":"user","content":"abcdefgh"}]}})"));
  ASSERT_EQ(ran.status, 200) << ran.body;
  const std::string thread = Str(Json(ran.body).at("thread_id"));
  EXPECT_EQ(Json(ran.body).at("usage").at("prompt_tokens").as_int64(), 2);
  EXPECT_EQ(Json(MustSend(client, "GET", V1("/threads/" + thread + "/messages")).body)
                .at("data")
                .as_array()
                .size(),
            2u);
  const std::vector<Event> events =
      ParseEvents(MustSend(client, "POST", Dated("/threads/runs"),
                           absl::StrCat(R"({"assistant_id":")", assistant, R"(","stream":true})"))
                      .body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].type, "thread.created");
  EXPECT_EQ(Str(Json(events[1].data).at("thread_id")), Str(Json(events[0].data).at("id")));
}

TEST(MockAssistantsTest, IdsBelongToTheirMock) {
  SPILLWAY_START_MOCK(a, {"--deployments", "d"});
  SPILLWAY_START_MOCK(b, {"--deployments", "d"});
  test::HttpClient on_a = Client(*a);
  test::HttpClient on_b = Client(*b);
  const std::string assistant = CreateAssistant(on_a);
  const std::string thread_a = Create(on_a, Dated("/threads"), "");
  const std::string thread_b = Create(on_b, Dated("/threads"), "");
  const std::string run_body = absl::StrCat(R"({"assistant_id":")", assistant, "\"}");
  const test::HttpResponse elsewhere =
      MustSend(on_b, "POST", Dated("/threads/" + thread_b + "/runs"), run_body);
  EXPECT_EQ(elsewhere.status, 404);
  EXPECT_EQ(elsewhere.body, NotFoundBody("assistant", assistant));
  EXPECT_EQ(MustSend(on_b, "POST", Dated("/threads/" + thread_a + "/runs"), run_body).body,
            NotFoundBody("thread", thread_a));
  EXPECT_EQ(MustSend(on_b, "GET", Dated("/assistants/" + assistant)).status, 404);
  EXPECT_EQ(MustSend(on_a, "POST", Dated("/threads/" + thread_a + "/runs"), run_body).status, 200);
  // Refused runs never reached the deployment: nothing was charged or metered there.
  EXPECT_FALSE(Stats(*b).at("deployments").as_object().contains("d"));
}

TEST(MockAssistantsTest, UnknownIdsPathsAndVersions) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d"});
  test::HttpClient client = Client(*mock);
  const std::string thread = Create(client, Dated("/threads"), "");
  EXPECT_EQ(MustSend(client, "GET", V1("/threads/thread_x")).body,
            NotFoundBody("thread", "thread_x"));
  EXPECT_EQ(MustSend(client, "GET", V1("/threads/" + thread + "/runs/run_x")).body,
            NotFoundBody("run", "run_x"));
  EXPECT_EQ(MustSend(client, "GET", V1("/threads/" + thread + "/runs/run_x/steps")).body,
            NotFoundBody("run", "run_x"));
  EXPECT_EQ(MustSend(client, "GET", V1("/threads/" + thread + "/messages/msg_x")).body,
            NotFoundBody("message", "msg_x"));
  EXPECT_EQ(MustSend(client, "DELETE", V1("/assistants/asst_x")).body,
            NotFoundBody("assistant", "asst_x"));
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", V1("/assistants")},
           {"DELETE", V1("/threads")},
           {"GET", V1("/threads/" + thread + "/other")},
           {"GET", V1("/threads/" + thread + "/runs/r/cancel")},
           {"GET", V1("/assistants/")},
           {"POST", "/openai/assistants"}}) {  // the dated surface needs its api-version
    const test::HttpResponse response = MustSend(client, method, path);
    EXPECT_EQ(response.status, 404) << method << " " << path;
    EXPECT_EQ(Str(Json(response.body).at("error").at("code")), "404") << method << " " << path;
  }
  const test::HttpResponse dated =
      MustSend(client, "GET", absl::StrCat(V1("/assistants"), "?api-version=2024-05-01-preview"));
  EXPECT_EQ(dated.status, 400);
  EXPECT_EQ(dated.body, R"({"error":{"code":"BadRequest","message":"API version not supported"}})");
}

TEST(MockAssistantsTest, AuthFaultsAndLimitsApply) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", "k", "--deployments", "d:tpm=600:rpm=600"});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", Dated("/assistants"), R"({"model":"d"})").status, 401);
  const test::HttpHeaders key = {{"api-key", "k"}};
  const std::string assistant = Str(
      Json(MustSend(client, "POST", Dated("/assistants"), R"({"model":"d"})", key).body).at("id"));
  const std::string thread =
      Str(Json(MustSend(client, "POST", V1("/threads"), "", key).body).at("id"));
  const std::string runs = V1("/threads/" + thread + "/runs");
  const std::string run = absl::StrCat(R"({"assistant_id":")", assistant, "\"}");
  // A fault aimed at the deployment hits runs only; the rest belongs to no deployment.
  test::HttpClient control = Client(*mock);
  ASSERT_EQ(MustSend(control, "POST", "/mock/faults", R"({"status":503,"deployment":"d"})").status,
            200);
  EXPECT_EQ(MustSend(client, "GET", V1("/assistants/" + assistant), "", key).status, 200);
  EXPECT_EQ(MustSend(client, "POST", runs, run, key).status, 503);
  ASSERT_EQ(MustSend(control, "DELETE", "/mock/faults").status, 200);
  // 600 TPM is 100 tokens per 10 s: a run on an empty thread charges 1 + 16, so five fit.
  auto run_on_new_thread = [&] {
    const std::string fresh =
        Str(Json(MustSend(client, "POST", V1("/threads"), "", key).body).at("id"));
    return MustSend(client, "POST", V1("/threads/" + fresh + "/runs"), run, key);
  };
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(run_on_new_thread().status, 200) << i;
  }
  const test::HttpResponse limited = run_on_new_thread();
  EXPECT_EQ(limited.status, 429);
  EXPECT_THAT(Str(Json(limited.body).at("error").at("message")),
              HasSubstr("Requests to the Runs_Create Operation"));
}

TEST(MockAssistantsTest, StoresAreBoundedOldestFirstAndReset) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d", "--assistants-max-stored", "2",
                             "--threads-max-stored", "2", "--threads-max-messages", "2"});
  test::HttpClient client = Client(*mock);
  std::vector<std::string> assistants;
  std::vector<std::string> threads;
  for (int i = 0; i < 3; ++i) {
    assistants.push_back(CreateAssistant(client));
    threads.push_back(Create(client, Dated("/threads"), ""));
  }
  EXPECT_EQ(MustSend(client, "GET", Dated("/assistants/" + assistants[0])).status, 404);
  EXPECT_EQ(MustSend(client, "GET", Dated("/threads/" + threads[0])).status, 404);
  EXPECT_THAT(Ids(Json(MustSend(client, "GET", Dated("/assistants")).body)),
              ElementsAre(assistants[2], assistants[1]));
  const std::string messages = Dated("/threads/" + threads[2] + "/messages");
  for (const absl::string_view text : {"1", "2", "3"}) {
    ASSERT_EQ(MustSend(client, "POST", messages,
                       absl::StrCat(R"({"role":"user","content":")", text, "\"}"))
                  .status,
              200);
  }
  EXPECT_EQ(Json(MustSend(client, "GET", messages).body).at("data").as_array().size(), 2u);
  boost::json::value stats = Stats(*mock);
  EXPECT_EQ(stats.at("assistants"), Json(R"({"stored":2,"evicted":1})"));
  EXPECT_EQ(stats.at("threads"), Json(R"({"stored":2,"evicted":1,"messages_evicted":1})"));

  ASSERT_EQ(MustSend(client, "POST", "/mock/reset").status, 200);
  EXPECT_EQ(MustSend(client, "GET", Dated("/assistants/" + assistants[2])).status, 404);
  stats = Stats(*mock);
  EXPECT_EQ(stats.at("assistants"), Json(R"({"stored":0,"evicted":0})"));
  EXPECT_EQ(stats.at("threads").at("stored").as_int64(), 0);
  EXPECT_EQ(MustSend(client, "POST", Dated("/assistants"), R"({"model":"d"})").status, 200);
}

TEST(MockAssistantsTest, MaxCompletionTokensCutsTheRunShort) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d", "--completion-tokens", "8"});
  test::HttpClient client = Client(*mock);
  const std::string assistant = CreateAssistant(client);
  const std::string thread = Create(client, Dated("/threads"), "");
  const boost::json::value run = Json(
      MustSend(client, "POST", Dated("/threads/" + thread + "/runs"),
               absl::StrCat(R"({"assistant_id":")", assistant, R"(","max_completion_tokens":2})"))
          .body);
  EXPECT_EQ(Str(run.at("status")), "incomplete");
  EXPECT_EQ(Str(run.at("incomplete_details").at("reason")), "max_completion_tokens");
  EXPECT_EQ(run.at("usage").at("completion_tokens").as_int64(), 2);
  EXPECT_TRUE(run.at("completed_at").is_null());
}

}  // namespace
}  // namespace spillway::mock
