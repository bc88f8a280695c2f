// The Responses API's wire shapes: the object at each status, the event sequence (live,
// replayed after a sequence number, background, cancelled), input_items pages and errors.
#include "tests/mock_aoai/responses_wire.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

std::string Str(const json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : std::string();
}

std::shared_ptr<ResponseFacts> Facts(int64_t tokens, bool background = false) {
  auto facts = std::make_shared<ResponseFacts>();
  facts->id = "resp_0123";
  facts->message_id = "msg_4567";
  facts->deployment = "d";
  facts->model = "gpt-4o";
  facts->created_at = 1'700'000'000;
  facts->background = background;
  facts->input_tokens = 7;
  facts->output_tokens = tokens;
  return facts;
}

struct Event {
  std::string type;
  json::value data;
};

// Drains the stream, checking each event's framing.
std::vector<Event> Drain(ResponsesStream& stream) {
  std::vector<Event> events;
  while (!stream.Done()) {
    std::string text;
    stream.AppendNext(text);
    EXPECT_TRUE(absl::EndsWith(text, "\n\n")) << text;
    const std::vector<std::string> lines = absl::StrSplit(text.substr(0, text.size() - 2), '\n');
    EXPECT_EQ(lines.size(), 2u) << text;
    if (lines.size() != 2) break;
    EXPECT_TRUE(absl::StartsWith(lines[0], "event: ")) << text;
    EXPECT_TRUE(absl::StartsWith(lines[1], "data: ")) << text;
    Event event{lines[0].substr(7), json::parse(lines[1].substr(6))};
    EXPECT_EQ(Str(event.data.at("type")), event.type);
    events.push_back(std::move(event));
  }
  return events;
}

std::vector<std::string> Types(const std::vector<Event>& events) {
  std::vector<std::string> types;
  for (const Event& event : events) types.push_back(event.type);
  return types;
}

