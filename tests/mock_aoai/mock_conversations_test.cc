// The Conversations API against the real binary: create, retrieve, update, delete; the items
// endpoints; unknown ids; responses created in a conversation (history counted, their turns
// added, the conversation shown); conversation with previous_response_id; validation; auth,
// faults, the stats log, the bounds; and two mocks (two Azure resources) that share no ids.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"

namespace spillway::mock {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kConversations[] = "/openai/v1/conversations";
constexpr char kResponses[] = "/openai/v1/responses";

std::string ConversationPath(absl::string_view id, absl::string_view suffix = "") {
  return absl::StrCat(kConversations, "/", id, suffix);
}

bool IsConversationId(const std::string& id) {
  static const std::regex kId("conv_[0-9a-f]{48}");
  return std::regex_match(id, kId);
}

std::string NotFoundBody(absl::string_view what, absl::string_view id) {
  return absl::StrCat(R"({"error":{"message":")", what, " with id '", id,
                      R"(' not found.","type":"invalid_request_error","param":null,"code":null}})");
}

// Creates a conversation with `body` and returns its id (empty on failure, which fails the test).
std::string CreateConversation(test::HttpClient& client, absl::string_view body = "") {
  const test::HttpResponse created = MustSend(client, "POST", kConversations, body);
  EXPECT_EQ(created.status, 200) << created.body;
  return Str(Json(created.body).at("id"));
}

// A Responses create body for `model` whose `conversation` is `conversation` (raw JSON).
std::string InConversation(absl::string_view model, absl::string_view input,
                           absl::string_view conversation) {
  return absl::StrCat(R"({"model":")", model, R"(","input":")", input, R"(","conversation":)",
                      conversation, "}");
}

std::string Quoted(absl::string_view id) { return absl::StrCat("\"", id, "\""); }

// The texts of a list's items, in the order listed.
std::vector<std::string> Texts(const boost::json::value& list) {
  std::vector<std::string> texts;
  for (const boost::json::value& item : list.at("data").as_array()) {
    texts.push_back(Str(item.at("content").at(0).at("text")));
  }
  return texts;
}

boost::json::value Stats(const test::MockAoaiProcess& mock) {
  test::HttpClient client = Client(mock);
  return Json(MustSend(client, "GET", "/mock/stats").body);
}

TEST(MockConversationsTest, CreateRetrieveUpdateDeleteThen404) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse created =
      MustSend(client, "POST", kConversations, R"({"metadata":{"topic":"demo"}})");
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.Header("content-type"), "application/json");
  EXPECT_TRUE(created.HasHeader("x-request-id"));
  EXPECT_FALSE(created.HasHeader("x-ratelimit-remaining-tokens"));  // no deployment
  const boost::json::value body = Json(created.body);
  const std::string id = Str(body.at("id"));
  EXPECT_TRUE(IsConversationId(id)) << id;
  EXPECT_EQ(Str(body.at("object")), "conversation");
  EXPECT_GT(body.at("created_at").as_int64(), 1'600'000'000);
  EXPECT_EQ(Str(body.at("metadata").at("topic")), "demo");
  EXPECT_EQ(body.as_object().size(), 4u);

  const test::HttpResponse got = MustSend(client, "GET", ConversationPath(id));
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Json(got.body), body);

  // An update replaces the metadata.
  const test::HttpResponse updated =
      MustSend(client, "POST", ConversationPath(id), R"({"metadata":{"status":"done"}})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  const boost::json::value after = Json(updated.body);
  EXPECT_EQ(after.at("metadata"), Json(R"({"status":"done"})"));
  EXPECT_EQ(after.at("created_at"), body.at("created_at"));
  EXPECT_EQ(Json(MustSend(client, "GET", ConversationPath(id)).body), after);

  const test::HttpResponse deleted = MustSend(client, "DELETE", ConversationPath(id));
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.body,
            absl::StrCat(R"({"id":")", id, R"(","object":"conversation.deleted","deleted":true})"));

  // Deleted is as good as never created, on every endpoint.
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", ConversationPath(id)},
           {"POST", ConversationPath(id)},
           {"DELETE", ConversationPath(id)},
           {"GET", ConversationPath(id, "/items")},
           {"POST", ConversationPath(id, "/items")},
           {"GET", ConversationPath(id, "/items/msg_1")},
           {"DELETE", ConversationPath(id, "/items/msg_1")}}) {
    const std::string request_body = method == "POST" && absl::EndsWith(path, "/items")
                                         ? R"({"items":[{"role":"user","content":"hi"}]})"
                                         : (method == "POST" ? R"({"metadata":{}})" : "");
    const test::HttpResponse gone = MustSend(client, method, path, request_body);
    EXPECT_EQ(gone.status, 404) << method << " " << path;
    EXPECT_EQ(gone.body, NotFoundBody("Conversation", id)) << method << " " << path;
  }
}

