// The stateful Responses API against the real binary: create, retrieve, input_items, delete;
// previous_response_id chains; store:false; streaming, replay after a sequence number;
// background responses, polling and cancel; faults and limits; the stats log; and two mocks
// (two Azure resources) that share no ids.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/h2_test_client.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/sse.h"

namespace spillway::mock {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kResponses[] = "/openai/v1/responses";
constexpr char kPreviewVersion[] = "2025-04-01-preview";

std::string ResponsePath(absl::string_view id, absl::string_view suffix = "") {
  return absl::StrCat(kResponses, "/", id, suffix);
}

// A create body for deployment `model`; `extra` is spliced in as more top-level fields.
std::string Body(absl::string_view model, absl::string_view input, absl::string_view extra = "") {
  return absl::StrCat(R"({"model":")", model, R"(","input":")", input, R"(")",
                      extra.empty() ? "" : ",", extra, "}");
}

struct Event {
  std::string type;  // the `event:` line
  boost::json::value data;
};

// `event: <type>\ndata: <json>\n\n`, in order; a `data: [DONE]` would fail to parse as JSON.
std::vector<Event> ParseEvents(absl::string_view body) {
  std::vector<Event> events;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    Event event;
    std::string data;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "event: ")) {
        event.type = std::string(line);
      } else if (absl::ConsumePrefix(&line, "data: ")) {
        data = std::string(line);
      }
    }
    event.data = Json(data);
    events.push_back(std::move(event));
  }
  return events;
}

std::vector<std::string> Types(const std::vector<Event>& events) {
  std::vector<std::string> types;
  for (const Event& event : events) types.push_back(event.type);
  return types;
}

boost::json::value Stats(const test::MockAoaiProcess& mock) {
  test::HttpClient client = Client(mock);
  return Json(MustSend(client, "GET", "/mock/stats").body);
}

void AddFault(const test::MockAoaiProcess& mock, absl::string_view json) {
  test::HttpClient control = Client(mock);
  const test::HttpResponse response = MustSend(control, "POST", "/mock/faults", json);
  ASSERT_EQ(response.status, 200) << response.body;
}

bool IsResponseId(const std::string& id) {
  static const std::regex kId("resp_[0-9a-f]{32}");
  return std::regex_match(id, kId);
}

std::string NotFoundBody(absl::string_view id) {
  return absl::StrCat(R"({"error":{"message":"Response with id ')", id,
                      R"(' not found.","type":"invalid_request_error","param":null,"code":null}})");
}

