// When the agent sends a request to another candidate, and when it must not (docs/choices.md,
// "Retries"): only answers that promise the backend never started work move a request on;
// anything else goes to the client as it came. And a client that leaves while a backend is
// still thinking cancels the upstream request.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/object.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/wait_for.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

// Requests a mock's deployment saw, answered or not: every attempt the agent made there.
int64_t Requests(AgentFleet& fleet, const std::string& mock, const std::string& deployment) {
  const boost::json::object stats = MockStatsJson(fleet, mock);
  const auto* d = stats.at("deployments").as_object().if_contains(deployment);
  return d == nullptr ? 0 : d->at("requests").as_int64();
}

int64_t HangsAbandoned(AgentFleet& fleet, const std::string& mock) {
  return MockStatsJson(fleet, mock).at("hangs_abandoned").as_int64();
}

// A PTU tier ("ptu") in front of a Standard one ("std1").
class AgentRetry : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> agent_args = {}) {
    ASSERT_TRUE(fleet_.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
    ASSERT_TRUE(fleet_.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
    ASSERT_TRUE(fleet_.StartAgent(TieredTopology({"std1"}), "eastus2", agent_args).ok());
  }

  HttpResponse Send() {
    absl::StatusOr<HttpResponse> r =
        fleet_.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(HttpResponse{});
  }

  // The PTU answered with `fault`: the client got `status`, and only one attempt was made.
  void ExpectNotRetried(const std::string& fault, int status) {
    ASSERT_TRUE(fleet_.SetFault("ptu", fault).ok());
    HttpResponse r = Send();
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.Header("x-spillway-attempts"), "1");
    EXPECT_EQ(Requests(fleet_, "ptu", "gpt-4o-ptu"), 1);
    EXPECT_EQ(Requests(fleet_, "std1", "gpt-4o"), 0) << "sent twice";
  }

  // The PTU answered with `fault`: the Standard tier served the request.
  void ExpectRetried(const std::string& fault) {
    ASSERT_TRUE(fleet_.SetFault("ptu", fault).ok());
    HttpResponse r = Send();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("x-spillway-backend"), "std1/gpt-4o");
    EXPECT_EQ(r.Header("x-spillway-attempts"), "2");
    EXPECT_EQ(Requests(fleet_, "ptu", "gpt-4o-ptu"), 1);
  }

  AgentFleet fleet_;
};

TEST_F(AgentRetry, A500IsRelayedNotRetried) {
  Start();
  ExpectNotRetried(R"({"status":500,"message":"backend trouble"})", 500);
}

TEST_F(AgentRetry, A503WithoutRetryAfterIsRelayedNotRetried) {
  Start();
  ExpectNotRetried(R"({"status":503})", 503);
}

TEST_F(AgentRetry, AFirstByteTimeoutIs504NotRetried) {
  // 2 s: long enough that a loaded machine's slow answer is not taken for a hang, and the hang
  // never ends on its own before the timeout (the mock hangs until the client leaves).
  Start({"--first-byte-timeout-ms", "2000"});
  ExpectNotRetried(R"({"mode":"hang","count":1})", 504);
}

TEST_F(AgentRetry, A429IsRetried) {
  Start();
  ExpectRetried(R"({"status":429,"retry_after_ms":5000,"count":1})");
}

TEST_F(AgentRetry, A503WithRetryAfterIsRetried) {
  Start();
  ExpectRetried(R"({"status":503,"retry_after_ms":1000,"count":1})");
}

TEST_F(AgentRetry, ARefusedConnectionIsRetried) {
  Start();
  ASSERT_TRUE(fleet_.KillMock("ptu").ok());
  HttpResponse r = Send();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("x-spillway-backend"), "std1/gpt-4o");
}

TEST(AgentRouteTimeout, TheRouteSetsItsOwnFirstByteTimeout) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  const std::string routes =
      "  - { name: impatient, stamp: us, tiers: [ p ], first_byte_timeout_ms: 1000 }\n";
  // The agent's own default would wait ten minutes.
  ASSERT_TRUE(fleet
                  .StartAgent(SingleBackendTopology({"gpt-4o"}, routes), "eastus2",
                              {"--first-byte-timeout-ms", "600000"})
                  .ok());
  ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"hang","count":1})").ok());
  absl::StatusOr<HttpResponse> r =
      fleet.AgentClient()->Send("POST", ChatTarget("impatient"), {}, ChatBody());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 504) << r->body;
  EXPECT_THAT(r->body, HasSubstr("within 1000 ms"));
}

// A client sends a request to a hanging backend, waits until the backend has it, and leaves.
void ClientLeavesWhileTheBackendThinks(const std::vector<std::string>& agent_args) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  std::vector<std::string> args = {"--first-byte-timeout-ms", "600000"};
  args.insert(args.end(), agent_args.begin(), agent_args.end());
  ASSERT_TRUE(fleet.StartAgent(SingleBackendTopology(), "eastus2", args).ok());
  ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"hang","count":1})").ok());

  const int fd = ConnectRaw(fleet.agent_port(), 5);
  ASSERT_GE(fd, 0);
  const std::string body = ChatBody();
  const std::string request = absl::StrCat(
      "POST ", ChatTarget("gpt-4o"), " HTTP/1.1\r\nHost: agent\r\n",
      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
  ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  ASSERT_TRUE(WaitFor([&] { return Requests(fleet, "a", "gpt-4o") == 1; }, absl::Seconds(30)));
  ::close(fd);

  EXPECT_TRUE(WaitFor([&] { return HangsAbandoned(fleet, "a") == 1; }, absl::Seconds(30)))
      << "the backend still works for a client that left";
  EXPECT_TRUE(
      WaitForFileContaining(fleet.temp_dir() + "/access.log", "\"status\":499", absl::Seconds(10))
          .ok());
  // The agent is fine: the next request is served.
  absl::StatusOr<HttpResponse> next =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->status, 200) << next->body;
}

TEST(AgentClientGone, ClosesTheHttp1UpstreamConnection) { ClientLeavesWhileTheBackendThinks({}); }

TEST(AgentClientGone, ResetsTheHttp2Stream) {
  ClientLeavesWhileTheBackendThinks({"--upstream-http2"});
}

}  // namespace
}  // namespace spillway::test
