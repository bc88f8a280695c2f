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

class AgentTimeouts : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "gpt-4o"}).ok());
    ASSERT_TRUE(
        fleet_
            .StartAgent(SingleBackendTopology(), "eastus2",
                        {"--client-idle-timeout-ms", "300", "--stream-idle-timeout-ms", "300"})
            .ok());
  }

  // A raw connection whose reads give up after 20 s, far past any deadline here.
  int Connect() {
    const int fd = ConnectRaw(fleet_.agent_port(), 20);
    EXPECT_GE(fd, 0);
    return fd;
  }

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
  std::string got;
  EXPECT_TRUE(ReadUntilClosed(fd, got)) << "the agent kept an idle connection open";
  EXPECT_EQ(got, "");
  ::close(fd);
}

TEST_F(AgentTimeouts, AKeepAliveConnectionIsClosedOnceIdleAfterItsRequest) {
  const int fd = Connect();
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
  ASSERT_TRUE(fleet_.SetFault("a", R"({"mode":"slow_drip","drip_ms":3000,"count":1})").ok());
  auto client = fleet_.AgentClient();
  absl::StatusOr<HttpResponse> response =
      client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(10, /*stream=*/true));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->body, HasSubstr("event: error"));
  EXPECT_THAT(response->body, Not(HasSubstr("[DONE]")));
  EXPECT_TRUE(
      WaitForFileContaining(fleet_.temp_dir() + "/access.log", "idle timeout", absl::Seconds(10))
          .ok());
}

}  // namespace
}  // namespace spillway::test
