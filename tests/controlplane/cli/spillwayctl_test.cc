// The real spillwayctl binary against an in-process fake Admin server: the topology, key,
// agent, health and usage commands — what each sends, prints and exits with.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/topology_yaml.h"
#include "tests/controlplane/cli/ctl_fixture.h"

namespace spillway::test {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

v1::DiffEntry Diff(v1::Kind kind, const std::string& name, v1::DiffEntry::Change change) {
  v1::DiffEntry entry;
  entry.set_kind(kind);
  entry.set_name(name);
  entry.set_change(change);
  return entry;
}

TEST_F(SpillwayctlTest, ApplySendsTheParsedFileWithTheTokenAndPrintsTheDiff) {
  v1::ApplyResponse response;
  response.set_version(8);
  response.set_changed(true);
  *response.add_diff() =
      Diff(v1::KIND_DEPLOYMENT, "aoai-eus2-ptu/gpt-4o-ptu", v1::DiffEntry::CHANGE_ADDED);
  *response.add_diff() = Diff(v1::KIND_ROUTE, "us/gpt-4o", v1::DiffEntry::CHANGE_CHANGED);
  *response.add_diff() = Diff(v1::KIND_TENANT, "x", v1::DiffEntry::CHANGE_REMOVED);
  server_->SetResponse("Apply", response);

  const CtlResult result = Run({"apply", "-f", SPILLWAY_REFERENCE_TOPOLOGY});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "+ deployment aoai-eus2-ptu/gpt-4o-ptu\n"
            "~ route us/gpt-4o\n"
            "- tenant x\n"
            "applied version 8\n");
  const std::vector<RecordedCall> calls = server_->calls();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].method, "Apply");
  EXPECT_EQ(calls[0].authorization, absl::StrCat("Bearer ", kOperatorToken));
  const auto& request = calls[0].As<v1::ApplyRequest>();
  EXPECT_FALSE(request.dry_run());
  EXPECT_TRUE(MessageDifferencer::Equals(request.topology(), ReferenceTopology()));
}

TEST_F(SpillwayctlTest, DryRunReachesTheServer) {
  v1::ApplyResponse response;
  response.set_version(7);
  *response.add_diff() = Diff(v1::KIND_POOL, "us-standard", v1::DiffEntry::CHANGE_CHANGED);
  server_->SetResponse("Apply", response);

  const CtlResult result = Run({"apply", "--dry-run", "-f", SPILLWAY_REFERENCE_TOPOLOGY});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "~ pool us-standard\ndry run: nothing stored (version 7)\n");
  ASSERT_THAT(server_->calls(), SizeIs(1));
  EXPECT_TRUE(server_->calls()[0].As<v1::ApplyRequest>().dry_run());
}

TEST_F(SpillwayctlTest, ApplyWithoutChangesSaysSo) {
  v1::ApplyResponse response;
  response.set_version(7);
  server_->SetResponse("Apply", response);

  const CtlResult result = Run({"apply", "-f", SPILLWAY_REFERENCE_TOPOLOGY});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "no changes (version 7)\n");
}

TEST_F(SpillwayctlTest, ApplyReadsStdinWithDashAndPrintsJsonOnRequest) {
  WriteTextFile(Path("stdin.yaml"), "stamps:\n  - name: us\n");
  v1::ApplyResponse response;
  response.set_version(3);
  response.set_changed(true);
  *response.add_diff() = Diff(v1::KIND_STAMP, "us", v1::DiffEntry::CHANGE_ADDED);
  server_->SetResponse("Apply", response);

  const CtlResult result = RunRaw(
      {"--server", server_->address(), "apply", "-f", "-", "-o", "json"}, {}, Path("stdin.yaml"));

  EXPECT_EQ(result.exit_code, 0) << result.err;
  v1::ApplyResponse printed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(result.out, &printed).ok()) << result.out;
  EXPECT_TRUE(MessageDifferencer::Equals(printed, response));
  ASSERT_THAT(server_->calls(), SizeIs(1));
  const auto& request = server_->calls()[0].As<v1::ApplyRequest>();
  ASSERT_EQ(request.topology().stamps_size(), 1);
  EXPECT_EQ(request.topology().stamps(0).name(), "us");
}

