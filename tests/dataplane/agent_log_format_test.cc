// --log-format on a real agent: with json every line it writes is one JSON object, and the
// events operators filter on (listening, table applied and refused, a circuit opening,
// the drain) carry their fields; text keeps the lines scripts read; a bad value stops it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/json_log.h"
#include "tests/support/wait_for.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kPtuBackend[] = "ptu/gpt-4o-ptu";

// A PTU tier ("ptu", failing with 503s once `FailPtu` runs) in front of a Standard one.
class AgentLogFormat : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> agent_args) {
    ASSERT_TRUE(fleet_.AddMock("ptu", {"--deployments", "gpt-4o-ptu:model=gpt-4o"}).ok());
    ASSERT_TRUE(fleet_.AddMock("std1", {"--deployments", "gpt-4o"}).ok());
    // Two failures open the circuit, for a minute: no probe closes it during the test.
    agent_args.insert(agent_args.end(), {"--failure-threshold", "2", "--circuit-open-ms", "60000"});
    ASSERT_TRUE(fleet_.StartAgent(TieredTopology({"std1"}), "eastus2", agent_args).ok());
  }

  // Sends requests until the PTU's circuit opened (a 503 with retry-after moves each request
  // on to std1, and counts as a failure of the PTU).
  void OpenPtuCircuit(absl::string_view line_marker) {
    ASSERT_TRUE(
        fleet_.SetFault("ptu", R"({"mode":"status","status":503,"retry_after_ms":1})").ok());
    auto client = fleet_.AgentClient();
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<HttpResponse> response =
          client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
      ASSERT_TRUE(response.ok()) << response.status();
      EXPECT_EQ(response->status, 200) << response->body;
    }
    ASSERT_TRUE(fleet_.agent().WaitForLine(line_marker, absl::Seconds(30)).ok())
        << fleet_.agent().Output();
  }

  // SIGTERM, and the exit code.
  int Stop() {
    EXPECT_TRUE(fleet_.agent().Signal(SIGTERM).ok());
    absl::StatusOr<int> code = fleet_.agent().Wait();
    EXPECT_TRUE(code.ok()) << code.status();
    return code.value_or(-1);
  }

  AgentFleet fleet_;
};

TEST_F(AgentLogFormat, JsonLinesCarryTheAgentsEvents) {
  Start({"--log-format", "json"});
  OpenPtuCircuit(R"("event":"circuit_changed")");
  // A reload that fails, then one that works: a refused and a second applied table.
  const std::string topology = fleet_.topology_path();
  std::string good;
  {
    std::ifstream in(topology);
    good.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::ofstream(topology) << "routes: [ { name: \"broken\n";
  ASSERT_TRUE(fleet_.agent().Signal(SIGHUP).ok());
  ASSERT_TRUE(fleet_.agent().WaitForLine(R"("event":"table_refused")", absl::Seconds(30)).ok());
  std::ofstream(topology) << good;
  ASSERT_TRUE(fleet_.agent().Signal(SIGHUP).ok());
  ASSERT_TRUE(fleet_.agent().WaitForLine("table version 2", absl::Seconds(30)).ok());
  // Right after the reload, while the main thread may still be in it: the drain must run.
  EXPECT_EQ(Stop(), 0);

  const JsonLog log = ParseJsonLog(fleet_.agent().Output());
  EXPECT_THAT(log.unparsed, IsEmpty()) << "every line must be one JSON object";
  for (const boost::json::object& line : log.lines) {
    EXPECT_EQ(ProcessLineProblem(line, "spillway-agent"), "") << boost::json::serialize(line);
  }

  const auto listening = Events(log, "listening");
  ASSERT_THAT(listening, SizeIs(1));
  EXPECT_EQ(IntField(listening[0], "port"), fleet_.agent_port());
  EXPECT_EQ(StringField(listening[0], "region"), "eastus2");
  EXPECT_THAT(StringField(listening[0], "msg"), StartsWith("spillway-agent listening on "));

  const auto applied = Events(log, "table_applied");
  ASSERT_THAT(applied, SizeIs(2)) << "the first table and the reload";
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(IntField(applied[i], "version"), i + 1);
    EXPECT_EQ(StringField(applied[i], "region"), "eastus2");
    EXPECT_EQ(StringField(applied[i], "source"), "file");
    EXPECT_EQ(IntField(applied[i], "backends"), 2);
    EXPECT_EQ(IntField(applied[i], "routes"), 1);
    EXPECT_EQ(StringField(applied[i], "level"), "info");
  }

  const auto refused = Events(log, "table_refused");
  ASSERT_THAT(refused, SizeIs(1));
  EXPECT_EQ(IntField(refused[0], "version"), 2);
  EXPECT_EQ(IntField(refused[0], "serving_version"), 1);
  EXPECT_EQ(StringField(refused[0], "level"), "error");
  EXPECT_THAT(StringField(refused[0], "reason"), Not(IsEmpty()));

  const auto opened = Events(log, "circuit_changed", [](const boost::json::object& line) {
    return StringField(line, "backend") == kPtuBackend;
  });
  ASSERT_THAT(opened, SizeIs(1)) << "one change: closed to open";
  EXPECT_EQ(StringField(opened[0], "from"), "closed");
  EXPECT_EQ(StringField(opened[0], "to"), "open");
  EXPECT_EQ(IntField(opened[0], "open_ms"), 60000);
  EXPECT_EQ(IntField(opened[0], "failures"), 2);
  EXPECT_THAT(StringField(opened[0], "reason"), HasSubstr("503"));
  EXPECT_EQ(StringField(opened[0], "level"), "warning");
  EXPECT_THAT(Events(log, "circuit_changed"), SizeIs(1)) << "std1's circuit never changed";

  const auto drain = Events(log, "drain_started");
  ASSERT_THAT(drain, SizeIs(1));
  EXPECT_EQ(StringField(drain[0], "signal"), "SIGTERM");
  // The last answer may still count as in flight when SIGTERM arrives; the drain waits.
  EXPECT_THAT(IntField(drain[0], "in_flight"),
              ::testing::AllOf(::testing::Ge(0), ::testing::Le(1)));
  EXPECT_EQ(IntField(drain[0], "timeout_ms"), 20000);
  const auto drained = Events(log, "drain_finished");
  ASSERT_THAT(drained, SizeIs(1));
  EXPECT_EQ(IntField(drained[0], "in_flight"), 0);
  EXPECT_GE(IntField(drained[0], "waited_ms"), 0);

  // The backend key is in the agent's environment, never in its log.
  EXPECT_THAT(fleet_.agent().Output(), Not(HasSubstr(kBackendKey)));
}