TEST(MockConversationsTest, EmptyBodyAndNoMetadataMakeAnEmptyConversation) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  for (const absl::string_view body : {"", "{}", R"({"metadata":null,"items":null})"}) {
    const test::HttpResponse created = MustSend(client, "POST", kConversations, body);
    ASSERT_EQ(created.status, 200) << body << ": " << created.body;
    const boost::json::value conversation = Json(created.body);
    EXPECT_TRUE(conversation.at("metadata").as_object().empty());
    const boost::json::value items =
        Json(MustSend(client, "GET", ConversationPath(Str(conversation.at("id")), "/items")).body);
    EXPECT_TRUE(items.at("data").as_array().empty());
    EXPECT_TRUE(items.at("first_id").is_null());
    EXPECT_FALSE(items.at("has_more").as_bool());
  }
}

TEST(MockConversationsTest, ItemsAreListedAddedRetrievedAndDeleted) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const std::string id =
      CreateConversation(client, R"({"items":[{"type":"message","role":"user","content":"one"},
                           {"role":"assistant","content":"two"}]})");

  // Newest first by default.
  boost::json::value list = Json(MustSend(client, "GET", ConversationPath(id, "/items")).body);
  EXPECT_EQ(Str(list.at("object")), "list");
  EXPECT_THAT(Texts(list), ElementsAre("two", "one"));
  const boost::json::value& two = list.at("data").at(0);
  EXPECT_THAT(Str(two.at("id")), StartsWith("msg_"));
  EXPECT_EQ(Str(two.at("type")), "message");
  EXPECT_EQ(Str(two.at("status")), "completed");
  EXPECT_EQ(Str(two.at("role")), "assistant");
  EXPECT_EQ(Str(two.at("content").at(0).at("type")), "output_text");
  EXPECT_EQ(Str(list.at("data").at(1).at("content").at(0).at("type")), "input_text");
  EXPECT_EQ(list.at("first_id"), two.at("id"));
  EXPECT_EQ(list.at("last_id"), list.at("data").at(1).at("id"));
  EXPECT_FALSE(list.at("has_more").as_bool());

  const test::HttpResponse added =
      MustSend(client, "POST", ConversationPath(id, "/items"),
               R"({"items":[{"role":"user","content":"three"},{"role":"user","content":"four"}]})");
  ASSERT_EQ(added.status, 200) << added.body;
  const boost::json::value created = Json(added.body);
  EXPECT_EQ(Str(created.at("object")), "list");
  EXPECT_THAT(Texts(created), ElementsAre("three", "four"));  // as given
  EXPECT_FALSE(created.at("has_more").as_bool());
  const std::string three_id = Str(created.at("data").at(0).at("id"));
  EXPECT_EQ(Str(created.at("first_id")), three_id);

  list = Json(MustSend(client, "GET", ConversationPath(id, "/items?order=asc")).body);
  EXPECT_THAT(Texts(list), ElementsAre("one", "two", "three", "four"));
  list = Json(MustSend(client, "GET", ConversationPath(id, "/items?limit=3")).body);
  EXPECT_THAT(Texts(list), ElementsAre("four", "three", "two"));
  EXPECT_TRUE(list.at("has_more").as_bool());
  list = Json(
      MustSend(client, "GET",
               ConversationPath(id, absl::StrCat("/items?limit=3&after=", Str(list.at("last_id")))))
          .body);
  EXPECT_THAT(Texts(list), ElementsAre("one"));
  EXPECT_FALSE(list.at("has_more").as_bool());
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(id, "/items?limit=101")).status, 400);
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(id, "/items?order=up")).status, 400);

  const test::HttpResponse item =
      MustSend(client, "GET", ConversationPath(id, "/items/" + three_id));
  ASSERT_EQ(item.status, 200) << item.body;
  EXPECT_EQ(Json(item.body), created.at("data").at(0));

  // Deleting an item answers the conversation.
  const test::HttpResponse removed =
      MustSend(client, "DELETE", ConversationPath(id, "/items/" + three_id));
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(Str(Json(removed.body).at("object")), "conversation");
  EXPECT_EQ(Str(Json(removed.body).at("id")), id);
  list = Json(MustSend(client, "GET", ConversationPath(id, "/items?order=asc")).body);
  EXPECT_THAT(Texts(list), ElementsAre("one", "two", "four"));

  for (const absl::string_view method : {"GET", "DELETE"}) {
    const test::HttpResponse gone =
        MustSend(client, method, ConversationPath(id, "/items/" + three_id));
    EXPECT_EQ(gone.status, 404) << method;
    EXPECT_EQ(gone.body, NotFoundBody("Item", three_id)) << method;
  }
}