TEST(MockResponsesTest, CreateRetrieveListDeleteThen404) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "resp:model=gpt-4.1-mini"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse created = MustSend(
      client, "POST", kResponses,
      Body("resp", "hello world!", R"("instructions":"Be brief.","max_output_tokens":100)"));
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.Header("content-type"), "application/json");
  EXPECT_TRUE(created.HasHeader("x-ratelimit-remaining-tokens"));
  EXPECT_TRUE(created.HasHeader("x-request-id"));
  const boost::json::value body = Json(created.body);
  const std::string id = Str(body.at("id"));
  EXPECT_TRUE(IsResponseId(id)) << id;
  EXPECT_EQ(Str(body.at("object")), "response");
  EXPECT_GT(body.at("created_at").as_int64(), 1'600'000'000);
  EXPECT_EQ(Str(body.at("status")), "completed");
  EXPECT_EQ(Str(body.at("model")), "gpt-4.1-mini");
  EXPECT_EQ(Str(body.at("instructions")), "Be brief.");
  EXPECT_EQ(body.at("max_output_tokens").as_int64(), 100);
  EXPECT_TRUE(body.at("previous_response_id").is_null());
  EXPECT_TRUE(body.at("store").as_bool());
  EXPECT_FALSE(body.at("background").as_bool());
  ASSERT_EQ(body.at("output").as_array().size(), 1u);
  const boost::json::value& message = body.at("output").at(0);
  EXPECT_EQ(Str(message.at("type")), "message");
  EXPECT_THAT(Str(message.at("id")), StartsWith("msg_"));
  EXPECT_EQ(Str(message.at("status")), "completed");
  EXPECT_EQ(Str(message.at("role")), "assistant");
  EXPECT_EQ(Str(message.at("content").at(0).at("type")), "output_text");
  EXPECT_THAT(Str(message.at("content").at(0).at("text")), StartsWith("Hello from the"));
  EXPECT_TRUE(message.at("content").at(0).at("annotations").as_array().empty());
  // "Be brief." 3 tokens + "hello world!" 3; the default answer is 16 tokens.
  const boost::json::value& usage = body.at("usage");
  EXPECT_EQ(usage.at("input_tokens").as_int64(), 6);
  EXPECT_EQ(usage.at("input_tokens_details").at("cached_tokens").as_int64(), 0);
  EXPECT_EQ(usage.at("output_tokens").as_int64(), 16);
  EXPECT_EQ(usage.at("output_tokens_details").at("reasoning_tokens").as_int64(), 0);
  EXPECT_EQ(usage.at("total_tokens").as_int64(), 22);

  const test::HttpResponse got = MustSend(client, "GET", ResponsePath(id));
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Json(got.body), body);

  const test::HttpResponse items = MustSend(client, "GET", ResponsePath(id, "/input_items"));
  ASSERT_EQ(items.status, 200) << items.body;
  const boost::json::value list = Json(items.body);
  EXPECT_EQ(Str(list.at("object")), "list");
  ASSERT_EQ(list.at("data").as_array().size(), 1u);
  const boost::json::value& item = list.at("data").at(0);
  EXPECT_THAT(Str(item.at("id")), StartsWith("msg_"));
  EXPECT_EQ(Str(item.at("role")), "user");
  EXPECT_EQ(Str(item.at("content").at(0).at("type")), "input_text");
  EXPECT_EQ(Str(item.at("content").at(0).at("text")), "hello world!");
  EXPECT_EQ(list.at("first_id"), item.at("id"));
  EXPECT_EQ(list.at("last_id"), item.at("id"));
  EXPECT_FALSE(list.at("has_more").as_bool());

  const test::HttpResponse deleted = MustSend(client, "DELETE", ResponsePath(id));
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.body,
            absl::StrCat(R"({"id":")", id, R"(","object":"response","deleted":true})"));

  for (const std::string& path : {ResponsePath(id), ResponsePath(id, "/input_items")}) {
    const test::HttpResponse gone = MustSend(client, "GET", path);
    EXPECT_EQ(gone.status, 404) << path;
    EXPECT_EQ(gone.body, NotFoundBody(id));
  }
  EXPECT_EQ(MustSend(client, "DELETE", ResponsePath(id)).status, 404);
  EXPECT_EQ(MustSend(client, "GET", ResponsePath("resp_never")).body, NotFoundBody("resp_never"));
}

TEST(MockResponsesTest, InputItemsListNewestFirstAndPages) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse created =
      MustSend(client, "POST", kResponses,
               R"({"model":"gpt-4o","input":[{"role":"user","content":"one"},
            {"role":"assistant","content":"two"},{"role":"user","content":"three"}]})");
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = Str(Json(created.body).at("id"));
  boost::json::value page =
      Json(MustSend(client, "GET", ResponsePath(id, "/input_items?limit=2")).body);
  ASSERT_EQ(page.at("data").as_array().size(), 2u);
  EXPECT_EQ(Str(page.at("data").at(0).at("content").at(0).at("text")), "three");
  EXPECT_EQ(Str(page.at("data").at(1).at("content").at(0).at("type")), "output_text");
  EXPECT_TRUE(page.at("has_more").as_bool());
  page = Json(MustSend(client, "GET",
                       ResponsePath(id, absl::StrCat("/input_items?limit=2&after=",
                                                     Str(page.at("last_id")))))
                  .body);
  ASSERT_EQ(page.at("data").as_array().size(), 1u);
  EXPECT_EQ(Str(page.at("data").at(0).at("content").at(0).at("text")), "one");
  EXPECT_FALSE(page.at("has_more").as_bool());
  page = Json(MustSend(client, "GET", ResponsePath(id, "/input_items?order=asc")).body);
  EXPECT_EQ(Str(page.at("data").at(0).at("content").at(0).at("text")), "one");
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id, "/input_items?limit=0")).status, 400);
}

