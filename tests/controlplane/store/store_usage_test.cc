// Agents and usage in the store: agents upserted and listed by region, usage batches stored
// exactly once, and chargeback queries whose totals equal the sum of what agents sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/store/store.h"
#include "tests/controlplane/store/store_test_util.h"

namespace spillway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kMinute0 = 1'700'000'040'000;  // a minute boundary
constexpr int64_t kMinute = 60'000;

v1::AgentInfo Agent(const std::string& id, const std::string& region, uint64_t acked) {
  v1::AgentInfo agent;
  agent.set_agent_id(id);
  agent.set_region(region);
  agent.set_acked_version(acked);
  agent.set_connected(true);
  agent.set_last_seen_unix_ms(kMinute0 + static_cast<int64_t>(acked));
  agent.set_listen_address("127.0.0.1:8080");
  return agent;
}

struct Counts {
  uint64_t requests = 0, prompt = 0, completion = 0, cached = 0, total = 0;
};

v1::UsageAggregate Aggregate(int64_t minute, const std::string& tenant, const std::string& route,
                             const std::string& backend, const std::string& region, uint32_t status,
                             Counts counts) {
  v1::UsageAggregate a;
  a.set_minute_unix_ms(minute);
  a.set_tenant(tenant);
  a.set_route(route);
  a.set_backend_id(backend);
  a.set_instance(backend.substr(0, backend.find('/')));
  a.set_region(region);
  a.set_status(status);
  a.set_requests(counts.requests);
  a.set_prompt_tokens(counts.prompt);
  a.set_completion_tokens(counts.completion);
  a.set_cached_tokens(counts.cached);
  a.set_total_tokens(counts.total);
  a.set_attempts(counts.requests + 1);
  a.set_latency_ms_sum(counts.requests * 100);
  return a;
}

// "<key k=v,...> requests/prompt/completion/cached/total failed throttled" per row.
std::vector<std::string> Rows(const v1::UsageQueryResponse& response,
                              const std::vector<std::string>& dimensions) {
  std::vector<std::string> rows;
  for (const v1::UsageRow& row : response.rows()) {
    std::vector<std::string> key;
    std::set<std::string> seen;
    for (const std::string& dimension : dimensions) {
      if (!seen.insert(dimension).second) {
        continue;
      }
      auto it = row.key().find(dimension);
      key.push_back(it == row.key().end() ? "?" : it->second);
    }
    rows.push_back(absl::StrCat(absl::StrJoin(key, ","), " ", row.requests(), "/",
                                row.prompt_tokens(), "/", row.completion_tokens(), "/",
                                row.cached_tokens(), "/", row.total_tokens(), " f",
                                row.failed_requests(), " t", row.throttled_requests()));
  }
  return rows;
}

class StoreUsageTest : public test::StoreTest {
 protected:
  std::vector<std::string> Query(const std::vector<std::string>& group_by, int64_t since = 0,
                                 int64_t until = 0) {
    v1::UsageQuery query;
    query.set_since_unix_ms(since);
    query.set_until_unix_ms(until);
    for (const std::string& dimension : group_by) {
      query.add_group_by(dimension);
    }
    absl::StatusOr<v1::UsageQueryResponse> response = Store().QueryUsage(query);
    EXPECT_TRUE(response.ok()) << response.status();
    return Rows(response.value_or(v1::UsageQueryResponse()), group_by);
  }

  // Two agents' batches over three minutes: two tenants in us, one in eu; 200, 429, 500 and
  // 0 (no response); one key reported by both agents.
  void StoreFleetUsage() {
    v1::UsageBatch a;
    a.set_agent_id("agent-eus2");
    a.set_sequence(1);
    *a.add_aggregates() = Aggregate(kMinute0, "checkout", "gpt-4o", "aoai-eus2-ptu/gpt-4o-ptu",
                                    "eastus2", 200, {10, 1000, 500, 100, 1500});
    *a.add_aggregates() = Aggregate(kMinute0, "checkout", "gpt-4o", "aoai-eus2-std/gpt-4o",
                                    "eastus2", 429, {3, 0, 0, 0, 0});
    *a.add_aggregates() = Aggregate(kMinute0, "checkout", "embed", "aoai-eus2-std/embed-3",
                                    "eastus2", 200, {5, 400, 0, 0, 400});
    *a.add_aggregates() = Aggregate(kMinute0 + kMinute, "nightly", "gpt-4o", "aoai-wus3-std/gpt-4o",
                                    "westus3", 500, {2, 0, 0, 0, 0});
    *a.add_aggregates() = Aggregate(kMinute0 + kMinute, "nightly", "gpt-4o", "aoai-wus3-std/gpt-4o",
                                    "westus3", 200, {7, 700, 300, 0, 1000});
    v1::UsageBatch b;
    b.set_agent_id("agent-wus3");
    b.set_sequence(1);  // same sequence, other agent: a different batch
    *b.add_aggregates() = Aggregate(kMinute0, "checkout", "gpt-4o", "aoai-eus2-ptu/gpt-4o-ptu",
                                    "eastus2", 200, {1, 100, 50, 0, 150});
    *b.add_aggregates() = Aggregate(kMinute0 + 2 * kMinute, "helpdesk", "gpt-4o",
                                    "aoai-swc-std/gpt-4o", "swedencentral", 0, {1, 0, 0, 0, 0});
    ASSERT_TRUE(Store().StoreUsage(a).ok());
    ASSERT_TRUE(Store().StoreUsage(b).ok());
  }
};