TEST_F(SpillwayctlTest, InvalidYamlFailsLocallyWithTheLineAndNeverCallsTheServer) {
  const std::string file = Path("bad.yaml");
  WriteTextFile(file, "stamps:\n  - name: us\n    descripton: typo\n");

  const CtlResult result = Run({"apply", "-f", file});

  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr(absl::StrCat(file, ":3:5: stamps[0].descripton")));
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(server_->calls(), IsEmpty());
}

TEST_F(SpillwayctlTest, MissingFileIsAUsageError) {
  const CtlResult result = Run({"apply", "-f", Path("absent.yaml")});

  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("absent.yaml"));
  EXPECT_THAT(server_->calls(), IsEmpty());
}

TEST_F(SpillwayctlTest, ServerRefusalIsPrintedVerbatimWithExitOne) {
  const std::string message =
      "topology invalid (2 problems):\n"
      "  deployment aoai-eus2-ptu/gpt-4o-ptu: instance 'aoai-eus2-ptu' does not exist\n"
      "  route us/gpt-4o: tier 'us-standard' serves gpt-4o 2024-11-20, expected 2024-08-06";
  server_->SetFailure(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message));

  const CtlResult result = Run({"apply", "-f", SPILLWAY_REFERENCE_TOPOLOGY});

  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, absl::StrCat("spillwayctl: INVALID_ARGUMENT: ", message, "\n"));
  EXPECT_THAT(result.out, IsEmpty());
}

TEST_F(SpillwayctlTest, GetDeploymentsPrintsATable) {
  v1::GetResponse response;
  response.set_version(4);
  *response.mutable_topology()->mutable_deployments() = ReferenceTopology().deployments();
  server_->SetResponse("Get", response);

  const CtlResult result = Run({"get", "deployments"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::vector<std::string> lines = absl::StrSplit(result.out, '\n');
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "INSTANCE        NAME          MODEL                    VERSION      SKU               "
            "           CAPACITY");
  EXPECT_EQ(lines[1],
            "aoai-eus2-ptu   gpt-4o-ptu    gpt-4o                   2024-08-06   ProvisionedManaged"
            "            100 PTU");
  ASSERT_THAT(server_->calls(), SizeIs(1));
  EXPECT_EQ(server_->calls()[0].As<v1::GetRequest>().kind(), v1::KIND_DEPLOYMENT);
}

TEST_F(SpillwayctlTest, GetOfAnEmptyKindSaysSoOnStderr) {
  const CtlResult table = Run({"get", "pools"});
  const CtlResult csv = Run({"get", "pools", "-o", "csv"});

  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, IsEmpty());
  EXPECT_EQ(table.err, "no pools found\n");
  EXPECT_EQ(csv.out, "name,members,priority_limits\n");
}

TEST_F(SpillwayctlTest, GetYamlReparsesToTheSameTopology) {
  v1::GetResponse response;
  response.set_version(4);
  *response.mutable_topology() = ReferenceTopology();
  server_->SetResponse("Get", response);

  const CtlResult result = Run({"-o", "yaml", "get"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("# topology version 4\n"));
  absl::StatusOr<v1::Topology> reparsed = ParseTopologyYaml(result.out, "stdout");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*reparsed, ReferenceTopology()));
}

