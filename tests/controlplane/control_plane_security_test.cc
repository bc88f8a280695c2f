// Security of the control plane end to end: tokens, TLS, loopback-only without tokens, and
// that a reconnecting agent is not sent what it already has.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/file_io.h"
#include "common/topology_yaml.h"
#include "tests/controlplane/fleet_fixture.h"
#include "tests/support/child_process.h"
#include "tests/support/closed_port.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_files.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Distinctive enough that finding one in any output can only mean it leaked.
constexpr char kAdminToken[] = "adm-7f3c9a1e5b2d8046-operator-secret";
constexpr char kAgentToken[] = "agt-2e8b4d6f0a1c3957-agent-secret";

// A limit on waiting for something that should happen, not a measurement.
constexpr absl::Duration kWait = kFleetWait;

// What the agent logs when its AgentSync stream ends (dataplane/sync/sync_client.cc).
constexpr char kStreamEnded[] = "control plane stream to ";
// What the agent logs for each table it applies (dataplane/sync/sync_client.cc); the trailing
// space keeps version 1 from matching version 10.
std::string AppliedLine(uint64_t version) {
  return absl::StrCat("applied routing table version ", version, " ");
}

struct Exited {
  int code = -1;
  std::string output;
};

// Runs `binary` until it exits on its own.
Exited RunToExit(const std::string& binary, const std::vector<std::string>& args,
                 std::vector<std::string> env = {}) {
  ChildProcessOptions options;
  options.name = binary.substr(binary.rfind('/') + 1);
  options.env = std::move(env);
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(binary, args, options);
  if (!process.ok()) {
    return {-1, std::string(process.status().message())};
  }
  absl::StatusOr<int> code = (*process)->Wait(absl::Seconds(30));
  if (!code.ok()) {
    return {-1, absl::StrCat(code.status().message(), "\n", (*process)->Output())};
  }
  return {*code, (*process)->Output()};
}

