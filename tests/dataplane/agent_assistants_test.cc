// The Assistants API and vector stores through the agent (docs/pinning.md): assistants,
// threads, their runs and the objects a body names stay on the resource that holds them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/topology_snippets.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

// Route gpt-4o spreads evenly over mocks "a" and "b".
const std::string kTopology = std::string(kTwoInstancesYaml) + kGpt4oOverAAndBYaml + R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
)";

constexpr char kVersion[] = "?api-version=2024-05-01-preview";

class AgentAssistantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* mock : {"a", "b"}) {
      ASSERT_TRUE(fleet_.AddMock(mock, {"--deployments", "gpt-4o"}).ok());
    }
    ASSERT_TRUE(fleet_.StartAgent(kTopology, "eastus2").ok());
  }

  boost::json::object Post(const std::string& path, const std::string& body, int expected = 200) {
    return Call("POST", path, body, expected);
  }
  boost::json::object Call(const std::string& method, const std::string& path,
                           const std::string& body, int expected) {
    absl::StatusOr<HttpResponse> r = fleet_.AgentClient()->Send(
        method, absl::StrCat("/openai/", path, kVersion), {{"api-key", kTenantKey}}, body);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) {
      return {};
    }
    EXPECT_EQ(r->status, expected) << method << " " << path << ": " << r->body;
    last_body_ = r->body;
    boost::system::error_code ec;
    boost::json::value json = boost::json::parse(r->body, ec);
    return !ec && json.is_object() ? json.as_object() : boost::json::object{};
  }

  // How many objects of `kind` ("assistants", "threads", "vector_stores") each mock holds.
  std::map<std::string, int64_t> Stored(const std::string& kind) {
    std::map<std::string, int64_t> stored;
    for (const char* mock : {"a", "b"}) {
      const boost::json::object stats = MockStatsJson(fleet_, mock);
      stored[mock] = stats.at(kind).at("stored").to_number<int64_t>();
    }
    return stored;
  }
  // The mock holding more of `kind` than `before` said.
  std::string Gained(const std::string& kind, const std::map<std::string, int64_t>& before) {
    const std::map<std::string, int64_t> after = Stored(kind);
    for (const auto& [mock, count] : after) {
      if (count > before.at(mock)) {
        return mock;
      }
    }
    return "";
  }

  AgentFleet fleet_;
  std::string last_body_;
};

TEST_F(AgentAssistantsTest, AnAssistantsThreadsAndRunsStayOnItsResource) {
  auto before = Stored("assistants");
  const std::string assistant(
      Post("assistants", R"({"model":"gpt-4o","name":"helper","instructions":"Be brief."})")
          .at("id")
          .as_string());
  const std::string owner = Gained("assistants", before);
  ASSERT_NE(owner, "");
  // A thread made with its run goes where the assistant is, and is pinned from the run.
  before = Stored("threads");
  const boost::json::object run =
      Post("threads/runs",
           absl::StrCat(R"({"assistant_id":")", assistant,
                        R"(","thread":{"messages":[{"role":"user","content":"Hello"}]}})"));
  const std::string thread(run.at("thread_id").as_string());
  EXPECT_EQ(Gained("threads", before), owner);
  // The weights alone would send about half of these to the resource without the thread.
  for (int i = 0; i < 6; ++i) {
    Post("threads/" + thread + "/messages", R"({"role":"user","content":"And then?"})");
    const boost::json::object next =
        Post("threads/" + thread + "/runs", absl::StrCat(R"({"assistant_id":")", assistant, "\"}"));
    EXPECT_EQ(next.at("status").as_string(), "completed") << last_body_;
    Call("GET", absl::StrCat("threads/", thread, "/runs/", std::string(next.at("id").as_string())),
         "", 200);
  }
  const boost::json::object messages = Call("GET", "threads/" + thread + "/messages", "", 200);
  EXPECT_GE(messages.at("data").as_array().size(), 13u) << "every turn is in the one thread";
  Call("DELETE", "assistants/" + assistant, "", 200);
  Call("GET", "assistants/" + assistant, "", 404);
  EXPECT_THAT(last_body_, HasSubstr("was deleted"));
}

TEST_F(AgentAssistantsTest, ARunOnAThreadOfAnotherResourceIsRefusedNamingBoth) {
  auto before = Stored("assistants");
  const std::string assistant(Post("assistants", R"({"model":"gpt-4o"})").at("id").as_string());
  const std::string owner = Gained("assistants", before);
  // A bare thread names nothing: it goes where the default route's weights send it.
  std::string elsewhere;
  std::string beside;
  for (int i = 0; i < 40 && (elsewhere.empty() || beside.empty()); ++i) {
    before = Stored("threads");
    const std::string thread(Post("threads", "{}").at("id").as_string());
    (Gained("threads", before) == owner ? beside : elsewhere) = thread;
  }
  ASSERT_FALSE(elsewhere.empty() || beside.empty()) << "40 threads all landed on one resource";
  Post("threads/" + elsewhere + "/runs", absl::StrCat(R"({"assistant_id":")", assistant, "\"}"),
       400);
  EXPECT_THAT(last_body_, HasSubstr("objects used together must be created on one resource"));
  EXPECT_THAT(last_body_, HasSubstr(assistant));
  Post("threads/" + beside + "/runs", absl::StrCat(R"({"assistant_id":")", assistant, "\"}"));
}

TEST_F(AgentAssistantsTest, AResponseUsingAVectorStoreGoesToTheStoresResource) {
  const auto before = Stored("vector_stores");
  const std::string store(Post("vector_stores", R"({"name":"docs"})").at("id").as_string());
  const std::string owner = Gained("vector_stores", before);
  ASSERT_NE(owner, "");
  const std::string other = owner == "a" ? "b" : "a";
  const int64_t other_before =
      static_cast<int64_t>(MockStatsJson(fleet_, other).at("log").as_array().size());
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<HttpResponse> r = fleet_.AgentClient()->Send(
        "POST", "/openai/v1/responses", {{"api-key", kTenantKey}},
        absl::StrCat(R"({"model":"gpt-4o","input":"What do the docs say?","max_output_tokens":8,)",
                     R"("tools":[{"type":"file_search","vector_store_ids":[")", store, "\"]}]}"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
  }
  EXPECT_EQ(static_cast<int64_t>(MockStatsJson(fleet_, other).at("log").as_array().size()),
            other_before)
      << "a response naming the vector store went to the resource without it";
}

}  // namespace
}  // namespace spillway::test
