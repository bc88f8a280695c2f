// spillway-mock-aoai as a process: its listen line, --help, refusing bad flags with one line,
// several threads, and a clean exit on SIGTERM/SIGINT.
#include <signal.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/binaries.h"
#include "tests/support/child_process.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

std::unique_ptr<test::ChildProcess> RunMock(const std::vector<std::string>& args) {
  test::ChildProcessOptions options;
  options.name = "mock-aoai";
  absl::StatusOr<std::unique_ptr<test::ChildProcess>> process =
      test::ChildProcess::Start(test::kMockAoaiBinary, args, options);
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? *std::move(process) : nullptr;
}

TEST(MockFlagsTest, PrintsExactlyOneListenLine) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "GET", "/mock/stats").status, 200);
  EXPECT_EQ(mock->process().Output(),
            absl::StrCat("spillway-mock-aoai listening on 127.0.0.1:", mock->port(), "\n"));
}

TEST(MockFlagsTest, HelpDocumentsFlagsAndFaults) {
  std::unique_ptr<test::ChildProcess> process = RunMock({"--help"});
  ASSERT_NE(process, nullptr);
  absl::StatusOr<int> exit_code = process->Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
  const std::string help = process->Output();
  for (const char* expected : {"--listen",
                               "--threads",
                               "--region",
                               "--api-keys",
                               "--bearer-tokens",
                               "--deployments",
                               "--tokens-per-ptu-minute",
                               "--window-seconds",
                               "--ttft-ms",
                               "--ms-per-token",
                               "--completion-tokens",
                               "--tls-cert",
                               "--tls-key",
                               "--body-limit",
                               "--h2-max-concurrent-streams",
                               "h2c",
                               "--fault",
                               "--entra-clients",
                               "--managed-identity-client-ids",
                               "--identity-header",
                               "--token-lifetime-s",
                               "--token-delay-ms",
                               "/metadata/identity/oauth2/token",
                               "/oauth2/v2.0/token",
                               "/mock/faults",
                               "/mock/stats",
                               "/mock/reset",
                               "slow_drip",
                               "cut_after_chunks"}) {
    EXPECT_THAT(help, HasSubstr(expected));
  }
}

TEST(MockFlagsTest, BadFlagsExitNonZeroWithOneLine) {
  const std::vector<std::vector<std::string>> cases = {
      {"--bogus"},
      {"--threads", "0"},
      {"--threads", "many"},
      {"--listen", "nowhere"},
      {"--listen", "not-an-ip:80"},
      {"--deployments", "a:tpm=lots"},
      {"--deployments", "a,a"},
      {"--deployments", "a:colour=red"},
      {"--window-seconds", "0"},
      {"--completion-tokens", "0"},
      {"--fault", "mode=explode"},
      {"--entra-clients", "tenant-only"},
      {"--token-lifetime-s", "0"},
      {"--h2-max-concurrent-streams", "0"},
      {"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"},
      {"--tls-cert", "/nonexistent/cert.pem"},
      {"stray-argument"},
  };
  for (const std::vector<std::string>& args : cases) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    std::unique_ptr<test::ChildProcess> process = RunMock(args);
    ASSERT_NE(process, nullptr);
    absl::StatusOr<int> exit_code = process->Wait(absl::Seconds(10));
    ASSERT_TRUE(exit_code.ok()) << exit_code.status();
    EXPECT_NE(*exit_code, 0);
    const std::string output(absl::StripTrailingAsciiWhitespace(process->Output()));
    EXPECT_FALSE(output.empty());
    EXPECT_EQ(output.find('\n'), std::string::npos) << output;
    EXPECT_FALSE(absl::StrContains(output, "listening on"));
  }
}

TEST(MockFlagsTest, DashesAndUnderscoresBothWork) {
  SPILLWAY_START_MOCK(mock, {"--ms_per_token=0", "--completion-tokens=3"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse response = MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"));
  EXPECT_EQ(Json(response.body).at("usage").at("completion_tokens").as_int64(), 3);
}

TEST(MockFlagsTest, ExitsZeroOnSigtermAndSigint) {
  for (const int signal : {SIGTERM, SIGINT}) {
    SPILLWAY_START_MOCK(mock, {"--threads", "2"});
    test::HttpClient client = Client(*mock);
    ASSERT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
    ASSERT_TRUE(mock->process().Signal(signal).ok());
    absl::StatusOr<int> exit_code = mock->process().Wait(absl::Seconds(10));
    ASSERT_TRUE(exit_code.ok()) << exit_code.status();
    EXPECT_EQ(*exit_code, 0) << "signal " << signal;
  }
}

TEST(MockFlagsTest, SigtermRightAfterStartStillExitsZero) {
  SPILLWAY_START_MOCK(mock, {});
  ASSERT_TRUE(mock->process().Signal(SIGTERM).ok());
  absl::StatusOr<int> exit_code = mock->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

TEST(MockFlagsTest, SeveralThreadsShareOnePortAndState) {
  SPILLWAY_START_MOCK(mock, {"--threads", "4"});
  // One event loop per thread: the process runs (at least) four threads.
  size_t threads = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", mock->process().pid(), "/task"))) {
    ++threads;
  }
  EXPECT_GE(threads, 4u);
  std::vector<std::unique_ptr<test::HttpClient>> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(std::make_unique<test::HttpClient>("127.0.0.1", mock->port()));
    EXPECT_EQ(MustSend(*clients.back(), "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
  }
  test::HttpClient control = Client(*mock);
  EXPECT_EQ(Json(MustSend(control, "GET", "/mock/stats").body)
                .at("deployments")
                .at("gpt-4o")
                .at("requests")
                .as_int64(),
            16);
}

TEST(MockFlagsTest, ChildDiesWithTheHarness) {
  // The harness's safety net: a ChildProcess destroyed without Wait kills its process group.
  pid_t pid = 0;
  {
    SPILLWAY_START_MOCK(mock, {});
    pid = mock->process().pid();
  }
  EXPECT_NE(kill(pid, 0), 0);  // reaped, gone
}

}  // namespace
}  // namespace spillway::mock