int Occurrences(absl::string_view text, absl::string_view needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != absl::string_view::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

void ExpectNoTokens(absl::string_view whose, const std::string& text) {
  EXPECT_FALSE(absl::StrContains(text, kAdminToken)) << "the admin token leaked into " << whose;
  EXPECT_FALSE(absl::StrContains(text, kAgentToken)) << "the agent token leaked into " << whose;
}

std::string MakeDir(const std::string& path) {
  ::mkdir(path.c_str(), 0700);
  return path;
}

// The reference topology with every instance at a port nothing listens on: these tests
// look at who gets a routing table, never at traffic, so no backend needs to run. The port
// is held for the whole binary (a ClosedPort), so no other test's server can turn up there.
v1::Topology ReferenceTopologyOnDeadEndpoints() {
  static const ClosedPort* const dead = new ClosedPort();  // never destroyed, by design
  return ReferenceTopologyAt([](const std::string&) { return dead->url(); });
}

// The version the agent's /status reports; 0 when it serves no table.
uint64_t ServedVersion(ControlPlaneFleet& fleet, const std::string& agent) {
  absl::StatusOr<std::string> status = fleet.AgentStatus(agent);
  EXPECT_TRUE(status.ok()) << status.status();
  if (!status.ok()) {
    return 0;
  }
  const boost::json::value version = boost::json::parse(*status).at("version");
  return version.is_null() ? 0 : version.to_number<uint64_t>();
}

// Waits until `agent` has had a stream to the control plane end, then checks that it still
// serves no table. Returns the agent's log line saying why the stream ended.
std::string ExpectRefused(ControlPlaneFleet& fleet, const std::string& agent) {
  absl::StatusOr<std::string> ended = fleet.agent_process(agent).WaitForLine(kStreamEnded, kWait);
  EXPECT_TRUE(ended.ok()) << agent << " was never refused: " << ended.status();
  EXPECT_EQ(ServedVersion(fleet, agent), 0u) << agent << " got a routing table";
  return ended.ok() ? *ended : "";
}

// The regions of the agents the control plane knows of, connected or not.
std::multiset<std::string> ListedRegions(ControlPlaneFleet& fleet) {
  absl::StatusOr<v1::ListAgentsResponse> list = fleet.ListAgents();
  EXPECT_TRUE(list.ok()) << list.status();
  std::multiset<std::string> regions;
  if (list.ok()) {
    for (const v1::AgentInfo& agent : list->agents()) {
      regions.insert(agent.region());
    }
  }
  return regions;
}

// Every Admin method, called with `authorization` as the authorization metadata (none if
// empty). The requests are real enough that a method skipping the token check would change
// the topology or mint a key.
std::map<std::string, grpc::Status> CallEveryAdminMethod(v1::Admin::Stub& admin,
                                                         const std::string& authorization) {
  auto context = [&authorization] {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) {
      context->AddMetadata("authorization", authorization);
    }
    return context;
  };
  std::map<std::string, grpc::Status> results;
  {
    v1::ApplyRequest request;
    *request.mutable_topology() = ReferenceTopologyOnDeadEndpoints();
    request.mutable_topology()->mutable_stamps(0)->set_description("applied by whoever called");
    v1::ApplyResponse response;
    results["Apply"] = admin.Apply(context().get(), request, &response);
  }
  {
    v1::GetResponse response;
    results["Get"] = admin.Get(context().get(), {}, &response);
  }
  {
    v1::CreateRequest request;
    request.mutable_entries()->add_regions()->set_name("brazilsouth");
    v1::ApplyResponse response;
    results["Create"] = admin.Create(context().get(), request, &response);
  }
  {
    v1::DeleteRequest request;
    request.set_kind(v1::KIND_TENANT);
    request.set_name("nightly-summaries");
    v1::ApplyResponse response;
    results["Delete"] = admin.Delete(context().get(), request, &response);
  }
  {
    v1::CreateKeyRequest request;
    request.set_tenant("checkout-assistant");
    request.set_key_name("stolen");
    v1::CreateKeyResponse response;
    results["CreateKey"] = admin.CreateKey(context().get(), request, &response);
  }
  {
    v1::RotateKeyRequest request;
    request.set_tenant("checkout-assistant");
    request.set_key_name("prod");
    request.set_new_key_name("stolen-too");
    v1::CreateKeyResponse response;
    results["RotateKey"] = admin.RotateKey(context().get(), request, &response);
  }
  {
    v1::RevokeKeyRequest request;
    request.set_tenant("checkout-assistant");
    request.set_key_name("prod");
    v1::ApplyResponse response;
    results["RevokeKey"] = admin.RevokeKey(context().get(), request, &response);
  }
  {
    v1::ListAgentsResponse response;
    results["ListAgents"] = admin.ListAgents(context().get(), {}, &response);
  }
  {
    v1::HealthOverlay response;
    results["FleetHealth"] = admin.FleetHealth(context().get(), {}, &response);
  }
  {
    v1::UsageQueryResponse response;
    results["QueryUsage"] = admin.QueryUsage(context().get(), {}, &response);
  }
  return results;
}

// --- Startup: what the control plane and the agent refuse before serving anything ---------

class SecurityStartupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<ScopedTempDir>(*std::move(dir));
    ASSERT_TRUE(WriteFileAtomically(AdminTokenFile(), absl::StrCat(kAdminToken, "\n")).ok());
    ASSERT_TRUE(WriteFileAtomically(AgentTokenFile(), absl::StrCat(kAgentToken, "\n")).ok());
  }

  std::string Path(const std::string& name) const { return dir_->path() + "/" + name; }
  std::string AdminTokenFile() const { return Path("admin.token"); }
  std::string AgentTokenFile() const { return Path("agent.token"); }

  // spillway-cp on `listen` with `extra` flags, expected to exit.
  Exited RunControlPlane(const std::string& listen, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--listen", listen, "--db", Path("topology.db")};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunToExit(SPILLWAY_CP_BIN, args);
  }

  // spillway-cp on `listen` with `extra` flags, expected to serve: its listening line.
  std::string ListeningLine(const std::string& listen, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--listen", listen, "--db", Path("topology.db")};
    args.insert(args.end(), extra.begin(), extra.end());
    ChildProcessOptions options;
    options.name = "cp";
    absl::StatusOr<std::unique_ptr<ChildProcess>> cp =
        ChildProcess::Start(SPILLWAY_CP_BIN, args, options);
    EXPECT_TRUE(cp.ok()) << cp.status();
    if (!cp.ok()) {
      return "";
    }
    absl::StatusOr<std::string> line = (*cp)->WaitForLine("listening on", kWait);
    EXPECT_TRUE(line.ok()) << line.status();
    return line.ok() ? *line : "";
  }

  // spillway-agent following a control plane nobody runs, with `extra` flags, expected to exit.
  Exited RunAgent(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--region",        "eastus2",
                                     "--listen",        "127.0.0.1:0",
                                     "--control-plane", no_control_plane_.address(),
                                     "--state-dir",     MakeDir(Path("agent"))};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunToExit(SPILLWAY_AGENT_BIN, args);
  }

  std::unique_ptr<ScopedTempDir> dir_;
  ClosedPort no_control_plane_;
};

