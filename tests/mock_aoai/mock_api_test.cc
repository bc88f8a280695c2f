// spillway-mock-aoai's API surface against the real binary: paths, auth, errors, response
// bodies and headers, usage numbers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kUnauthorizedBody[] =
    R"({"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})";
constexpr char kDeploymentNotFoundBody[] =
    R"({"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}})";
constexpr char kResourceNotFoundBody[] =
    R"({"error":{"code":"404","message":"Resource not found"}})";

bool IsUuid(const std::string& text) {
  static const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  return std::regex_match(text, kUuid);
}

// Sends raw bytes on a fresh connection and returns what comes back before the server closes
// (`closed` tells whether it did, rather than our 5 s receive timeout ending the wait).
std::string RawExchange(int port, const std::string& bytes, bool* closed = nullptr) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    char buffer[4096];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
      reply.append(buffer, n);
    }
    if (closed != nullptr) {
      *closed = n == 0;
    }
  }
  close(fd);
  return reply;
}

TEST(MockApiTest, ChatCompletionHasAzureShape) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "chat:model=gpt-4o-mini"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response =
      MustSend(client, "POST", ChatPath("chat"),
               R"({"messages":[{"role":"system","content":"You are helpful."},
                      {"role":"user","content":"hello world"}]})");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.Header("content-type"), "application/json");
  const boost::json::value body = Json(response.body);
  EXPECT_THAT(Str(body.at("id")), StartsWith("chatcmpl-"));
  EXPECT_EQ(Str(body.at("object")), "chat.completion");
  EXPECT_GT(body.at("created").as_int64(), 1'600'000'000);
  EXPECT_EQ(Str(body.at("model")), "gpt-4o-mini");
  EXPECT_FALSE(Str(body.at("system_fingerprint")).empty());
  ASSERT_EQ(body.at("choices").as_array().size(), 1u);
  const boost::json::value& choice = body.at("choices").at(0);
  EXPECT_EQ(choice.at("index").as_int64(), 0);
  EXPECT_EQ(Str(choice.at("message").at("role")), "assistant");
  EXPECT_FALSE(Str(choice.at("message").at("content")).empty());
  EXPECT_EQ(Str(choice.at("finish_reason")), "stop");
  EXPECT_TRUE(choice.at("content_filter_results").is_object());
  EXPECT_EQ(body.at("prompt_filter_results").at(0).at("prompt_index").as_int64(), 0);

  // 16 characters -> 4 tokens, 11 -> 3; the default answer is 16 tokens.
  const boost::json::value& usage = body.at("usage");
  EXPECT_EQ(usage.at("prompt_tokens").as_int64(), 7);
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), 16);
  EXPECT_EQ(usage.at("total_tokens").as_int64(), 23);
  EXPECT_EQ(usage.at("prompt_tokens_details").at("cached_tokens").as_int64(), 0);
  EXPECT_EQ(usage.at("completion_tokens_details").at("reasoning_tokens").as_int64(), 0);
}

TEST(MockApiTest, EveryResponseCarriesAzureHeaders) {
  SPILLWAY_START_MOCK(mock, {"--region", "westus3", "--deployments", "d:tpm=60000:rpm=600"});
  test::HttpClient client = Client(*mock);
  std::set<std::string> ids;
  for (const std::string& body : {ChatBody("hi"), std::string("{bad json")}) {
    const test::HttpResponse response = MustSend(client, "POST", ChatPath("d"), body);
    SCOPED_TRACE(response.status);
    EXPECT_EQ(response.Header("x-ms-region"), "westus3");
    EXPECT_EQ(response.Header("x-ratelimit-limit-tokens"), "60000");
    EXPECT_EQ(response.Header("x-ratelimit-limit-requests"), "600");
    EXPECT_TRUE(response.HasHeader("x-ratelimit-remaining-tokens"));
    EXPECT_TRUE(response.HasHeader("x-ratelimit-remaining-requests"));
    for (const char* name : {"x-request-id", "apim-request-id"}) {
      const std::string id = response.Header(name).value_or("");
      EXPECT_TRUE(IsUuid(id)) << name << ": " << id;
      EXPECT_TRUE(ids.insert(id).second) << "repeated id " << id;
    }
  }
}

