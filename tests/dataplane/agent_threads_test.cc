// An agent with several I/O threads (--threads 4) under many concurrent clients: the state the
// threads share (routing weights, throttles and circuits, tenant quotas, usage metering) must
// behave as with one thread. Each client has its own connection; the kernel spreads those over
// the threads' SO_REUSEPORT listeners.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/sse.h"

namespace spillway::test {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

constexpr char kThreads[] = "4";
// Twice the agent's threads: with 8 connections over 4 listeners, all landing on one thread
// is a 4 x (1/4)^8 chance; the tests below would still pass then, proving less.
constexpr int kClients = 8;

struct Outcome {
  int client = 0;
  std::string key;
  int status = 0;  // 0: the exchange failed (`error` says why)
  std::string backend;
  std::string body;
  std::string error;
};

// What one client sends as its `i`th request.
struct Call {
  std::string key = kTenantKey;
  std::string body = ChatBody();
};

// Runs `per_client` requests on each of kClients threads at once, each thread on its own
// connection, and returns every outcome. Threads are joined before anything is asserted.
std::vector<Outcome> Burst(AgentFleet& fleet, int per_client,
                           const std::function<Call(int client, int i)>& make) {
  absl::Mutex mu;
  std::vector<Outcome> outcomes;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      auto client = fleet.AgentClient();
      for (int i = 0; i < per_client; ++i) {
        const Call call = make(c, i);
        Outcome outcome;
        outcome.client = c;
        outcome.key = call.key;
        // Generous: a loaded 2-core machine runs two mocks, the agent and 8 clients.
        absl::StatusOr<HttpResponse> r = client->Send(
            "POST", ChatTarget("gpt-4o"), {{"api-key", call.key}}, call.body, absl::Seconds(60));
        if (r.ok()) {
          outcome.status = r->status;
          outcome.backend = r->Header("x-spillway-backend").value_or("");
          outcome.body = std::move(r->body);
        } else {
          outcome.error = r.status().ToString();
        }
        absl::MutexLock lock(&mu);
        outcomes.push_back(std::move(outcome));
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  return outcomes;
}

std::string Describe(const Outcome& o) {
  return absl::StrCat("client ", o.client, " key ", o.key, ": ", o.status, " ", o.error, " ",
                      o.body.substr(0, 200));
}

// The state of backend `id` in the agent's /status.
std::string BackendState(AgentFleet& fleet, const std::string& id) {
  absl::StatusOr<HttpResponse> status = fleet.AgentClient()->Send("GET", "/status");
  EXPECT_TRUE(status.ok()) << status.status();
  if (!status.ok()) {
    return "";
  }
  const json::value parsed = json::parse(status->body);
  for (const json::value& backend : parsed.at("backends").as_array()) {
    if (backend.at("id").as_string() == id) {
      return std::string(backend.at("state").as_string());
    }
  }
  return "";
}

TEST(AgentThreads, WeightedMembersShareTheLoadAndEveryAnswerNamesItsBackend) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("b", {"--deployments", "gpt-4o"}).ok());
  const std::string yaml = absl::StrCat(kTwoInstancesYaml, R"(deployments:
  - { instance: a, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
  - { instance: b, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
pools:
  - { name: p, members: [ { deployment: a/gpt-4o, weight: 1 }, { deployment: b/gpt-4o, weight: 3 } ] }
routes:
  - { name: gpt-4o, stamp: us, tiers: [ p ] }
)");
  ASSERT_TRUE(fleet.StartAgent(yaml, "eastus2", {"--threads", kThreads}).ok());
  constexpr int kEach = 12;
  const std::vector<Outcome> outcomes = Burst(fleet, kEach, [](int, int) { return Call{}; });
  ASSERT_EQ(outcomes.size(), static_cast<size_t>(kClients * kEach));
  std::map<std::string, int64_t> served_by;
  for (const Outcome& o : outcomes) {
    EXPECT_EQ(o.status, 200) << Describe(o);
    EXPECT_THAT(o.body, HasSubstr(R"("object":"chat.completion")")) << Describe(o);
    ++served_by[o.backend];
  }
  // What the answers say matches what each backend saw: no answer is misattributed, none lost.
  EXPECT_EQ(served_by["a/gpt-4o"], StatusCount(MockStatsJson(fleet, "a"), "gpt-4o", 200));
  EXPECT_EQ(served_by["b/gpt-4o"], StatusCount(MockStatsJson(fleet, "b"), "gpt-4o", 200));
  EXPECT_EQ(served_by["a/gpt-4o"] + served_by["b/gpt-4o"], kClients * kEach);
  // Weighted random 1:3 over 96 requests: about 24 for a, with a standard deviation of about
  // 4.2. The bounds are more than 3.5 deviations out: a failure means the weights are off.
  EXPECT_GE(served_by["a/gpt-4o"], 9);
  EXPECT_LE(served_by["a/gpt-4o"], 39);
}

TEST(AgentThreads, AThrottledTierIsSkippedByEveryThread) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(TieredTopology({"std1"}), "eastus2", {"--threads", kThreads}).ok());
  // Tiers first: with the PTU healthy, every thread sends everything there.
  std::vector<Outcome> outcomes = Burst(fleet, 4, [](int, int) { return Call{}; });
  for (const Outcome& o : outcomes) {
    EXPECT_EQ(o.status, 200) << Describe(o);
    EXPECT_EQ(o.backend, "ptu/gpt-4o-ptu") << Describe(o);
  }
  // One 429 with a minute's retry-after blocks the PTU for every thread, not just the one
  // that saw it (a minute outlasts the test many times over).
  ASSERT_TRUE(
      fleet.SetFault("ptu", R"({"mode":"status","status":429,"retry_after_ms":60000})").ok());
  absl::StatusOr<HttpResponse> first =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(first->Header("x-spillway-backend"), "std1/gpt-4o");
  ASSERT_EQ(StatusCount(MockStatsJson(fleet, "ptu"), "gpt-4o-ptu", 429), 1);
  outcomes = Burst(fleet, 8, [](int, int) { return Call{}; });
  for (const Outcome& o : outcomes) {
    EXPECT_EQ(o.status, 200) << Describe(o);
    EXPECT_EQ(o.backend, "std1/gpt-4o") << Describe(o);
  }
  EXPECT_EQ(StatusCount(MockStatsJson(fleet, "ptu"), "gpt-4o-ptu", 429), 1)
      << "another thread sent a request to the throttled PTU";
  EXPECT_EQ(StatusCount(MockStatsJson(fleet, "std1"), "gpt-4o", 200), 1 + kClients * 8);
}