TEST_F(SecurityStartupTest, WithoutBothTokensANonLoopbackListenIsRefused) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> refused = {
      {"0.0.0.0:0", {}},
      {"[::]:0", {}},
      {"192.0.2.1:7070", {}},
      // Names could resolve anywhere; only literal loopback addresses count.
      {"127.example.com:7070", {}},
      {"localhost:0", {}},
      // One token is not enough: the other audience would be open to the network.
      {"0.0.0.0:0", {"--admin-token-file", AdminTokenFile()}},
      {"0.0.0.0:0", {"--agent-token-file", AgentTokenFile()}},
  };
  for (const auto& [listen, extra] : refused) {
    const Exited cp = RunControlPlane(listen, extra);
    EXPECT_NE(cp.code, 0) << listen;
    EXPECT_THAT(cp.output, HasSubstr(absl::StrCat("refusing to listen on ", listen)));
    EXPECT_THAT(cp.output, HasSubstr("--admin-token-file and --agent-token-file"));
    EXPECT_THAT(cp.output, Not(HasSubstr("listening on")));
  }
}

TEST_F(SecurityStartupTest, ALoopbackListenWithoutTokensSaysItServesLoopbackOnly) {
  EXPECT_THAT(ListeningLine("127.0.0.1:0"), HasSubstr("no tokens: loopback only"));
  EXPECT_THAT(ListeningLine("[::1]:0"), HasSubstr("no tokens: loopback only"));
  // Half-configured tokens leave one audience open: the line names which.
  EXPECT_THAT(ListeningLine("127.0.0.1:0", {"--admin-token-file", AdminTokenFile()}),
              HasSubstr("no agent token: loopback only"));
  EXPECT_THAT(ListeningLine("127.0.0.1:0", {"--agent-token-file", AgentTokenFile()}),
              HasSubstr("no admin token: loopback only"));
}

TEST_F(SecurityStartupTest, StoreSqliteServesAsDbDoesAndBadOrUnreachableStoresAreRefused) {
  // --store sqlite:PATH (issue 20) is --db PATH spelt out.
  ChildProcessOptions options;
  options.name = "cp";
  absl::StatusOr<std::unique_ptr<ChildProcess>> cp = ChildProcess::Start(
      SPILLWAY_CP_BIN, {"--listen", "127.0.0.1:0", "--store", "sqlite:" + Path("stored.db")},
      options);
  ASSERT_TRUE(cp.ok()) << cp.status();
  absl::StatusOr<std::string> line = (*cp)->WaitForLine("listening on", kWait);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_THAT(*line, HasSubstr(absl::StrCat("(db ", Path("stored.db"))));
  cp->reset();

  ClosedPort closed;
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{}, "--store is required"},
      {{"--store", "sqlite:" + Path("a.db"), "--db", Path("b.db")}, "not both"},
      {{"--store", "redis://cache:6379"}, "expected sqlite:PATH or postgres://"},
      // A database that is not there: named, without its password, and nothing served.
      {{"--store", absl::StrCat("postgres://spillway:s3cret@", closed.address(), "/spillway")},
       absl::StrCat("postgres://spillway:***@", closed.address(), "/spillway: connect: ")},
  };
  for (const auto& [flags, reason] : refused) {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0"};
    args.insert(args.end(), flags.begin(), flags.end());
    const Exited exited = RunToExit(SPILLWAY_CP_BIN, args);
    EXPECT_NE(exited.code, 0) << reason;
    EXPECT_THAT(exited.output, HasSubstr(reason));
    EXPECT_THAT(exited.output, Not(HasSubstr("s3cret")));
    EXPECT_THAT(exited.output, Not(HasSubstr("listening on")));
  }
}