TEST(MockApiTest, UsageFollowsTheEstimatorAndMaxTokens) {
  SPILLWAY_START_MOCK(mock, {"--completion-tokens", "20"});
  test::HttpClient client = Client(*mock);
  // 41 characters -> 11 tokens; max_tokens below the default length truncates.
  const std::string content(41, 'a');
  test::HttpResponse response =
      MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody(content, R"("max_tokens":5)"));
  ASSERT_EQ(response.status, 200) << response.body;
  boost::json::value body = Json(response.body);
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), 11);
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 5);
  EXPECT_EQ(body.at("usage").at("total_tokens").as_int64(), 16);
  EXPECT_EQ(Str(body.at("choices").at(0).at("finish_reason")), "length");

  response = MustSend(client, "POST", ChatPath("gpt-4o"),
                      ChatBody("hi", R"("max_completion_tokens":100,"n":3)"));
  ASSERT_EQ(response.status, 200) << response.body;
  body = Json(response.body);
  EXPECT_EQ(body.at("choices").as_array().size(), 3u);
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 3 * 20);
  EXPECT_EQ(Str(body.at("choices").at(2).at("finish_reason")), "stop");
}

TEST(MockApiTest, RepeatedLongPromptReportsCachedTokens) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const std::string body = ChatBody(std::string(4 * 1300, 'x'));  // 1300 tokens
  auto cached = [&]() {
    const test::HttpResponse response = MustSend(client, "POST", ChatPath("gpt-4o"), body);
    return Json(response.body)
        .at("usage")
        .at("prompt_tokens_details")
        .at("cached_tokens")
        .as_int64();
  };
  EXPECT_EQ(cached(), 0);
  EXPECT_EQ(cached(), 1280);  // rounded down to 128-token blocks
  // Short prompts are never cached.
  const test::HttpResponse short_prompt =
      MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("x"));
  const test::HttpResponse again = MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("x"));
  EXPECT_EQ(Json(again.body).at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(),
            0);
}

TEST(MockApiTest, AuthAcceptsConfiguredKeysAndTokens) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", "k1,k2", "--bearer-tokens", "t1"});
  test::HttpClient client = Client(*mock);
  const std::string body = ChatBody("hi");
  for (const test::HttpHeaders& headers :
       {test::HttpHeaders{}, test::HttpHeaders{{"api-key", "wrong"}},
        test::HttpHeaders{{"Authorization", "Bearer wrong"}},
        test::HttpHeaders{{"Authorization", "k1"}}}) {
    const test::HttpResponse response = MustSend(client, "POST", ChatPath("gpt-4o"), body, headers);
    EXPECT_EQ(response.status, 401);
    EXPECT_EQ(response.body, kUnauthorizedBody);
    EXPECT_TRUE(IsUuid(response.Header("x-request-id").value_or("")));
  }
  for (const test::HttpHeaders& headers :
       {test::HttpHeaders{{"api-key", "k2"}}, test::HttpHeaders{{"Authorization", "Bearer t1"}}}) {
    EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), body, headers).status, 200);
  }
}

TEST(MockApiTest, UnknownDeploymentIsDeploymentNotFound) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response = MustSend(client, "POST", ChatPath("nope"), ChatBody("hi"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, kDeploymentNotFoundBody);
}

TEST(MockApiTest, ClassicPathWithoutApiVersionIsResourceNotFound) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response =
      MustSend(client, "POST", "/openai/deployments/gpt-4o/chat/completions", ChatBody("hi"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, kResourceNotFoundBody);
}