TEST(MockConversationsTest, UnknownIdsAndPathsAre404) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "GET", ConversationPath("conv_never")).body,
            NotFoundBody("Conversation", "conv_never"));
  EXPECT_EQ(MustSend(client, "GET", ConversationPath("conv_never", "/items")).body,
            NotFoundBody("Conversation", "conv_never"));
  // Unknown actions and methods are the resource's 404, in Azure's shape.
  const std::string id = CreateConversation(client);
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", kConversations},
           {"PUT", ConversationPath(id)},
           {"GET", ConversationPath(id, "/other")},
           {"PUT", ConversationPath(id, "/items")},
           {"POST", ConversationPath(id, "/items/msg_1")},
           {"GET", ConversationPath(id, "/items/msg_1/more")},
           {"GET", absl::StrCat(kConversations, "/")},
           // Conversations are on /openai/v1 only.
           {"POST", "/openai/conversations?api-version=2025-04-01-preview"}}) {
    const test::HttpResponse response = MustSend(client, method, path);
    EXPECT_EQ(response.status, 404) << method << " " << path;
    EXPECT_EQ(Str(Json(response.body).at("error").at("code")), "404") << method << " " << path;
  }
  const test::HttpResponse dated =
      MustSend(client, "POST", absl::StrCat(kConversations, "?api-version=2024-10-21"));
  EXPECT_EQ(dated.status, 400);
  EXPECT_EQ(dated.body, R"({"error":{"code":"BadRequest","message":"API version not supported"}})");
  EXPECT_EQ(MustSend(client, "POST", absl::StrCat(kConversations, "?api-version=preview")).status,
            200);
}

TEST(MockConversationsTest, ValidationErrors) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  auto error_of = [&](absl::string_view method, absl::string_view path, absl::string_view body) {
    const test::HttpResponse response = MustSend(client, method, path, body);
    EXPECT_EQ(response.status, 400) << body;
    return Json(response.body).at("error");
  };
  std::string metadata;
  for (int i = 0; i < 17; ++i) {
    absl::StrAppend(&metadata, i == 0 ? "" : ",", "\"k", i, "\":\"v\"");
  }
  boost::json::value error =
      error_of("POST", kConversations, absl::StrCat(R"({"metadata":{)", metadata, "}}"));
  EXPECT_EQ(Str(error.at("code")), "object_above_max_properties");
  EXPECT_EQ(Str(error.at("message")),
            "Invalid 'metadata': too many properties. Expected an object with at most 16 "
            "properties, but got an object with 17 properties instead.");
  error = error_of("POST", kConversations, R"({"metadata":"x"})");
  EXPECT_EQ(Str(error.at("message")),
            "Invalid type for 'metadata': expected a metadata object, but got a string instead.");
  error = error_of("POST", kConversations, R"({"metadata":{"k":1}})");
  EXPECT_EQ(Str(error.at("param")), "metadata.k");
  error = error_of("POST", kConversations,
                   absl::StrCat(R"({"metadata":{"k":")", std::string(513, 'v'), "\"}}"));
  EXPECT_EQ(Str(error.at("code")), "string_above_max_length");
  std::string items;
  for (int i = 0; i < 21; ++i) {
    absl::StrAppend(&items, i == 0 ? "" : ",", R"({"role":"user","content":"x"})");
  }
  error = error_of("POST", kConversations, absl::StrCat(R"({"items":[)", items, "]}"));
  EXPECT_EQ(Str(error.at("code")), "array_above_max_length");
  EXPECT_EQ(Str(error.at("message")),
            "Invalid 'items': array too long. Expected an array with maximum length 20, but got "
            "an array with length 21 instead.");
  error = error_of("POST", kConversations, R"({"items":[{"content":"no role"}]})");
  EXPECT_EQ(Str(error.at("param")), "items[0].role");
  error = error_of("POST", kConversations, R"({"items":"hi"})");
  EXPECT_EQ(Str(error.at("code")), "invalid_type");
  error = error_of("POST", kConversations, "{not json");
  EXPECT_THAT(Str(error.at("message")), HasSubstr("We could not parse the JSON body"));

  const std::string id = CreateConversation(client);
  error = error_of("POST", ConversationPath(id), "{}");
  EXPECT_EQ(Str(error.at("code")), "missing_required_parameter");
  EXPECT_EQ(Str(error.at("param")), "metadata");
  error = error_of("POST", ConversationPath(id, "/items"), "{}");
  EXPECT_EQ(Str(error.at("param")), "items");
  // Nothing was added by the refused requests.
  EXPECT_TRUE(Json(MustSend(client, "GET", ConversationPath(id, "/items")).body)
                  .at("data")
                  .as_array()
                  .empty());
}