TEST_F(SecurityStartupTest, WithBothTokensButNoTlsANonLoopbackListenIsRefused) {
  // Tokens, and the API keys CreateKey mints, must not cross the network in clear.
  const Exited cp = RunControlPlane("0.0.0.0:0", {"--admin-token-file", AdminTokenFile(),
                                                  "--agent-token-file", AgentTokenFile()});
  EXPECT_NE(cp.code, 0);
  EXPECT_THAT(cp.output, HasSubstr("refusing to listen on 0.0.0.0:0 without TLS"));
  EXPECT_THAT(cp.output, Not(HasSubstr("listening on")));
}

TEST_F(SecurityStartupTest, WithBothTokensAndTlsAnyAddressIsServed) {
  absl::StatusOr<TlsFiles> tls = MakeSelfSignedCert(MakeDir(Path("tls")));
  ASSERT_TRUE(tls.ok()) << tls.status();
  const std::string line = ListeningLine(
      "0.0.0.0:0", {"--admin-token-file", AdminTokenFile(), "--agent-token-file", AgentTokenFile(),
                    "--tls-cert", tls->cert_file, "--tls-key", tls->key_file});
  EXPECT_THAT(line, HasSubstr("listening on 0.0.0.0:"));
  EXPECT_THAT(line, Not(HasSubstr("loopback only")));
}

TEST_F(SecurityStartupTest, UnusableTokenAndTlsFilesStopTheControlPlane) {
  ASSERT_TRUE(WriteFileAtomically(Path("empty.token"), " \n").ok());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--admin-token-file", Path("missing.token"), "--agent-token-file", AgentTokenFile()},
       Path("missing.token")},
      {{"--admin-token-file", AdminTokenFile(), "--agent-token-file", Path("empty.token")},
       Path("empty.token")},
      // Mutual TLS asked for without TLS: serving plaintext instead would be silent.
      {{"--tls-client-ca", AdminTokenFile()}, "--tls-client-ca needs --tls-cert"},
      {{"--tls-cert", Path("missing.pem"), "--tls-key", Path("missing-key.pem")},
       Path("missing.pem")},
  };
  for (const auto& [flags, reason] : cases) {
    const Exited cp = RunControlPlane("127.0.0.1:0", flags);
    EXPECT_NE(cp.code, 0) << reason;
    EXPECT_THAT(cp.output, HasSubstr(reason));
    EXPECT_THAT(cp.output, Not(HasSubstr("listening on")));
    ExpectNoTokens("spillway-cp's output", cp.output);
  }
}

TEST_F(SecurityStartupTest, AnAgentRefusesUnusableControlPlaneTlsFlags) {
  absl::StatusOr<TlsFiles> ca = MakeCertificateAuthority(dir_->path(), "ca");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<TlsFiles> client = MakeClientCert(*ca, dir_->path(), "agent");
  ASSERT_TRUE(client.ok()) << client.status();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--control-plane-ca", Path("missing-ca.pem")}, Path("missing-ca.pem")},
      {{"--control-plane-ca", ca->cert_file, "--control-plane-cert", Path("missing.pem"),
        "--control-plane-key", client->key_file},
       Path("missing.pem")},
      {{"--control-plane-ca", ca->cert_file, "--control-plane-cert", client->cert_file,
        "--control-plane-key", Path("missing-key.pem")},
       Path("missing-key.pem")},
      {{"--control-plane-ca", ca->cert_file, "--control-plane-cert", client->cert_file},
       "--control-plane-cert and --control-plane-key go together"},
      {{"--control-plane-cert", client->cert_file, "--control-plane-key", client->key_file},
       "--control-plane-cert needs --control-plane-ca"},
  };
  for (const auto& [flags, reason] : cases) {
    const Exited agent = RunAgent(flags);
    EXPECT_NE(agent.code, 0) << reason;
    EXPECT_THAT(agent.output, HasSubstr(reason));
    EXPECT_THAT(agent.output, Not(HasSubstr("listening on")));
  }
}

