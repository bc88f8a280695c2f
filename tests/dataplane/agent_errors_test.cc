// Every way a request can fail reaches the client as a clear status with Azure's JSON error
// shape, never a hang or a bare close.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/closed_port.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

// Two routes (one the tenant may not use) and a tenant: more than SingleBackendTopology.
constexpr char kTopology[] = R"(
stamps: [ { name: us }, { name: eu } ]
regions: [ { name: eastus2, stamp: us }, { name: swedencentral, stamp: eu } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
  - { name: b, region: swedencentral, subscription: s, endpoint: "{a}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
deployments:
  - { instance: a, name: chat, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
  - { instance: a, name: embed, model: text-embedding-3-large, version: "1", sku: Standard, capacity: 100 }
  - { instance: b, name: chat, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
pools:
  - { name: chat-pool, members: [ { deployment: a/chat } ] }
  - { name: embed-pool, members: [ { deployment: a/embed } ] }
  - { name: eu-pool, members: [ { deployment: b/chat } ] }
routes:
  - { name: gpt-4o, stamp: us, tiers: [ chat-pool ] }
  - { name: embeddings, stamp: us, tiers: [ embed-pool ] }
  - { name: eu-chat, stamp: eu, tiers: [ eu-pool ] }
tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
)";

class AgentErrors : public ::testing::Test {
 protected:
  // No short first-byte deadline here: on a loaded machine it would turn ordinary answers into
  // 504s. HangingBackendIs504 starts its own agent with one.
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "chat:model=gpt-4o,embed"}).ok());
    ASSERT_TRUE(fleet_
                    .StartAgent(kTopology, "eastus2",
                                {"--body-limit", "2000", "--failure-threshold", "100"})
                    .ok());
    client_ = fleet_.AgentClient();
  }

  // Sends to the fixture's agent and checks the status and the Azure error shape; returns the
  // response.
  HttpResponse Expect(int status, absl::string_view target, const HttpHeaders& headers,
                      absl::string_view body) {
    return ExpectFrom(fleet_, status, target, headers, body);
  }

  // The same against the agent of `fleet`; `timeout` guards against a hang.
  static HttpResponse ExpectFrom(AgentFleet& fleet, int status, absl::string_view target,
                                 const HttpHeaders& headers, absl::string_view body,
                                 absl::Duration timeout = absl::Seconds(30)) {
    auto client = fleet.AgentClient();
    absl::StatusOr<HttpResponse> response = client->Send("POST", target, headers, body, timeout);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) {
      return {};
    }
    EXPECT_EQ(response->status, status) << response->body;
    EXPECT_THAT(response->Header("content-type").value_or(""), HasSubstr("application/json"));
    boost::system::error_code ec;
    boost::json::value json = boost::json::parse(response->body, ec);
    EXPECT_FALSE(ec) << response->body;
    if (!ec) {
      const auto* error = json.as_object().if_contains("error");
      EXPECT_NE(error, nullptr) << response->body;
      if (error != nullptr) {
        EXPECT_TRUE(error->as_object().at("code").is_string());
        EXPECT_FALSE(error->as_object().at("message").as_string().empty());
      }
    }
    return *response;
  }

  static HttpHeaders Key(const std::string& key = kTenantKey) { return {{"api-key", key}}; }

  AgentFleet fleet_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(AgentErrors, BadJsonIs400) {
  HttpResponse r = Expect(400, ChatTarget("gpt-4o"), Key(), R"({"messages": [)");
  EXPECT_THAT(r.body, HasSubstr("not valid JSON"));
  EXPECT_EQ(r.Header("x-should-retry"), "false");
}

