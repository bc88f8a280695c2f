// spillwayctl end to end: the real binary against a real spillway-cp, agents and mock backends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/topology_yaml.h"
#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/controlplane/fleet_fixture.h"

namespace spillway::test {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kChat[] = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
// SHA-256("test") is checkout-assistant's key in the reference topology.
constexpr char kCheckoutKey[] = "test";

class SpillwayctlE2eTest : public ::testing::Test {
 protected:
  // Mocks, the control plane and two agents (one per stamp), but no topology yet: applying
  // the first one is what the CLI is tested on. Agents wait for their first table.
  void SetUp() override {
    absl::Status mocks = fleet_.AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
    absl::Status started = fleet_.StartControlPlane();
    ASSERT_TRUE(started.ok()) << started;
    for (const auto& [agent, region] : std::vector<std::pair<std::string, std::string>>{
             {"eus2", "eastus2"}, {"swc", "swedencentral"}}) {
      started = fleet_.StartAgent(agent, region);
      ASSERT_TRUE(started.ok()) << agent << ": " << started;
    }
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(fleet_);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *std::move(topology);
    topology_file_ = WriteTopology("topology.yaml", topology_);
  }

  std::string Path(absl::string_view name) const { return absl::StrCat(fleet_.dir(), "/", name); }

  std::string WriteTopology(absl::string_view name, const v1::Topology& topology) const {
    const std::string path = Path(name);
    WriteTextFile(path, TopologyToYaml(topology));
    return path;
  }

  std::string Server() const { return absl::StrCat("127.0.0.1:", fleet_.cp_port()); }

  // Runs spillwayctl with `args` as given. Keys and whole diffs would flood the log, so
  // output is not echoed; failing assertions print it.
  CtlResult RunRaw(const std::vector<std::string>& args) {
    CtlRunOptions options;
    options.echo = false;
    return RunCtl(SPILLWAY_CTL_BIN, args, Path(absl::StrCat("ctl-stderr-", runs_++)), options);
  }

  // Runs spillwayctl against the fleet's control plane.
  CtlResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"--server", Server()};
    full.insert(full.end(), args.begin(), args.end());
    return RunRaw(full);
  }

  // Applies the reference topology through the CLI and waits for both agents to serve it.
  void ApplyReference() {
    const CtlResult applied = Ctl({"apply", "-f", topology_file_});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    ASSERT_THAT(applied.out, EndsWith("applied version 1\n"));
    ASSERT_TRUE(fleet_.WaitForAgentVersion("eus2", 1).ok());
    ASSERT_TRUE(fleet_.WaitForAgentVersion("swc", 1).ok());
  }

  // The control plane's current version, asked directly (not through the CLI under test).
  uint64_t CurrentVersion() {
    v1::GetResponse current;
    grpc::Status got = fleet_.admin().Get(fleet_.AdminContext().get(), {}, &current);
    EXPECT_TRUE(got.ok()) << got.error_message();
    return current.version();
  }

  // One chat through the eastus2 agent with `key`; the HTTP status, or -1.
  int ChatStatus(const std::string& key) {
    absl::StatusOr<HttpResponse> response =
        fleet_.AgentClient("eus2")->Send("POST", ChatTarget("gpt-4o"), {{"api-key", key}}, kChat);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->status : -1;
  }

  ControlPlaneFleet fleet_;
  v1::Topology topology_;
  std::string topology_file_;
  int runs_ = 0;
};