// --- Tokens ---------------------------------------------------------------------------------

class SecurityTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Token files as an operator writes them, with a trailing newline.
    ASSERT_TRUE(WriteFileAtomically(AdminTokenFile(), absl::StrCat(kAdminToken, "\n")).ok());
    ASSERT_TRUE(WriteFileAtomically(AgentTokenFile(), absl::StrCat(kAgentToken, "\n")).ok());
    fleet_.SetAdminCredentials(grpc::InsecureChannelCredentials(), kAdminToken);
    ASSERT_TRUE(fleet_
                    .StartControlPlane({"--admin-token-file", AdminTokenFile(),
                                        "--agent-token-file", AgentTokenFile()})
                    .ok());
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(ReferenceTopologyOnDeadEndpoints());
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 1u);
  }

  std::string AdminTokenFile() const { return fleet_.dir() + "/admin.token"; }
  std::string AgentTokenFile() const { return fleet_.dir() + "/agent.token"; }
  std::string Server() const { return absl::StrCat("127.0.0.1:", fleet_.cp_port()); }

  ControlPlaneFleet fleet_;
};

TEST_F(SecurityTokenTest, AdminCallsNeedTheOperatorToken) {
  auto admin =
      v1::Admin::NewStub(grpc::CreateChannel(Server(), grpc::InsecureChannelCredentials()));
  const std::string admin_token(kAdminToken);
  const std::vector<std::string> refused = {
      "",  // no metadata at all
      "Bearer wrong-token",
      absl::StrCat("Bearer ", kAgentToken),                // the other audience's
      admin_token,                                         // the token, no scheme
      absl::StrCat("Basic ", admin_token),                 // another scheme
      absl::StrCat("Bearer ", admin_token.substr(0, 10)),  // a prefix of it
      absl::StrCat("Bearer ", admin_token, "x"),           // it, extended
      absl::StrCat("Bearer ", admin_token.substr(1)),      // same length minus one
  };
  for (const std::string& authorization : refused) {
    for (const auto& [method, status] : CallEveryAdminMethod(*admin, authorization)) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with '" << authorization << "': " << status.error_message();
      ExpectNoTokens(absl::StrCat(method, "'s error"), status.error_message());
    }
  }
  // Nothing those calls asked for happened.
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("bearer ", kAdminToken));  // any case
  v1::GetResponse current;
  grpc::Status got = admin->Get(&context, {}, &current);
  ASSERT_TRUE(got.ok()) << got.error_message();
  EXPECT_EQ(current.version(), 1u);

  // With the token, every call is let through (some then fail on their own merits).
  for (const auto& [method, status] :
       CallEveryAdminMethod(*admin, absl::StrCat("Bearer ", kAdminToken))) {
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method << ": " << status.error_message();
  }

  // spillwayctl takes the token from --token-file or SPILLWAY_TOKEN, and without one is
  // refused by the server (exit 1), not mistaken for an unreachable one.
  const Exited with_file =
      RunToExit(SPILLWAY_CTL_BIN, {"--server", Server(), "--token-file", AdminTokenFile(), "get"});
  EXPECT_EQ(with_file.code, 0) << with_file.output;
  const Exited with_env = RunToExit(SPILLWAY_CTL_BIN, {"--server", Server(), "agents"},
                                    {absl::StrCat("SPILLWAY_TOKEN=", kAdminToken)});
  EXPECT_EQ(with_env.code, 0) << with_env.output;
  const Exited with_agent_token = RunToExit(SPILLWAY_CTL_BIN, {"--server", Server(), "agents"},
                                            {absl::StrCat("SPILLWAY_TOKEN=", kAgentToken)});
  EXPECT_EQ(with_agent_token.code, 1) << with_agent_token.output;
  ExpectNoTokens("spillwayctl's error", with_agent_token.output);
  const Exited without = RunToExit(SPILLWAY_CTL_BIN, {"--server", Server(), "agents"});
  EXPECT_EQ(without.code, 1) << without.output;

  ExpectNoTokens("spillway-cp's output", fleet_.cp_process().Output());
}