TEST_F(AgentErrors, JsonBodiesAreKnownByTheirContentTypeInAnyCase) {
  HttpHeaders json_upper = Key();
  json_upper.emplace_back("Content-Type", "Application/JSON; charset=utf-8");
  HttpResponse r = Expect(400, ChatTarget("gpt-4o"), json_upper, R"({"messages": [)");
  EXPECT_THAT(r.body, HasSubstr("not valid JSON"));
  EXPECT_FALSE(r.Header("x-spillway-backend").has_value()) << "the agent read it, not the backend";

  // Not JSON (an upload, say): the agent does not read it; the backend gets it and answers.
  HttpHeaders form = Key();
  form.emplace_back("Content-Type", "multipart/form-data; boundary=x");
  absl::StatusOr<HttpResponse> passed =
      fleet_.AgentClient()->Send("POST", ChatTarget("gpt-4o"), form, R"({"messages": [)");
  ASSERT_TRUE(passed.ok()) << passed.status();
  EXPECT_TRUE(passed->Header("x-spillway-backend").has_value()) << passed->body;
}

TEST_F(AgentErrors, V1WithoutModelIs400) {
  HttpResponse r = Expect(400, "/openai/v1/chat/completions", Key(), R"({"messages":[]})");
  EXPECT_THAT(r.body, HasSubstr("model"));
}

TEST_F(AgentErrors, MissingAndWrongKeysAre401) {
  HttpResponse missing = Expect(401, ChatTarget("gpt-4o"), {}, ChatBody());
  EXPECT_THAT(missing.body, HasSubstr("Access denied"));
  Expect(401, ChatTarget("gpt-4o"), Key("wrong"), ChatBody());
  // The SDKs' other form: a bearer key.
  auto client = fleet_.AgentClient();
  absl::StatusOr<HttpResponse> bearer =
      client->Send("POST", ChatTarget("gpt-4o"), {{"authorization", "Bearer test"}}, ChatBody());
  ASSERT_TRUE(bearer.ok());
  EXPECT_EQ(bearer->status, 200);
}

TEST_F(AgentErrors, RouteNotAllowedIs403) {
  HttpResponse r = Expect(403, "/openai/deployments/embeddings/embeddings?api-version=2024-10-21",
                          Key(), R"({"input":"hello"})");
  EXPECT_THAT(r.body, HasSubstr("not allowed to use route 'embeddings'"));
}

TEST_F(AgentErrors, ARouteOfAnotherStampIs403) {
  HttpResponse r = Expect(403, ChatTarget("eu-chat"), Key(), ChatBody());
  EXPECT_THAT(r.body, HasSubstr("served only in stamp 'eu'"));
  EXPECT_THAT(r.body, HasSubstr("tenant 'app'"));
}

TEST_F(AgentErrors, UnknownRouteIs404) {
  HttpResponse r = Expect(404, ChatTarget("gpt-9"), Key(), ChatBody());
  EXPECT_THAT(r.body, HasSubstr("DeploymentNotFound"));
  EXPECT_THAT(r.body, HasSubstr("gpt-9"));
}

TEST_F(AgentErrors, OversizedBodyIs413) {
  const std::string big =
      absl::StrCat(R"({"messages":[{"role":"user","content":")", std::string(5000, 'x'), R"("}]})");
  HttpResponse r = Expect(413, ChatTarget("gpt-4o"), Key(), big);
  EXPECT_THAT(r.body, HasSubstr("2000 bytes"));
}

TEST_F(AgentErrors, EveryCandidateThrottledIs429WithRetryAfter) {
  // A minute: what the agent answers is what remains of it, and a loaded machine may spend
  // seconds between the backend's 429 and the agent's answer, so the lower bound is far off.
  ASSERT_TRUE(fleet_.SetFault("a", R"({"status":429,"retry_after_ms":60000})").ok());
  HttpResponse r = Expect(429, ChatTarget("gpt-4o"), Key(), ChatBody());
  ASSERT_TRUE(r.Header("retry-after-ms").has_value());
  const int ms = std::stoi(*r.Header("retry-after-ms"));
  EXPECT_GT(ms, 30000);
  EXPECT_LE(ms, 60000);
  // The same wait in whole seconds, rounded up.
  EXPECT_EQ(r.Header("retry-after"), std::to_string((ms + 999) / 1000));
  // While blocked, the agent answers without bothering the backend.
  HttpResponse again = Expect(429, ChatTarget("gpt-4o"), Key(), ChatBody());
  EXPECT_EQ(again.Header("x-spillway-attempts"), "0");
  EXPECT_LE(std::stoi(again.Header("retry-after-ms").value_or("0")), ms);
}