TEST_F(SpillwayctlE2eTest, ApplyPrintsTheChangesAndDryRunStoresNothing) {
  const CtlResult applied = Ctl({"apply", "-f", topology_file_});

  EXPECT_EQ(applied.exit_code, 0) << applied.err;
  // Every entry of a fresh topology is new; the output names each by kind and name.
  EXPECT_THAT(
      applied.out,
      AllOf(HasSubstr("+ stamp us\n"), HasSubstr("+ region swedencentral\n"),
            HasSubstr("+ instance aoai-frc-std\n"),
            HasSubstr("+ deployment aoai-eus2-ptu/gpt-4o-ptu\n"), HasSubstr("+ pool eu-standard\n"),
            HasSubstr("+ route eu/gpt-4o\n"), HasSubstr("+ tenant checkout-assistant\n")));
  EXPECT_THAT(applied.out, EndsWith("applied version 1\n"));
  EXPECT_TRUE(fleet_.WaitForAgentVersion("eus2", 1).ok());
  EXPECT_TRUE(fleet_.WaitForAgentVersion("swc", 1).ok());

  // A changed limit, tried with --dry-run: the diff is shown, nothing is stored or pushed.
  v1::Topology changed = topology_;
  ASSERT_EQ(changed.tenants(0).name(), "checkout-assistant");
  changed.mutable_tenants(0)->mutable_limits()->set_requests_per_minute(900);
  const std::string changed_file = WriteTopology("changed.yaml", changed);
  const CtlResult dry = Ctl({"apply", "-f", changed_file, "--dry-run"});

  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, "~ tenant checkout-assistant\ndry run: nothing stored (version 1)\n");
  EXPECT_EQ(CurrentVersion(), 1u);
  const CtlResult tenant = Ctl({"get", "tenant", "checkout-assistant", "-o", "csv"});
  ASSERT_EQ(tenant.exit_code, 0) << tenant.err;
  const std::vector<std::vector<std::string>> rows = CsvRows(tenant.out);
  ASSERT_EQ(rows.size(), 2u) << tenant.out;
  ASSERT_EQ(rows[0].size(), rows[1].size()) << tenant.out;
  const auto rpm = std::find(rows[0].begin(), rows[0].end(), "rpm") - rows[0].begin();
  ASSERT_LT(rpm, static_cast<long>(rows[0].size())) << tenant.out;
  EXPECT_EQ(rows[1][rpm], "720") << "the dry run stored the change";

  // The same file for real is version 2.
  const CtlResult real = Ctl({"apply", "-f", changed_file});
  EXPECT_EQ(real.exit_code, 0) << real.err;
  EXPECT_EQ(real.out, "~ tenant checkout-assistant\napplied version 2\n");
  EXPECT_TRUE(fleet_.WaitForAgentVersion("eus2", 2).ok());
}

TEST_F(SpillwayctlE2eTest, AnInvalidTopologyIsRefusedNamingEveryProblem) {
  ApplyReference();
  v1::Topology broken = topology_;
  ASSERT_EQ(broken.routes(0).name(), "gpt-4o");
  broken.mutable_routes(0)->set_tiers(1, "no-such-pool");
  ASSERT_EQ(broken.pools(2).name(), "us-standard");
  broken.mutable_pools(2)->mutable_members(1)->set_deployment("aoai-wus3-std/no-such-deployment");
  ASSERT_EQ(broken.tenants(1).name(), "nightly-summaries");
  broken.mutable_tenants(1)->add_routes("no-such-route");
  const std::string file = WriteTopology("broken.yaml", broken);

  const CtlResult refused = Ctl({"apply", "-f", file});

  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.out, IsEmpty());
  EXPECT_THAT(refused.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(refused.err, ContainsRegex("route 'gpt-4o': [^\n]*no-such-pool"));
  EXPECT_THAT(refused.err, ContainsRegex("pool 'us-standard': [^\n]*no-such-deployment"));
  EXPECT_THAT(refused.err, ContainsRegex("tenant 'nightly-summaries': [^\n]*no-such-route"));
  // The dry run is validated the same way.
  EXPECT_EQ(Ctl({"apply", "-f", file, "--dry-run"}).exit_code, 1);

  EXPECT_EQ(CurrentVersion(), 1u);
  const CtlResult route = Ctl({"get", "route", "us/gpt-4o"});
  EXPECT_EQ(route.exit_code, 0) << route.err;
  EXPECT_THAT(route.out, HasSubstr("us-workload-ptu > us-enterprise-ptu > us-standard"));
  EXPECT_THAT(route.out, Not(HasSubstr("no-such-pool")));
}

TEST_F(SpillwayctlE2eTest, AYamlSyntaxErrorIsALocalErrorNamingTheFileAndLine) {
  ApplyReference();
  const std::string file = Path("syntax.yaml");
  WriteTextFile(file, "stamps:\n  - name: us\n  - { name: eu\nregions: []\n");

  const CtlResult result = Ctl({"apply", "-f", file});

  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(result.err, HasSubstr(absl::StrCat(file, ":")));
  EXPECT_THAT(result.err, HasSubstr(":3:5: this '{' is not closed")) << "the broken flow map";
  EXPECT_EQ(CurrentVersion(), 1u);
}

