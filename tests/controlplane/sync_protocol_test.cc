// The AgentSync protocol's guarantees end to end (issue 15): versions never go backwards under
// concurrent applies, an agent acks only a table it persisted and refuses an older one, a
// stream speaks only for the agent of its hello (and of its client certificate), and the
// deadlines agents report are capped.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <cstdio>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/wall_clock.h"
#include "spillway/v1/agent_sync.grpc.pb.h"
#include "tests/controlplane/fleet_fixture.h"
#include "tests/controlplane/raw_agent.h"
#include "tests/support/tls_files.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

std::optional<v1::AgentInfo> FindAgent(ControlPlaneFleet& fleet, uint64_t acked) {
  absl::StatusOr<v1::ListAgentsResponse> agents = fleet.ListAgents();
  if (!agents.ok() || agents->agents().empty()) {
    return std::nullopt;
  }
  const v1::AgentInfo& agent = agents->agents(0);
  if (agent.acked_version() != acked && agent.last_nack_reason().empty()) {
    return std::nullopt;
  }
  return agent;
}

class SyncProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mocks = fleet_.AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
  }
  void StartWithTopology(std::vector<std::string> cp_args = {}) {
    ASSERT_TRUE(fleet_.StartControlPlane(std::move(cp_args)).ok());
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(fleet_);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *topology;
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(topology_);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }
  // The reference topology with its first tenant's token limit set to `tpm`: a new version.
  v1::Topology Variant(uint64_t tpm) const {
    v1::Topology topology = topology_;
    topology.mutable_tenants(0)->mutable_limits()->set_tokens_per_minute(tpm);
    return topology;
  }

  ControlPlaneFleet fleet_;
  v1::Topology topology_;
};

TEST_F(SyncProtocolTest, ConcurrentAppliesNeverMoveAnAgentToAnOlderVersion) {
  StartWithTopology();
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2").ok());
  ASSERT_TRUE(fleet_.StartAgent("wus3", "westus3").ok());
  ASSERT_TRUE(fleet_.WaitForAcks(1, 2).ok());
  constexpr int kThreads = 6;
  constexpr int kApplies = 10;
  std::vector<std::thread> appliers;
  for (int t = 0; t < kThreads; ++t) {
    appliers.emplace_back([this, t] {
      for (int i = 0; i < kApplies; ++i) {
        // Each thread its own channel, so applies really overlap in the control plane.
        auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", fleet_.cp_port()),
                                           grpc::InsecureChannelCredentials());
        grpc::ClientContext context;
        v1::ApplyRequest request;
        *request.mutable_topology() = Variant(1000000 + t * 1000 + i);
        v1::ApplyResponse response;
        EXPECT_TRUE(v1::Admin::NewStub(channel)->Apply(&context, request, &response).ok());
      }
    });
  }
  for (std::thread& applier : appliers) {
    applier.join();
  }
  const uint64_t last = 1 + kThreads * kApplies;
  grpc::ClientContext context;
  v1::GetResponse got;
  ASSERT_TRUE(fleet_.admin().Get(&context, v1::GetRequest(), &got).ok());
  EXPECT_EQ(got.version(), last);
  // The store, the fleet and every agent end on the last version...
  ASSERT_TRUE(fleet_.WaitForAcks(last, 2).ok());
  absl::StatusOr<v1::ListAgentsResponse> agents = fleet_.ListAgents();
  ASSERT_TRUE(agents.ok());
  EXPECT_EQ(agents->current_version(), last);
  for (const std::string name : {"eus2", "wus3"}) {
    ASSERT_TRUE(fleet_.WaitForAgentVersion(name, last).ok()) << name;
    // ...and none of them ever applied a version older than one it had.
    const std::vector<uint64_t> applied = AppliedVersions(fleet_.agent_process(name).Output());
    ASSERT_FALSE(applied.empty()) << name;
    EXPECT_TRUE(std::is_sorted(applied.begin(), applied.end()))
        << name << " applied " << absl::StrJoin(applied, ", ");
    EXPECT_EQ(applied.back(), last) << name;
  }
}

TEST_F(SyncProtocolTest, ATableLargerThanGrpcsDefaultLimitReachesItsAgent) {
  StartWithTopology();
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2").ok());
  ASSERT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  // About 6 MiB of keys, past gRPC's default 4 MiB receive limit on both hops.
  v1::Topology large = topology_;
  for (v1::Tenant& tenant : *large.mutable_tenants()) {
    if (tenant.stamp() != topology_.tenants(0).stamp()) {
      continue;
    }
    for (int i = 0; i < 70000; ++i) {
      v1::ApiKey* key = tenant.add_api_keys();
      key->set_name(absl::StrCat("bulk-", i));
      key->set_sha256(absl::StrFormat("%064x", 0xb0000000u + i));
    }
    break;
  }
  ASSERT_GT(large.ByteSizeLong(), 5u << 20);
  absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(large);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(fleet_.WaitForAcks(applied->version(), 1, kWait).ok());
}

