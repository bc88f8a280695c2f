// `spillwayctl load` through a real spillway-agent in front of two mocks (a PTU tier and a
// Standard one): by_backend names the backend that served, from x-spillway-backend.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/tools/load/load_test_util.h"

namespace spillway::test {
namespace {

TEST(LoadThroughAgentTest, ByBackendNamesWhoServed) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(TieredTopology({"std1"}), "eastus2").ok());
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::vector<std::string> shape = {"--target",
                                          absl::StrCat("http://127.0.0.1:", fleet.agent_port()),
                                          "--api-key",
                                          kLoadKey,
                                          "--route",
                                          "gpt-4o",
                                          "--rpm",
                                          "1200",
                                          "--duration",
                                          "500ms",
                                          "--completion-tokens",
                                          "5",
                                          "--stream-share",
                                          "0.5",
                                          "-o",
                                          "json"};

  // The PTU tier takes everything while it answers.
  const CtlResult first = RunLoad(*dir, shape);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const boost::json::object ptu_report = ParseReport(first.out);
  EXPECT_EQ(Int(ptu_report, "sent"), 10);
  EXPECT_EQ(Int(ptu_report, "ok"), 10);
  EXPECT_EQ(boost::json::serialize(ptu_report.at("by_backend")), R"({"ptu/gpt-4o-ptu":10})");
  EXPECT_EQ(Int(ptu_report.at("minutes").as_array()[0].at("by_backend"), "ptu/gpt-4o-ptu"), 10);
  EXPECT_EQ(Int(ptu_report.at("ttft_ms"), "count"), 5) << "streams pass through the agent";

  // One 429 whose retry-after (5 minutes, far past this test) keeps the agent off the PTU:
  // the agent answers from Standard, and so does every later request.
  ASSERT_TRUE(fleet
                  .SetFault("ptu", R"({"mode":"status","status":429,"count":1,)"
                                   R"("retry_after_ms":300000})")
                  .ok());
  const CtlResult second = RunLoad(*dir, shape);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const boost::json::object std_report = ParseReport(second.out);
  EXPECT_EQ(Int(std_report, "ok"), 10);
  EXPECT_EQ(Int(std_report, "throttled"), 0) << "the agent retried the 429 elsewhere";
  EXPECT_EQ(boost::json::serialize(std_report.at("by_backend")), R"({"std1/gpt-4o":10})");
}

}  // namespace
}  // namespace spillway::test