TEST_F(SecurityTokenTest, OnlyAnAgentWithTheAgentTokenGetsItsTable) {
  // Each agent in its own region, so ListAgents shows which ones the control plane accepted.
  ASSERT_TRUE(fleet_.StartAgent("no-token", "westus3").ok());
  ASSERT_TRUE(
      fleet_.StartAgent("admin-token", "swedencentral", {"--token-file", AdminTokenFile()}).ok());
  ASSERT_TRUE(fleet_.StartAgent("agent-token", "eastus2", {"--token-file", AgentTokenFile()}).ok());

  ASSERT_TRUE(fleet_.WaitForAgentVersion("agent-token", 1).ok());
  ASSERT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  // Refused for the token (16 is UNAUTHENTICATED), not for anything else.
  EXPECT_THAT(ExpectRefused(fleet_, "no-token"), HasSubstr("ended: 16 "));
  EXPECT_THAT(ExpectRefused(fleet_, "admin-token"), HasSubstr("ended: 16 "));
  EXPECT_EQ(ListedRegions(fleet_), std::multiset<std::string>{"eastus2"});

  ExpectNoTokens("spillway-cp's output", fleet_.cp_process().Output());
  for (const char* agent : {"no-token", "admin-token", "agent-token"}) {
    ExpectNoTokens(absl::StrCat(agent, "'s output"), fleet_.agent_process(agent).Output());
  }
}

// --- TLS ------------------------------------------------------------------------------------

class SecurityTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TlsFiles> server = MakeSelfSignedCert(MakeDir(fleet_.dir() + "/server"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    const std::string pki = MakeDir(fleet_.dir() + "/pki");
    absl::StatusOr<TlsFiles> client_ca = MakeCertificateAuthority(pki, "client-ca");
    ASSERT_TRUE(client_ca.ok()) << client_ca.status();
    client_ca_ = *client_ca;
    absl::StatusOr<TlsFiles> agent = MakeClientCert(client_ca_, pki, "agent");
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *agent;
    absl::StatusOr<TlsFiles> operator_cert = MakeClientCert(client_ca_, pki, "operator");
    ASSERT_TRUE(operator_cert.ok()) << operator_cert.status();
    operator_ = *operator_cert;
    // A CA nobody here trusts, and a client certificate it signed.
    absl::StatusOr<TlsFiles> rogue_ca = MakeCertificateAuthority(pki, "rogue-ca");
    ASSERT_TRUE(rogue_ca.ok()) << rogue_ca.status();
    rogue_ca_ = *rogue_ca;
    absl::StatusOr<TlsFiles> rogue = MakeClientCert(rogue_ca_, pki, "rogue");
    ASSERT_TRUE(rogue.ok()) << rogue.status();
    rogue_ = *rogue;
  }

  std::string Server() const { return absl::StrCat("127.0.0.1:", fleet_.cp_port()); }

  static std::string Pem(const std::string& path) {
    absl::StatusOr<std::string> pem = ReadFile(path);
    EXPECT_TRUE(pem.ok()) << pem.status();
    return pem.ok() ? *pem : "";
  }

  // TLS credentials trusting the control plane's certificate, presenting `client` if given.
  std::shared_ptr<grpc::ChannelCredentials> Credentials(const TlsFiles* client = nullptr) const {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Pem(server_.cert_file);
    if (client != nullptr) {
      ssl.pem_cert_chain = Pem(client->cert_file);
      ssl.pem_private_key = Pem(client->key_file);
    }
    return grpc::SslCredentials(ssl);
  }

  // ListAgents over a channel with `credentials`.
  grpc::Status ListAgentsWith(std::shared_ptr<grpc::ChannelCredentials> credentials) const {
    auto admin = v1::Admin::NewStub(grpc::CreateChannel(Server(), std::move(credentials)));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListAgentsResponse response;
    return admin->ListAgents(&context, {}, &response);
  }

  Exited Ctl(std::vector<std::string> flags) const {
    std::vector<std::string> args = {"--server", Server()};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("agents");
    return RunToExit(SPILLWAY_CTL_BIN, args);
  }

  ControlPlaneFleet fleet_;
  TlsFiles server_;
  TlsFiles client_ca_;
  TlsFiles agent_;
  TlsFiles operator_;
  TlsFiles rogue_ca_;
  TlsFiles rogue_;
};