TEST(MockResponsesTest, PreviewSurfaceAndApiVersions) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "resp:model=gpt-4o"});
  test::HttpClient client = Client(*mock);
  const std::string preview = absl::StrCat("/openai/responses?api-version=", kPreviewVersion);
  const test::HttpResponse created = MustSend(client, "POST", preview, Body("resp", "hi"));
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = Str(Json(created.body).at("id"));
  // One store behind both surfaces.
  EXPECT_EQ(MustSend(client, "GET",
                     absl::StrCat("/openai/responses/", id, "?api-version=", kPreviewVersion))
                .status,
            200);
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id)).status, 200);
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id) + "?api-version=preview").status, 200);

  // The preview surface needs an api-version; /openai/v1 refuses a dated one.
  EXPECT_EQ(MustSend(client, "POST", "/openai/responses", Body("resp", "hi")).status, 404);
  const test::HttpResponse dated =
      MustSend(client, "POST", absl::StrCat(kResponses, "?api-version=", kPreviewVersion),
               Body("resp", "hi"));
  EXPECT_EQ(dated.status, 400);
  EXPECT_EQ(dated.body, R"({"error":{"code":"BadRequest","message":"API version not supported"}})");
  EXPECT_EQ(MustSend(client, "POST", "/openai/v1/chat/completions?api-version=2024-10-21",
                     ChatBody("hi", R"("model":"resp")"))
                .status,
            400);

  // The deployment is the body's model; unknown ones are Azure's DeploymentNotFound.
  const test::HttpResponse unknown = MustSend(client, "POST", kResponses, Body("nope", "hi"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Str(Json(unknown.body).at("error").at("code")), "DeploymentNotFound");
  const test::HttpResponse no_model = MustSend(client, "POST", kResponses, R"({"input":"hi"})");
  EXPECT_EQ(no_model.status, 400);
  EXPECT_EQ(Str(Json(no_model.body).at("error").at("code")), "missing_required_parameter");
  const test::HttpResponse bad =
      MustSend(client, "POST", kResponses, R"({"model":"resp","input":3})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Str(Json(bad.body).at("error").at("param")), "input");
  EXPECT_EQ(MustSend(client, "PUT", ResponsePath(id)).status, 404);
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id, "/other")).status, 404);
}

TEST(MockResponsesTest, AuthAppliesToEveryCall) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", "k"});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", kResponses, Body("gpt-4o", "hi")).status, 401);
  const test::HttpResponse created =
      MustSend(client, "POST", kResponses, Body("gpt-4o", "hi"), {{"api-key", "k"}});
  ASSERT_EQ(created.status, 200);
  const std::string id = Str(Json(created.body).at("id"));
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id)).status, 401);
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id), "", {{"api-key", "k"}}).status, 200);
}

