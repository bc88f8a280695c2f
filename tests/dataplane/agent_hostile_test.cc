// Requests and backends that do what a well-behaved peer would not: every answer must still
// reach the client that asked, and only that client.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/json/array.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Two routes on one backend endpoint, so both share the agent's pooled connections: an answer
// left on a connection would be read by the other route's next request.
std::string Topology() {
  return absl::StrCat(ChatAndEmbeddingsTopology(), R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o, embeddings ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
)");
}

class AgentHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "chat:model=gpt-4o,embed"}).ok());
    ASSERT_TRUE(fleet_
                    .StartAgent(Topology(), "eastus2",
                                {"--body-limit", "100000", "--body-memory-limit", "150000"})
                    .ok());
  }

  // Requests the mock has seen so far, whatever their path.
  int64_t BackendRequests() {
    const boost::json::object stats = MockStatsJson(fleet_, "a");
    return static_cast<int64_t>(stats.at("log").as_array().size()) +
           stats.at("log_dropped").as_int64();
  }

  // Sends `request` on a fresh raw connection and returns all the agent wrote until it closed.
  std::string SendRaw(const std::string& request) {
    const int fd = ConnectRaw(fleet_.agent_port(), 10);
    EXPECT_GE(fd, 0);
    if (fd < 0) {
      return "";
    }
    EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    return ReadToEndAndClose(fd);
  }

  // Everything the agent writes on `fd` until it closes (or the read timeout passes).
  static std::string ReadToEndAndClose(int fd) {
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
        client->Send("POST", kEmbeddingsTarget, {{"api-key", kTenantKey}},
                     R"({"input": "which answer is mine?"})");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_THAT(r->body, HasSubstr(R"("object":"list")"));
    EXPECT_THAT(r->body, Not(HasSubstr("chat.completion")));
  }

  // A chat call on its own connection: a final 200 with a chat completion.
  void ExpectOwnChatAnswer() {
    auto client = fleet_.AgentClient();
    absl::StatusOr<HttpResponse> r =
        client->Send("POST", ChatTarget("gpt-4o"), {{"api-key", kTenantKey}}, ChatBody());
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
                   " HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\napi-key: test\r\n"
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
  absl::StatusOr<HttpResponse> r = client->Send(
      "POST", ChatTarget("gpt-4o"), {{"api-key", kTenantKey}}, ChatBody(8, /*stream=*/true));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("data: [DONE]"));
  ExpectOwnEmbeddingsAnswer();
}

// A raw request and what the agent must answer; `reaches_backend`: whether the mock sees it.
struct HostileCase {
  const char* name;
  std::string request;
  int status;
  bool reaches_backend = false;
};

std::string Post(absl::string_view target, absl::string_view headers = "api-key: test\r\n",
                 absl::string_view body = R"({"messages":[{"role":"user","content":"hi"}]})") {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n", headers,
                      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n",
                      body);
}

