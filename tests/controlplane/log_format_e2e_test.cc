// --log-format json on spillway-cp and an agent following it: every line of both is one JSON
// object; the control plane's events (apply committed, agent connected, acked, disconnected)
// and the agent's (connected, table applied, disconnected with its backoff, reconnected)
// carry their fields. A bad value stops spillway-cp with one line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "tests/controlplane/fleet_fixture.h"
#include "tests/support/closed_port.h"
#include "tests/support/json_log.h"

namespace spillway::test {
namespace {

using ::testing::Gt;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

// Every line parsed and a process log line of `program`; failures name the line.
JsonLog CheckedLog(const std::string& output, absl::string_view program) {
  JsonLog log = ParseJsonLog(output);
  EXPECT_THAT(log.unparsed, IsEmpty()) << program << " wrote lines that are not JSON";
  for (const boost::json::object& line : log.lines) {
    EXPECT_EQ(ProcessLineProblem(line, program), "") << boost::json::serialize(line);
  }
  return log;
}

TEST(ControlPlaneLogFormat, JsonLinesCarryApplyAgentAndReconnectEvents) {
  ControlPlaneFleet fleet;
  ASSERT_TRUE(fleet.StartControlPlane({"--log-format", "json"}).ok());
  ASSERT_TRUE(fleet.StartAgent("eus2", "eastus2", {"--log-format", "json"}).ok());
  // Connected before the apply, so the push reaches it.
  ASSERT_TRUE(fleet.cp_process().WaitForLine(R"("event":"agent_connected")", kFleetWait).ok());
  // Tables only: no request is sent, so no backend needs to run.
  const ClosedPort dead;
  absl::StatusOr<v1::ApplyResponse> applied =
      fleet.Apply(ReferenceTopologyAt([&dead](const std::string&) { return dead.url(); }));
  ASSERT_TRUE(applied.ok()) << applied.status();
  const uint64_t version = applied->version();
  ASSERT_TRUE(fleet.WaitForAcks(version, 1).ok());
  ASSERT_TRUE(fleet.cp_process().WaitForLine(R"("event":"agent_acked")", kFleetWait).ok());

  // The first control plane's lines, before it is killed.
  const JsonLog cp = CheckedLog(fleet.cp_process().Output(), "spillway-cp");
  const auto listening = Events(cp, "listening");
  ASSERT_THAT(listening, SizeIs(1));
  EXPECT_EQ(IntField(listening[0], "port"), fleet.cp_port());
  EXPECT_THAT(StringField(listening[0], "msg"), StartsWith("spillway-cp listening on "));

  const auto committed = Events(cp, "apply_committed");
  ASSERT_THAT(committed, SizeIs(1));
  EXPECT_EQ(IntField(committed[0], "version"), static_cast<int64_t>(version));
  EXPECT_EQ(StringField(committed[0], "operation"), "apply");
  EXPECT_EQ(IntField(committed[0], "changes"), applied->diff_size());
  EXPECT_EQ(IntField(committed[0], "added"), applied->diff_size()) << "a first apply adds all";
  EXPECT_EQ(IntField(committed[0], "changed"), 0);
  EXPECT_EQ(IntField(committed[0], "removed"), 0);

  const auto connected = Events(cp, "agent_connected");
  ASSERT_THAT(connected, SizeIs(1));
  const std::string agent_id = StringField(connected[0], "agent");
  EXPECT_THAT(agent_id, Not(IsEmpty()));
  EXPECT_EQ(StringField(connected[0], "region"), "eastus2");
  EXPECT_EQ(IntField(connected[0], "version"), 0) << "a new agent has no table";
  EXPECT_THAT(StringField(connected[0], "peer"), Not(IsEmpty()));

  const auto pushed = Events(cp, "tables_pushed");
  ASSERT_THAT(pushed, SizeIs(1));
  EXPECT_EQ(IntField(pushed[0], "version"), static_cast<int64_t>(version));
  EXPECT_EQ(IntField(pushed[0], "agents"), 1);

  const auto acked = Events(cp, "agent_acked");
  ASSERT_THAT(acked, SizeIs(1));
  EXPECT_EQ(StringField(acked[0], "agent"), agent_id);
  EXPECT_EQ(StringField(acked[0], "region"), "eastus2");
  EXPECT_EQ(IntField(acked[0], "version"), static_cast<int64_t>(version));

  // The control plane goes away and comes back: the agent says so, and how long it waits.
  fleet.KillControlPlane();
  ASSERT_TRUE(fleet.agent_process("eus2")
                  .WaitForLine(R"("event":"control_plane_disconnected")", kFleetWait)
                  .ok());
  ASSERT_TRUE(fleet.StartControlPlane().ok());
  ASSERT_TRUE(fleet.agent_process("eus2").WaitForLine(R"("reconnect":true)", kFleetWait).ok());
  // The agent leaves: the new control plane says so.
  ASSERT_TRUE(fleet.agent_process("eus2").Signal(SIGTERM).ok());
  absl::StatusOr<int> agent_exit = fleet.agent_process("eus2").Wait();
  ASSERT_TRUE(agent_exit.ok()) << agent_exit.status();
  EXPECT_EQ(*agent_exit, 0);
  ASSERT_TRUE(fleet.cp_process().WaitForLine(R"("event":"agent_disconnected")", kFleetWait).ok());

  const JsonLog cp2 = CheckedLog(fleet.cp_process().Output(), "spillway-cp");
  const auto reconnected = Events(cp2, "agent_connected");
  ASSERT_THAT(reconnected, SizeIs(1));
  EXPECT_EQ(StringField(reconnected[0], "agent"), agent_id);
  EXPECT_EQ(IntField(reconnected[0], "version"), static_cast<int64_t>(version));
  const auto left = Events(cp2, "agent_disconnected");
  ASSERT_THAT(left, SizeIs(1));
  EXPECT_EQ(StringField(left[0], "agent"), agent_id);
  EXPECT_EQ(StringField(left[0], "region"), "eastus2");
  EXPECT_EQ(IntField(left[0], "acked_version"), static_cast<int64_t>(version));

  const JsonLog agent = CheckedLog(fleet.agent_process("eus2").Output(), "spillway-agent");
  const auto agent_connected = Events(agent, "control_plane_connected");
  ASSERT_THAT(agent_connected, SizeIs(2));
  EXPECT_EQ(StringField(agent_connected[0], "target"), absl::StrCat("127.0.0.1:", fleet.cp_port()));
  EXPECT_FALSE(agent_connected[0].at("reconnect").as_bool());
  EXPECT_EQ(IntField(agent_connected[0], "serving_version"), 0);
  EXPECT_TRUE(agent_connected[1].at("reconnect").as_bool());
  EXPECT_EQ(IntField(agent_connected[1], "serving_version"), static_cast<int64_t>(version));
  EXPECT_EQ(IntField(agent_connected[1], "failed_attempts"),
            static_cast<int64_t>(Events(agent, "control_plane_disconnected").size()) - 1)
      << "every attempt after the first ending failed, until the reconnect";

  const auto table = Events(agent, "table_applied");
  ASSERT_THAT(table, SizeIs(1)) << "the reconnect brings no new table: the agent has it";
  EXPECT_EQ(IntField(table[0], "version"), static_cast<int64_t>(version));
  EXPECT_EQ(StringField(table[0], "source"), "control_plane");
  EXPECT_EQ(StringField(table[0], "region"), "eastus2");
  EXPECT_THAT(IntField(table[0], "backends"), Gt(0));
  EXPECT_THAT(IntField(table[0], "routes"), Gt(0));

  const auto lost = Events(agent, "control_plane_disconnected");
  ASSERT_THAT(lost, Not(IsEmpty()));
  EXPECT_TRUE(lost[0].at("was_connected").as_bool()) << "the first ending ends a live stream";
  EXPECT_EQ(IntField(lost[0], "failed_attempts"), 0);
  for (const boost::json::object& line : lost) {
    EXPECT_EQ(StringField(line, "target"), absl::StrCat("127.0.0.1:", fleet.cp_port()));
    EXPECT_THAT(IntField(line, "code"), Gt(0));
    EXPECT_THAT(IntField(line, "retry_in_ms"), Gt(0));
    EXPECT_EQ(IntField(line, "serving_version"), static_cast<int64_t>(version));
  }
  EXPECT_THAT(Events(agent, "drain_started"), SizeIs(1));
}

TEST(ControlPlaneLogFormat, ABadValueStopsTheControlPlaneWithOneLine) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> cp =
      ChildProcess::Start(SPILLWAY_CP_BIN, {"--db", "/nonexistent/x.db", "--log-format", "xml"});
  ASSERT_TRUE(cp.ok()) << cp.status();
  absl::StatusOr<int> code = (*cp)->Wait();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_EQ((*cp)->Output(), "spillway-cp: --log-format must be 'text' or 'json', got 'xml'\n");
}

}  // namespace
}  // namespace spillway::test