TEST(MockResponsesTest, PreviousResponseIdGrowsTheConversation) {
  SPILLWAY_START_MOCK(mock, {"--completion-tokens", "10"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse first = MustSend(client, "POST", kResponses, Body("gpt-4o", "abcdefgh"));
  ASSERT_EQ(first.status, 200);
  const std::string first_id = Str(Json(first.body).at("id"));
  EXPECT_EQ(Json(first.body).at("usage").at("input_tokens").as_int64(), 2);

  const test::HttpResponse second =
      MustSend(client, "POST", kResponses,
               Body("gpt-4o", "abcd", absl::StrCat(R"("previous_response_id":")", first_id, "\"")));
  ASSERT_EQ(second.status, 200) << second.body;
  const boost::json::value body = Json(second.body);
  EXPECT_EQ(Str(body.at("previous_response_id")), first_id);
  // The first turn's 2 input and 10 output tokens, and this turn's 1.
  EXPECT_EQ(body.at("usage").at("input_tokens").as_int64(), 2 + 10 + 1);
  EXPECT_EQ(Str(Json(MustSend(client, "GET", ResponsePath(Str(body.at("id")))).body)
                    .at("previous_response_id")),
            first_id);

  const std::string third_body =
      Body("gpt-4o", "x", absl::StrCat(R"("previous_response_id":")", Str(body.at("id")), "\""));
  EXPECT_EQ(
      Json(MustSend(client, "POST", kResponses, third_body).body).at("usage").at("input_tokens"),
      13 + 10 + 1);

  const test::HttpResponse missing = MustSend(
      client, "POST", kResponses, Body("gpt-4o", "hi", R"("previous_response_id":"resp_x")"));
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body, R"({"error":{"message":"Previous response with id 'resp_x' not found.",)"
                          R"("type":"invalid_request_error","param":"previous_response_id",)"
                          R"("code":"previous_response_not_found"}})");

  // Deleted is as good as never created.
  ASSERT_EQ(MustSend(client, "DELETE", ResponsePath(first_id)).status, 200);
  const test::HttpResponse after_delete =
      MustSend(client, "POST", kResponses,
               Body("gpt-4o", "hi", absl::StrCat(R"("previous_response_id":")", first_id, "\"")));
  EXPECT_EQ(after_delete.status, 400);
  EXPECT_EQ(Str(Json(after_delete.body).at("error").at("code")), "previous_response_not_found");
}

TEST(MockResponsesTest, StoreFalseKeepsNothing) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse created =
      MustSend(client, "POST", kResponses, Body("gpt-4o", "hi", R"("store":false)"));
  ASSERT_EQ(created.status, 200);
  const boost::json::value body = Json(created.body);
  EXPECT_FALSE(body.at("store").as_bool());
  EXPECT_EQ(Str(body.at("status")), "completed");
  const std::string id = Str(body.at("id"));
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id)).status, 404);
  const test::HttpResponse chained =
      MustSend(client, "POST", kResponses,
               Body("gpt-4o", "hi", absl::StrCat(R"("previous_response_id":")", id, "\"")));
  EXPECT_EQ(Str(Json(chained.body).at("error").at("code")), "previous_response_not_found");
  EXPECT_EQ(Stats(*mock).at("responses").at("stored").as_int64(), 0);
}

TEST(MockResponsesTest, StreamSendsResponsesEventsWithoutDone) {
  SPILLWAY_START_MOCK(mock, {"--completion-tokens", "4"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response =
      MustSend(client, "POST", kResponses, Body("gpt-4o", "abcdefgh", R"("stream":true)"));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.Header("content-type"), "text/event-stream");
  EXPECT_EQ(response.Header("transfer-encoding"), "chunked");
  EXPECT_THAT(response.body, ::testing::Not(HasSubstr("[DONE]")));
  const std::vector<Event> events = ParseEvents(response.body);
  EXPECT_THAT(
      Types(events),
      ElementsAre("response.created", "response.in_progress", "response.output_item.added",
                  "response.content_part.added", "response.output_text.delta",
                  "response.output_text.delta", "response.output_text.delta",
                  "response.output_text.delta", "response.output_text.done",
                  "response.content_part.done", "response.output_item.done", "response.completed"));
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    SCOPED_TRACE(events[i].type);
    EXPECT_EQ(Str(events[i].data.at("type")), events[i].type);
    EXPECT_EQ(events[i].data.at("sequence_number").as_int64(), static_cast<int64_t>(i));
    if (events[i].type == "response.output_text.delta") {
      EXPECT_THAT(Str(events[i].data.at("item_id")), StartsWith("msg_"));
      EXPECT_EQ(events[i].data.at("output_index").as_int64(), 0);
      EXPECT_EQ(events[i].data.at("content_index").as_int64(), 0);
      text += Str(events[i].data.at("delta"));
    }
  }
  const boost::json::value& created = events.front().data.at("response");
  EXPECT_EQ(Str(created.at("status")), "in_progress");
  EXPECT_TRUE(created.at("usage").is_null());
  const boost::json::value& completed = events.back().data.at("response");
  EXPECT_EQ(Str(completed.at("status")), "completed");
  EXPECT_EQ(completed.at("usage").at("input_tokens").as_int64(), 2);
  EXPECT_EQ(completed.at("usage").at("output_tokens").as_int64(), 4);
  EXPECT_EQ(completed.at("usage").at("total_tokens").as_int64(), 6);
  EXPECT_EQ(Str(completed.at("output").at(0).at("content").at(0).at("text")), text);
  EXPECT_EQ(Str(events[8].data.at("text")), text);

  // Stored: the GET is the final object; the stats counted the usage the stream reported.
  const test::HttpResponse got = MustSend(client, "GET", ResponsePath(Str(completed.at("id"))));
  EXPECT_EQ(Json(got.body), completed);
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(stats.at("deployments").at("gpt-4o").at("usage").at("total_tokens").as_int64(), 6);
  EXPECT_EQ(stats.at("deployments").at("gpt-4o").at("in_flight").as_int64(), 0);
}