TEST(ResponseObjectTest, CompletedCarriesOutputAndUsage) {
  auto facts = Facts(3);
  facts->previous_response_id = "resp_before";
  facts->cached_tokens = 0;
  const json::object object = ResponseObject(*facts, ResponseStatus::kCompleted, 1'700'000'001);
  EXPECT_EQ(Str(object.at("id")), "resp_0123");
  EXPECT_EQ(Str(object.at("object")), "response");
  EXPECT_EQ(object.at("created_at").as_int64(), 1'700'000'000);
  EXPECT_EQ(object.at("completed_at").as_int64(), 1'700'000'001);
  EXPECT_EQ(Str(object.at("status")), "completed");
  EXPECT_EQ(Str(object.at("model")), "gpt-4o");
  EXPECT_EQ(Str(object.at("previous_response_id")), "resp_before");
  EXPECT_TRUE(object.at("store").as_bool());
  EXPECT_FALSE(object.at("background").as_bool());
  EXPECT_TRUE(object.at("instructions").is_null());
  const json::value& message = object.at("output").at(0);
  EXPECT_EQ(Str(message.at("type")), "message");
  EXPECT_EQ(Str(message.at("id")), "msg_4567");
  EXPECT_EQ(Str(message.at("status")), "completed");
  EXPECT_EQ(Str(message.at("role")), "assistant");
  EXPECT_EQ(Str(message.at("content").at(0).at("type")), "output_text");
  EXPECT_EQ(Str(message.at("content").at(0).at("text")), "Hello from the");
  EXPECT_TRUE(message.at("content").at(0).at("annotations").as_array().empty());
  const json::value& usage = object.at("usage");
  EXPECT_EQ(usage.at("input_tokens").as_int64(), 7);
  EXPECT_EQ(usage.at("input_tokens_details").at("cached_tokens").as_int64(), 0);
  EXPECT_EQ(usage.at("output_tokens").as_int64(), 3);
  EXPECT_EQ(usage.at("output_tokens_details").at("reasoning_tokens").as_int64(), 0);
  EXPECT_EQ(usage.at("total_tokens").as_int64(), 10);
}

TEST(ResponseObjectTest, NotYetDoneHasNoOutputNorUsage) {
  const auto facts = Facts(3, true);
  for (const ResponseStatus status :
       {ResponseStatus::kQueued, ResponseStatus::kInProgress, ResponseStatus::kCancelled}) {
    const json::object object = ResponseObject(*facts, status, 0);
    EXPECT_EQ(Str(object.at("status")), ResponseStatusName(status));
    EXPECT_TRUE(object.at("output").as_array().empty());
    EXPECT_TRUE(object.at("usage").is_null());
    EXPECT_TRUE(object.at("completed_at").is_null());
  }
}

TEST(ResponseObjectTest, TruncatedIsIncomplete) {
  auto facts = Facts(2);
  facts->truncated = true;
  facts->max_output_tokens = 2;
  const json::object object = ResponseObject(*facts, ResponseStatus::kIncomplete, 1);
  EXPECT_EQ(Str(object.at("incomplete_details").at("reason")), "max_output_tokens");
  EXPECT_EQ(object.at("max_output_tokens").as_int64(), 2);
  EXPECT_EQ(Str(object.at("output").at(0).at("status")), "incomplete");
  EXPECT_EQ(object.at("usage").at("output_tokens").as_int64(), 2);
}

TEST(ResponsesStreamTest, EventsInOrderWithSequenceNumbers) {
  ResponsesStream stream(Facts(3), ResponseStatus::kCompleted, 1'700'000'001);
  EXPECT_EQ(stream.total(), 2 + 3 + 6);
  std::vector<bool> later_token;
  std::vector<Event> events;
  while (!stream.Done()) {
    later_token.push_back(stream.NextStartsLaterToken());
    std::string text;
    stream.AppendNext(text);
    const size_t data = text.find("\ndata: ");
    events.push_back({text.substr(7, data - 7), json::parse(text.substr(data + 7))});
  }
  EXPECT_THAT(Types(events),
              ::testing::ElementsAre("response.created", "response.in_progress",
                                     "response.output_item.added", "response.content_part.added",
                                     "response.output_text.delta", "response.output_text.delta",
                                     "response.output_text.delta", "response.output_text.done",
                                     "response.content_part.done", "response.output_item.done",
                                     "response.completed"));
  EXPECT_THAT(later_token, ::testing::ElementsAre(false, false, false, false, false, true, true,
                                                  false, false, false, false));
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].data.at("sequence_number").as_int64(), static_cast<int64_t>(i));
  }
  const json::value& created = events[0].data.at("response");
  EXPECT_EQ(Str(created.at("status")), "in_progress");
  EXPECT_TRUE(created.at("usage").is_null());
  std::string text;
  for (size_t i = 4; i < 7; ++i) {
    EXPECT_EQ(Str(events[i].data.at("item_id")), "msg_4567");
    EXPECT_EQ(events[i].data.at("output_index").as_int64(), 0);
    EXPECT_EQ(events[i].data.at("content_index").as_int64(), 0);
    text += Str(events[i].data.at("delta"));
  }
  EXPECT_EQ(text, "Hello from the");
  EXPECT_EQ(Str(events[7].data.at("text")), text);
  EXPECT_EQ(Str(events[8].data.at("part").at("text")), text);
  EXPECT_EQ(Str(events[9].data.at("item").at("status")), "completed");
  const json::value& completed = events[10].data.at("response");
  EXPECT_EQ(Str(completed.at("status")), "completed");
  EXPECT_EQ(completed.at("usage").at("total_tokens").as_int64(), 10);
  EXPECT_TRUE(stream.usage_sent());
  EXPECT_EQ(stream.events_sent(), 11);
}

TEST(ResponsesStreamTest, ReplayStartsAfterTheSequenceNumber) {
  ResponsesStream whole(Facts(4), ResponseStatus::kCompleted, 1);
  const std::vector<Event> all = Drain(whole);
  ResponsesStream resumed(Facts(4), ResponseStatus::kCompleted, 1, 5);
  const std::vector<Event> rest = Drain(resumed);
  ASSERT_EQ(rest.size(), all.size() - 6);
  for (size_t i = 0; i < rest.size(); ++i) {
    EXPECT_EQ(rest[i].data.at("sequence_number").as_int64(), static_cast<int64_t>(i + 6));
    EXPECT_EQ(json::serialize(rest[i].data), json::serialize(all[i + 6].data));
  }
  ResponsesStream past_the_end(Facts(4), ResponseStatus::kCompleted, 1, 1000);
  EXPECT_TRUE(past_the_end.Done());
}

TEST(ResponsesStreamTest, BackgroundIsQueuedFirstAndCancelledEndsEarly) {
  ResponsesStream background(Facts(1, true), ResponseStatus::kCompleted, 1);
  const std::vector<Event> events = Drain(background);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[0].type, "response.created");
  EXPECT_EQ(Str(events[0].data.at("response").at("status")), "queued");
  EXPECT_EQ(events[1].type, "response.queued");
  EXPECT_EQ(events[2].type, "response.in_progress");
  EXPECT_EQ(events.back().type, "response.completed");

  ResponsesStream cancelled(Facts(5, true), ResponseStatus::kCancelled, 1);
  const std::vector<Event> short_events = Drain(cancelled);
  EXPECT_THAT(Types(short_events),
              ::testing::ElementsAre("response.created", "response.queued", "response.cancelled"));
  EXPECT_TRUE(short_events.back().data.at("response").at("usage").is_null());
  EXPECT_FALSE(cancelled.usage_sent());
}

