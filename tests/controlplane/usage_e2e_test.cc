// Usage metering end to end: spillway-cp + agents + mock backends. A mixed run (streams with
// and without include_usage, plain chats, embeddings, several tenants and routes, answers
// refused by the agent, backend 429s and 5xx, a stream cut mid-way) must show up in
// `spillwayctl usage` with token totals EQUAL to what the mocks reported, per deployment,
// and request counts equal to what the clients saw; across a control plane killed with
// SIGKILL and restarted, and across an agent restarted with an unacknowledged spool.
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <csignal>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/controlplane/fleet_fixture.h"

namespace spillway::test {
namespace {

namespace json = boost::json;

// Reference topology keys: SHA-256("test") is checkout-assistant (routes gpt-4o and
// text-embedding-3-large, critical), SHA-256("test2") is nightly-summaries (gpt-4o, batch).
const HttpHeaders kCheckout = {{"api-key", "test"}};
const HttpHeaders kNightly = {{"authorization", "Bearer test2"}};
const std::vector<std::string> kAgentArgs = {"--usage-flush-ms", "200"};
const std::vector<std::string> kMocks = {"aoai-eus2-ptu", "aoai-wus3-ptu", "aoai-eus2-std",
                                         "aoai-wus3-std", "aoai-swc-std",  "aoai-frc-std"};

struct Tokens {
  uint64_t prompt = 0;
  uint64_t completion = 0;
  uint64_t cached = 0;
  uint64_t total = 0;
  void Add(const Tokens& t) {
    prompt += t.prompt;
    completion += t.completion;
    cached += t.cached;
    total += t.total;
  }
  bool operator==(const Tokens&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Tokens& t) {
  return os << "{prompt " << t.prompt << ", completion " << t.completion << ", cached " << t.cached
            << ", total " << t.total << "}";
}

// What the clients saw: every answered request the agent meters, by outcome class.
struct Sent {
  uint64_t requests = 0;
  uint64_t failed = 0;     // 4xx other than 429, 5xx
  uint64_t throttled = 0;  // 429
  void Count(int status) {
    ++requests;
    if (status == 429) {
      ++throttled;
    } else if (status >= 400 || status == 0) {
      ++failed;
    }
  }
};

std::string Chat(int max_tokens, bool stream, bool include_usage) {
  return absl::StrCat(R"({"messages":[{"role":"user","content":"How much is this?"}],)",
                      R"("max_tokens":)", max_tokens, stream ? R"(,"stream":true)" : "",
                      include_usage ? R"(,"stream_options":{"include_usage":true})" : "", "}");
}
std::string Target(const std::string& route, const std::string& op = "chat/completions") {
  return absl::StrCat("/openai/deployments/", route, "/", op, "?api-version=2024-10-21");
}

uint64_t JsonCount(const json::value& v) {
  // Protobuf's JSON writes 64-bit integers as strings.
  if (v.is_string()) {
    uint64_t n = 0;
    return absl::SimpleAtoi(std::string(v.as_string()), &n) ? n : 0;
  }
  return v.is_int64() ? static_cast<uint64_t>(v.as_int64()) : v.to_number<uint64_t>();
}

class UsageE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mocks = fleet_.AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
    ASSERT_TRUE(fleet_.StartControlPlane().ok());
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(fleet_);
    ASSERT_TRUE(topology.ok()) << topology.status();
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(*topology);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2", kAgentArgs).ok());
    ASSERT_TRUE(fleet_.StartAgent("wus3", "westus3", kAgentArgs).ok());
    ASSERT_TRUE(fleet_.WaitForAcks(1, 2).ok());
  }