TEST(MockResponsesTest, MaxOutputTokensCutsTheAnswerShort) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const boost::json::value body = Json(
      MustSend(client, "POST", kResponses, Body("gpt-4o", "hi", R"("max_output_tokens":3)")).body);
  EXPECT_EQ(Str(body.at("status")), "incomplete");
  EXPECT_EQ(Str(body.at("incomplete_details").at("reason")), "max_output_tokens");
  EXPECT_EQ(body.at("usage").at("output_tokens").as_int64(), 3);
  const std::vector<Event> events =
      ParseEvents(MustSend(client, "POST", kResponses,
                           Body("gpt-4o", "hi", R"("max_output_tokens":3,"stream":true)"))
                      .body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "response.incomplete");
}

TEST(MockResponsesTest, ResumeReplaysEventsAfterStartingAfter) {
  SPILLWAY_START_MOCK(mock, {"--completion-tokens", "5"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse streamed =
      MustSend(client, "POST", kResponses, Body("gpt-4o", "hi", R"("stream":true)"));
  const std::vector<Event> original = ParseEvents(streamed.body);
  ASSERT_EQ(original.size(), 2u + 5 + 6);
  const std::string id = Str(original.front().data.at("response").at("id"));

  const test::HttpResponse resumed =
      MustSend(client, "GET", ResponsePath(id, "?stream=true&starting_after=5"));
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(resumed.Header("content-type"), "text/event-stream");
  const std::vector<Event> rest = ParseEvents(resumed.body);
  ASSERT_EQ(rest.size(), original.size() - 6);
  for (size_t i = 0; i < rest.size(); ++i) {
    EXPECT_EQ(rest[i].type, original[i + 6].type);
    EXPECT_EQ(rest[i].data, original[i + 6].data);
  }
  // The whole stream again without starting_after; a bad one is 400.
  EXPECT_EQ(ParseEvents(MustSend(client, "GET", ResponsePath(id, "?stream=true")).body).size(),
            original.size());
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id, "?stream=true&starting_after=x")).status, 400);
  // Usage is counted once ("hi" and 5 tokens): a replay is not a new answer.
  EXPECT_EQ(Stats(*mock).at("deployments").at("gpt-4o").at("usage").at("total_tokens").as_int64(),
            1 + 5);
}

TEST(MockResponsesTest, BackgroundIsQueuedThenCompletedOnPoll) {
  SPILLWAY_START_MOCK(mock, {"--background-ms", "300"});
  test::HttpClient client = Client(*mock);
  const absl::Time sent = absl::Now();
  const test::HttpResponse created =
      MustSend(client, "POST", kResponses, Body("gpt-4o", "hi", R"("background":true)"));
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_LT(absl::Now() - sent, absl::Milliseconds(250));  // answered at once
  const boost::json::value body = Json(created.body);
  EXPECT_EQ(Str(body.at("status")), "queued");
  EXPECT_TRUE(body.at("background").as_bool());
  EXPECT_TRUE(body.at("output").as_array().empty());
  EXPECT_TRUE(body.at("usage").is_null());
  const std::string id = Str(body.at("id"));

  std::vector<std::string> seen;
  boost::json::value polled;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    polled = Json(MustSend(client, "GET", ResponsePath(id)).body);
    const std::string status = Str(polled.at("status"));
    if (seen.empty() || seen.back() != status) seen.push_back(status);
    if (status == "completed") break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(seen, ElementsAre("queued", "in_progress", "completed"));
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(300));
  EXPECT_EQ(polled.at("output").as_array().size(), 1u);
  EXPECT_EQ(polled.at("usage").at("output_tokens").as_int64(), 16);

  // Cancelling what already ended changes nothing.
  const test::HttpResponse late = MustSend(client, "POST", ResponsePath(id, "/cancel"));
  EXPECT_EQ(late.status, 200);
  EXPECT_EQ(Str(Json(late.body).at("status")), "completed");
}

