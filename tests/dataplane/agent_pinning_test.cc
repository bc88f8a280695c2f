// Stateful calls reach the backend that holds their object (docs/pinning.md): a route spread
// over two backends, a response created on one of them, then every call naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <csignal>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/temp_dir.h"
#include "tests/support/topology_snippets.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

// Route gpt-4o spreads evenly over mocks "a" and "b"; tenants "app" (key "test") and
// "other" (key "beta") may both use it.
const std::string kTopology = std::string(kTwoInstancesYaml) + kGpt4oOverAAndBYaml + R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
  - { name: other, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: f44e64e75f3948e9f73f8dfa94721c4ce8cbb4f265c4790c702b2d41cfbf2753 } ] }
)";

std::string ResponseBody(const std::string& previous = "", bool stream = false) {
  return absl::StrCat(
      R"({"model":"gpt-4o","input":"Tell me more.","max_output_tokens":8)",
      previous.empty() ? "" : absl::StrCat(R"(,"previous_response_id":")", previous, "\""),
      stream ? R"(,"stream":true)" : "", "}");
}

class AgentPinningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* mock : {"a", "b"}) {
      ASSERT_TRUE(fleet_.AddMock(mock, {"--deployments", "gpt-4o"}).ok());
    }
    absl::StatusOr<ScopedTempDir> state = ScopedTempDir::Create();
    ASSERT_TRUE(state.ok());
    state_.emplace(*std::move(state));
    StartAgent();
  }
  void StartAgent() {
    ASSERT_TRUE(fleet_.StartAgent(kTopology, "eastus2", {"--state-dir", state_->path()}).ok());
  }

  // Requests each mock has seen so far.
  std::map<std::string, int64_t> Seen() {
    std::map<std::string, int64_t> seen;
    for (const char* mock : {"a", "b"}) {
      const boost::json::object stats = MockStatsJson(fleet_, mock);
      seen[mock] = static_cast<int64_t>(stats.at("log").as_array().size());
    }
    return seen;
  }

  HttpResponse Send(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& key = kTenantKey) {
    absl::StatusOr<HttpResponse> r =
        fleet_.AgentClient()->Send(method, target, {{"api-key", key}}, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse{};
  }

  // Creates a response; returns its id and the mock that made it.
  std::pair<std::string, std::string> Create() {
    const std::map<std::string, int64_t> before = Seen();
    HttpResponse created = Send("POST", "/openai/v1/responses", ResponseBody());
    EXPECT_EQ(created.status, 200) << created.body;
    const std::string id(boost::json::parse(created.body).at("id").as_string());
    const std::map<std::string, int64_t> after = Seen();
    return {id, after.at("a") > before.at("a") ? "a" : "b"};
  }

  AgentFleet fleet_;
  std::optional<ScopedTempDir> state_;
};

TEST_F(AgentPinningTest, CallsOnAResponseReachTheBackendThatCreatedIt) {
  const auto [id, owner] = Create();
  ASSERT_THAT(id, ::testing::StartsWith("resp_"));
  const std::string other = owner == "a" ? "b" : "a";
  const int64_t other_before = Seen().at(other);
  // The route's weights alone would send about half of these to the other backend.
  for (int i = 0; i < 8; ++i) {
    HttpResponse got = Send("GET", "/openai/v1/responses/" + id);
    EXPECT_EQ(got.status, 200) << got.body;
    HttpResponse items = Send("GET", "/openai/v1/responses/" + id + "/input_items");
    EXPECT_EQ(items.status, 200) << items.body;
    HttpResponse next = Send("POST", "/openai/v1/responses", ResponseBody(id));
    EXPECT_EQ(next.status, 200) << "previous_response_id went elsewhere: " << next.body;
  }
  EXPECT_EQ(Seen().at(other), other_before) << "nothing named the object on the other backend";
  absl::StatusOr<std::string> log =
      WaitForFileContaining(fleet_.temp_dir() + "/access.log",
                            absl::StrCat("\"pinned_object\":\"", id, "\""), absl::Seconds(5));
  EXPECT_TRUE(log.ok()) << log.status();
}

TEST_F(AgentPinningTest, AStreamedResponseIsPinnedFromItsFirstEvent) {
  const std::map<std::string, int64_t> before = Seen();
  HttpResponse streamed = Send("POST", "/openai/v1/responses", ResponseBody("", true));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  const std::size_t at = streamed.body.find("\"id\":\"resp_");
  ASSERT_NE(at, std::string::npos) << streamed.body;
  const std::string id = streamed.body.substr(at + 6, streamed.body.find('"', at + 6) - at - 6);
  const std::string owner = Seen().at("a") > before.at("a") ? "a" : "b";
  const int64_t other_before = Seen().at(owner == "a" ? "b" : "a");
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(Send("GET", "/openai/v1/responses/" + id).status, 200);
  }
  EXPECT_EQ(Seen().at(owner == "a" ? "b" : "a"), other_before);
}