TEST_P(StoreUsageTest, AgentsAreUpsertedAndListedByRegionThenId) {
  ASSERT_TRUE(Store().RecordAgent(Agent("b", "westus3", 1)).ok());
  ASSERT_TRUE(Store().RecordAgent(Agent("c", "eastus2", 1)).ok());
  ASSERT_TRUE(Store().RecordAgent(Agent("a", "eastus2", 1)).ok());
  v1::AgentInfo nacked = Agent("c", "eastus2", 7);
  nacked.set_connected(false);
  nacked.set_last_nack_reason("table version 8: unknown field");
  ASSERT_TRUE(Store().RecordAgent(nacked).ok());
  EXPECT_EQ(Store().RecordAgent(Agent("", "eastus2", 1)).code(),
            absl::StatusCode::kInvalidArgument);

  Close();  // what is listed survives a restart
  absl::StatusOr<std::vector<v1::AgentInfo>> agents = Store().ListAgents();
  ASSERT_TRUE(agents.ok()) << agents.status();
  ASSERT_EQ(agents->size(), 3u);
  EXPECT_EQ((*agents)[0].agent_id(), "a");
  EXPECT_EQ((*agents)[1].agent_id(), "c");
  EXPECT_EQ((*agents)[2].agent_id(), "b");
  EXPECT_EQ((*agents)[1].DebugString(), nacked.DebugString());
  EXPECT_EQ((*agents)[0].DebugString(), Agent("a", "eastus2", 1).DebugString());
}

// Replicas write their agents' rows on their own schedules: an agent that moved from replica
// "a" to "b" must not be marked disconnected when a's record of the old stream's end lands
// after b's record of the new stream.
TEST_P(StoreUsageTest, AStreamsEndOnOneReplicaDoesNotUndoANewerStreamOnAnother) {
  auto record = [&](const std::string& replica, bool connected) {
    v1::AgentInfo agent = Agent("x", "eastus2", 1);
    agent.set_replica(replica);
    agent.set_connected(connected);
    ASSERT_TRUE(Store().RecordAgent(agent).ok());
    ASSERT_TRUE(Store().ListAgents().ok());  // written before the next record
  };
  auto listed = [&] {
    absl::StatusOr<std::vector<v1::AgentInfo>> agents = Store().ListAgents();
    return agents.ok() && agents->size() == 1
               ? absl::StrCat((*agents)[0].replica(), (*agents)[0].connected() ? " up" : " down")
               : std::string("?");
  };
  record("a", true);
  record("b", true);
  record("a", false);
  EXPECT_EQ(listed(), "b up");
  record("b", false);
  EXPECT_EQ(listed(), "b down");
  record("a", true);
  EXPECT_EQ(listed(), "a up");
}

TEST_P(StoreUsageTest, ReplayedBatchIsStoredOnce) {
  StoreFleetUsage();
  const std::vector<std::string> before = Query({});
  EXPECT_THAT(before, ElementsAre(" 29/2200/850/100/3050 f3 t3"));
  v1::UsageBatch replay;
  replay.set_agent_id("agent-eus2");
  replay.set_sequence(1);
  *replay.add_aggregates() =
      Aggregate(kMinute0, "checkout", "gpt-4o", "x/y", "eastus2", 200, {1000, 1, 1, 1, 1});
  EXPECT_TRUE(Store().StoreUsage(replay).ok());
  EXPECT_EQ(Query({}), before);
  Close();
  EXPECT_TRUE(Store().StoreUsage(replay).ok());  // the marker survives a restart
  EXPECT_EQ(Query({}), before);
  replay.set_sequence(2);
  EXPECT_TRUE(Store().StoreUsage(replay).ok());
  EXPECT_THAT(Query({}), ElementsAre(" 1029/2201/851/101/3051 f3 t3"));
}