TEST(MockResponsesTest, CancelOnlyBackgroundResponses) {
  SPILLWAY_START_MOCK(mock, {"--background-ms", "60000"});
  test::HttpClient client = Client(*mock);
  const std::string id = Str(
      Json(MustSend(client, "POST", kResponses, Body("gpt-4o", "hi", R"("background":true)")).body)
          .at("id"));
  const test::HttpResponse cancelled = MustSend(client, "POST", ResponsePath(id, "/cancel"));
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(Str(Json(cancelled.body).at("status")), "cancelled");
  const boost::json::value got = Json(MustSend(client, "GET", ResponsePath(id)).body);
  EXPECT_EQ(Str(got.at("status")), "cancelled");
  EXPECT_TRUE(got.at("output").as_array().empty());
  // Its stream replays as created, queued, cancelled.
  EXPECT_THAT(Types(ParseEvents(MustSend(client, "GET", ResponsePath(id, "?stream=true")).body)),
              ElementsAre("response.created", "response.queued", "response.cancelled"));

  const std::string foreground =
      Str(Json(MustSend(client, "POST", kResponses, Body("gpt-4o", "hi")).body).at("id"));
  const test::HttpResponse refused = MustSend(client, "POST", ResponsePath(foreground, "/cancel"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(Str(Json(refused.body).at("error").at("message")),
            "Only responses created with background=true can be cancelled");
  EXPECT_EQ(MustSend(client, "POST", ResponsePath("resp_none", "/cancel")).status, 404);
}

TEST(MockResponsesTest, BackgroundIsKeptEvenWithStoreFalse) {
  SPILLWAY_START_MOCK(mock, {"--background-ms", "0"});
  test::HttpClient client = Client(*mock);
  const std::string id =
      Str(Json(MustSend(client, "POST", kResponses,
                        Body("gpt-4o", "hi", R"("background":true,"store":false)"))
                   .body)
              .at("id"));
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id)).status, 200);
}

TEST(MockResponsesTest, FaultsAndLimitsApplyToCreate) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000"});  // one request per window
  AddFault(*mock, R"({"status":429,"retry_after_ms":1500,"count":1})");
  test::HttpClient client = Client(*mock);
  const test::HttpResponse faulted = MustSend(client, "POST", kResponses, Body("d", "hi"));
  EXPECT_EQ(faulted.status, 429);
  EXPECT_EQ(faulted.Header("retry-after-ms"), "1500");
  EXPECT_THAT(Str(Json(faulted.body).at("error").at("message")),
              HasSubstr("Requests to the Responses_Create Operation"));
  // The faulted request was not charged: the next one is admitted, the one after is limited.
  ASSERT_EQ(MustSend(client, "POST", kResponses, Body("d", "hi")).status, 200);
  const test::HttpResponse limited = MustSend(client, "POST", kResponses, Body("d", "hi"));
  EXPECT_EQ(limited.status, 429);
  EXPECT_TRUE(limited.HasHeader("retry-after-ms"));

  const boost::json::value stats = Stats(*mock);
  const boost::json::value& d = stats.at("deployments").at("d");
  EXPECT_EQ(d.at("requests").as_int64(), 3);
  EXPECT_EQ(d.at("by_status").at("429").as_int64(), 2);
  EXPECT_EQ(d.at("by_status").at("200").as_int64(), 1);
  EXPECT_EQ(d.at("usage").at("prompt_tokens").as_int64(), 1);
  EXPECT_EQ(d.at("usage").at("completion_tokens").as_int64(), 16);
}