TEST(MockConversationsTest, ResponseInAConversationAddsItsTurnAndCountsTheHistory) {
  SPILLWAY_START_MOCK(mock, {"--completion-tokens", "10"});
  test::HttpClient client = Client(*mock);
  const std::string id = CreateConversation(client);

  const test::HttpResponse first =
      MustSend(client, "POST", kResponses, InConversation("gpt-4o", "abcdefgh", Quoted(id)));
  ASSERT_EQ(first.status, 200) << first.body;
  const boost::json::value first_body = Json(first.body);
  EXPECT_EQ(first_body.at("conversation"), Json(absl::StrCat(R"({"id":")", id, "\"}")));
  EXPECT_TRUE(first_body.at("previous_response_id").is_null());
  EXPECT_EQ(first_body.at("usage").at("input_tokens").as_int64(), 2);
  const std::string output_id = Str(first_body.at("output").at(0).at("id"));

  // The turn is in the conversation: its input, then its output, as the response shows them.
  boost::json::value items =
      Json(MustSend(client, "GET", ConversationPath(id, "/items?order=asc")).body);
  ASSERT_EQ(items.at("data").as_array().size(), 2u);
  EXPECT_EQ(Str(items.at("data").at(0).at("role")), "user");
  EXPECT_EQ(Str(items.at("data").at(0).at("content").at(0).at("text")), "abcdefgh");
  EXPECT_EQ(items.at("data").at(1), first_body.at("output").at(0));
  EXPECT_EQ(Str(items.at("data").at(1).at("id")), output_id);
  const test::HttpResponse output_item =
      MustSend(client, "GET", ConversationPath(id, "/items/" + output_id));
  EXPECT_EQ(output_item.status, 200);

  // The next turn (conversation as an object) counts the first turn's 2 input and 10 output
  // tokens, as previous_response_id would, and its own 1.
  const test::HttpResponse second =
      MustSend(client, "POST", kResponses,
               InConversation("gpt-4o", "abcd", absl::StrCat(R"({"id":")", id, "\"}")));
  ASSERT_EQ(second.status, 200) << second.body;
  const boost::json::value second_body = Json(second.body);
  EXPECT_EQ(second_body.at("usage").at("input_tokens").as_int64(), 2 + 10 + 1);
  EXPECT_EQ(Str(second_body.at("conversation").at("id")), id);
  // Stored responses show it too.
  EXPECT_EQ(
      Str(Json(MustSend(client, "GET", absl::StrCat(kResponses, "/", Str(second_body.at("id"))))
                   .body)
              .at("conversation")
              .at("id")),
      id);
  items = Json(MustSend(client, "GET", ConversationPath(id, "/items")).body);
  EXPECT_EQ(items.at("data").as_array().size(), 4u);

  // Items added by hand count too (one token for "xyz"), and deleted ones no longer do.
  ASSERT_EQ(MustSend(client, "POST", ConversationPath(id, "/items"),
                     R"({"items":[{"role":"user","content":"xyz"}]})")
                .status,
            200);
  ASSERT_EQ(MustSend(client, "DELETE", ConversationPath(id, "/items/" + output_id)).status, 200);
  const test::HttpResponse third =
      MustSend(client, "POST", kResponses, InConversation("gpt-4o", "abcd", Quoted(id)));
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(Json(third.body).at("usage").at("input_tokens").as_int64(), 2 + 1 + 10 + 1 + 1);

  // A response outside any conversation says so.
  EXPECT_TRUE(Json(MustSend(client, "POST", kResponses, R"({"model":"gpt-4o","input":"hi"})").body)
                  .at("conversation")
                  .is_null());
}