std::vector<HostileCase> HostileCases() {
  const std::string chat = ChatTarget("gpt-4o");
  const std::string model_body = R"({"model":"gpt-4o","training_file":"file-1"})";
  return {
      {"known operation", Post(chat), 200, true},
      {"v1 known operation",
       Post("/openai/v1/chat/completions", "api-key: test\r\n",
            R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})"),
       200, true},
      {"v1 fine-tuning is not an operation",
       Post("/openai/v1/fine_tuning/jobs", "api-key: test\r\n", model_body), 404},
      {"v1 admin path", Post("/openai/v1/admin/keys", "api-key: test\r\n", model_body), 404},
      {"deployment path, unknown operation",
       Post("/openai/deployments/gpt-4o/fine-tunes?api-version=1"), 404},
      {"dot-dot out of the deployment",
       Post("/openai/deployments/gpt-4o/../../v1/fine_tuning/jobs?api-version=1"), 400},
      {"dot-dot inside the operation",
       Post("/openai/deployments/gpt-4o/chat/completions/../../embeddings?api-version=1"), 400},
      {"dot segment", Post("/openai/deployments/gpt-4o/./chat/completions?api-version=1"), 400},
      {"percent-encoded route", Post("/openai/deployments/gpt%2D4o/chat/completions?api-version=1"),
       400},
      {"percent-encoded slash", Post("/openai/deployments/gpt-4o/chat%2Fcompletions?api-version=1"),
       400},
      {"empty segment", Post("/openai/deployments/gpt-4o//chat/completions?api-version=1"), 400},
      {"backslash", Post("/openai/deployments/gpt-4o/chat\\completions?api-version=1"), 400},
      {"v1 dot-dot", Post("/openai/v1/chat/../fine_tuning/jobs", "api-key: test\r\n", model_body),
       400},
      {"GET on a POST operation",
       absl::StrCat("GET ", chat,
                    " HTTP/1.1\r\nHost: a\r\napi-key: test\r\nConnection: close\r\n\r\n"),
       405},
      {"unknown method",
       absl::StrCat("BREW ", chat,
                    " HTTP/1.1\r\nHost: a\r\napi-key: test\r\nConnection: close\r\n\r\n"),
       405},
      {"no key", Post(chat, ""), 401},
      {"wrong key", Post(chat, "api-key: nope\r\n"), 401},
      {"two different api-keys", Post(chat, "api-key: test\r\napi-key: other\r\n"), 401},
      {"wrong key first", Post(chat, "api-key: other\r\napi-key: test\r\n"), 401},
      {"api-key and another Bearer", Post(chat, "api-key: test\r\nAuthorization: Bearer other\r\n"),
       401},
      {"the same key twice", Post(chat, "api-key: test\r\nAuthorization: Bearer test\r\n"), 200,
       true},
      {"unknown route", Post(ChatTarget("gpt-5")), 404},
      {"malformed JSON", Post(chat, "api-key: test\r\n", R"({"messages": [)"), 400},
      {"body over the limit",
       absl::StrCat("POST ", chat,
                    " HTTP/1.1\r\nHost: a\r\napi-key: test\r\nContent-Length: 100001\r\n\r\n"),
       413},
      {"huge head",
       absl::StrCat("POST ", chat, " HTTP/1.1\r\nHost: a\r\nx-big: ", std::string(70000, 'a'),
                    "\r\n\r\n"),
       431},
      {"CR in a header value",
       absl::StrCat("POST ", chat, " HTTP/1.1\r\nHost: a\r\nx-a: b\rc\r\n\r\n"), 400},
      {"NUL in the path",
       std::string("POST /openai/deployments/gpt-4o\0/chat/completions HTTP/1.1\r\nHost: a\r\n\r\n",
                   71),
       400},
      {"not HTTP", "HELLO\r\n\r\n", 400},
  };
}

// Each hostile request gets its own status in Azure's error shape, nothing reaches the
// backend that should not, and the agent stays up (issue 15: the proof kept in the suite).
TEST_F(AgentHostile, EachHostileRequestGetsItsStatusAndOnlyKnownOperationsReachTheBackend) {
  for (const HostileCase& c : HostileCases()) {
    SCOPED_TRACE(c.name);
    const int64_t before = BackendRequests();
    const std::string reply = SendRaw(c.request);
    EXPECT_THAT(reply, ::testing::StartsWith(absl::StrCat("HTTP/1.1 ", c.status, " ")))
        << reply.substr(0, 300);
    if (c.status != 200) {
      EXPECT_THAT(reply, HasSubstr(R"({"error":{"code":)")) << reply.substr(0, 300);
    }
    EXPECT_EQ(BackendRequests() - before, c.reaches_backend ? 1 : 0);
  }
  ExpectOwnChatAnswer();  // still up
}