TEST(MockResponsesTest, FaultsApplyToFollowUpsOfTheStoredDeployment) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "a,b"});
  test::HttpClient client = Client(*mock);
  const std::string id =
      Str(Json(MustSend(client, "POST", kResponses, Body("a", "hi")).body).at("id"));
  AddFault(*mock, R"({"status":503,"deployment":"b"})");
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id)).status, 200);
  AddFault(*mock, R"({"status":503,"deployment":"a","count":1})");
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id)).status, 503);
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(id)).status, 200);
}

TEST(MockResponsesTest, CutFaultEndsAResponsesStream) {
  SPILLWAY_START_MOCK(mock, {});
  AddFault(*mock, R"({"mode":"cut","cut_after_chunks":3,"count":1})");
  test::HttpClient client = Client(*mock);
  std::string received;
  absl::StatusOr<test::HttpResponse> response = client.SendStreaming(
      "POST", kResponses, {}, Body("gpt-4o", "hi", R"("stream":true)"),
      [&](absl::string_view piece, absl::Time) { received.append(piece.data(), piece.size()); });
  EXPECT_FALSE(response.ok());
  const std::vector<Event> events = ParseEvents(received);
  EXPECT_THAT(Types(events), ElementsAre("response.created", "response.in_progress",
                                         "response.output_item.added"));
  // The stream was stored: the client resumes where the cut left it.
  const std::string id = Str(events.front().data.at("response").at("id"));
  test::HttpClient again = Client(*mock);
  const std::vector<Event> rest =
      ParseEvents(MustSend(again, "GET", ResponsePath(id, "?stream=true&starting_after=2")).body);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().data.at("sequence_number").as_int64(), 3);
  EXPECT_EQ(rest.back().type, "response.completed");
  // The cut stream never reported its usage.
  EXPECT_EQ(Stats(*mock).at("deployments").at("gpt-4o").at("usage").at("total_tokens").as_int64(),
            0);
}

TEST(MockResponsesTest, StreamIsPacedPerToken) {
  SPILLWAY_START_MOCK(mock, {"--ms-per-token", "40", "--completion-tokens", "6"});
  test::HttpClient client = Client(*mock);
  test::SseCollector collector;
  absl::StatusOr<test::HttpResponse> response = client.SendStreaming(
      "POST", kResponses, {}, Body("gpt-4o", "hi", R"("stream":true)"),
      [&](absl::string_view piece, absl::Time at) { collector.Feed(piece, at); });
  ASSERT_TRUE(response.ok()) << response.status();
  const std::vector<test::SseEvent>& events = collector.events();
  ASSERT_EQ(events.size(), 2u + 6 + 6);
  // Deltas are events 4..9: five per-token waits between the first and the last.
  EXPECT_GE(events[9].arrival - events[4].arrival, absl::Milliseconds(5 * 40 - 10));
}