TEST(MockConversationsTest, StreamedAndPreviewResponsesJoinTheConversationToo) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d", "--completion-tokens", "3"});
  test::HttpClient client = Client(*mock);
  const std::string id = CreateConversation(client);
  const test::HttpResponse streamed = MustSend(
      client, "POST", kResponses,
      absl::StrCat(R"({"model":"d","input":"hi","stream":true,"conversation":")", id, "\"}"));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_THAT(streamed.body, HasSubstr(absl::StrCat(R"("conversation":{"id":")", id, "\"}")));
  const test::HttpResponse preview =
      MustSend(client, "POST", "/openai/responses?api-version=2025-04-01-preview",
               InConversation("d", "again", Quoted(id)));
  ASSERT_EQ(preview.status, 200) << preview.body;
  // "hi" and 3 output tokens before this turn's 2.
  EXPECT_EQ(Json(preview.body).at("usage").at("input_tokens").as_int64(), 1 + 3 + 2);
  const boost::json::value items =
      Json(MustSend(client, "GET", ConversationPath(id, "/items?order=asc")).body);
  ASSERT_EQ(items.at("data").as_array().size(), 4u);
  EXPECT_EQ(Str(items.at("data").at(2).at("content").at(0).at("text")), "again");
}

TEST(MockConversationsTest, ResponsesRefuseUnknownConversationsAndPreviousResponseIdWithOne) {
  SPILLWAY_START_MOCK(a, {"--deployments", "d"});
  SPILLWAY_START_MOCK(b, {"--deployments", "d"});
  test::HttpClient on_a = Client(*a);
  test::HttpClient on_b = Client(*b);
  const std::string id = CreateConversation(on_a);

  // The other resource knows nothing of it.
  const test::HttpResponse elsewhere =
      MustSend(on_b, "POST", kResponses, InConversation("d", "hi", Quoted(id)));
  EXPECT_EQ(elsewhere.status, 404);
  EXPECT_EQ(elsewhere.body, NotFoundBody("Conversation", id));
  EXPECT_TRUE(elsewhere.HasHeader("x-ratelimit-remaining-tokens"));
  EXPECT_EQ(MustSend(on_b, "GET", ConversationPath(id)).status, 404);
  EXPECT_EQ(MustSend(on_b, "POST", kResponses,
                     InConversation("d", "hi", absl::StrCat(R"({"id":")", id, "\"}")))
                .status,
            404);

  const std::string response =
      Str(Json(MustSend(on_a, "POST", kResponses, R"({"model":"d","input":"hi"})").body).at("id"));
  const test::HttpResponse both =
      MustSend(on_a, "POST", kResponses,
               absl::StrCat(R"({"model":"d","input":"hi","conversation":")", id,
                            R"(","previous_response_id":")", response, "\"}"));
  EXPECT_EQ(both.status, 400);
  EXPECT_EQ(Str(Json(both.body).at("error").at("code")), "mutually_exclusive_parameters");
  EXPECT_THAT(Str(Json(both.body).at("error").at("message")),
              HasSubstr("Mutually exclusive parameters"));
  const test::HttpResponse bad_type =
      MustSend(on_a, "POST", kResponses, InConversation("d", "hi", "3"));
  EXPECT_EQ(bad_type.status, 400);
  EXPECT_EQ(Str(Json(bad_type.body).at("error").at("param")), "conversation");
  const test::HttpResponse no_id =
      MustSend(on_a, "POST", kResponses, InConversation("d", "hi", "{}"));
  EXPECT_EQ(Str(Json(no_id.body).at("error").at("param")), "conversation.id");

  // A deleted conversation takes no more turns; none of the refused requests added any.
  ASSERT_EQ(MustSend(on_a, "DELETE", ConversationPath(id)).status, 200);
  EXPECT_EQ(MustSend(on_a, "POST", kResponses, InConversation("d", "hi", Quoted(id))).status, 404);
  // Refused creates were not charged.
  EXPECT_EQ(Stats(*a).at("deployments").at("d").at("usage").at("prompt_tokens").as_int64(), 1);
}

