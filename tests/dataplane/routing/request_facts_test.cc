// ReadRequestFacts: what one SAX pass over a request body finds, on the body shapes of every
// Azure OpenAI surface, and the errors bad bodies get.
#include "dataplane/routing/request_facts.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

TEST(RequestFacts, ChatCompletionCountsMessageTextAndReadsFlags) {
  absl::StatusOr<RequestFacts> facts = ReadRequestFacts(R"({
    "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": [{"type": "text", "text": "Hello there"},
                                   {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
      {"role": "assistant", "content": null,
       "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
      {"role": "tool", "name": "lookup", "content": "42"}
    ],
    "max_tokens": 100, "max_completion_tokens": 250, "n": 3, "temperature": 0.5,
    "metadata": {"content": "not prompt text", "role": "not a message"}})");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->model, "gpt-4o");
  EXPECT_TRUE(facts->stream);
  EXPECT_TRUE(facts->include_usage);
  EXPECT_EQ(facts->max_output_tokens, 250);
  EXPECT_EQ(facts->choices, 3);
  // "You are terse." 14 + "Hello there" 11 + "lookup" 6 + "42" 2 = 33 chars in 4 messages;
  // tool call arguments sit under tool_calls (not a text key) and the metadata is no prompt.
  EXPECT_EQ(facts->prompt_tokens_estimate, EstimateTokensFromChars(33, 4));
  EXPECT_EQ(facts->EstimatedTokens(1024), EstimateTokensFromChars(33, 4) + 250 * 3);
}

TEST(RequestFacts, PromptStringsArraysAndResponsesInput) {
  absl::StatusOr<RequestFacts> completions =
      ReadRequestFacts(R"({"prompt": ["abcd", "efgh"], "best_of": 2, "max_tokens": 5})");
  ASSERT_TRUE(completions.ok());
  EXPECT_EQ(completions->prompt_tokens_estimate, EstimateTokensFromChars(8, 0));
  EXPECT_EQ(completions->choices, 2);
  EXPECT_FALSE(completions->stream);

  absl::StatusOr<RequestFacts> responses = ReadRequestFacts(
      R"({"model":"m","instructions":"Be brief","previous_response_id":"resp_1",)"
      R"("input":[{"role":"user","content":[{"type":"input_text","text":"Hi \u00e9"}]}],)"
      R"("max_output_tokens":64,"stream":false,"store":false})");
  ASSERT_TRUE(responses.ok()) << responses.status();
  EXPECT_EQ(responses->previous_response_id, "resp_1");
  EXPECT_FALSE(responses->store);
  EXPECT_EQ(responses->max_output_tokens, 64);
  // "Be brief" 8 + "Hi é" 5 (bytes after unescaping: é is 2 in UTF-8) = 13, 1 message.
  EXPECT_EQ(responses->prompt_tokens_estimate, EstimateTokensFromChars(13, 1));
}

// A response joins a conversation named by its id or by an object holding it; nothing else
// in the body (an "id" elsewhere, a conversation that is neither) is taken for one.
TEST(RequestFacts, TheConversationIsReadAsAStringOrAnObjectsId) {
  absl::StatusOr<RequestFacts> as_string =
      ReadRequestFacts(R"({"model":"m","conversation":"conv_1","input":"hi"})");
  ASSERT_TRUE(as_string.ok()) << as_string.status();
  EXPECT_EQ(as_string->conversation, "conv_1");

  absl::StatusOr<RequestFacts> as_object = ReadRequestFacts(
      R"({"model":"m","conversation":{"metadata":{"id":"x"},"id":"conv_2"},"id":"resp_9"})");
  ASSERT_TRUE(as_object.ok()) << as_object.status();
  EXPECT_EQ(as_object->conversation, "conv_2");
  EXPECT_EQ(as_object->model, "m");

  for (const char* body : {R"({"conversation":["conv_3"]})", R"({"conversation":7})",
                           R"({"input":[{"id":"conv_4","role":"user","content":"x"}]})"}) {
    absl::StatusOr<RequestFacts> facts = ReadRequestFacts(body);
    ASSERT_TRUE(facts.ok()) << body;
    EXPECT_EQ(facts->conversation, "") << body;
  }
}

TEST(RequestFacts, AbsentFieldsTakeDefaults) {
  absl::StatusOr<RequestFacts> facts = ReadRequestFacts(R"({"input": "embed me"})");
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(facts->model, "");
  EXPECT_FALSE(facts->include_usage);
  EXPECT_TRUE(facts->store) << "Azure stores responses unless told not to";
  EXPECT_EQ(facts->max_output_tokens, 0);
  EXPECT_EQ(facts->choices, 1);
  EXPECT_EQ(facts->EstimatedTokens(16), EstimateTokensFromChars(8, 0) + 16);
  EXPECT_TRUE(ReadRequestFacts("").ok());
  // stream_options that is not an object, and a huge unsigned max, are tolerated.
  absl::StatusOr<RequestFacts> odd = ReadRequestFacts(
      R"({"stream_options": true, "max_tokens": 18446744073709551615, "stream": "yes"})");
  ASSERT_TRUE(odd.ok());
  EXPECT_FALSE(odd->include_usage);
  EXPECT_FALSE(odd->stream);
  EXPECT_EQ(odd->max_output_tokens, INT64_MAX);
}

TEST(RequestFacts, BadBodiesAreRejectedWithTheReason) {
  for (const char* body : {"[1,2]", "\"text\"", "42", "null"}) {
    absl::StatusOr<RequestFacts> facts = ReadRequestFacts(body);
    ASSERT_FALSE(facts.ok()) << body;
    EXPECT_EQ(facts.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(facts.status().message(), "request body must be a JSON object") << body;
  }
  for (const char* body : {"{\"model\": ", "{\"a\":1} {\"b\":2}", "{'a':1}", "{\"a\":1,}"}) {
    absl::StatusOr<RequestFacts> facts = ReadRequestFacts(body);
    ASSERT_FALSE(facts.ok()) << body;
    EXPECT_NE(facts.status().message().find("request body is not valid JSON"),
              absl::string_view::npos)
        << body << ": " << facts.status();
  }
  EXPECT_TRUE(ReadRequestFacts("{\"a\":1}  \n").ok()) << "trailing whitespace is fine";
}

TEST(RequestFacts, RealtimeClientSecretsNameTheModelInTheSession) {
  absl::StatusOr<RequestFacts> facts = ReadRequestFacts(
      R"({"expires_after":{"anchor":"created_at","seconds":600},)"
      R"("session":{"type":"realtime","model":"gpt-rt","audio":{"model":"not-this"}}})");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->session_model, "gpt-rt");
  EXPECT_EQ(facts->model, "");
  // Only a top-level session counts, and only an object.
  facts = ReadRequestFacts(R"({"model":"m","x":{"session":{"model":"no"}},"session":"s"})");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->model, "m");
  EXPECT_EQ(facts->session_model, "");
}