TEST_F(SecurityTlsTest, OverTlsOnlyClientsThatVerifyTheControlPlaneGetIn) {
  fleet_.SetAdminCredentials(Credentials(), "");
  ASSERT_TRUE(
      fleet_.StartControlPlane({"--tls-cert", server_.cert_file, "--tls-key", server_.key_file})
          .ok());
  absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(ReferenceTopologyOnDeadEndpoints());
  ASSERT_TRUE(applied.ok()) << applied.status();

  ASSERT_TRUE(fleet_.StartAgent("tls", "eastus2", {"--control-plane-ca", server_.cert_file}).ok());
  ASSERT_TRUE(fleet_.StartAgent("plaintext", "westus3").ok());
  ASSERT_TRUE(
      fleet_.StartAgent("wrong-ca", "swedencentral", {"--control-plane-ca", rogue_ca_.cert_file})
          .ok());
  EXPECT_TRUE(fleet_.WaitForAgentVersion("tls", 1).ok());
  EXPECT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  ExpectRefused(fleet_, "plaintext");
  ExpectRefused(fleet_, "wrong-ca");
  EXPECT_EQ(ListedRegions(fleet_), std::multiset<std::string>{"eastus2"});

  const Exited verified = Ctl({"--tls-ca", server_.cert_file});
  EXPECT_EQ(verified.code, 0) << verified.output;
  EXPECT_THAT(verified.output, HasSubstr("eastus2"));
  const Exited plaintext = Ctl({});
  EXPECT_NE(plaintext.code, 0) << plaintext.output;
  const Exited wrong_ca = Ctl({"--tls-ca", rogue_ca_.cert_file});
  EXPECT_NE(wrong_ca.code, 0) << wrong_ca.output;
  EXPECT_FALSE(ListAgentsWith(grpc::InsecureChannelCredentials()).ok());
}

TEST_F(SecurityTlsTest, WithAClientCaOnlyCertificatesItSignedGetIn) {
  fleet_.SetAdminCredentials(Credentials(&operator_), "");
  ASSERT_TRUE(fleet_
                  .StartControlPlane({"--tls-cert", server_.cert_file, "--tls-key",
                                      server_.key_file, "--tls-client-ca", client_ca_.cert_file})
                  .ok());
  absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(ReferenceTopologyOnDeadEndpoints());
  ASSERT_TRUE(applied.ok()) << applied.status();

  ASSERT_TRUE(fleet_
                  .StartAgent("mtls", "eastus2",
                              {"--control-plane-ca", server_.cert_file, "--control-plane-cert",
                               agent_.cert_file, "--control-plane-key", agent_.key_file})
                  .ok());
  ASSERT_TRUE(
      fleet_.StartAgent("no-cert", "westus3", {"--control-plane-ca", server_.cert_file}).ok());
  ASSERT_TRUE(fleet_
                  .StartAgent("rogue-cert", "swedencentral",
                              {"--control-plane-ca", server_.cert_file, "--control-plane-cert",
                               rogue_.cert_file, "--control-plane-key", rogue_.key_file})
                  .ok());
  EXPECT_TRUE(fleet_.WaitForAgentVersion("mtls", 1).ok());
  EXPECT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  ExpectRefused(fleet_, "no-cert");
  ExpectRefused(fleet_, "rogue-cert");
  EXPECT_EQ(ListedRegions(fleet_), std::multiset<std::string>{"eastus2"});

  const Exited with_cert = Ctl({"--tls-ca", server_.cert_file, "--tls-cert", operator_.cert_file,
                                "--tls-key", operator_.key_file});
  EXPECT_EQ(with_cert.code, 0) << with_cert.output;
  EXPECT_THAT(with_cert.output, HasSubstr("eastus2"));
  const Exited without_cert = Ctl({"--tls-ca", server_.cert_file});
  EXPECT_NE(without_cert.code, 0) << without_cert.output;
  const Exited rogue_cert = Ctl({"--tls-ca", server_.cert_file, "--tls-cert", rogue_.cert_file,
                                 "--tls-key", rogue_.key_file});
  EXPECT_NE(rogue_cert.code, 0) << rogue_cert.output;
  EXPECT_FALSE(ListAgentsWith(Credentials()).ok());
  EXPECT_FALSE(ListAgentsWith(Credentials(&rogue_)).ok());
  EXPECT_TRUE(ListAgentsWith(Credentials(&operator_)).ok());
}