TEST(AgentThreads, AFailingBackendTripsTheCircuitForEveryThread) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  // A minute open: the circuit cannot half-open while the test runs, however slow the machine.
  ASSERT_TRUE(fleet
                  .StartAgent(TieredTopology({"std1"}), "eastus2",
                              {"--threads", kThreads, "--failure-threshold", "3",
                               "--circuit-open-ms", "60000"})
                  .ok());
  // A 503 with retry-after moves each request on to Standard, and counts as a failure.
  ASSERT_TRUE(fleet.SetFault("ptu", R"({"mode":"status","status":503,"retry_after_ms":1})").ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 10 && BackendState(fleet, "ptu/gpt-4o-ptu") != "open"; ++i) {
    absl::StatusOr<HttpResponse> r = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
  }
  ASSERT_EQ(BackendState(fleet, "ptu/gpt-4o-ptu"), "open");
  const int64_t failures = StatusCount(MockStatsJson(fleet, "ptu"), "gpt-4o-ptu", 503);
  EXPECT_EQ(failures, 3) << "--failure-threshold 3";

  const std::vector<Outcome> outcomes = Burst(fleet, 8, [](int, int) { return Call{}; });
  for (const Outcome& o : outcomes) {
    EXPECT_EQ(o.status, 200) << Describe(o);
    EXPECT_EQ(o.backend, "std1/gpt-4o") << Describe(o);
  }
  EXPECT_EQ(StatusCount(MockStatsJson(fleet, "ptu"), "gpt-4o-ptu", 503), failures)
      << "a thread sent a request through the open circuit";
  EXPECT_EQ(BackendState(fleet, "ptu/gpt-4o-ptu"), "open");
}

// "app" (key "test") has 1000 TPM; "calls" (key "calls") has 20 RPM.
constexpr char kQuotaTenants[] = R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], limits: { tokens_per_minute: 1000 }, api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
  - { name: calls, stamp: us, routes: [ gpt-4o ], limits: { requests_per_minute: 20 }, api_keys: [ { name: k, sha256: f46f5990ebfadcab199107258b9dadd8711bd7946d8d00091a1073effcf2a843 } ] }
)";