TEST(MockApiTest, UnknownPathsAre404) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(
      MustSend(client, "POST", "/openai/deployments/gpt-4o/images/generations?api-version=1", "{}")
          .status,
      404);
  EXPECT_EQ(MustSend(client, "GET", "/").status, 404);
  EXPECT_EQ(MustSend(client, "GET", ChatPath("gpt-4o")).status, 404);
}

TEST(MockApiTest, BadBodiesAre400) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  for (const char* body : {"{not json", "[]", R"({"messages":"hi"})",
                           R"({"messages":[{"content":"x"}],"max_tokens":-1})"}) {
    const test::HttpResponse response = MustSend(client, "POST", ChatPath("gpt-4o"), body);
    EXPECT_EQ(response.status, 400) << body;
    const boost::json::value error = Json(response.body);
    EXPECT_EQ(Str(error.at("error").at("code")), "BadRequest");
    EXPECT_FALSE(Str(error.at("error").at("message")).empty());
  }
  // The connection survives a 400 for a bad body.
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

TEST(MockApiTest, BodyOverTheLimitIs413) {
  SPILLWAY_START_MOCK(mock, {"--body-limit", "1024"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response =
      MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody(std::string(4096, 'x')));
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(Str(Json(response.body).at("error").at("code")), "RequestEntityTooLarge");
  test::HttpClient fresh = Client(*mock);
  EXPECT_EQ(MustSend(fresh, "POST", ChatPath("gpt-4o"), ChatBody("small")).status, 200);
}

TEST(MockApiTest, MalformedHttpIs400AndClose) {
  SPILLWAY_START_MOCK(mock, {});
  const std::string reply = RawExchange(mock->port(), "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(reply, HasSubstr(R"("code":"BadRequest")"));
  EXPECT_THAT(reply, HasSubstr("Connection: close"));
}

TEST(MockApiTest, OversizedHeadersAre400) {
  SPILLWAY_START_MOCK(mock, {});
  const std::string reply =
      RawExchange(mock->port(), absl::StrCat("GET /mock/stats HTTP/1.1\r\nHost: x\r\nX-Big: ",
                                             std::string(70 * 1024, 'a'), "\r\n\r\n"));
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 400 "));
}

TEST(MockApiTest, IdleKeepAliveConnectionsAreClosed) {
  SPILLWAY_START_MOCK(mock, {"--idle-timeout-ms", "200"});
  // One answered request, then silence: the mock hangs up (recv sees EOF, not our 5 s timeout).
  const std::string request = absl::StrCat("GET /mock/stats HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  const std::string reply = RawExchange(mock->port(), request, &closed);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200 "));
  EXPECT_TRUE(closed);
}

TEST(MockApiTest, ExpectContinueIsAnswered) {
  SPILLWAY_START_MOCK(mock, {});
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(mock->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string body = ChatBody("hi");
  const std::string head = absl::StrCat("POST ", ChatPath("gpt-4o"),
                                        " HTTP/1.1\r\nHost: x\r\nContent-Length: ", body.size(),
                                        "\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  // The body is held back until the mock says to continue.
  std::string reply;
  char buffer[4096];
  ssize_t n;
  while (reply.find("\r\n\r\n") == std::string::npos &&
         (n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    reply.append(buffer, n);
  }
  EXPECT_EQ(reply, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(send(fd, body.data(), body.size(), MSG_NOSIGNAL), static_cast<ssize_t>(body.size()));
  reply.clear();
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    reply.append(buffer, n);
  }
  close(fd);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200 "));
}

TEST(MockApiTest, KeepAliveHonouredAndCloseRespected) {
  SPILLWAY_START_MOCK(mock, {});
  // Two requests pipelined on one connection both get answers.
  const std::string request =
      absl::StrCat("POST ", ChatPath("gpt-4o"),
                   " HTTP/1.1\r\nHost: x\r\nContent-Length: ", ChatBody("hi").size(), "\r\n\r\n",
                   ChatBody("hi"));
  const std::string closing =
      absl::StrCat("GET /mock/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  bool closed = false;
  const std::string reply = RawExchange(mock->port(), request + request + closing, &closed);
  EXPECT_TRUE(closed);
  size_t answers = 0;
  for (size_t at = reply.find("HTTP/1.1 200"); at != std::string::npos;
       at = reply.find("HTTP/1.1 200", at + 1)) {
    ++answers;
  }
  EXPECT_EQ(answers, 3u) << reply;

  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"), {{"Connection", "close"}})
                .status,
            200);
  EXPECT_FALSE(client.connected());
}

TEST(MockApiTest, V1PathTakesTheDeploymentFromModel) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "chat:model=gpt-4o-mini"});
  test::HttpClient client = Client(*mock);
  test::HttpResponse response =
      MustSend(client, "POST", "/openai/v1/chat/completions", ChatBody("hi", R"("model":"chat")"));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Str(Json(response.body).at("model")), "gpt-4o-mini");
  EXPECT_EQ(MustSend(client, "POST", "/openai/v1/chat/completions?api-version=preview",
                     ChatBody("hi", R"("model":"chat")"))
                .status,
            200);

  // The v1 surface is unversioned: a dated api-version is refused, as Azure does.
  response = MustSend(client, "POST", "/openai/v1/chat/completions?api-version=2024-10-21",
                      ChatBody("hi", R"("model":"chat")"));
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.body,
            R"({"error":{"code":"BadRequest","message":"API version not supported"}})");

  response =
      MustSend(client, "POST", "/openai/v1/chat/completions", ChatBody("hi", R"("model":"other")"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, kDeploymentNotFoundBody);
  EXPECT_EQ(MustSend(client, "POST", "/openai/v1/chat/completions", ChatBody("hi")).status, 400);
}