TEST_F(SyncProtocolTest, AnAgentNacksATableItCannotPersistAndServesNone) {
  StartWithTopology();
  // A non-empty directory where the table goes: the agent cannot replace it with a file.
  const std::string blocker = fleet_.dir() + "/agent-eus2/routing-table.pb";
  ASSERT_EQ(::mkdir((fleet_.dir() + "/agent-eus2").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(blocker.c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileAtomically(blocker + "/keep", "x").ok());
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2").ok());
  std::optional<v1::AgentInfo> agent;
  ASSERT_TRUE(WaitFor([&] { return (agent = FindAgent(fleet_, 1)).has_value(); }, kWait));
  EXPECT_EQ(agent->acked_version(), 0u);
  EXPECT_THAT(agent->last_nack_reason(), HasSubstr("cannot persist"));
}

TEST_F(SyncProtocolTest, AnAgentRefusesATableOlderThanTheOneItServes) {
  StartWithTopology();
  ASSERT_TRUE(fleet_.Apply(Variant(4242)).ok());
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2").ok());
  ASSERT_TRUE(fleet_.WaitForAcks(2, 1).ok());
  // A control plane restored from an older database offers version 1.
  fleet_.KillControlPlane();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove((fleet_.dir() + "/topology.db" + suffix).c_str());
  }
  ASSERT_TRUE(fleet_.StartControlPlane().ok());
  ASSERT_TRUE(fleet_.Apply(topology_).ok());
  // The agent may reconnect before that apply: the control plane then records "no table for
  // region ..." until the agent refuses version 1, so wait past that reason, not just for one.
  std::optional<v1::AgentInfo> agent;
  ASSERT_TRUE(WaitFor(
      [&] {
        agent = FindAgent(fleet_, 0);
        return agent.has_value() && !agent->last_nack_reason().empty() &&
               !absl::StartsWith(agent->last_nack_reason(), "no table for region");
      },
      kWait));
  EXPECT_THAT(agent->last_nack_reason(), HasSubstr("older than version 2"));
  absl::StatusOr<std::string> status = fleet_.AgentStatus("eus2");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(boost::json::parse(*status).at("version").as_int64(), 2);
}

// A state directory moved to an agent of another region (a host re-purposed with a new
// --region) holds the old region's table: serving it would route that region's traffic.
TEST_F(SyncProtocolTest, AnAgentNeverServesAnotherRegionsPersistedTable) {
  StartWithTopology();
  ASSERT_TRUE(fleet_.StartAgent("host", "eastus2").ok());
  ASSERT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  fleet_.KillControlPlane();  // nothing may replace the persisted table while it starts
  fleet_.KillAgent("host");
  ASSERT_TRUE(fleet_.StartAgent("host", "westus3").ok());
  EXPECT_TRUE(
      fleet_.agent_process("host")
          .WaitForLine("is for region 'eastus2', this agent serves 'westus3'", absl::Seconds(10))
          .ok());
  absl::StatusOr<std::string> status = fleet_.AgentStatus("host");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(boost::json::parse(*status).at("version").is_null()) << *status;
  absl::StatusOr<HttpResponse> ready = fleet_.AgentClient("host")->Send("GET", "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 503);
}

TEST_F(SyncProtocolTest, AStreamCannotSendUsageForAnotherAgent) {
  StartWithTopology();
  RawAgent agent(fleet_.cp_port());
  ASSERT_TRUE(agent.Hello("agent-a", "eastus2"));
  v1::AgentMessage usage;
  usage.mutable_usage()->set_agent_id("agent-b");
  usage.mutable_usage()->set_sequence(1);
  agent.Write(usage);
  const grpc::Status status = agent.Drain();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("agent-b"));
}

TEST_F(SyncProtocolTest, ReportedThrottlesAreCappedAndPastOnesIgnored) {
  StartWithTopology();
  RawAgent agent(fleet_.cp_port());
  ASSERT_TRUE(agent.Hello("agent-a", "eastus2"));
  const int64_t now = UnixMillisNow();
  v1::AgentMessage past;
  auto* event = past.mutable_throttle()->add_events();
  event->set_backend_id("past/backend");
  event->set_at_unix_ms(now - 3600 * 1000);
  event->set_retry_after_ms(1000);
  ASSERT_TRUE(agent.Write(past));
  v1::AgentMessage years;
  event = years.mutable_throttle()->add_events();
  event->set_backend_id("hostile/backend");
  event->set_at_unix_ms(int64_t{1} << 61);  // far in the future
  event->set_retry_after_ms(UINT32_MAX);
  ASSERT_TRUE(agent.Write(years));
  v1::HealthOverlay overlay;
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        return fleet_.admin().FleetHealth(&context, v1::FleetHealthRequest(), &overlay).ok() &&
               overlay.backends_size() > 0;
      },
      kWait));
  // Reports on one stream are handled in order: the past one came first and left nothing.
  ASSERT_EQ(overlay.backends_size(), 1);
  EXPECT_EQ(overlay.backends(0).backend_id(), "hostile/backend");
  EXPECT_LE(overlay.backends(0).until_unix_ms(), UnixMillisNow() + 10 * 60 * 1000);
}