// HTTP/1.0 has no chunked encoding: a stream (whose length nobody knows) reaches an HTTP/1.0
// client unframed, ending where the connection closes (issue 15, item 7).
TEST_F(AgentHostile, Http10ClientsNeverGetChunkedEncoding) {
  const std::string body = ChatBody(8, /*stream=*/true);
  const std::string reply =
      SendRaw(absl::StrCat("POST ", ChatTarget("gpt-4o"),
                           " HTTP/1.0\r\nHost: a\r\napi-key: test\r\nConnection: keep-alive\r\n"
                           "Content-Type: application/json\r\nContent-Length: ",
                           body.size(), "\r\n\r\n", body));
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 200 ")) << reply.substr(0, 300);
  const std::string head = reply.substr(0, reply.find("\r\n\r\n"));
  EXPECT_THAT(head, Not(HasSubstr("chunked"))) << head;
  EXPECT_THAT(head, HasSubstr("Connection: close")) << head;
  const std::string payload = reply.substr(head.size() + 4);
  EXPECT_THAT(payload, ::testing::StartsWith("data: ")) << "no chunk-size lines";
  EXPECT_THAT(payload, ::testing::EndsWith("data: [DONE]\n\n"));
  // A body of known length keeps its Content-Length, and HTTP/1.0 keep-alive works.
  const std::string plain = SendRaw(
      absl::StrCat("POST ", ChatTarget("gpt-4o"),
                   " HTTP/1.0\r\nHost: a\r\napi-key: test\r\nContent-Type: application/json\r\n"
                   "Content-Length: ",
                   ChatBody().size(), "\r\n\r\n", ChatBody()));
  EXPECT_THAT(plain, HasSubstr("Content-Length: ")) << plain.substr(0, 300);
  EXPECT_THAT(plain, Not(HasSubstr("chunked")));
}

// A client is refused on its head: with a wrong key, an unknown operation or route, or a body
// over the limit, the agent answers before reading (or waiting for) the body, then closes.
TEST_F(AgentHostile, RefusalsComeBeforeTheBodyIsRead) {
  const std::string chat = ChatTarget("gpt-4o");
  for (const auto& [head, status] : std::vector<std::pair<std::string, int>>{
           {absl::StrCat("POST ", chat, " HTTP/1.1\r\nHost: a\r\napi-key: wrong\r\n"), 401},
           {absl::StrCat("POST ", ChatTarget("nope"), " HTTP/1.1\r\nHost: a\r\napi-key: test\r\n"),
            404},
           {"POST /openai/v1/fine_tuning/jobs HTTP/1.1\r\nHost: a\r\napi-key: test\r\n", 404},
       }) {
    // The head announces 90 KB and only 4 KB follows: an agent that read the body first would
    // wait for the rest until its idle timeout (60 s), past this socket's 10 s read timeout.
    const std::string request = absl::StrCat(head,
                                             "Content-Type: application/json\r\n"
                                             "Content-Length: 90000\r\n\r\n",
                                             std::string(4096, ' '));
    const std::string reply = SendRaw(request);
    EXPECT_THAT(reply, ::testing::StartsWith(absl::StrCat("HTTP/1.1 ", status, " "))) << head;
    EXPECT_THAT(reply, HasSubstr("Connection: close")) << reply.substr(0, 300);
  }
}

