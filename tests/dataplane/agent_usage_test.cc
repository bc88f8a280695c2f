// Exact stream usage through a real agent: a stream that did not ask for usage looks to the
// client exactly like Azure's, yet the agent's access log carries the backend's exact token
// counts; a client that asked gets the usage chunk untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/sse.h"

namespace spillway::test {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

// Route gpt-4o -> deployment "chat" on mock "a", so /openai/v1 requests have their model
// rewritten as well as their stream_options.
const std::string kTopology = SingleBackendTopology({"chat=gpt-4o"});

struct Tokens {
  int64_t prompt = 0;
  int64_t completion = 0;
  int64_t total = 0;
  bool operator==(const Tokens&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Tokens& t) {
  return os << "{prompt " << t.prompt << ", completion " << t.completion << ", total " << t.total
            << "}";
}

Tokens MockUsage(AgentFleet& fleet, const std::string& deployment) {
  absl::StatusOr<std::string> stats = fleet.MockStats("a");
  if (!stats.ok()) {
    ADD_FAILURE() << stats.status();
    return {};
  }
  const json::value parsed = json::parse(*stats);
  const json::value* d = parsed.at("deployments").as_object().if_contains(deployment);
  if (d == nullptr) {
    return {};
  }
  const json::value& usage = d->at("usage");
  return {usage.at("prompt_tokens").as_int64(), usage.at("completion_tokens").as_int64(),
          usage.at("total_tokens").as_int64()};
}

// Sums the tokens of the access log's lines (written asynchronously, so a last line without
// its newline is still being written and is left for the next look).
Tokens LoggedUsage(AgentFleet& fleet, int* lines) {
  absl::StatusOr<std::string> content = ReadFile(fleet.temp_dir() + "/access.log");
  Tokens sum;
  *lines = 0;
  if (!content.ok()) {
    return sum;
  }
  const absl::string_view complete =
      absl::string_view(*content).substr(0, content->rfind('\n') + 1);
  for (absl::string_view line : absl::StrSplit(complete, '\n', absl::SkipEmpty())) {
    const json::value record = json::parse(std::string(line));
    sum.prompt += record.at("prompt_tokens").as_int64();
    sum.completion += record.at("completion_tokens").as_int64();
    sum.total += record.at("total_tokens").as_int64();
    ++*lines;
  }
  return sum;
}

// Waits until the access log has `lines` lines whose tokens add up to the mock's reported
// usage (both are written just after the response), then compares them.
void ExpectLoggedEqualsMock(AgentFleet& fleet, int lines, const std::string& deployment) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  Tokens logged, mock;
  int seen = 0;
  do {
    logged = LoggedUsage(fleet, &seen);
    mock = MockUsage(fleet, deployment);
    if (seen == lines && logged == mock) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(seen, lines);
  EXPECT_EQ(logged, mock);
}

// The events' JSON with the per-response identity (id, created) blanked, for comparing two
// responses to the same request.
std::vector<std::string> Normalized(const std::string& body) {
  std::vector<std::string> out;
  for (const std::string& data : ParseSseData(body)) {
    if (data == "[DONE]") {
      out.push_back(data);
      continue;
    }
    json::value event = json::parse(data);
    for (const char* key : {"id", "created"}) {
      if (event.as_object().contains(key)) {
        event.as_object()[key] = "-";
      }
    }
    out.push_back(json::serialize(event));
  }
  return out;
}

std::string ChatBodyWithModel(int max_tokens) {
  return absl::StrCat(R"({"model":"gpt-4o","messages":[{"role":"user","content":"Hi."}],)",
                      R"("stream":true,"max_tokens":)", max_tokens, "}");
}

class AgentUsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "chat:model=gpt-4o"}).ok());
    ASSERT_TRUE(fleet_.StartAgent(kTopology, "eastus2").ok());
  }
  // The same request straight to the mock, as Azure would answer it.
  HttpResponse Direct(const std::string& body) {
    absl::StatusOr<HttpResponse> response = fleet_.MockClient("a")->Send(
        "POST", "/openai/deployments/chat/chat/completions?api-version=2024-10-21",
        {{"api-key", kBackendKey}}, body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{};
  }
  HttpResponse ViaAgent(const std::string& target, const std::string& body) {
    absl::StatusOr<HttpResponse> response = fleet_.AgentClient()->Send("POST", target, {}, body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{};
  }
  AgentFleet fleet_;
};

TEST_F(AgentUsageTest, StreamWithoutIncludeUsageIsAzuresStreamYetExactlyMetered) {
  int requests = 0;
  for (int max_tokens : {1, 4, 9, 16}) {
    const std::string body = ChatBody(max_tokens, /*stream=*/true, /*include_usage=*/false);
    const HttpResponse direct = Direct(body);
    const HttpResponse via = ViaAgent(ChatTarget("gpt-4o"), body);
    ++requests;
    ASSERT_EQ(via.status, 200);
    EXPECT_EQ(via.Header("transfer-encoding"), "chunked");
    EXPECT_THAT(via.body, Not(HasSubstr("\"usage\"")));
    EXPECT_EQ(Normalized(via.body), Normalized(direct.body)) << via.body;
    EXPECT_TRUE(absl::EndsWith(via.body, "data: [DONE]\n\n"));
  }
  // The /openai/v1 surface too (its model rewritten to the deployment as well).
  const HttpResponse v1 = ViaAgent("/openai/v1/chat/completions", ChatBodyWithModel(5));
  ++requests;
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_THAT(v1.body, Not(HasSubstr("\"usage\"")));
  EXPECT_EQ(Normalized(v1.body).size(), Normalized(Direct(ChatBody(5, true)).body).size());

  // The mock reported usage only for the agent's requests (it asked on their behalf), and
  // the access log holds exactly that. Both are counted just after the answer went out, so
  // wait for them to agree first.
  ExpectLoggedEqualsMock(fleet_, requests, "chat");
  EXPECT_EQ(MockUsage(fleet_, "chat").completion, 1 + 4 + 9 + 16 + 5);
}

TEST_F(AgentUsageTest, ClientThatAskedForUsageGetsItUnchanged) {
  const std::string body = ChatBody(6, /*stream=*/true, /*include_usage=*/true);
  const HttpResponse direct = Direct(body);
  const HttpResponse via = ViaAgent(ChatTarget("gpt-4o"), body);
  ASSERT_EQ(via.status, 200);
  EXPECT_EQ(Normalized(via.body), Normalized(direct.body));
  const std::vector<std::string> events = ParseSseData(via.body);
  ASSERT_GE(events.size(), 3u);
  const json::value usage = json::parse(events[events.size() - 2]).at("usage");
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), 6);
  // Both the direct and the relayed request reported usage to their clients (the mock counts
  // it just after the answer went out, so wait for both); the agent logged what its client
  // was told.
  int64_t mock_completion = MockUsage(fleet_, "chat").completion;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       mock_completion != 12 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(20));
    mock_completion = MockUsage(fleet_, "chat").completion;
  }
  EXPECT_EQ(mock_completion, 12);
  const Tokens told{usage.at("prompt_tokens").as_int64(), usage.at("completion_tokens").as_int64(),
                    usage.at("total_tokens").as_int64()};
  Tokens logged;
  int lines = 0;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       lines < 1 && absl::Now() < deadline;) {
    logged = LoggedUsage(fleet_, &lines);
    if (lines < 1) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  EXPECT_EQ(logged, told);
}

TEST_F(AgentUsageTest, ApiVersionsWithoutStreamOptionsAreLeftAlone) {
  // Azure refuses stream_options before 2024-09-01, so the agent does not add it there.
  const HttpResponse via = ViaAgent(
      "/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01", ChatBody(3, true));
  ASSERT_EQ(via.status, 200);
  EXPECT_THAT(via.body, Not(HasSubstr("\"usage\"")));
  ExpectLoggedEqualsMock(fleet_, 1, "chat");
  EXPECT_EQ(MockUsage(fleet_, "chat"), Tokens{});
}

TEST_F(AgentUsageTest, NonStreamingBodiesPassUntouched) {
  const HttpResponse via = ViaAgent(ChatTarget("gpt-4o"), ChatBody(7));
  ASSERT_EQ(via.status, 200);
  const json::value body = json::parse(via.body);
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 7);
  ExpectLoggedEqualsMock(fleet_, 1, "chat");
}

}  // namespace
}  // namespace spillway::test