TEST_F(AgentLogFormat, TextKeepsTheLinesOperatorsAndScriptsRead) {
  Start({});
  OpenPtuCircuit("circuit of backend ptu/gpt-4o-ptu opened for 60000 ms after 2");
  EXPECT_EQ(Stop(), 0);
  const std::string output = fleet_.agent().Output();
  const JsonLog log = ParseJsonLog(output);
  EXPECT_THAT(log.lines, IsEmpty()) << "text mode wrote JSON";
  EXPECT_THAT(output, HasSubstr(absl::StrCat(
                          "\nspillway-agent listening on 127.0.0.1:", fleet_.agent_port(),
                          " (region eastus2, 1 thread, "
                          "table version 1)\n")));
  // The last answer may still count as in flight when SIGTERM arrives: any number.
  EXPECT_THAT(output, HasSubstr("] [info] draining: no new connections, waiting for "));
  EXPECT_THAT(output, HasSubstr("] [info] drained in "));
  EXPECT_THAT(output, HasSubstr("] [warning] circuit of backend ptu/gpt-4o-ptu opened for "
                                "60000 ms after 2 consecutive failure(s): "));
}

TEST(AgentLogFormatFlag, ABadValueStopsTheAgentWithOneLine) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> agent = ChildProcess::Start(
      SPILLWAY_AGENT_BIN,
      {"--region", "eastus2", "--topology", "/nonexistent.yaml", "--log-format", "yaml"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  absl::StatusOr<int> code = (*agent)->Wait();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_EQ((*agent)->Output(),
            "spillway-agent: --log-format must be 'text' or 'json', got 'yaml'\n");
}

TEST(AgentLogFormatFlag, AFatalErrorInJsonModeIsAJsonLine) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> agent = ChildProcess::Start(
      SPILLWAY_AGENT_BIN,
      {"--region", "eastus2", "--topology", "/nonexistent.yaml", "--log-format", "json"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  absl::StatusOr<int> code = (*agent)->Wait();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  const JsonLog log = ParseJsonLog((*agent)->Output());
  EXPECT_THAT(log.unparsed, IsEmpty());
  ASSERT_THAT(log.lines, SizeIs(1));
  EXPECT_EQ(ProcessLineProblem(log.lines[0], "spillway-agent"), "");
  EXPECT_EQ(StringField(log.lines[0], "level"), "critical");
  EXPECT_THAT(StringField(log.lines[0], "msg"), HasSubstr("/nonexistent.yaml"));
}

}  // namespace
}  // namespace spillway::test
