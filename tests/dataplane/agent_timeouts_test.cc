// The agent's socket deadlines (dataplane/http/socket_deadline): an idle client connection is
// closed, before its first request and between requests, and a backend that goes quiet
// mid-stream ends the client's stream with an error event.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/dataplane/agent_fixture.h"
#include "tests/support/sse.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The deadlines under test: 2 s, short enough to wait for, long enough that a loaded machine
// (ctest -j2 on two cores) does not trip them where they must not fire, such as between the
// events of a healthy stream or between connecting and sending a request. Each test proves
// its deadline fired by what the agent did (closed, sent an error event), never by the clock.
constexpr char kDeadlineMs[] = "2000";

class AgentTimeouts : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "gpt-4o"}).ok());
    ASSERT_TRUE(fleet_
                    .StartAgent(SingleBackendTopology(), "eastus2",
                                {"--client-idle-timeout-ms", kDeadlineMs,
                                 "--stream-idle-timeout-ms", kDeadlineMs})
                    .ok());
  }

  // A raw connection (-1 if none) whose reads give up after 30 s: far past the deadlines under
  // test, yet short of the agent's 60 s defaults, so a deadline that did not take effect fails
  // the test instead of being covered by the default.
  int Connect() { return ConnectRaw(fleet_.agent_port(), 30); }

  // Reads until the agent closes (true) or the read gives up (false); `got` has the bytes.
  static bool ReadUntilClosed(int fd, std::string& got) {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n == 0) {
        return true;
      }
      if (n < 0) {
        return false;
      }
      got.append(buffer, static_cast<std::size_t>(n));
    }
  }

  AgentFleet fleet_;
};

TEST_F(AgentTimeouts, AConnectionThatSendsNothingIsClosed) {
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  std::string got;
  EXPECT_TRUE(ReadUntilClosed(fd, got)) << "the agent kept an idle connection open";
  EXPECT_EQ(got, "");
  ::close(fd);
}

TEST_F(AgentTimeouts, AKeepAliveConnectionIsClosedOnceIdleAfterItsRequest) {
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string body = ChatBody();
  const std::string request = "POST " + ChatTarget("gpt-4o") +
                              " HTTP/1.1\r\nHost: agent\r\napi-key: any\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string got;
  EXPECT_TRUE(ReadUntilClosed(fd, got)) << "the agent kept an idle connection open";
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(got, HasSubstr("\"usage\""));
  ::close(fd);
}

TEST_F(AgentTimeouts, ABackendQuietMidStreamEndsTheStreamWithAnErrorEvent) {
  // After its first event the backend waits a minute before each next one: only the agent's
  // 2 s stream-idle deadline can end the stream before the client's 30 s guard (which is short
  // of the agent's 60 s default).
  ASSERT_TRUE(fleet_.SetFault("a", R"({"mode":"slow_drip","drip_ms":60000,"count":1})").ok());
  auto client = fleet_.AgentClient();
  absl::StatusOr<HttpResponse> response = client->Send(
      "POST", ChatTarget("gpt-4o"), {}, ChatBody(10, /*stream=*/true), absl::Seconds(30));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->body, HasSubstr("event: error"));
  EXPECT_THAT(response->body, Not(HasSubstr("[DONE]")));
  EXPECT_TRUE(
      WaitForFileContaining(fleet_.temp_dir() + "/access.log", "idle timeout", absl::Seconds(30))
          .ok());
}

}  // namespace
}  // namespace spillway::test