TEST_F(AgentErrors, BackendErrorsGoToTheClientAsTheyCame) {
  ASSERT_TRUE(fleet_.SetFault("a", R"({"status":500,"message":"the backend's own words"})").ok());
  HttpResponse r = Expect(500, ChatTarget("gpt-4o"), Key(), ChatBody());
  EXPECT_THAT(r.body, HasSubstr("the backend's own words"));
  EXPECT_EQ(r.Header("x-spillway-attempts"), "1");
}

TEST_F(AgentErrors, DeadBackendIs502) {
  // A port that refuses connections for the whole test, where a killed mock's port could be
  // taken by another test's process in the meantime.
  const ClosedPort dead;
  AgentFleet fleet;
  ASSERT_TRUE(
      fleet.StartAgent(absl::StrReplaceAll(kTopology, {{"{a}", dead.url()}}), "eastus2").ok());
  HttpResponse r = ExpectFrom(fleet, 502, ChatTarget("gpt-4o"), Key(), ChatBody());
  EXPECT_THAT(r.body, HasSubstr("cannot connect"));
}

TEST_F(AgentErrors, HangingBackendIs504) {
  // The backend never answers, so only the agent's 2 s first-byte deadline can end the
  // request: a 504 well inside the client's 60 s guard proves that it fired.
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "chat:model=gpt-4o,embed"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2", {"--first-byte-timeout-ms", "2000"}).ok());
  ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"hang"})").ok());
  HttpResponse r =
      ExpectFrom(fleet, 504, ChatTarget("gpt-4o"), Key(), ChatBody(), absl::Seconds(60));
  EXPECT_THAT(r.body, HasSubstr("in time"));
}

TEST_F(AgentErrors, OpenCircuitEverywhereIs503) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "chat:model=gpt-4o,embed"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(kTopology, "eastus2",
                              {"--failure-threshold", "1", "--circuit-open-ms", "60000"})
                  .ok());
  ASSERT_TRUE(fleet.SetFault("a", R"({"status":503})").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> first =
      client->Send("POST", ChatTarget("gpt-4o"), Key(), ChatBody());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 503) << "the backend's own 503, relayed";
  absl::StatusOr<HttpResponse> second =
      client->Send("POST", ChatTarget("gpt-4o"), Key(), ChatBody());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, 503) << second->body;
  EXPECT_EQ(second->Header("x-spillway-attempts"), "0");
  EXPECT_TRUE(second->Header("retry-after-ms").has_value());
}

TEST_F(AgentErrors, MalformedHttpIs400AndClosed) {
  // Reads give up after 30 s: a guard against an agent that never closes, not a deadline.
  const int fd = ConnectRaw(fleet_.agent_port(), 30);
  ASSERT_GE(fd, 0);
  const std::string garbage = "POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n";
  ASSERT_EQ(::write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  std::string reply;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) {
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(reply, HasSubstr(R"({"error":{"code":"BadRequest")"));
}

TEST_F(AgentErrors, UnknownPathsAre404) {
  HttpResponse r = Expect(404, "/openai/fine_tuning/jobs?api-version=2024-10-21", Key(), "{}");
  EXPECT_THAT(r.body, HasSubstr("not served"));
  Expect(404, "/nothing-here", Key(), "{}");
}

TEST_F(AgentErrors, ClientErrorsFromTheBackendPassThroughUnretried) {
  ASSERT_TRUE(fleet_
                  .SetFault("a", R"({"status":400,"code":"content_filter","count":1,)"
                                 R"("message":"The response was filtered"})")
                  .ok());
  auto client = fleet_.AgentClient();
  absl::StatusOr<HttpResponse> r = client->Send("POST", ChatTarget("gpt-4o"), Key(), ChatBody());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("content_filter"));
  EXPECT_EQ(r->Header("x-spillway-attempts"), "1");
}

}  // namespace
}  // namespace spillway::test