TEST_F(SpillwayctlE2eTest, GetListsPrintsJsonAndRoundTripsYaml) {
  ApplyReference();

  const CtlResult routes = Ctl({"get", "routes"});
  EXPECT_EQ(routes.exit_code, 0) << routes.err;
  std::vector<std::string> lines = absl::StrSplit(routes.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << "a header and four routes:\n" << routes.out;
  EXPECT_THAT(lines[0], AllOf(HasSubstr("STAMP"), HasSubstr("NAME"), HasSubstr("TIERS")));
  EXPECT_THAT(lines[1], ContainsRegex("^us +gpt-4o "));
  EXPECT_THAT(lines[2], ContainsRegex("^us +gpt-4o-canary "));
  EXPECT_THAT(lines[3], ContainsRegex("^us +text-embedding-3-large "));
  EXPECT_THAT(lines[4], ContainsRegex("^eu +gpt-4o "));

  const CtlResult json = Ctl({"get", "route", "eu/gpt-4o", "-o", "json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  boost::json::error_code error;
  const boost::json::value parsed = boost::json::parse(json.out, error);
  ASSERT_FALSE(error) << error.message() << "\n" << json.out;
  // The topology document itself, as in YAML: routes at the top, enums in YAML spelling.
  const boost::json::array& json_routes = parsed.at("routes").as_array();
  ASSERT_EQ(json_routes.size(), 1u) << json.out;
  EXPECT_EQ(json_routes[0].at("name").as_string(), "gpt-4o");
  EXPECT_EQ(json_routes[0].at("stamp").as_string(), "eu");

  // The whole topology as YAML and as JSON, applied back: nothing changes.
  const CtlResult yaml = Ctl({"get", "-o", "yaml"});
  EXPECT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, StartsWith("# topology version 1\n"));
  for (const char* format : {"yaml", "json"}) {
    const CtlResult got = Ctl({"get", "-o", format});
    EXPECT_EQ(got.exit_code, 0) << got.err;
    const std::string exported = Path(absl::StrCat("exported.", format));
    EXPECT_THAT(got.out, HasSubstr("critical")) << format;
    EXPECT_THAT(got.out, Not(HasSubstr("PRIORITY_"))) << format;
    WriteTextFile(exported, got.out);
    const CtlResult reapplied = Ctl({"apply", "-f", exported});
    EXPECT_EQ(reapplied.exit_code, 0) << format << ": " << reapplied.err;
    EXPECT_EQ(reapplied.out, "no changes (version 1)\n") << format;
  }
  EXPECT_EQ(CurrentVersion(), 1u);

  const CtlResult missing = Ctl({"get", "route", "us/no-such-route"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.out, IsEmpty());
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(missing.err, HasSubstr("route 'us/no-such-route' does not exist"));
}

TEST_F(SpillwayctlE2eTest, KeysAreShownOnceServeAtOnceOverlapOnRotationAndDieOnRevocation) {
  ApplyReference();

  const CtlResult created = Ctl({"keys", "create", "checkout-assistant", "ci"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  // stdout is the key and nothing else, so `KEY=$(spillwayctl keys create ...)` works.
  ASSERT_THAT(created.out, EndsWith("\n"));
  const std::string key(absl::StripSuffix(created.out, "\n"));
  ASSERT_FALSE(key.empty());
  EXPECT_THAT(key, Not(HasSubstr("\n")));
  EXPECT_THAT(created.err,
              HasSubstr("created key 'ci' for tenant 'checkout-assistant' (version 2)"));
  ASSERT_TRUE(fleet_.WaitForAgentVersion("eus2", 2).ok());
  EXPECT_EQ(ChatStatus(key), 200);
  EXPECT_EQ(ChatStatus(kCheckoutKey), 200) << "the YAML key is untouched";

  // Rotation adds a key beside the old one: both serve until the old one is revoked.
  const CtlResult rotated = Ctl({"keys", "rotate", "checkout-assistant", "ci", "ci-2"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const std::string new_key(absl::StripSuffix(rotated.out, "\n"));
  ASSERT_FALSE(new_key.empty());
  EXPECT_NE(new_key, key);
  EXPECT_THAT(rotated.err,
              HasSubstr("created key 'ci-2' for tenant 'checkout-assistant' (version 3)"));
  ASSERT_TRUE(fleet_.WaitForAgentVersion("eus2", 3).ok());
  EXPECT_EQ(ChatStatus(key), 200);
  EXPECT_EQ(ChatStatus(new_key), 200);

  // Without a new name the control plane picks one; the operator is told which.
  const CtlResult unnamed = Ctl({"keys", "rotate", "checkout-assistant", "ci-2"});
  ASSERT_EQ(unnamed.exit_code, 0) << unnamed.err;
  EXPECT_THAT(unnamed.err, HasSubstr("created key 'ci-3' for tenant"));
  ASSERT_TRUE(fleet_.WaitForAgentVersion("eus2", 4).ok());

  const CtlResult revoked = Ctl({"keys", "revoke", "checkout-assistant", "ci"});
  EXPECT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_EQ(revoked.out, "~ tenant checkout-assistant\napplied version 5\n");
  ASSERT_TRUE(fleet_.WaitForAgentVersion("eus2", 5).ok());
  EXPECT_EQ(ChatStatus(key), 401);
  EXPECT_EQ(ChatStatus(new_key), 200);

  const CtlResult again = Ctl({"keys", "revoke", "checkout-assistant", "ci"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("has no key named 'ci'"));

  // The tenant lists its keys by name in every format, never the keys themselves.
  for (const char* format : {"table", "json", "yaml", "csv"}) {
    const CtlResult tenant = Ctl({"get", "tenant", "checkout-assistant", "-o", format});
    EXPECT_EQ(tenant.exit_code, 0) << tenant.err;
    EXPECT_THAT(tenant.out, HasSubstr("ci-2")) << format;
    EXPECT_THAT(tenant.out, Not(HasSubstr(key))) << format;
    EXPECT_THAT(tenant.out, Not(HasSubstr(new_key))) << format;
  }
}

TEST_F(SpillwayctlE2eTest, AgentsShowTheirRegionAndAckedVersion) {
  ApplyReference();
  ASSERT_TRUE(fleet_.WaitForAcks(1, 2).ok());
  absl::StatusOr<v1::ListAgentsResponse> known = fleet_.ListAgents();
  ASSERT_TRUE(known.ok()) << known.status();
  ASSERT_EQ(known->agents_size(), 2);

  const CtlResult table = Ctl({"agents"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, StartsWith("current version 1\n"));
  for (const v1::AgentInfo& agent : known->agents()) {
    EXPECT_THAT(table.out,
                ContainsRegex(absl::StrCat(agent.agent_id(), " +", agent.region(), " +1 +yes")));
  }

  const CtlResult csv = Ctl({"agents", "-o", "csv"});
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  const std::vector<std::vector<std::string>> rows = CsvRows(csv.out);
  ASSERT_EQ(rows.size(), 3u) << csv.out;
  ASSERT_GE(rows[0].size(), 4u);
  EXPECT_EQ(rows[0][1], "region");
  EXPECT_EQ(rows[0][2], "acked_version");
  std::vector<std::string> regions;
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_GE(rows[i].size(), 4u) << csv.out;
    regions.push_back(rows[i][1]);
    EXPECT_EQ(rows[i][2], "1") << csv.out;
    EXPECT_EQ(rows[i][3], "yes") << csv.out;
  }
  EXPECT_THAT(regions, ::testing::UnorderedElementsAre("eastus2", "swedencentral"));

  // An apply moves the acked version once the agents take it.
  v1::Topology changed = topology_;
  changed.mutable_stamps(0)->set_description("after the second apply");
  ASSERT_EQ(Ctl({"apply", "-f", WriteTopology("changed.yaml", changed)}).exit_code, 0);
  ASSERT_TRUE(fleet_.WaitForAcks(2, 2).ok());
  const CtlResult after = Ctl({"agents", "-o", "csv"});
  for (const std::vector<std::string>& row : CsvRows(after.out)) {
    if (row[0] != "agent") {
      ASSERT_GE(row.size(), 3u);
      EXPECT_EQ(row[2], "2") << after.out;
    }
  }
}

TEST_F(SpillwayctlE2eTest, HealthListsABackendThatAnsweredWithRetryAfterAsThrottled) {
  ApplyReference();
  const CtlResult quiet = Ctl({"health"});
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_THAT(quiet.out, IsEmpty());
  EXPECT_THAT(quiet.err, HasSubstr("no backend is reported unhealthy or throttled"));

  // The first tier of us/gpt-4o answers 429 once, asking for 30 s; the agent spills over and
  // reports the throttle to the control plane.
  HttpClient mock("127.0.0.1", fleet_.mock("aoai-eus2-ptu").port());
  absl::StatusOr<HttpResponse> fault =
      mock.Send("POST", "/mock/faults", {}, R"({"status":429,"count":1,"retry_after_ms":30000})");
  ASSERT_TRUE(fault.ok() && fault->status / 100 == 2);
  EXPECT_EQ(ChatStatus(kCheckoutKey), 200);

  // The report travels asynchronously; wait for it at the API, then ask the CLI once.
  const std::string backend = "aoai-eus2-ptu/gpt-4o-ptu";
  bool reported = false;
  for (int i = 0; i < 500 && !reported; ++i) {
    v1::HealthOverlay health;
    if (fleet_.admin().FleetHealth(fleet_.AdminContext().get(), {}, &health).ok()) {
      for (const v1::BackendHealth& entry : health.backends()) {
        reported |= entry.backend_id() == backend;
      }
    }
    if (!reported) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ASSERT_TRUE(reported) << "the throttle never reached the control plane";

  const CtlResult table = Ctl({"health"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, ContainsRegex(absl::StrCat(backend, " +throttled +in [0-9]+s +")));
  const CtlResult csv = Ctl({"health", "-o", "csv"});
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  const std::vector<std::vector<std::string>> rows = CsvRows(csv.out);
  ASSERT_EQ(rows.size(), 2u) << "only the throttled backend:\n" << csv.out;
  ASSERT_EQ(rows[1].size(), 5u) << csv.out;
  EXPECT_EQ(rows[1][0], backend);
  EXPECT_EQ(rows[1][1], "throttled");
  EXPECT_THAT(rows[1][3], HasSubstr("eastus2")) << "reported by the eastus2 agent";
  EXPECT_THAT(rows[1][4], HasSubstr("429")) << "the reason, a cell with a comma in it";
}

TEST_F(SpillwayctlE2eTest, DeleteRefusesWhatIsStillReferencedAndRemovesWhatIsNot) {
  ApplyReference();

  // Routes reach deployments through pools: the canary's second split uses the pool
  // us-standard-next, whose one member is aoai-eus2-std/gpt-4o-next. Each refusal names the
  // entry left dangling.
  const CtlResult deployment = Ctl({"delete", "deployment", "aoai-eus2-std/gpt-4o-next"});
  EXPECT_EQ(deployment.exit_code, 1);
  EXPECT_THAT(deployment.err, ContainsRegex("pool 'us-standard-next': [^\n]*gpt-4o-next"));
  const CtlResult pool = Ctl({"delete", "pool", "us-standard-next"});
  EXPECT_EQ(pool.exit_code, 1);
  EXPECT_THAT(pool.err, ContainsRegex("route 'gpt-4o-canary': [^\n]*us-standard-next"));
  const CtlResult absent = Ctl({"delete", "tenant", "no-such-tenant"});
  EXPECT_EQ(absent.exit_code, 1);
  EXPECT_THAT(absent.err, HasSubstr("NOT_FOUND"));
  EXPECT_EQ(CurrentVersion(), 1u);

  const CtlResult dry = Ctl({"delete", "tenant", "nightly-summaries", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, "- tenant nightly-summaries\ndry run: nothing stored (version 1)\n");
  EXPECT_EQ(CurrentVersion(), 1u);

  const CtlResult deleted = Ctl({"delete", "tenant", "nightly-summaries"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "- tenant nightly-summaries\napplied version 2\n");
  EXPECT_TRUE(fleet_.WaitForAgentVersion("eus2", 2).ok());
  EXPECT_EQ(Ctl({"get", "tenant", "nightly-summaries"}).exit_code, 1);
  const CtlResult tenants = Ctl({"get", "tenants"});
  EXPECT_THAT(tenants.out, HasSubstr("checkout-assistant"));
  EXPECT_THAT(tenants.out, Not(HasSubstr("nightly-summaries")));
}

TEST_F(SpillwayctlE2eTest, AStoppedControlPlaneIsUnreachableAndNamed) {
  ApplyReference();
  const std::string server = Server();
  fleet_.KillControlPlane();  // nobody listens on its port any more

  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"get"}, {"apply", "-f", topology_file_}, {"agents"}}) {
    const CtlResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, 3) << args[0] << ": " << result.err;
    EXPECT_THAT(result.out, IsEmpty());
    EXPECT_THAT(result.err, HasSubstr(absl::StrCat("cannot reach the control plane at ", server)))
        << args[0];
  }
}

}  // namespace
}  // namespace spillway::test