// Whatever `get` prints, `apply -f` takes back: the reference topology printed as JSON and
// as YAML loads through the topology loader and is applied as the very same topology.
TEST_F(SpillwayctlTest, GetJsonAndYamlApplyBackUnchanged) {
  v1::GetResponse response;
  response.set_version(4);
  *response.mutable_topology() = ReferenceTopology();
  server_->SetResponse("Get", response);
  server_->SetResponse("Apply", v1::ApplyResponse());

  for (const std::string format : {"json", "yaml"}) {
    const CtlResult got = Run({"get", "-o", format});
    ASSERT_EQ(got.exit_code, 0) << got.err;
    EXPECT_THAT(got.out, HasSubstr("critical")) << format;
    EXPECT_THAT(got.out, Not(HasSubstr("PRIORITY_"))) << format;
    EXPECT_THAT(got.out, Not(HasSubstr("SKU_"))) << format;
    const std::string file = Path("exported." + format);
    WriteTextFile(file, got.out);
    absl::StatusOr<v1::Topology> loaded = LoadTopologyFile(file);
    ASSERT_TRUE(loaded.ok()) << format << ": " << loaded.status() << "\n" << got.out;
    EXPECT_TRUE(MessageDifferencer::Equals(*loaded, ReferenceTopology())) << format;

    const CtlResult applied = Run({"apply", "-f", file});
    EXPECT_EQ(applied.exit_code, 0) << applied.err;
    const std::vector<RecordedCall> calls = server_->calls();
    ASSERT_FALSE(calls.empty());
    EXPECT_TRUE(MessageDifferencer::Equals(calls.back().As<v1::ApplyRequest>().topology(),
                                           ReferenceTopology()))
        << format;
  }
}

TEST_F(SpillwayctlTest, GetOneTenantAsJsonAndAsATableWithoutHashes) {
  v1::GetResponse response;
  response.set_version(4);
  *response.mutable_topology()->add_tenants() = ReferenceTopology().tenants(0);
  server_->SetResponse("Get", response);

  const CtlResult json = Run({"get", "tenant", "checkout-assistant", "-o", "json"});
  const CtlResult table = Run({"get", "tenant", "checkout-assistant"});

  EXPECT_EQ(json.exit_code, 0) << json.err;
  absl::StatusOr<v1::Topology> printed = ParseTopologyYaml(json.out, "stdout");
  ASSERT_TRUE(printed.ok()) << printed.status() << "\n" << json.out;
  EXPECT_TRUE(MessageDifferencer::Equals(*printed, response.topology()));
  EXPECT_THAT(json.out, HasSubstr("\"tokens_per_minute\": 120000"));  // .proto names, as in YAML
  EXPECT_THAT(json.out, HasSubstr("\"priority\": \"critical\""));     // the YAML spelling

  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(
      table.out,
      "NAME                 STAMP   PRIORITY   ROUTES                             TPM   RPM   "
      "KEYS\n"
      "checkout-assistant   us      critical   gpt-4o,text-embedding-3-large   120000   720"
      "   prod\n");
  EXPECT_THAT(table.out, Not(HasSubstr(ReferenceTopology().tenants(0).api_keys(0).sha256())));
  const auto calls = server_->calls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[0].As<v1::GetRequest>().kind(), v1::KIND_TENANT);
  EXPECT_EQ(calls[0].As<v1::GetRequest>().name(), "checkout-assistant");
}