TEST_P(StoreUsageTest, GroupsByAnyDimensionsWithExactSums) {
  StoreFleetUsage();
  EXPECT_THAT(Query({"tenant"}),
              ElementsAre("checkout 19/1500/550/100/2050 f0 t3", "helpdesk 1/0/0/0/0 f1 t0",
                          "nightly 9/700/300/0/1000 f2 t0"));
  EXPECT_THAT(Query({"tenant", "route"}), ElementsAre("checkout,embed 5/400/0/0/400 f0 t0",
                                                      "checkout,gpt-4o 14/1100/550/100/1650 f0 t3",
                                                      "helpdesk,gpt-4o 1/0/0/0/0 f1 t0",
                                                      "nightly,gpt-4o 9/700/300/0/1000 f2 t0"));
  EXPECT_THAT(
      Query({"deployment"}),
      ElementsAre("aoai-eus2-ptu/gpt-4o-ptu 11/1100/550/100/1650 f0 t0",
                  "aoai-eus2-std/embed-3 5/400/0/0/400 f0 t0",
                  "aoai-eus2-std/gpt-4o 3/0/0/0/0 f0 t3", "aoai-swc-std/gpt-4o 1/0/0/0/0 f1 t0",
                  "aoai-wus3-std/gpt-4o 9/700/300/0/1000 f2 t0"));
  EXPECT_THAT(Query({"region", "instance"}),
              ElementsAre("eastus2,aoai-eus2-ptu 11/1100/550/100/1650 f0 t0",
                          "eastus2,aoai-eus2-std 8/400/0/0/400 f0 t3",
                          "swedencentral,aoai-swc-std 1/0/0/0/0 f1 t0",
                          "westus3,aoai-wus3-std 9/700/300/0/1000 f2 t0"));
  // Numeric order, and the outcome classes: 0 and 5xx failed, 429 throttled.
  EXPECT_THAT(Query({"status"}), ElementsAre("0 1/0/0/0/0 f1 t0", "200 23/2200/850/100/3050 f0 t0",
                                             "429 3/0/0/0/0 f0 t3", "500 2/0/0/0/0 f2 t0"));
  EXPECT_THAT(Query({"tenant", "tenant"}),
              ElementsAre("checkout 19/1500/550/100/2050 f0 t3", "helpdesk 1/0/0/0/0 f1 t0",
                          "nightly 9/700/300/0/1000 f2 t0"));
}

TEST_P(StoreUsageTest, OutcomeClassesFollowTheFinalStatus) {
  v1::UsageBatch batch;
  batch.set_agent_id("agent");
  batch.set_sequence(7);
  uint64_t requests = 1;
  for (uint32_t status : {0, 200, 201, 399, 400, 401, 404, 429, 499, 500, 503}) {
    *batch.add_aggregates() =
        Aggregate(kMinute0, "t", "r", "i/d", "eastus2", status, {requests, 0, 0, 0, 0});
    requests *= 2;  // each status its own bit, so the sums say which were counted
  }
  ASSERT_TRUE(Store().StoreUsage(batch).ok());
  // failed: 0 (1), 400 (16), 401 (32), 404 (64), 499 (256), 500 (512), 503 (1024)
  EXPECT_THAT(Query({}), ElementsAre(" 2047/0/0/0/0 f1905 t128"));
}

TEST_P(StoreUsageTest, SinceAndUntilSelectMinutes) {
  StoreFleetUsage();
  EXPECT_THAT(Query({"tenant"}, kMinute0 + kMinute),
              ElementsAre("helpdesk 1/0/0/0/0 f1 t0", "nightly 9/700/300/0/1000 f2 t0"));
  EXPECT_THAT(Query({"tenant"}, 0, kMinute0 + kMinute),
              ElementsAre("checkout 19/1500/550/100/2050 f0 t3"));
  EXPECT_THAT(Query({"tenant"}, kMinute0 + kMinute, kMinute0 + 2 * kMinute),
              ElementsAre("nightly 9/700/300/0/1000 f2 t0"));
  EXPECT_THAT(Query({}, kMinute0 + 3 * kMinute), IsEmpty());

  // An aggregate stamped inside a minute is counted in that minute.
  v1::UsageBatch late;
  late.set_agent_id("agent-eus2");
  late.set_sequence(2);
  *late.add_aggregates() = Aggregate(kMinute0 + 2 * kMinute + 59'999, "nightly", "gpt-4o",
                                     "aoai-wus3-std/gpt-4o", "westus3", 200, {1, 1, 1, 0, 2});
  ASSERT_TRUE(Store().StoreUsage(late).ok());
  EXPECT_THAT(Query({"tenant"}, kMinute0 + 2 * kMinute, kMinute0 + 3 * kMinute),
              ElementsAre("helpdesk 1/0/0/0/0 f1 t0", "nightly 1/1/1/0/2 f0 t0"));
}