TEST_F(AgentPinningTest, AnotherTenantsObjectIsNotFoundAndReachesNoBackend) {
  const auto [id, owner] = Create();
  const std::map<std::string, int64_t> before = Seen();
  HttpResponse foreign = Send("GET", "/openai/v1/responses/" + id, "", "beta");
  EXPECT_EQ(foreign.status, 404) << foreign.body;
  EXPECT_THAT(foreign.body, HasSubstr("\"error\""));
  EXPECT_EQ(Send("POST", "/openai/v1/responses/" + id + "/cancel", "", "beta").status, 404);
  HttpResponse chained = Send("POST", "/openai/v1/responses", ResponseBody(id), "beta");
  EXPECT_EQ(chained.status, 404) << chained.body;
  EXPECT_EQ(Seen(), before);
}

TEST_F(AgentPinningTest, AnIdNoBackendHoldsIsAskedOfEachBackendOnceThen404) {
  const std::map<std::string, int64_t> before = Seen();
  HttpResponse unknown = Send("GET", "/openai/v1/responses/resp_neverseen");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_THAT(unknown.body, HasSubstr("\"error\""));
  EXPECT_EQ(Seen().at("a"), before.at("a") + 1);
  EXPECT_EQ(Seen().at("b"), before.at("b") + 1);
  HttpResponse chained = Send("POST", "/openai/v1/responses", ResponseBody("resp_neverseen"));
  EXPECT_EQ(chained.status, 400) << chained.body;
  EXPECT_THAT(chained.body, HasSubstr("previous_response_not_found"));
}

// A response created behind the agent's back (through another agent that has not told this
// one, or before it ran) is found by asking the route's backends, then pinned.
TEST_F(AgentPinningTest, AnUnpinnedIdIsFoundByAskingTheBackendsThenPinned) {
  for (const char* holder : {"a", "b"}) {
    absl::StatusOr<HttpResponse> direct = fleet_.MockClient(holder)->Send(
        "POST", "/openai/v1/responses", {{"api-key", kBackendKey}}, ResponseBody());
    ASSERT_TRUE(direct.ok() && direct->status == 200) << holder;
    const std::string id(boost::json::parse(direct->body).at("id").as_string());
    const std::string other = std::string(holder) == "a" ? "b" : "a";

    HttpResponse found = Send("GET", "/openai/v1/responses/" + id);
    EXPECT_EQ(found.status, 200) << found.body;
    EXPECT_THAT(found.body, HasSubstr(id));
    // Now pinned: neither reads nor follow-ups ask the other backend again.
    const int64_t other_before = Seen().at(other);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(Send("GET", "/openai/v1/responses/" + id).status, 200);
      EXPECT_EQ(Send("POST", "/openai/v1/responses", ResponseBody(id)).status, 200);
    }
    EXPECT_EQ(Seen().at(other), other_before) << "held by " << holder;
  }
  absl::StatusOr<std::string> log = WaitForFileContaining(
      fleet_.temp_dir() + "/access.log", "\"routed_by\":\"probe\"", absl::Seconds(5));
  EXPECT_TRUE(log.ok()) << log.status();
}

// Asked for an unpinned id, a throttled backend may be the one that holds it: the client is
// told to come back, not that the object does not exist.
TEST_F(AgentPinningTest, AProbeThatMetAThrottledBackendAnswers429Not404) {
  absl::StatusOr<HttpResponse> direct = fleet_.MockClient("b")->Send(
      "POST", "/openai/v1/responses", {{"api-key", kBackendKey}}, ResponseBody());
  ASSERT_TRUE(direct.ok() && direct->status == 200);
  const std::string id(boost::json::parse(direct->body).at("id").as_string());
  ASSERT_TRUE(fleet_.SetFault("b", R"({"status":429,"count":1,"retry_after_ms":3000})").ok());
  HttpResponse throttled = Send("GET", "/openai/v1/responses/" + id);
  EXPECT_EQ(throttled.status, 429) << throttled.body;
  EXPECT_TRUE(throttled.Header("retry-after-ms").has_value());
}

TEST_F(AgentPinningTest, TheOwnersThrottleReachesTheClientWithItsRetryAfter) {
  const auto [id, owner] = Create();
  ASSERT_TRUE(fleet_.SetFault(owner, R"({"status":429,"count":1,"retry_after_ms":7000})").ok());
  const std::map<std::string, int64_t> before = Seen();
  HttpResponse throttled = Send("POST", "/openai/v1/responses", ResponseBody(id));
  EXPECT_EQ(throttled.status, 429) << throttled.body;
  EXPECT_EQ(throttled.Header("retry-after-ms").value_or(""), "7000");
  EXPECT_EQ(Seen().at(owner == "a" ? "b" : "a"), before.at(owner == "a" ? "b" : "a"))
      << "no failover to a backend without the conversation";
  // While its cool-down lasts the agent answers for the owner, naming the pin.
  HttpResponse cooling = Send("GET", "/openai/v1/responses/" + id);
  EXPECT_EQ(cooling.status, 429) << cooling.body;
  EXPECT_THAT(cooling.body, HasSubstr(id));
}