TEST(ResponsesStreamTest, IncompleteEndsWithResponseIncomplete) {
  auto facts = Facts(2);
  facts->truncated = true;
  ResponsesStream stream(facts, ResponseStatus::kIncomplete, 1);
  const std::vector<Event> events = Drain(stream);
  EXPECT_EQ(events.back().type, "response.incomplete");
  EXPECT_TRUE(stream.usage_sent());
}

TEST(InputItemsPageTest, NewestFirstByDefaultWithLimitAndAfter) {
  const json::array items = json::parse(R"([{"id":"a"},{"id":"b"},{"id":"c"}])").as_array();
  json::value page = json::parse(InputItemsPage(items, false, 20, ""));
  EXPECT_EQ(Str(page.at("object")), "list");
  EXPECT_EQ(Str(page.at("first_id")), "c");
  EXPECT_EQ(Str(page.at("last_id")), "a");
  EXPECT_FALSE(page.at("has_more").as_bool());
  EXPECT_EQ(page.at("data").as_array().size(), 3u);

  page = json::parse(InputItemsPage(items, true, 2, ""));
  EXPECT_EQ(Str(page.at("first_id")), "a");
  EXPECT_EQ(Str(page.at("last_id")), "b");
  EXPECT_TRUE(page.at("has_more").as_bool());
  page = json::parse(InputItemsPage(items, true, 2, "b"));
  EXPECT_EQ(Str(page.at("first_id")), "c");
  EXPECT_FALSE(page.at("has_more").as_bool());

  page = json::parse(InputItemsPage(json::array(), false, 20, ""));
  EXPECT_TRUE(page.at("first_id").is_null());
  EXPECT_TRUE(page.at("last_id").is_null());
}

TEST(OpenAiErrorTest, NullsForEmptyParamAndCode) {
  OpenAiError error;
  error.status = 404;
  error.message = "Response with id 'resp_x' not found.";
  std::string out;
  AppendOpenAiError(out, error);
  EXPECT_EQ(out, R"({"error":{"message":"Response with id 'resp_x' not found.",)"
                 R"("type":"invalid_request_error","param":null,"code":null}})");
  error.param = "previous_response_id";
  error.code = "previous_response_not_found";
  out.clear();
  AppendOpenAiError(out, error);
  EXPECT_THAT(out, ::testing::HasSubstr(
                       R"("param":"previous_response_id","code":"previous_response_not_found")"));
}

}  // namespace
}  // namespace spillway::mock