TEST(RequestFacts, ReplaceModelRewritesTheSessionsModel) {
  absl::StatusOr<std::string> body =
      ReplaceModel(R"({"session":{"type":"realtime","model":"gpt-rt"}})", "rt-eus2", true);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, R"({"session":{"type":"realtime","model":"rt-eus2"}})");
  EXPECT_FALSE(ReplaceModel(R"({"model":"m"})", "d", true).ok());
}

}  // namespace
}  // namespace spillway

namespace spillway {
namespace {

// max_tokens × n used to overflow and wrap, so a request asking for the most was charged
// nothing (issue 15, item 7).
TEST(RequestFacts, HugeMaxTokensAndChoicesSaturateInsteadOfOverflowing) {
  for (const char* body :
       {R"({"prompt":"x","max_tokens":9223372036854775807,"n":9223372036854775807})",
        R"({"prompt":"x","max_tokens":18446744073709551615,"best_of":4})",
        R"({"prompt":"x","max_tokens":4611686018427387904,"n":2})",
        R"({"prompt":"x","max_completion_tokens":1000000000000,"n":128})"}) {
    absl::StatusOr<RequestFacts> facts = ReadRequestFacts(body);
    ASSERT_TRUE(facts.ok()) << body;
    EXPECT_EQ(facts->EstimatedTokens(1024), RequestFacts::kMaxEstimate) << body;
  }
  // Negative counts are no discount: they take the defaults.
  absl::StatusOr<RequestFacts> negative =
      ReadRequestFacts(R"({"prompt":"abcd","max_tokens":-5,"n":-3})");
  ASSERT_TRUE(negative.ok());
  EXPECT_EQ(negative->EstimatedTokens(100), negative->prompt_tokens_estimate + 100);
  EXPECT_GT(negative->prompt_tokens_estimate, 0);
}

TEST(RequestFacts, ObjectsNamedAnywhereInTheBodyAreCollectedInOrder) {
  absl::StatusOr<RequestFacts> facts =
      ReadRequestFacts(R"({"model":"m","input":[{"role":"user","content":[{"type":"input_file",)"
                       R"("file_id":"file-a"},{"type":"input_text","text":"hi"}]}],)"
                       R"("tools":[{"type":"file_search","vector_store_ids":["vs_1","vs_2"]}],)"
                       R"("tool_resources":{"code_interpreter":{"file_ids":["file-b"]}}})");
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->object_refs.size(), 4u);
  EXPECT_EQ(facts->object_refs[0].field, "file_id");
  EXPECT_EQ(facts->object_refs[0].id, "file-a");
  EXPECT_EQ(facts->object_refs[1].field, "vector_store_ids");
  EXPECT_EQ(facts->object_refs[1].id, "vs_1");
  EXPECT_EQ(facts->object_refs[2].id, "vs_2");
  EXPECT_EQ(facts->object_refs[3].field, "file_ids");
  EXPECT_EQ(facts->object_refs[3].id, "file-b");
  EXPECT_GT(facts->prompt_tokens_estimate, 0) << "the text around them still counts";

  facts = ReadRequestFacts(
      R"({"input_file_id":"file-in","endpoint":"/chat/completions","assistant_id":"asst_1",)"
      R"("thread_id":"thread_1"})");
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->object_refs.size(), 3u);
  EXPECT_EQ(facts->object_refs[0].field, "input_file_id");
  EXPECT_EQ(facts->object_refs[1].field, "assistant_id");
  EXPECT_EQ(facts->object_refs[2].field, "thread_id");
}

TEST(RequestFacts, ObjectReferencesAreBounded) {
  // Not strings, not a list where one is due, empty or oversized ids: nothing taken.
  absl::StatusOr<RequestFacts> facts = ReadRequestFacts(
      R"({"file_id":7,"vector_store_ids":"vs_1","file_ids":[["file-x"]],"thread_id":"",)"
      R"("assistant_id":")" +
      std::string(RequestFacts::kMaxObjectRefBytes + 1, 'a') + "\"}");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_TRUE(facts->object_refs.empty());
  std::string many = R"({"file_ids":[)";
  for (int i = 0; i < 100; ++i) {
    absl::StrAppend(&many, i == 0 ? "" : ",", "\"file-", i, "\"");
  }
  many += "]}";
  facts = ReadRequestFacts(many);
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->object_refs.size(), RequestFacts::kMaxObjectRefs);
  EXPECT_EQ(facts->object_refs.front().id, "file-0");
}

}  // namespace
}  // namespace spillway