TEST(AgentThreads, TenantQuotasHoldAcrossThreads) {
  AgentFleet fleet;
  // Completions as long as max_tokens: each admitted "app" request charges 109 up front (9
  // estimated prompt tokens + 100) and really costs 104 (the mock counts 4 prompt tokens).
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o", "--completion-tokens", "1000"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(SingleBackendTopology({"gpt-4o"}, kQuotaTenants), "eastus2",
                              {"--threads", kThreads})
                  .ok());
  constexpr int kEach = 12;  // 48 attempts per tenant, far over either limit
  const absl::Time start = absl::Now();
  const std::vector<Outcome> outcomes = Burst(fleet, kEach, [](int c, int i) {
    Call call;
    call.key = (c + i) % 2 == 0 ? "test" : "calls";
    call.body = ChatBody(100);
    return call;
  });
  const double elapsed_s = absl::ToDoubleSeconds(absl::Now() - start);
  std::map<std::string, int64_t> admitted;
  for (const Outcome& o : outcomes) {
    EXPECT_TRUE(o.status == 200 || o.status == 429) << Describe(o);
    if (o.status == 200) {
      ++admitted[o.key];
    }
  }
  // Both buckets start full, so at least a full minute's worth is admitted...
  EXPECT_GE(admitted["calls"], 20);
  EXPECT_GE(admitted["test"], 9) << "9 x 109 fit in 1000";
  // ...and never more than that plus what refilled while the burst ran (20 RPM: one request
  // every 3 s; 1000 TPM: one token every 60 ms), however the threads interleaved. The refill
  // is measured around the whole burst, so these bounds only err on the generous side.
  EXPECT_LE(admitted["calls"], static_cast<int64_t>(20 + elapsed_s / 3));
  EXPECT_LE(admitted["test"], static_cast<int64_t>((1000 + elapsed_s * 1000 / 60) / 104))
      << "after " << elapsed_s << " s";
  // Refused requests never reached the backend.
  EXPECT_EQ(StatusCount(MockStatsJson(fleet, "a"), "gpt-4o", 200),
            admitted["calls"] + admitted["test"]);
}

// The value of the /metrics sample `series` (name and labels as printed), or -1.
int64_t Sample(const std::string& metrics, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      int64_t value = -1;
      return absl::SimpleAtoi(line, &value) ? value : -1;
    }
  }
  return -1;
}

struct Totals {
  int64_t requests = 0;
  int64_t prompt = 0;
  int64_t completion = 0;
  bool operator==(const Totals&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Totals& t) {
  return os << "{requests " << t.requests << ", prompt " << t.prompt << ", completion "
            << t.completion << "}";
}

TEST(AgentThreads, EveryAdmittedRequestIsMeteredExactlyOnce) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o", "--completion-tokens", "7"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(SingleBackendTopology({"gpt-4o"}, R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
)"),
                              "eastus2", {"--threads", kThreads, "--usage-flush-ms", "50"})
                  .ok());
  constexpr int kEach = 10;
  // Streams without usage (the agent asks the backend for it and strips it), streams that
  // asked for it, and plain answers, mixed on every connection.
  const std::vector<Outcome> outcomes = Burst(fleet, kEach, [](int c, int i) {
    Call call;
    const int kind = (c + i) % 3;
    call.body = ChatBody(3 + i % 5, /*stream=*/kind != 0, /*include_usage=*/kind == 1);
    return call;
  });
  ASSERT_EQ(outcomes.size(), static_cast<size_t>(kClients * kEach));
  for (const Outcome& o : outcomes) {
    ASSERT_EQ(o.status, 200) << Describe(o);
    if (absl::StartsWith(o.body, "data:")) {
      EXPECT_EQ(ParseSseData(o.body).back(), "[DONE]") << Describe(o);
    }
  }
  const json::object stats = MockStatsJson(fleet, "a");
  const json::object& usage = stats.at("deployments").at("gpt-4o").at("usage").as_object();
  const Totals backend{StatusCount(stats, "gpt-4o", 200), usage.at("prompt_tokens").as_int64(),
                       usage.at("completion_tokens").as_int64()};
  ASSERT_EQ(backend.requests, kClients * kEach);

  // The tenant's metered usage reaches /metrics at the next flush (50 ms) of each thread,
  // and the access log is written asynchronously: wait until both add up, then compare.
  Totals metered, logged;
  int lines = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    absl::StatusOr<HttpResponse> scrape = fleet.AgentClient()->Send("GET", "/metrics");
    ASSERT_TRUE(scrape.ok()) << scrape.status();
    const std::string labels = R"({tenant="app",route="gpt-4o")";
    metered = {Sample(scrape->body, absl::StrCat("spillway_tenant_requests_total", labels, "}")),
               Sample(scrape->body,
                      absl::StrCat("spillway_tenant_tokens_total", labels, R"(,kind="prompt"})")),
               Sample(scrape->body, absl::StrCat("spillway_tenant_tokens_total", labels,
                                                 R"(,kind="completion"})"))};
    logged = {};
    lines = 0;
    if (absl::StatusOr<std::string> log = ReadFile(fleet.temp_dir() + "/access.log"); log.ok()) {
      for (absl::string_view line : absl::StrSplit(*log, '\n', absl::SkipEmpty())) {
        const json::value record = json::parse(std::string(line));
        ++lines;
        if (record.at("status").as_int64() == 200) {
          ++logged.requests;
          logged.prompt += record.at("prompt_tokens").as_int64();
          logged.completion += record.at("completion_tokens").as_int64();
        }
      }
    }
    if (metered == backend && logged == backend) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  EXPECT_EQ(metered, backend) << "the tenant's usage in /metrics";
  EXPECT_EQ(logged, backend) << "the access log";
  EXPECT_EQ(lines, kClients * kEach) << "one access log line per request";
}

}  // namespace
}  // namespace spillway::test