// A client certificate naming spillway://<region>/<agent-id>, signed by `ca`.
absl::StatusOr<TlsFiles> MakeAgentCert(const TlsFiles& ca, const std::string& dir,
                                       const std::string& name, const std::string& uri) {
  TlsFiles files{absl::StrCat(dir, "/", name, ".pem"), absl::StrCat(dir, "/", name, "-key.pem")};
  ChildProcessOptions options;
  options.name = "openssl";
  absl::StatusOr<std::unique_ptr<ChildProcess>> openssl =
      ChildProcess::Start("/usr/bin/openssl",
                          {"req",
                           "-x509",
                           "-CA",
                           ca.cert_file,
                           "-CAkey",
                           ca.key_file,
                           "-newkey",
                           "ec",
                           "-pkeyopt",
                           "ec_paramgen_curve:prime256v1",
                           "-nodes",
                           "-days",
                           "2",
                           "-subj",
                           absl::StrCat("/CN=", name),
                           "-addext",
                           "basicConstraints=critical,CA:FALSE",
                           "-addext",
                           "extendedKeyUsage=clientAuth",
                           "-addext",
                           absl::StrCat("subjectAltName=URI:", uri),
                           "-keyout",
                           files.key_file,
                           "-out",
                           files.cert_file},
                          options);
  if (!openssl.ok()) {
    return openssl.status();
  }
  absl::StatusOr<int> exit_code = (*openssl)->Wait(absl::Seconds(30));
  if (!exit_code.ok() || *exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl failed: ", (*openssl)->Output()));
  }
  return files;
}

TEST_F(SyncProtocolTest, AHelloMustMatchTheIdentityOfItsClientCertificate) {
  const std::string pki = fleet_.dir() + "/pki";
  ASSERT_EQ(::mkdir(pki.c_str(), 0700), 0);
  absl::StatusOr<TlsFiles> server = MakeSelfSignedCert(pki);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<TlsFiles> ca = MakeCertificateAuthority(pki, "client-ca");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<TlsFiles> cert = MakeAgentCert(*ca, pki, "agent-1", "spillway://eastus2/agent-1");
  ASSERT_TRUE(cert.ok()) << cert.status();
  absl::StatusOr<TlsFiles> operator_cert = MakeClientCert(*ca, pki, "operator");
  ASSERT_TRUE(operator_cert.ok()) << operator_cert.status();
  auto credentials = [&](const TlsFiles& client) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *ReadFile(server->cert_file);
    ssl.pem_cert_chain = *ReadFile(client.cert_file);
    ssl.pem_private_key = *ReadFile(client.key_file);
    return grpc::SslCredentials(ssl);
  };
  fleet_.SetAdminCredentials(credentials(*operator_cert), "");
  StartWithTopology({"--tls-cert", server->cert_file, "--tls-key", server->key_file,
                     "--tls-client-ca", ca->cert_file});
  const std::vector<std::pair<std::string, std::string>> impostors = {{"agent-2", "eastus2"},
                                                                      {"agent-1", "westus3"}};
  for (const auto& [id, region] : impostors) {
    RawAgent impostor(fleet_.cp_port(), credentials(*cert));
    impostor.Hello(id, region);
    const grpc::Status status = impostor.Drain();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << id << " " << region;
    EXPECT_THAT(status.error_message(), HasSubstr("spillway://eastus2/agent-1"));
  }
  RawAgent agent(fleet_.cp_port(), credentials(*cert));
  ASSERT_TRUE(agent.Hello("agent-1", "eastus2"));
  EXPECT_TRUE(agent.ReadTable());
}

}  // namespace
}  // namespace spillway::test