TEST(MockConversationsTest, AuthAndFaultsApply) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", "k", "--deployments", "d"});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", kConversations).status, 401);
  const test::HttpHeaders key = {{"api-key", "k"}};
  const test::HttpResponse created = MustSend(client, "POST", kConversations, "", key);
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = Str(Json(created.body).at("id"));
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(id)).status, 401);
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(id, "/items")).status, 401);

  test::HttpClient control = Client(*mock);
  // A fault aimed at a deployment leaves conversations alone; one aimed at none applies.
  ASSERT_EQ(MustSend(control, "POST", "/mock/faults", R"({"status":503,"deployment":"d"})").status,
            200);
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(id), "", key).status, 200);
  ASSERT_EQ(MustSend(control, "DELETE", "/mock/faults").status, 200);
  ASSERT_EQ(
      MustSend(control, "POST", "/mock/faults", R"({"status":429,"retry_after_ms":2000,"count":2})")
          .status,
      200);
  const test::HttpResponse throttled = MustSend(client, "GET", ConversationPath(id), "", key);
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(throttled.Header("retry-after-ms"), "2000");
  EXPECT_THAT(Str(Json(throttled.body).at("error").at("message")),
              HasSubstr("Requests to the Conversations_Get Operation"));
  // Faults come before the lookup: an unknown id is faulted too.
  EXPECT_EQ(MustSend(client, "GET", ConversationPath("conv_x"), "", key).status, 429);
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(id), "", key).status, 200);
}

TEST(MockConversationsTest, StatsLogShowsTheConversation) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d"});
  test::HttpClient client = Client(*mock);
  const std::string id = CreateConversation(client);
  ASSERT_EQ(MustSend(client, "POST", kResponses, InConversation("d", "hi", Quoted(id))).status,
            200);
  ASSERT_EQ(MustSend(client, "GET", ConversationPath(id, "/items")).status, 200);
  ASSERT_EQ(MustSend(client, "GET", ConversationPath("conv_x")).status, 404);

  const boost::json::value stats = Stats(*mock);
  const boost::json::array& log = stats.at("log").as_array();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(Str(log[0].at("method")), "POST");
  EXPECT_EQ(Str(log[0].at("path")), kConversations);
  EXPECT_EQ(Str(log[0].at("conversation_id")), id);
  EXPECT_EQ(Str(log[0].at("deployment")), "");
  EXPECT_EQ(log[0].at("status").as_int64(), 200);
  EXPECT_EQ(Str(log[1].at("path")), kResponses);
  EXPECT_EQ(Str(log[1].at("deployment")), "d");
  EXPECT_EQ(Str(log[1].at("conversation_id")), id);
  EXPECT_THAT(Str(log[1].at("response_id")), StartsWith("resp_"));
  EXPECT_EQ(Str(log[2].at("method")), "GET");
  EXPECT_EQ(Str(log[2].at("path")), ConversationPath(id, "/items"));
  EXPECT_EQ(Str(log[2].at("conversation_id")), id);
  EXPECT_EQ(Str(log[3].at("conversation_id")), "conv_x");
  EXPECT_EQ(log[3].at("status").as_int64(), 404);
  EXPECT_EQ(Str(log[0].at("response_id")), "");
  EXPECT_EQ(stats.at("conversations").at("stored").as_int64(), 1);

  // POST /mock/reset forgets the conversations too.
  ASSERT_EQ(MustSend(client, "POST", "/mock/reset").status, 200);
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(id)).status, 404);
  EXPECT_EQ(Stats(*mock).at("conversations").at("stored").as_int64(), 0);
}

TEST(MockConversationsTest, OldestConversationsAndItemsAreEvicted) {
  SPILLWAY_START_MOCK(mock, {"--conversations-max-stored", "2", "--conversations-max-items", "3"});
  test::HttpClient client = Client(*mock);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(CreateConversation(client));
  }
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(ids[0])).status, 404);
  EXPECT_EQ(MustSend(client, "GET", ConversationPath(ids[2])).status, 200);

  ASSERT_EQ(MustSend(client, "POST", ConversationPath(ids[2], "/items"),
                     R"({"items":[{"role":"user","content":"1"},{"role":"user","content":"2"},
                                  {"role":"user","content":"3"},{"role":"user","content":"4"}]})")
                .status,
            200);
  const boost::json::value list =
      Json(MustSend(client, "GET", ConversationPath(ids[2], "/items?order=asc")).body);
  EXPECT_THAT(Texts(list), ElementsAre("2", "3", "4"));
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(stats.at("conversations").at("stored").as_int64(), 2);
  EXPECT_EQ(stats.at("conversations").at("evicted").as_int64(), 1);
  EXPECT_EQ(stats.at("conversations").at("items_evicted").as_int64(), 1);
}

}  // namespace
}  // namespace spillway::mock