// A body read after its head, in pieces, is the request's whole body; one cut short by the
// client's close is a malformed request, answered 400, and nothing of it reaches the backend.
TEST_F(AgentHostile, ABodyInPiecesIsWholeAndOneCutShortIsRefused) {
  const std::string body = R"({"messages":[{"role":"user","content":"in pieces"}]})";
  const std::string head = absl::StrCat("POST ", ChatTarget("gpt-4o"),
                                        " HTTP/1.1\r\nHost: a\r\napi-key: test\r\n"
                                        "Content-Type: application/json\r\nConnection: close\r\n"
                                        "Content-Length: ",
                                        body.size(), "\r\n\r\n");
  const int whole = ConnectRaw(fleet_.agent_port(), 10);
  ASSERT_GE(whole, 0);
  const std::string first = head + body.substr(0, 10);
  ASSERT_EQ(::write(whole, first.data(), first.size()), static_cast<ssize_t>(first.size()));
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_EQ(::write(whole, body.data() + 10, 20), 20);
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_EQ(::write(whole, body.data() + 30, body.size() - 30),
            static_cast<ssize_t>(body.size() - 30));
  const std::string reply = ReadToEndAndClose(whole);
  // 200, not 400: any prefix of the body is malformed JSON, which the agent refuses itself.
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 200 ")) << reply.substr(0, 300);

  const int64_t before = BackendRequests();
  const int cut = ConnectRaw(fleet_.agent_port(), 10);
  ASSERT_GE(cut, 0);
  const std::string partial = head + body.substr(0, 10);
  ASSERT_EQ(::write(cut, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  ::shutdown(cut, SHUT_WR);
  const std::string refused = ReadToEndAndClose(cut);
  EXPECT_THAT(refused, ::testing::StartsWith("HTTP/1.1 400 ")) << refused.substr(0, 300);
  EXPECT_THAT(refused, HasSubstr("partial message"));
  EXPECT_EQ(BackendRequests(), before);
}

// Bodies held at once are bounded: while one client holds a reservation for its announced
// body, a second whose body does not fit gets 503 with retry-after, then the first completes.
TEST_F(AgentHostile, BodiesBeyondTheMemoryBudgetAre503WithRetryAfter) {
  const std::string body = absl::StrCat(R"({"messages":[{"role":"user","content":")",
                                        std::string(90000, 'x'), R"("}],"max_tokens":4})");
  const std::string head = absl::StrCat("POST ", ChatTarget("gpt-4o"),
                                        " HTTP/1.1\r\nHost: a\r\napi-key: test\r\n"
                                        "Content-Type: application/json\r\nConnection: close\r\n"
                                        "Expect: 100-continue\r\nContent-Length: ",
                                        body.size(), "\r\n\r\n");
  const int first = ConnectRaw(fleet_.agent_port(), 10);
  ASSERT_GE(first, 0);
  ASSERT_EQ(::write(first, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  // The interim 100 comes once the head is admitted and the body's room reserved.
  char interim[64] = {};
  ASSERT_GT(::read(first, interim, sizeof(interim) - 1), 0);
  EXPECT_THAT(std::string(interim), ::testing::StartsWith("HTTP/1.1 100 Continue"));

  const std::string second = SendRaw(absl::StrCat(head, body));
  EXPECT_THAT(second, ::testing::StartsWith("HTTP/1.1 503 ")) << second.substr(0, 300);
  EXPECT_THAT(second, HasSubstr("retry-after"));

  ASSERT_EQ(::write(first, body.data(), body.size()), static_cast<ssize_t>(body.size()));
  const std::string reply = ReadToEndAndClose(first);
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 200 ")) << reply.substr(0, 300);
  // The reservation went with the request: the same body fits again (after the interim 100
  // it asked for, when the body had not arrived with the head).
  std::string again = SendRaw(absl::StrCat(head, body));
  if (absl::StartsWith(again, "HTTP/1.1 100 ")) {
    again.erase(0, again.find("\r\n\r\n") + 4);
  }
  EXPECT_THAT(again, ::testing::StartsWith("HTTP/1.1 200 ")) << again.substr(0, 200);
}

}  // namespace
}  // namespace spillway::test

namespace spillway::test {
namespace {

// --max-connections: past the cap new clients wait in the listen backlog instead of taking
// descriptors; one connection closing lets the next in (issue 15, item 4).
TEST(AgentLimits, ConnectionsBeyondTheCapWaitUntilOneCloses) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(
      fleet.StartAgent(SingleBackendTopology(), "eastus2", {"--max-connections", "2"}).ok());
  auto first = fleet.AgentClient();
  auto second = fleet.AgentClient();
  ASSERT_TRUE(first->Send("GET", "/healthz").ok());
  ASSERT_TRUE(second->Send("GET", "/healthz").ok());  // both stay open (keep-alive)