TEST_P(StoreUsageTest, RefusesBadQueriesAndBatches) {
  v1::UsageQuery query;
  query.add_group_by("tenant");
  query.add_group_by("tenant; DROP TABLE usage");
  absl::StatusOr<v1::UsageQueryResponse> refused = Store().QueryUsage(query);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("'tenant; DROP TABLE usage'"));
  query.clear_group_by();
  query.set_since_unix_ms(kMinute0);
  query.set_until_unix_ms(kMinute0 - 1);
  EXPECT_EQ(Store().QueryUsage(query).status().code(), absl::StatusCode::kInvalidArgument);

  v1::UsageBatch batch;
  batch.set_sequence(1);
  EXPECT_EQ(Store().StoreUsage(batch).code(), absl::StatusCode::kInvalidArgument);
  batch.set_agent_id("agent");
  *batch.add_aggregates() = Aggregate(kMinute0, "t", "r", "i/d", "eastus2", 200, {1, 0, 0, 0, 0});
  batch.mutable_aggregates(0)->set_total_tokens(std::numeric_limits<uint64_t>::max());
  absl::Status status = Store().StoreUsage(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("total_tokens"));
  // A NUL byte, which PostgreSQL's text cannot hold, is refused on both engines alike.
  batch.mutable_aggregates(0)->set_total_tokens(5);
  batch.mutable_aggregates(0)->set_tenant(std::string("t\0x", 3));
  status = Store().StoreUsage(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("tenant holds a NUL byte"));
  batch.mutable_aggregates(0)->set_tenant("t");
  // Refused batches leave no marker: the corrected batch is still accepted.
  ASSERT_TRUE(Store().StoreUsage(batch).ok());
  EXPECT_THAT(Query({}), ElementsAre(" 1/0/0/0/5 f0 t0"));
}

TEST_P(StoreUsageTest, TotalsEqualTheSumOfEveryBatchStoredOnce) {
  std::mt19937 random(42);
  const std::vector<std::string> tenants = {"a", "b", "c"};
  const std::vector<std::string> regions = {"eastus2", "westus3"};
  std::map<std::string, uint64_t> expected_tokens;  // by tenant
  uint64_t expected_requests = 0;
  std::vector<v1::UsageBatch> sent;
  for (int sequence = 1; sequence <= 40; ++sequence) {
    v1::UsageBatch batch;
    batch.set_agent_id(absl::StrCat("agent-", sequence % 3));
    batch.set_sequence(static_cast<uint64_t>(sequence));
    for (int i = 0; i < 5; ++i) {
      const std::string& tenant = tenants[random() % tenants.size()];
      const uint64_t tokens = random() % 100'000;
      const uint64_t requests = 1 + random() % 50;
      *batch.add_aggregates() = Aggregate(
          kMinute0 + kMinute * static_cast<int64_t>(random() % 5), tenant, "gpt-4o", "inst/dep",
          regions[random() % 2], random() % 2 ? 200 : 429, {requests, tokens, 0, 0, tokens});
      expected_tokens[tenant] += tokens;
      expected_requests += requests;
    }
    ASSERT_TRUE(Store().StoreUsage(batch).ok());
    sent.push_back(batch);
    if (sequence % 4 == 0) {  // an agent that lost its acks replays its spool
      for (const v1::UsageBatch& replayed : sent) {
        ASSERT_TRUE(Store().StoreUsage(replayed).ok());
      }
    }
  }
  std::vector<std::string> expected;
  for (const auto& [tenant, tokens] : expected_tokens) {
    expected.push_back(absl::StrCat(tenant, " ", tokens));
  }
  v1::UsageQuery query;
  query.add_group_by("tenant");
  absl::StatusOr<v1::UsageQueryResponse> response = Store().QueryUsage(query);
  ASSERT_TRUE(response.ok()) << response.status();
  std::vector<std::string> actual;
  uint64_t requests = 0;
  for (const v1::UsageRow& row : response->rows()) {
    actual.push_back(absl::StrCat(row.key().at("tenant"), " ", row.total_tokens()));
    requests += row.requests();
  }
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(requests, expected_requests);
}

SPILLWAY_STORE_BACKENDS(StoreUsageTest);

}  // namespace
}  // namespace spillway