TEST_F(SpillwayctlTest, CreateSendsPartialTopology) {
  const std::string file = Path("partial.yaml");
  WriteTextFile(file, "regions:\n  - { name: centralus, stamp: us }\n");

  const CtlResult result = Run({"create", "-f", file, "--dry-run"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  ASSERT_THAT(server_->calls(), SizeIs(1));
  const auto& request = server_->calls()[0].As<v1::CreateRequest>();
  EXPECT_TRUE(request.dry_run());
  ASSERT_EQ(request.entries().regions_size(), 1);
  EXPECT_EQ(request.entries().regions(0).name(), "centralus");
}

TEST_F(SpillwayctlTest, DeleteSendsKindNameAndDryRun) {
  v1::ApplyResponse response;
  response.set_version(9);
  response.set_changed(true);
  *response.add_diff() =
      Diff(v1::KIND_DEPLOYMENT, "aoai-eus2-std/embed-3", v1::DiffEntry::CHANGE_REMOVED);
  server_->SetResponse("Delete", response);

  const CtlResult result = Run({"delete", "deployment", "aoai-eus2-std/embed-3"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "- deployment aoai-eus2-std/embed-3\napplied version 9\n");
  ASSERT_THAT(server_->calls(), SizeIs(1));
  const auto& request = server_->calls()[0].As<v1::DeleteRequest>();
  EXPECT_EQ(request.kind(), v1::KIND_DEPLOYMENT);
  EXPECT_EQ(request.name(), "aoai-eus2-std/embed-3");
  EXPECT_FALSE(request.dry_run());
}

TEST_F(SpillwayctlTest, KeysCreatePrintsTheKeyOnceWithAWarning) {
  v1::CreateKeyResponse response;
  response.set_tenant("checkout-assistant");
  response.set_key_name("prod-2");
  response.set_api_key("sk-spillway-0123456789abcdef");
  response.set_version(12);
  server_->SetResponse("CreateKey", response);

  const CtlResult result = Run({"keys", "create", "checkout-assistant", "prod-2"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "sk-spillway-0123456789abcdef\n");
  EXPECT_THAT(result.err, Not(HasSubstr("sk-spillway")));
  EXPECT_THAT(result.err, HasSubstr("will not be shown again"));
  ASSERT_THAT(server_->calls(), SizeIs(1));
  const auto& request = server_->calls()[0].As<v1::CreateKeyRequest>();
  EXPECT_EQ(request.tenant(), "checkout-assistant");
  EXPECT_EQ(request.key_name(), "prod-2");
}

TEST_F(SpillwayctlTest, KeysRotateAndRevoke) {
  v1::CreateKeyResponse key;
  key.set_api_key("sk-new");
  server_->SetResponse("RotateKey", key);
  v1::ApplyResponse revoked;
  revoked.set_version(14);
  revoked.set_changed(true);
  *revoked.add_diff() = Diff(v1::KIND_TENANT, "checkout-assistant", v1::DiffEntry::CHANGE_CHANGED);
  server_->SetResponse("RevokeKey", revoked);

  const CtlResult rotate = Run({"keys", "rotate", "checkout-assistant", "prod", "prod-2025"});
  const CtlResult revoke = Run({"keys", "revoke", "checkout-assistant", "prod"});

  EXPECT_EQ(rotate.exit_code, 0) << rotate.err;
  EXPECT_EQ(rotate.out, "sk-new\n");
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_EQ(revoke.out, "~ tenant checkout-assistant\napplied version 14\n");
  const auto calls = server_->calls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[0].As<v1::RotateKeyRequest>().new_key_name(), "prod-2025");
  EXPECT_EQ(calls[1].As<v1::RevokeKeyRequest>().key_name(), "prod");
}

TEST_F(SpillwayctlTest, AgentsAndHealthTables) {
  v1::ListAgentsResponse agents;
  agents.set_current_version(5);
  v1::AgentInfo* agent = agents.add_agents();
  agent->set_agent_id("agent-eus2-a");
  agent->set_region("eastus2");
  agent->set_acked_version(4);
  agent->set_connected(true);
  agent->set_last_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
  agent->set_last_nack_reason("route us/gpt-4o: no backend");
  server_->SetResponse("ListAgents", agents);
  v1::HealthOverlay health;
  v1::BackendHealth* backend = health.add_backends();
  backend->set_backend_id("aoai-eus2-std/gpt-4o");
  backend->set_state(v1::HEALTH_STATE_THROTTLED);
  backend->set_reported_by("agent-eus2-a");
  backend->set_reason("429 retry-after 30s");
  server_->SetResponse("FleetHealth", health);

  const CtlResult agents_result = Run({"agents"});
  const CtlResult health_result = Run({"health"});

  EXPECT_EQ(agents_result.exit_code, 0) << agents_result.err;
  EXPECT_THAT(agents_result.out, HasSubstr("current version 5\n"
                                           "AGENT          REGION    ACKED_VERSION   CONNECTED"));
  EXPECT_THAT(agents_result.out, HasSubstr("agent-eus2-a   eastus2               4   yes"));
  EXPECT_THAT(agents_result.out, HasSubstr("route us/gpt-4o: no backend"));
  EXPECT_EQ(health_result.exit_code, 0) << health_result.err;
  EXPECT_EQ(health_result.out,
            "BACKEND                STATE       UNTIL   REPORTED_BY    REASON\n"
            "aoai-eus2-std/gpt-4o   throttled   -       agent-eus2-a   429 retry-after 30s\n");
}

TEST_F(SpillwayctlTest, UsageAsCsv) {
  v1::UsageQueryResponse usage;
  v1::UsageRow* row = usage.add_rows();
  (*row->mutable_key())["tenant"] = "checkout-assistant";
  (*row->mutable_key())["route"] = "gpt-4o, canary";  // a comma: must be quoted
  row->set_requests(10);
  row->set_prompt_tokens(1000);
  row->set_completion_tokens(200);
  row->set_cached_tokens(50);
  row->set_total_tokens(1200);
  row->set_failed_requests(1);
  row->set_throttled_requests(2);
  server_->SetResponse("QueryUsage", usage);

  const absl::Time before = absl::Now();
  const CtlResult result = Run({"usage", "--since", "24h", "--by", "tenant,route", "-o", "csv"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "tenant,route,requests,prompt,completion,cached,total,failed,throttled\n"
            "checkout-assistant,\"gpt-4o, canary\",10,1000,200,50,1200,1,2\n");
  ASSERT_THAT(server_->calls(), SizeIs(1));
  const auto& query = server_->calls()[0].As<v1::UsageQuery>();
  EXPECT_THAT(query.group_by(), ::testing::ElementsAre("tenant", "route"));
  EXPECT_EQ(query.until_unix_ms(), 0);
  const int64_t expected_since = absl::ToUnixMillis(before - absl::Hours(24));
  EXPECT_NEAR(static_cast<double>(query.since_unix_ms()), static_cast<double>(expected_since),
              60'000.0);
}

TEST_F(SpillwayctlTest, UsageFromHourlyTotalsSaysSoAndWhichHours) {
  v1::UsageQueryResponse usage;
  v1::UsageRow* row = usage.add_rows();
  (*row->mutable_key())["tenant"] = "checkout-assistant";
  row->set_requests(10);
  usage.set_granularity("hour");
  usage.set_since_unix_ms(1'700'002'800'000);  // 2023-11-14T23:00Z
  usage.set_until_unix_ms(0);
  server_->SetResponse("QueryUsage", usage);
  const CtlResult result = Run({"usage", "--since", "90d", "--by", "tenant"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.err, HasSubstr("note: from hourly totals, 2023-11-14T23:00Z to now"));
  EXPECT_THAT(result.out, HasSubstr("checkout-assistant"));

  usage.set_granularity("minute");
  server_->SetResponse("QueryUsage", usage);
  EXPECT_THAT(Run({"usage", "--since", "1h"}).err, Not(HasSubstr("note:")));
}

TEST_F(SpillwayctlTest, BadUsageExitsTwoWithAHint) {
  const CtlResult unknown_verb = Run({"frobnicate"});
  const CtlResult bad_kind = Run({"get", "gizmos"});
  const CtlResult bad_format = Run({"apply", "-f", SPILLWAY_REFERENCE_TOPOLOGY, "-o", "csv"});

  EXPECT_EQ(unknown_verb.exit_code, 2);
  EXPECT_THAT(unknown_verb.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_EQ(bad_kind.exit_code, 2);
  EXPECT_THAT(bad_kind.err, HasSubstr("unknown kind 'gizmos'"));
  EXPECT_THAT(bad_kind.err, HasSubstr("usage: spillwayctl get"));
  EXPECT_EQ(bad_format.exit_code, 2);
  EXPECT_THAT(server_->calls(), IsEmpty());
}

TEST_F(SpillwayctlTest, HelpExitsZero) {
  const CtlResult help = RunRaw({"--help"});
  const CtlResult verb_help = RunRaw({"usage", "--help"});

  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("apply -f FILE [--dry-run]"));
  EXPECT_THAT(help.out, HasSubstr("--token-file"));
  EXPECT_EQ(verb_help.exit_code, 0);
  EXPECT_THAT(verb_help.out, HasSubstr("usage: spillwayctl usage [--since T]"));
}

// TLS: a server certificate verified with --tls-ca, then a server that also requires a client
// certificate.
}  // namespace
}  // namespace spillway::test