  // Polls `agent`'s /status until it counts `backend_id` healthy again (a throttle the test
  // caused is over), so the next request is sure to be offered to it.
  void WaitForHealthy(const std::string& agent, const std::string& backend_id) {
    const absl::Time deadline = absl::Now() + kFleetWait;
    std::string last;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::string> status = fleet_.AgentStatus(agent);
      if (status.ok()) {
        last = *status;
        const json::value parsed = json::parse(last);
        for (const json::value& backend : parsed.at("backends").as_array()) {
          if (backend.at("id").as_string() == backend_id &&
              backend.at("state").as_string() == "healthy") {
            return;
          }
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << backend_id << " never became healthy again on " << agent << ": " << last;
  }

  int Send(const std::string& agent, const std::string& target, const HttpHeaders& headers,
           const std::string& body) {
    absl::StatusOr<HttpResponse> response =
        fleet_.AgentClient(agent)->Send("POST", target, headers, body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->status : 0;
  }

  // One round of mixed traffic through `agent`; every answer is tallied in sent_.
  void MixedRound(const std::string& agent) {
    for (int max_tokens : {3, 5, 8}) {
      sent_.Count(Send(agent, Target("gpt-4o"), kCheckout, Chat(max_tokens, false, false)));
      sent_.Count(Send(agent, Target("gpt-4o"), kCheckout, Chat(max_tokens + 1, true, false)));
    }
    sent_.Count(Send(agent, Target("gpt-4o"), kCheckout, Chat(4, true, true)));
    sent_.Count(Send(agent, Target("text-embedding-3-large", "embeddings"), kCheckout,
                     R"({"input":"what does this cost"})"));
    sent_.Count(Send(agent, Target("gpt-4o"), kNightly, Chat(6, false, false)));
    sent_.Count(Send(agent, Target("gpt-4o"), kNightly, Chat(7, true, false)));
    // Refused by the agent, charged to the tenant: not its route (403), no such route
    // (404), malformed body (400).
    sent_.Count(Send(agent, Target("gpt-4o-canary"), kCheckout, Chat(2, false, false)));
    sent_.Count(Send(agent, Target("no-such-route"), kNightly, Chat(2, false, false)));
    sent_.Count(Send(agent, Target("gpt-4o"), kCheckout, "{not json"));
    // Unknown clients are not metered (there is nobody to charge).
    EXPECT_EQ(Send(agent, Target("gpt-4o"), {{"api-key", "nobody"}}, Chat(2, false, false)), 401);
  }

  // Backend failures through the eastus2 agent: a 429 and a 503 from the only embeddings
  // deployment, a PTU 429 that spills to the westus3 pool, and a stream the PTU cuts before
  // its usage chunk.
  void FailingRequests() {
    auto fault = [&](const std::string& mock, const std::string& spec) {
      absl::StatusOr<HttpResponse> r =
          HttpClient("127.0.0.1", fleet_.mock(mock).port()).Send("POST", "/mock/faults", {}, spec);
      ASSERT_TRUE(r.ok() && r->status / 100 == 2) << spec;
    };
    const std::string embeddings = Target("text-embedding-3-large", "embeddings");
    fault("aoai-eus2-std", R"({"status":429,"count":1,"deployment":"embed-3",)"
                           R"("retry_after_ms":50})");
    const int throttled = Send("eus2", embeddings, kCheckout, R"({"input":"x"})");
    EXPECT_EQ(throttled, 429);
    sent_.Count(throttled);
    WaitForHealthy("eus2", "aoai-eus2-std/embed-3");  // past the retry-after
    // A 503 with retry-after is retried elsewhere (a 500 would be relayed as it came): with
    // no other deployment the agent answers 502.
    fault("aoai-eus2-std", R"({"status":503,"count":1,"deployment":"embed-3",)"
                           R"("retry_after_ms":1})");
    const int failed = Send("eus2", embeddings, kCheckout, R"({"input":"y"})");
    EXPECT_EQ(failed, 502);
    sent_.Count(failed);
    // The PTU throttles one request: it spills to the westus3 PTU pool (two attempts).
    fault("aoai-eus2-ptu", R"({"status":429,"count":1,"retry_after_ms":50})");
    const int spilled = Send("eus2", Target("gpt-4o"), kCheckout, Chat(5, false, false));
    EXPECT_EQ(spilled, 200);
    sent_.Count(spilled);
    WaitForHealthy("eus2", "aoai-eus2-ptu/gpt-4o-ptu");
    fault("aoai-eus2-ptu", R"({"mode":"cut","cut_after_chunks":2,"count":1})");
    sent_.Count(Send("eus2", Target("gpt-4o"), kCheckout, Chat(9, true, false)));
  }

  // Usage every mock reported to its clients, by backend id "<instance>/<deployment>".
  absl::StatusOr<std::map<std::string, Tokens>> MockUsage() {
    std::map<std::string, Tokens> usage;
    for (const std::string& mock : kMocks) {
      absl::StatusOr<HttpResponse> stats =
          HttpClient("127.0.0.1", fleet_.mock(mock).port()).Send("GET", "/mock/stats");
      if (!stats.ok()) {
        return absl::Status(stats.status().code(),
                            absl::StrCat(mock, " /mock/stats: ", stats.status().message()));
      }
      const json::value parsed = json::parse(stats->body);
      for (const auto& [deployment, d] : parsed.at("deployments").as_object()) {
        const json::value& u = d.at("usage");
        const Tokens t{JsonCount(u.at("prompt_tokens")), JsonCount(u.at("completion_tokens")),
                       JsonCount(u.at("cached_tokens")), JsonCount(u.at("total_tokens"))};
        if (t.total > 0 || t.prompt > 0) {
          usage[absl::StrCat(mock, "/", std::string(deployment))].Add(t);
        }
      }
    }
    return usage;
  }

  absl::StatusOr<v1::UsageQueryResponse> Query(std::vector<std::string> group_by) {
    v1::UsageQuery query;
    query.set_since_unix_ms(absl::ToUnixMillis(absl::Now() - absl::Hours(1)));
    for (std::string& dimension : group_by) {
      query.add_group_by(std::move(dimension));
    }
    v1::UsageQueryResponse response;
    auto context = fleet_.AdminContext();
    grpc::Status status = fleet_.admin().QueryUsage(context.get(), query, &response);
    if (!status.ok()) {
      return absl::UnavailableError(status.error_message());
    }
    return response;
  }

  std::string SpoolDir(const std::string& agent) {
    return absl::StrCat(fleet_.dir(), "/agent-", agent, "/usage-spool");
  }

  // The spooled batch files of `agent`: name -> content.
  std::map<std::string, std::string> SpooledFiles(const std::string& agent) {
    std::map<std::string, std::string> files;
    DIR* d = opendir(SpoolDir(agent).c_str());
    if (d == nullptr) {
      return files;
    }
    while (const dirent* entry = readdir(d)) {
      if (absl::EndsWith(entry->d_name, ".pb")) {
        absl::StatusOr<std::string> content =
            ReadFile(absl::StrCat(SpoolDir(agent), "/", entry->d_name));
        files[entry->d_name] = content.ok() ? *content : "";
      }
    }
    closedir(d);
    return files;
  }
  int SpooledBatches(const std::string& agent) {
    return static_cast<int>(SpooledFiles(agent).size());
  }

  void StopAgentGracefully(const std::string& agent) {
    ASSERT_TRUE(fleet_.agent_process(agent).Signal(SIGTERM).ok());
    absl::StatusOr<int> exit = fleet_.agent_process(agent).Wait(absl::Seconds(30));
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(*exit, 0);
  }

  // Usage the control plane holds, by deployment (rows with tokens only).
  std::map<std::string, Tokens> MeteredByDeployment() {
    std::map<std::string, Tokens> metered;
    absl::StatusOr<v1::UsageQueryResponse> rows = Query({"deployment"});
    if (!rows.ok()) {
      return metered;
    }
    for (const v1::UsageRow& row : rows->rows()) {
      const Tokens t{row.prompt_tokens(), row.completion_tokens(), row.cached_tokens(),
                     row.total_tokens()};
      if (t.total > 0 || t.prompt > 0) {
        metered[row.key().at("deployment")] = t;
      }
    }
    return metered;
  }

  // Waits until the control plane counted every request sent and the agents' spools are
  // empty, then checks the totals per deployment against the mocks, exactly.
  void WaitForUsageEqualsMocks(std::map<std::string, Tokens>& mocks) {
    // Many flushes at 200 ms, and a replay after a restart: a guard against a hang.
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    uint64_t counted = 0;
    std::map<std::string, Tokens> metered;
    while (absl::Now() < deadline) {
      absl::StatusOr<v1::UsageQueryResponse> totals = Query({});
      counted = totals.ok() && totals->rows_size() == 1 ? totals->rows(0).requests() : 0;
      if (counted >= sent_.requests && SpooledBatches("eus2") == 0 && SpooledBatches("wus3") == 0) {
        metered = MeteredByDeployment();
        absl::StatusOr<std::map<std::string, Tokens>> reported = MockUsage();
        ASSERT_TRUE(reported.ok()) << reported.status();
        mocks = *std::move(reported);
        if (metered == mocks) {
          break;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_EQ(counted, sent_.requests)
        << "spooled: eus2 " << SpooledBatches("eus2") << ", wus3 " << SpooledBatches("wus3");
    EXPECT_EQ(metered, mocks);
  }

  void ExpectUsageEqualsMocks() {
    std::map<std::string, Tokens> mocks;
    ASSERT_NO_FATAL_FAILURE(WaitForUsageEqualsMocks(mocks));
    EXPECT_GE(mocks.size(), 2u);  // at least the PTU and the embeddings deployments served
    // Later flushes must not add anything already counted (no double counting). Rather than
    // sleep for "a few flushes", make one happen: a chat through each agent must be all that
    // the next flushes add, request for request and token for token.
    for (const char* agent : {"eus2", "wus3"}) {
      sent_.Count(Send(agent, Target("gpt-4o"), kCheckout, Chat(3, false, false)));
    }
    ASSERT_NO_FATAL_FAILURE(WaitForUsageEqualsMocks(mocks));

    absl::StatusOr<v1::UsageQueryResponse> totals = Query({});
    ASSERT_TRUE(totals.ok());
    ASSERT_EQ(totals->rows_size(), 1);
    EXPECT_EQ(totals->rows(0).requests(), sent_.requests);
    EXPECT_EQ(totals->rows(0).failed_requests(), sent_.failed);
    EXPECT_EQ(totals->rows(0).throttled_requests(), sent_.throttled);
    Tokens all;
    for (const auto& [backend, tokens] : mocks) {
      all.Add(tokens);
    }
    EXPECT_EQ(Tokens({totals->rows(0).prompt_tokens(), totals->rows(0).completion_tokens(),
                      totals->rows(0).cached_tokens(), totals->rows(0).total_tokens()}),
              all);
    expected_total_ = all;
  }

  ControlPlaneFleet fleet_;
  Sent sent_;
  Tokens expected_total_;
};

TEST_F(UsageE2eTest, MixedRunTotalsEqualTheBackendsReportedUsage) {
  MixedRound("eus2");
  MixedRound("wus3");
  FailingRequests();
  MixedRound("eus2");
  ExpectUsageEqualsMocks();
  EXPECT_GT(sent_.failed, 0u);
  EXPECT_GT(sent_.throttled, 0u);

  // Per tenant, route, deployment and region: the rows the operator reads.
  absl::StatusOr<v1::UsageQueryResponse> rows = Query({"tenant", "route", "deployment", "region"});
  ASSERT_TRUE(rows.ok());
  std::map<std::string, uint64_t> requests_by_tenant;
  bool saw_embeddings = false, saw_refused_route = false, saw_westus3 = false;
  for (const v1::UsageRow& row : rows->rows()) {
    const auto& key = row.key();
    requests_by_tenant[key.at("tenant")] += row.requests();
    if (key.at("route") == "text-embedding-3-large" && row.total_tokens() > 0) {
      saw_embeddings = true;
      EXPECT_EQ(key.at("deployment"), "aoai-eus2-std/embed-3");
      EXPECT_EQ(key.at("region"), "eastus2");
      EXPECT_EQ(row.completion_tokens(), 0u);
    }
    if (key.at("region") == "westus3" && row.total_tokens() > 0) {
      saw_westus3 = true;  // the request the eastus2 PTU throttled, served by the pool
      EXPECT_EQ(key.at("deployment"), "aoai-wus3-ptu/gpt-4o-pool");
    }
    if (key.at("route") == "gpt-4o-canary") {
      saw_refused_route = true;  // 403: counted as failed, no backend, no tokens
      EXPECT_EQ(key.at("deployment"), "");
      EXPECT_EQ(row.failed_requests(), row.requests());
      EXPECT_EQ(row.total_tokens(), 0u);
    }
  }
  EXPECT_TRUE(saw_embeddings);
  EXPECT_TRUE(saw_refused_route);
  EXPECT_TRUE(saw_westus3);
  EXPECT_EQ(requests_by_tenant.size(), 2u);
  EXPECT_EQ(requests_by_tenant["checkout-assistant"] + requests_by_tenant["nightly-summaries"],
            sent_.requests);

  // The operator's view: spillwayctl usage -o json sums to the same totals.
  CtlRunOptions options;
  options.echo = false;
  CtlResult ctl = RunCtl(SPILLWAY_CTL_BIN,
                         {"--server", absl::StrCat("127.0.0.1:", fleet_.cp_port()), "usage",
                          "--since", "1h", "--by", "tenant,route,deployment,region", "-o", "json"},
                         fleet_.dir() + "/ctl-stderr", options);
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  Tokens cli;
  uint64_t cli_requests = 0;
  const json::value cli_rows = json::parse(ctl.out);
  for (const json::value& row : cli_rows.at("rows").as_array()) {
    cli_requests += JsonCount(row.at("requests"));
    cli.Add({JsonCount(row.at("prompt_tokens")), JsonCount(row.at("completion_tokens")),
             JsonCount(row.at("cached_tokens")), JsonCount(row.at("total_tokens"))});
    EXPECT_TRUE(row.at("key").as_object().contains("region"));
  }
  EXPECT_EQ(cli_requests, sent_.requests);
  EXPECT_EQ(cli, expected_total_);
  // And the table, for the eye.
  CtlResult table = RunCtl(SPILLWAY_CTL_BIN,
                           {"--server", absl::StrCat("127.0.0.1:", fleet_.cp_port()), "usage",
                            "--since", "1h", "--by", "tenant,deployment"},
                           fleet_.dir() + "/ctl-stderr-2", options);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, ::testing::HasSubstr("aoai-eus2-std/embed-3"));
}

TEST_F(UsageE2eTest, ControlPlaneKilledMidRunLosesAndDoublesNothing) {
  MixedRound("eus2");
  MixedRound("wus3");
  // SIGKILL while batches are in flight; traffic goes on meanwhile.
  fleet_.KillControlPlane();
  MixedRound("eus2");
  FailingRequests();
  MixedRound("wus3");
  // Both agents spool what they metered while it is away (a flush every 200 ms).
  const absl::Time deadline = absl::Now() + kFleetWait;
  while ((SpooledBatches("eus2") == 0 || SpooledBatches("wus3") == 0) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GT(SpooledBatches("eus2"), 0);
  EXPECT_GT(SpooledBatches("wus3"), 0);
  ASSERT_TRUE(fleet_.StartControlPlane().ok());
  MixedRound("eus2");
  ExpectUsageEqualsMocks();
}

TEST_F(UsageE2eTest, AgentRestartReplaysItsUnacknowledgedSpool) {
  MixedRound("eus2");
  ExpectUsageEqualsMocks();
  fleet_.KillControlPlane();
  MixedRound("eus2");
  MixedRound("eus2");
  // SIGTERM: the agent drains, seals what it counted and spools it; nothing is acked.
  StopAgentGracefully("eus2");
  const std::map<std::string, std::string> unacked = SpooledFiles("eus2");
  EXPECT_GT(unacked.size(), 0u);
  ASSERT_TRUE(fleet_.StartControlPlane().ok());
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2", kAgentArgs).ok());
  ExpectUsageEqualsMocks();

  // Replaying batches the control plane already stored (as after a lost ack) adds nothing.
  StopAgentGracefully("eus2");
  for (const auto& [name, content] : unacked) {
    ASSERT_TRUE(WriteFileAtomically(absl::StrCat(SpoolDir("eus2"), "/", name), content).ok());
  }
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2", kAgentArgs).ok());
  ExpectUsageEqualsMocks();
  // And the restarted agent meters on with fresh sequence numbers.
  MixedRound("eus2");
  ExpectUsageEqualsMocks();
}

}  // namespace
}  // namespace spillway::test