TEST(MockResponsesTest, StatsLogShowsWhichMockGotWhat) {
  SPILLWAY_START_MOCK(a, {"--deployments", "d"});
  SPILLWAY_START_MOCK(b, {"--deployments", "d"});
  test::HttpClient on_a = Client(*a);
  test::HttpClient on_b = Client(*b);
  const std::string id =
      Str(Json(MustSend(on_a, "POST", kResponses, Body("d", "hi")).body).at("id"));
  ASSERT_TRUE(IsResponseId(id));

  // The other resource knows nothing of it.
  EXPECT_EQ(MustSend(on_b, "GET", ResponsePath(id)).status, 404);
  const test::HttpResponse follow_up =
      MustSend(on_b, "POST", kResponses,
               Body("d", "more", absl::StrCat(R"("previous_response_id":")", id, "\"")));
  EXPECT_EQ(follow_up.status, 400);
  EXPECT_EQ(Str(Json(follow_up.body).at("error").at("code")), "previous_response_not_found");
  // Its own follow-up works.
  const test::HttpResponse on_its_own =
      MustSend(on_a, "POST", kResponses,
               Body("d", "more", absl::StrCat(R"("previous_response_id":")", id, "\"")));
  ASSERT_EQ(on_its_own.status, 200);
  const std::string second = Str(Json(on_its_own.body).at("id"));

  const boost::json::value a_stats = Stats(*a);
  const boost::json::array& a_log = a_stats.at("log").as_array();
  ASSERT_EQ(a_log.size(), 2u);
  EXPECT_EQ(Str(a_log[0].at("method")), "POST");
  EXPECT_EQ(Str(a_log[0].at("path")), "/openai/v1/responses");
  EXPECT_EQ(Str(a_log[0].at("deployment")), "d");
  EXPECT_EQ(Str(a_log[0].at("response_id")), id);
  EXPECT_EQ(Str(a_log[0].at("previous_response_id")), "");
  EXPECT_EQ(a_log[0].at("status").as_int64(), 200);
  EXPECT_EQ(Str(a_log[1].at("response_id")), second);
  EXPECT_EQ(Str(a_log[1].at("previous_response_id")), id);
  EXPECT_EQ(a_stats.at("responses").at("stored").as_int64(), 2);

  const boost::json::value b_stats = Stats(*b);
  const boost::json::array& b_log = b_stats.at("log").as_array();
  ASSERT_EQ(b_log.size(), 2u);
  EXPECT_EQ(Str(b_log[0].at("method")), "GET");
  EXPECT_EQ(Str(b_log[0].at("path")), ResponsePath(id));
  EXPECT_EQ(Str(b_log[0].at("response_id")), id);
  EXPECT_EQ(b_log[0].at("status").as_int64(), 404);
  EXPECT_EQ(Str(b_log[1].at("previous_response_id")), id);
  EXPECT_EQ(Str(b_log[1].at("deployment")), "d");
  EXPECT_EQ(b_log[1].at("status").as_int64(), 400);
  EXPECT_EQ(b_stats.at("responses").at("stored").as_int64(), 0);

  // POST /mock/reset forgets the stored responses too.
  ASSERT_EQ(MustSend(on_a, "POST", "/mock/reset").status, 200);
  EXPECT_EQ(MustSend(on_a, "GET", ResponsePath(id)).status, 404);
}

TEST(MockResponsesTest, OldestStoredResponsesAreEvicted) {
  SPILLWAY_START_MOCK(mock, {"--responses-max-stored", "2"});
  test::HttpClient client = Client(*mock);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(
        Str(Json(MustSend(client, "POST", kResponses, Body("gpt-4o", "hi")).body).at("id")));
  }
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(ids[0])).status, 404);
  EXPECT_EQ(MustSend(client, "GET", ResponsePath(ids[2])).status, 200);
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(stats.at("responses").at("stored").as_int64(), 2);
  EXPECT_EQ(stats.at("responses").at("evicted").as_int64(), 1);
}

TEST(MockResponsesTest, WorksOverHttp2) {
  SPILLWAY_START_MOCK(mock, {});
  absl::StatusOr<std::unique_ptr<H2TestClient>> h2 = H2TestClient::Connect(mock->port());
  ASSERT_TRUE(h2.ok()) << h2.status();
  const int32_t create = (*h2)->Submit("POST", kResponses, Body("gpt-4o", "hi", R"("stream":true)"),
                                       {{"content-type", "application/json"}});
  ASSERT_TRUE((*h2)->RunUntilAllClosed().ok());
  const H2TestClient::Stream& created = (*h2)->stream(create);
  ASSERT_EQ(created.status, 200) << created.body;
  const std::vector<Event> events = ParseEvents(created.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "response.completed");
  // One DATA frame per event.
  EXPECT_EQ(created.data_frames.size(), events.size());
  const std::string id = Str(events.front().data.at("response").at("id"));
  const int32_t get = (*h2)->Submit("GET", ResponsePath(id));
  ASSERT_TRUE((*h2)->RunUntilAllClosed().ok());
  EXPECT_EQ((*h2)->stream(get).status, 200);
  EXPECT_EQ(Str(Json((*h2)->stream(get).body).at("status")), "completed");
}

}  // namespace
}  // namespace spillway::mock