  const int third = ConnectRaw(fleet.agent_port(), 1);  // the kernel's backlog takes it
  ASSERT_GE(third, 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::write(third, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  char buffer[512];
  EXPECT_LT(::read(third, buffer, sizeof(buffer)), 1) << "answered past the cap";

  first->Close();  // a slot frees: the waiting client is served
  timeval longer{10, 0};
  ::setsockopt(third, SOL_SOCKET, SO_RCVTIMEO, &longer, sizeof(longer));
  std::string reply;
  for (ssize_t n; (n = ::read(third, buffer, sizeof(buffer))) > 0;) {
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(third);
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 200 "));
}

}  // namespace
}  // namespace spillway::test

namespace spillway::test {
namespace {

// A port free a moment ago (the agent binds it right after).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

// --admin-listen serves the operations endpoints and nothing else (issue 15, item 9); the API
// port keeps /healthz and /readyz for load balancers and /status for loopback peers.
TEST(AgentAdminListen, ServesOnlyTheOperationsEndpoints) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  const int admin_port = FreePort();
  ASSERT_TRUE(fleet
                  .StartAgent(SingleBackendTopology(), "eastus2",
                              {"--admin-listen", absl::StrCat("127.0.0.1:", admin_port)})
                  .ok());
  HttpClient admin("127.0.0.1", admin_port);
  for (const char* path : {"/healthz", "/readyz", "/status", "/metrics"}) {
    absl::StatusOr<HttpResponse> r = admin.Send("GET", path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status();
    EXPECT_EQ(r->status, 200) << path;
  }
  absl::StatusOr<HttpResponse> chat = admin.Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(chat->status, 404) << "the admin listener forwards nothing";
  EXPECT_EQ(StatusCount(MockStatsJson(fleet, "a"), "gpt-4o", 200), 0);

  auto api = fleet.AgentClient();
  for (const char* path : {"/healthz", "/status"}) {
    absl::StatusOr<HttpResponse> r = api->Send("GET", path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status();
    EXPECT_EQ(r->status, 200) << path << " from loopback";
  }
}

// This host's first IPv4 address outside 127/8, or "" when it has none.
std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return "";
  }
  std::string found;
  for (ifaddrs* entry = list; entry != nullptr && found.empty(); entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    const in_addr address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr;
    if ((ntohl(address.s_addr) >> 24) != 127) {
      char text[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &address, text, sizeof(text));
      found = text;
    }
  }
  ::freeifaddrs(list);
  return found;
}

// A peer that is not on loopback, connecting to the API port, sees the load balancers'
// probes but not /status and /metrics, which list backend endpoints and tenant quotas.
TEST(AgentAdminListen, OperationsEndpointsRefuseNonLoopbackPeersOnTheApiPort) {
  const std::string address = NonLoopbackAddress();
  if (address.empty()) {
    GTEST_SKIP() << "this host has no IPv4 address outside 127/8 to connect from";
  }
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(SingleBackendTopology(), "eastus2", {"--listen", "0.0.0.0:0"}).ok());
  HttpClient remote(address, fleet.agent_port());
  for (const auto& [path, status] :
       {std::pair{"/healthz", 200}, {"/readyz", 200}, {"/status", 403}, {"/metrics", 403}}) {
    absl::StatusOr<HttpResponse> r = remote.Send("GET", path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status();
    EXPECT_EQ(r->status, status) << path << " from " << address;
    if (status == 403) {
      EXPECT_THAT(r->body, Not(HasSubstr("127.0.0.1"))) << "no backend endpoint leaks";
      EXPECT_THAT(r->body, HasSubstr("\"error\"")) << "an Azure-shaped error";
    }
  }
  absl::StatusOr<HttpResponse> local = fleet.AgentClient()->Send("GET", "/status");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->status, 200) << "the same agent still answers loopback";
}

}  // namespace
}  // namespace spillway::test

namespace spillway::test {
namespace {

// A client that starts a head and trickles it (slowloris) is cut by the header timeout, not
// held until the much longer idle timeout (issue 15, item 4).
TEST(AgentLimits, AHeadStartedButNotFinishedIsCutAtTheHeaderTimeout) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(SingleBackendTopology(), "eastus2",
                              {"--header-timeout-ms", "2000", "--client-idle-timeout-ms", "600000"})
                  .ok());
  // 2 s for a head: a loaded machine's client that writes its head at once is never that
  // slow. The socket gives up reading after 60 s: long before the 600 s idle timeout.
  const int fd = ConnectRaw(fleet.agent_port(), 60);
  ASSERT_GE(fd, 0);
  const std::string part = absl::StrCat("POST ", ChatTarget("gpt-4o"), " HTTP/1.1\r\nHost: a\r\n");
  ASSERT_EQ(::write(fd, part.data(), part.size()), static_cast<ssize_t>(part.size()));
  // The deadline closes the connection (as nginx's client_header_timeout does): the read
  // ends at end-of-file, not at this socket's own timeout (-1).
  char buffer[1024];
  ssize_t last = 0;
  std::string reply;
  while ((last = ::read(fd, buffer, sizeof(buffer))) > 0) {
    reply.append(buffer, static_cast<std::size_t>(last));
  }
  ::close(fd);
  EXPECT_EQ(last, 0) << "still open when the header timeout had passed";
  EXPECT_EQ(reply, "") << "no answer to a head that never ended";
  // A client that is merely idle between requests is not cut by it.
  auto client = fleet.AgentClient();
  ASSERT_TRUE(client->Send("GET", "/healthz").ok());
  ASSERT_TRUE(client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody()).ok());
}

}  // namespace
}  // namespace spillway::test
