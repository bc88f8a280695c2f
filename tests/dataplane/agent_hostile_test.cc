// Requests and backends that do what a well-behaved peer would not: every answer must still
// reach the client that asked, and only that client.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/dataplane/agent_fixture.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Two routes on one backend endpoint, so both share the agent's pooled connections: an answer
// left on a connection would be read by the other route's next request.
constexpr char kTopology[] = R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
deployments:
  - { instance: a, name: chat, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
  - { instance: a, name: embed, model: text-embedding-3-large, version: "1", sku: Standard, capacity: 1000 }
pools:
  - { name: chat-pool, members: [ { deployment: a/chat } ] }
  - { name: embed-pool, members: [ { deployment: a/embed } ] }
routes:
  - { name: gpt-4o, stamp: us, tiers: [ chat-pool ] }
  - { name: embeddings, stamp: us, tiers: [ embed-pool ] }
)";

constexpr char kEmbeddingsTarget[] =
    "/openai/deployments/embeddings/embeddings?api-version=2024-10-21";

class AgentHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "chat:model=gpt-4o,embed"}).ok());
    ASSERT_TRUE(fleet_.StartAgent(kTopology, "eastus2").ok());
  }

  // Sends `request` on a fresh raw connection and returns all the agent wrote until it closed.
  std::string SendRaw(const std::string& request) {
    const int fd = ConnectRaw(fleet_.agent_port(), 10);
    EXPECT_GE(fd, 0);
    if (fd < 0) {
      return "";
    }
    EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string reply;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) {
      reply.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
  }

  // An embeddings call on its own connection: its answer must be an embeddings answer.
  void ExpectOwnEmbeddingsAnswer() {
    auto client = fleet_.AgentClient();
    absl::StatusOr<HttpResponse> r =
        client->Send("POST", kEmbeddingsTarget, {}, R"({"input": "which answer is mine?"})");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_THAT(r->body, HasSubstr(R"("object":"list")"));
    EXPECT_THAT(r->body, Not(HasSubstr("chat.completion")));
  }

  // A chat call on its own connection: a final 200 with a chat completion.
  void ExpectOwnChatAnswer() {
    auto client = fleet_.AgentClient();
    absl::StatusOr<HttpResponse> r = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_THAT(r->body, HasSubstr(R"("object":"chat.completion")"));
  }

  AgentFleet fleet_;
};

// curl (for bodies over 1 KiB) and .NET Framework send Expect: 100-continue. A backend front
// end that answers the interim 100 must not make the client take it for the final answer, nor
// leave the real answer on a pooled connection for the next client (issue 15, item 1).
TEST_F(AgentHostile, ExpectContinueNeverHandsAnAnswerToAnotherClient) {
  const std::string body = ChatBody();
  const std::string request =
      absl::StrCat("POST ", ChatTarget("gpt-4o"),
                   " HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"
                   "Expect: 100-continue\r\nConnection: close\r\nContent-Length: ",
                   body.size(), "\r\n\r\n", body);
  for (int round = 0; round < 12; ++round) {
    std::string reply = SendRaw(request);
    // An interim 100 to the client is allowed (it asked for one); the final answer follows.
    if (absl::StartsWith(reply, "HTTP/1.1 100 ")) {
      reply.erase(0, reply.find("\r\n\r\n") + 4);
    }
    EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 200 ")) << "round " << round;
    EXPECT_THAT(reply, HasSubstr(R"("object":"chat.completion")")) << "round " << round;
    ExpectOwnEmbeddingsAnswer();
  }
}

// Interim answers a backend sends unasked (103 Early Hints, 100, 102) are skipped: the client
// gets the final answer, and the connection carries nothing left over into the next request.
TEST_F(AgentHostile, InterimAnswersFromTheBackendAreSkipped) {
  for (const int interim : {103, 100, 102}) {
    SCOPED_TRACE(interim);
    ASSERT_TRUE(fleet_
                    .SetFault("a", absl::StrCat(R"({"mode":"interim","deployment":"chat",)",
                                                R"("count":3,"status":)", interim, "}"))
                    .ok());
    for (int i = 0; i < 3; ++i) {
      ExpectOwnChatAnswer();
      ExpectOwnEmbeddingsAnswer();
    }
    ASSERT_TRUE(fleet_.SetFault("a", "").ok());
  }
  // Streams too: the SSE answer follows the interim one.
  ASSERT_TRUE(fleet_.SetFault("a", R"({"mode":"interim","deployment":"chat","count":1})").ok());
  auto client = fleet_.AgentClient();
  absl::StatusOr<HttpResponse> r =
      client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(8, /*stream=*/true));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("data: [DONE]"));
  ExpectOwnEmbeddingsAnswer();
}

}  // namespace
}  // namespace spillway::test