TEST(MockApiTest, TextCompletions) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response =
      MustSend(client, "POST", DeploymentPath("gpt-4o", "completions"),
               R"({"prompt":"abcdefgh","max_tokens":3})");
  ASSERT_EQ(response.status, 200) << response.body;
  const boost::json::value body = Json(response.body);
  EXPECT_THAT(Str(body.at("id")), StartsWith("cmpl-"));
  EXPECT_EQ(Str(body.at("object")), "text_completion");
  EXPECT_EQ(Str(body.at("choices").at(0).at("text")), "Hello from the");
  EXPECT_EQ(Str(body.at("choices").at(0).at("finish_reason")), "length");
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), 2);
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 3);
}

TEST(MockApiTest, EmbeddingsAreDeterministic) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "emb:model=text-embedding-3-small"});
  test::HttpClient client = Client(*mock);
  const std::string path = DeploymentPath("emb", "embeddings");
  const test::HttpResponse first =
      MustSend(client, "POST", path, R"({"input":["abcd","abcdefgh"],"dimensions":5})");
  ASSERT_EQ(first.status, 200) << first.body;
  const boost::json::value body = Json(first.body);
  EXPECT_EQ(Str(body.at("object")), "list");
  EXPECT_EQ(Str(body.at("model")), "text-embedding-3-small");
  ASSERT_EQ(body.at("data").as_array().size(), 2u);
  EXPECT_EQ(Str(body.at("data").at(1).at("object")), "embedding");
  EXPECT_EQ(body.at("data").at(1).at("index").as_int64(), 1);
  EXPECT_EQ(body.at("data").at(0).at("embedding").as_array().size(), 5u);
  EXPECT_NE(body.at("data").at(0).at("embedding"), body.at("data").at(1).at("embedding"));
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), 3);
  EXPECT_EQ(body.at("usage").at("total_tokens").as_int64(), 3);

  const test::HttpResponse second =
      MustSend(client, "POST", path, R"({"input":"abcdefgh","dimensions":5})");
  EXPECT_EQ(Json(second.body).at("data").at(0).at("embedding"),
            body.at("data").at(1).at("embedding"));
}

}  // namespace
}  // namespace spillway::mock