// --- Reconnects -----------------------------------------------------------------------------

class SecurityReconnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomically(AdminTokenFile(), kAdminToken).ok());
    ASSERT_TRUE(WriteFileAtomically(AgentTokenFile(), kAgentToken).ok());
    fleet_.SetAdminCredentials(grpc::InsecureChannelCredentials(), kAdminToken);
    ASSERT_TRUE(fleet_
                    .StartControlPlane({"--admin-token-file", AdminTokenFile(),
                                        "--agent-token-file", AgentTokenFile()})
                    .ok());
    topology_ = ReferenceTopologyOnDeadEndpoints();
    ApplyVersion(1);
    ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2", {"--token-file", AgentTokenFile()}).ok());
    ASSERT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  }

  std::string AdminTokenFile() const { return fleet_.dir() + "/admin.token"; }
  std::string AgentTokenFile() const { return fleet_.dir() + "/agent.token"; }

  // Applies a change that makes `version`. Used after a reconnect as a barrier: the stream
  // is ordered, so once the agent serves the new version anything the control plane sent it
  // on reconnecting has arrived too.
  void ApplyVersion(uint64_t version) {
    topology_.mutable_stamps(0)->set_description(absl::StrCat("change ", version));
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(topology_);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), version);
  }

  ControlPlaneFleet fleet_;
  v1::Topology topology_;
};

TEST_F(SecurityReconnectTest, AnAgentReconnectingToARestartedControlPlaneIsNotResentItsTable) {
  fleet_.KillControlPlane();
  ASSERT_TRUE(fleet_.StartControlPlane().ok());  // same port, database and token files
  // The agent reconnects on its own, says it has version 1, and is listed with it: by then
  // the control plane has queued whatever it sends on connecting.
  EXPECT_TRUE(fleet_.cp_process().WaitForLine("has version 1)", absl::Seconds(30)).ok());
  ASSERT_TRUE(fleet_.WaitForAcks(1, 1, absl::Seconds(30)).ok());
  ApplyVersion(2);
  ASSERT_TRUE(fleet_.WaitForAgentVersion("eus2", 2).ok());
  // /status shows the table before its log line is written: wait for the line as well.
  ASSERT_TRUE(fleet_.agent_process("eus2").WaitForLine(AppliedLine(2), kWait).ok());

  const std::string output = fleet_.agent_process("eus2").Output();
  EXPECT_THAT(output, HasSubstr(kStreamEnded)) << "the agent never lost its stream";
  EXPECT_EQ(Occurrences(output, AppliedLine(1)), 1) << output;
  EXPECT_EQ(Occurrences(output, AppliedLine(2)), 1) << output;
}

TEST_F(SecurityReconnectTest, ARestartedAgentIsNotResentTheTableItPersisted) {
  fleet_.KillAgent("eus2");
  // Gone for the control plane too, so "connected" below can only mean the new process.
  ASSERT_TRUE(fleet_.cp_process().WaitForLine("(eastus2) disconnected", kWait).ok());
  ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2", {"--token-file", AgentTokenFile()}).ok());
  EXPECT_TRUE(fleet_.agent_process("eus2")
                  .WaitForLine("serving persisted routing table version 1 ", kWait)
                  .ok());
  EXPECT_TRUE(fleet_.cp_process().WaitForLine("has version 1)", kWait).ok());
  ASSERT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  ApplyVersion(2);
  ASSERT_TRUE(fleet_.WaitForAgentVersion("eus2", 2).ok());
  // /status shows the table before its log line is written: wait for the line as well.
  ASSERT_TRUE(fleet_.agent_process("eus2").WaitForLine(AppliedLine(2), kWait).ok());

  const std::string output = fleet_.agent_process("eus2").Output();
  EXPECT_EQ(Occurrences(output, AppliedLine(1)), 0) << output;
  EXPECT_EQ(Occurrences(output, AppliedLine(2)), 1) << output;
}

}  // namespace
}  // namespace spillway::test