TEST_F(AgentPinningTest, PinsSurviveARestartAndADeleteEndsThem) {
  const auto [id, owner] = Create();
  // A stop writes out every pin (a crash loses at most the last flush interval's; the unit
  // tests replay torn logs).
  ASSERT_TRUE(fleet_.agent().Signal(SIGTERM).ok());
  ASSERT_TRUE(fleet_.agent().Wait().ok());
  StartAgent();
  const int64_t other_before = Seen().at(owner == "a" ? "b" : "a");
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(Send("GET", "/openai/v1/responses/" + id).status, 200);
  }
  EXPECT_EQ(Seen().at(owner == "a" ? "b" : "a"), other_before);
  EXPECT_EQ(Send("DELETE", "/openai/v1/responses/" + id).status, 200);
  const std::map<std::string, int64_t> before = Seen();
  HttpResponse gone = Send("GET", "/openai/v1/responses/" + id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_THAT(gone.body, HasSubstr("was deleted"));
  EXPECT_EQ(Seen(), before) << "a deleted object's id reaches no backend";
}

// A conversation is created on the tenant's default route, and everything naming it (its
// path, its items, a response created in it) reaches the backend that holds it.
TEST_F(AgentPinningTest, AConversationAndTheResponsesInItStayOnItsBackend) {
  const std::map<std::string, int64_t> before = Seen();
  HttpResponse created = Send("POST", "/openai/v1/conversations", R"({"metadata":{"k":"v"}})");
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id(boost::json::parse(created.body).at("id").as_string());
  ASSERT_THAT(id, ::testing::StartsWith("conv_"));
  const std::string owner = Seen().at("a") > before.at("a") ? "a" : "b";
  const std::string other = owner == "a" ? "b" : "a";
  const int64_t other_before = Seen().at(other);
  for (int i = 0; i < 4; ++i) {
    HttpResponse turn =
        Send("POST", "/openai/v1/responses",
             absl::StrCat(R"({"model":"gpt-4o","input":"Next?","conversation":")", id, "\"}"));
    EXPECT_EQ(turn.status, 200) << turn.body;
    HttpResponse object_form = Send(
        "POST", "/openai/v1/responses",
        absl::StrCat(R"({"model":"gpt-4o","input":"And?","conversation":{"id":")", id, "\"}}"));
    EXPECT_EQ(object_form.status, 200) << object_form.body;
  }
  HttpResponse items = Send("GET", "/openai/v1/conversations/" + id + "/items?limit=100");
  ASSERT_EQ(items.status, 200) << items.body;
  EXPECT_GE(boost::json::parse(items.body).at("data").as_array().size(), 16u);
  EXPECT_EQ(Send("GET", "/openai/v1/conversations/" + id).status, 200);
  EXPECT_EQ(Seen().at(other), other_before) << "the backend without the conversation was asked";
  // Another tenant cannot reach it; a deleted one is gone at once.
  EXPECT_EQ(Send("GET", "/openai/v1/conversations/" + id, "", "beta").status, 404);
  EXPECT_EQ(Send("DELETE", "/openai/v1/conversations/" + id).status, 200);
  HttpResponse gone = Send("GET", "/openai/v1/conversations/" + id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_THAT(gone.body, HasSubstr("was deleted"));
}

TEST_F(AgentPinningTest, TheModelListIsTheTenantsRoutes) {
  HttpResponse list = Send("GET", "/openai/v1/models");
  ASSERT_EQ(list.status, 200) << list.body;
  const boost::json::value json = boost::json::parse(list.body);
  EXPECT_EQ(json.at("object").as_string(), "list");
  ASSERT_EQ(json.at("data").as_array().size(), 1u);
  EXPECT_EQ(json.at("data").as_array()[0].at("id").as_string(), "gpt-4o");
  EXPECT_EQ(Send("GET", "/openai/v1/models/gpt-4o").status, 200);
  HttpResponse unknown = Send("GET", "/openai/v1/models/gpt-5");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.body, HasSubstr("\"error\""));
  EXPECT_EQ(Send("GET", "/openai/v1/models", "", "wrong-key").status, 401);
  // Answered by the agent, and counted like any answer.
  HttpResponse metrics = Send("GET", "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("spillway_requests_total{route=\"\",code=\"200\"} 2"));
}

}  // namespace
}  // namespace spillway::test
