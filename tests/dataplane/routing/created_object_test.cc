// Reading a created object's id from the head of a backend's answer.
#include "dataplane/routing/created_object.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

TEST(CreatedObject, TakesTheTopLevelIdOfAJsonBody) {
  EXPECT_EQ(FindCreatedObjectId(R"({"id":"resp_1","object":"response","output":[{"id":"msg_2"}]})",
                                "resp_"),
            "resp_1");
  // Nested ids (output items, messages) are not the created object.
  EXPECT_EQ(FindCreatedObjectId(R"({"object":"response","output":[{"id":"resp_x"}]})", "resp_"),
            "");
  EXPECT_EQ(FindCreatedObjectId(R"({"id":"chatcmpl-1"})", "resp_"), "") << "not of the kind";
  EXPECT_EQ(FindCreatedObjectId(R"({"id":"resp_"})", "resp_"), "") << "no id after the prefix";
}

TEST(CreatedObject, TakesTheResponseIdOfAStreamsFirstEvent) {
  const std::string stream =
      "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"
      "\"response\":{\"id\":\"resp_9\",\"object\":\"response\",\"output\":[]}}\n\n"
      "event: response.in_progress\ndata: {\"response\":{\"id\":\"resp_other\"}}\n\n";
  EXPECT_EQ(FindCreatedObjectId(stream, "resp_"), "resp_9");
}

TEST(CreatedObject, AThreadMadeWithItsRunIsTheRunsThreadId) {
  const std::string run =
      R"({"id":"run_1","object":"thread.run","thread_id":"thread_7","status":"queued"})";
  EXPECT_EQ(FindCreatedObjectId(run, "thread_"), "thread_7");
  EXPECT_EQ(FindCreatedObjectId(R"({"id":"thread_8","object":"thread"})", "thread_"), "thread_8");
  EXPECT_EQ(
      FindCreatedObjectId(
          "event: thread.run.created\ndata: {\"id\":\"run_2\",\"thread_id\":\"thread_9\"}\n\n",
          "thread_"),
      "thread_9");
  EXPECT_EQ(FindCreatedObjectId(R"({"id":"file-1","thread_id":"thread_x"})", "file-"), "file-1");
}

TEST(CreatedObject, AHeadCutMidDocumentStillYieldsAnEarlierId) {
  const std::string body = R"({"id":"resp_cut","instructions":")" + std::string(10000, 'x');
  CreatedObjectScanner scanner(true);
  for (std::size_t at = 0; at < body.size(); at += 7) {
    scanner.Feed(absl::string_view(body).substr(at, 7));
  }
  EXPECT_EQ(scanner.Finish("resp_"), "resp_cut");
  CreatedObjectScanner disabled(false);
  disabled.Feed(body);
  EXPECT_EQ(disabled.Finish("resp_"), "");
}

TEST(CreatedObject, GarbageYieldsNothing) {
  for (const char* head : {"", "not json", "data: [DONE]", "{\"id\":12}", "[\"resp_1\"]",
                           "{\"id\":\"resp_1\"", "data: {\"id\":"}) {
    const std::string id = FindCreatedObjectId(head, "resp_");
    EXPECT_TRUE(id.empty() || id == "resp_1") << head;
  }
}

}  // namespace
}  // namespace spillway
