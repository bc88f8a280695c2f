// Microsoft Entra ID auth to backends, end to end: the agent gets tokens from the mock's IMDS,
// App Service and client-credentials endpoints, sends them as Bearer, caches them, refreshes
// them before they expire with one fetch at a time, and skips a backend it cannot get a
// token for, saying why, without ever showing a token or a secret.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/closed_port.h"
#include "tests/support/tls_files.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Every token the mock issues starts with this; none may reach a log or an answer.
constexpr char kTokenPrefix[] = "mock-entra.";
constexpr char kSecret[] = "s3cr3t~+/&=value";  // needs form encoding
constexpr char kSecretEnv[] = "ENTRA_TEST_CLIENT_SECRET";

std::string EntraTopology(const std::string& auth) {
  return absl::StrReplaceAll(SingleBackendTopology({"chat"}),
                             {{"auth: { api_key_env: AGENT_TEST_BACKEND_KEY }", auth}});
}

constexpr char kManagedIdentity[] = "auth: { managed_identity: true }";

// Tier 1 on instance a (Entra ID, `auth`), tier 2 on instance b (api-key).
std::string TwoTierTopology(const std::string& auth) {
  return absl::StrCat(R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", insecure_http: true, )",
                      auth, R"( }
  - { name: b, region: eastus2, subscription: s, endpoint: "{b}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
deployments:
  - { instance: a, name: chat, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
  - { instance: b, name: chat, model: gpt-4o, version: "1", sku: Standard, capacity: 100 }
pools:
  - { name: first, members: [ { deployment: a/chat } ] }
  - { name: second, members: [ { deployment: b/chat } ] }
routes:
  - { name: gpt-4o, stamp: us, tiers: [ first, second ] }
)");
}

std::string ClientCredentialsAuth(const std::string& secret_source) {
  return absl::StrCat("auth: { client_credentials: { tenant_id: contoso, client_id: app-1, ",
                      secret_source, " } }");
}

// The mock's "entra" stats.
boost::json::object Entra(AgentFleet& fleet, const std::string& mock) {
  absl::StatusOr<std::string> stats = fleet.MockStats(mock);
  EXPECT_TRUE(stats.ok()) << stats.status();
  if (!stats.ok()) {
    return {};
  }
  return boost::json::parse(*stats).as_object().at("entra").as_object();
}

int64_t Issued(AgentFleet& fleet, const std::string& mock, const char* grant) {
  return Entra(fleet, mock).at("tokens_issued").as_object().at(grant).as_int64();
}

int64_t RejectedBearer(AgentFleet& fleet, const std::string& mock) {
  const boost::json::object rejected = Entra(fleet, mock).at("bearer_rejected").as_object();
  return rejected.at("expired").as_int64() + rejected.at("invalid").as_int64();
}

// The /status entry of backend `id`.
boost::json::object BackendStatus(AgentFleet& fleet, const std::string& id) {
  absl::StatusOr<HttpResponse> status = fleet.AgentClient()->Send("GET", "/status");
  EXPECT_TRUE(status.ok()) << status.status();
  if (status.ok()) {
    const boost::json::value parsed = boost::json::parse(status->body);
    for (const boost::json::value& backend : parsed.as_object().at("backends").as_array()) {
      if (backend.as_object().at("id").as_string() == id) {
        return backend.as_object();
      }
    }
  }
  ADD_FAILURE() << "no backend " << id << " in /status";
  return {};
}

HttpResponse Chat(HttpClient& client) {
  absl::StatusOr<HttpResponse> r = client.Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : HttpResponse{};
}

std::string AccessLog(AgentFleet& fleet, absl::string_view expect) {
  absl::StatusOr<std::string> log =
      WaitForFileContaining(fleet.temp_dir() + "/access.log", expect, absl::Seconds(30));
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? *log : "";
}

TEST(AgentEntra, ManagedIdentityTokenIsFetchedOnceCachedAndSurvivesAReload) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "chat"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(EntraTopology(kManagedIdentity), "eastus2",
                              {"--imds-endpoint", fleet.MockEndpoint("a")})
                  .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 25; ++i) {
    HttpResponse r = Chat(*client);
    // The mock requires auth and the agent has no api-key for it: a 200 means Bearer worked.
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(Issued(fleet, "a", "managed_identity"), 1) << "the token is cached";
  EXPECT_EQ(RejectedBearer(fleet, "a"), 0);
  boost::json::object status = BackendStatus(fleet, "a/chat");
  const boost::json::object& entra = status.at("entra_token").as_object();
  EXPECT_EQ(entra.at("state").as_string(), "valid");
  EXPECT_EQ(entra.at("credential").as_string(), "managed identity (system-assigned)");
  EXPECT_EQ(entra.at("fetches").as_int64(), 1);
  EXPECT_GT(entra.at("usable_for_ms").as_int64(), 3'000'000);

  // A new routing table keeps the credential's token: no new fetch.
  ASSERT_TRUE(fleet.agent().Signal(SIGHUP).ok());
  ASSERT_TRUE(fleet.agent().WaitForLine("table version 2", absl::Seconds(10)).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Chat(*client).status, 200);
  }
  EXPECT_EQ(Issued(fleet, "a", "managed_identity"), 1);

  const std::string log = AccessLog(fleet, "\"status\":200");
  EXPECT_THAT(log, Not(HasSubstr(kTokenPrefix)));
  EXPECT_THAT(fleet.agent().Output(), Not(HasSubstr(kTokenPrefix)));
  EXPECT_THAT(fleet.agent().Output(), HasSubstr("Microsoft Entra ID token for managed identity"));
}

TEST(AgentEntra, ConcurrentRequestsAtStartShareOneFetch) {
  AgentFleet fleet;
  // Each token answer takes 3 s, so the requests below all find the first fetch in flight
  // even when a loaded machine is slow to start their threads.
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "chat", "--token-delay-ms", "3000"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(EntraTopology(kManagedIdentity), "eastus2",
                              {"--imds-endpoint", fleet.MockEndpoint("a"), "--threads", "2"})
                  .ok());
  constexpr int kClients = 24;
  std::vector<int> statuses(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&fleet, &statuses, i] {
      auto client = fleet.AgentClient();
      absl::StatusOr<HttpResponse> r =
          client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(), absl::Seconds(60));
      statuses[i] = r.ok() ? r->status : -1;
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_THAT(statuses, ::testing::Each(200));
  EXPECT_EQ(Issued(fleet, "a", "managed_identity"), 1) << "one fetch, never one per request";
}

TEST(AgentEntra, TokensAreRefreshedBeforeTheyExpire) {
  AgentFleet fleet;
  // 20 s tokens: refreshed when 2 s remain, no longer sent when 1 s remains. The agent keeps
  // 5 % of a lifetime for the request in transit; with 5 s tokens that was 250 ms, which a
  // loaded machine (ctest -j2 on two cores) can spend between the agent and the mock.
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "chat", "--token-lifetime-s", "20"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(EntraTopology(kManagedIdentity), "eastus2",
                              {"--imds-endpoint", fleet.MockEndpoint("a")})
                  .ok());
  auto client = fleet.AgentClient();
  int requests = 0;
  int after_refresh = 0;
  // The refresh is due after 18 s; the rest is a guard.
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  // Keep traffic going until a refresh happened and the new token served requests.
  while (after_refresh < 20 && absl::Now() < deadline) {
    HttpResponse r = Chat(*client);
    ASSERT_EQ(r.status, 200) << "request " << requests << ": " << r.body;
    ++requests;
    if (Issued(fleet, "a", "managed_identity") >= 2) {
      ++after_refresh;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(after_refresh, 20) << "no refresh within 90 s";
  EXPECT_EQ(RejectedBearer(fleet, "a"), 0) << "no request ever carried an expired token";
  EXPECT_GE(BackendStatus(fleet, "a/chat").at("entra_token").as_object().at("fetches").as_int64(),
            2);
}

TEST(AgentEntra, UserAssignedIdentityAndAppServiceEndpoint) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "chat", "--managed-identity-client-ids", "uami-1",
                                 "--identity-header", "identity-header-secret"})
                  .ok());
  const ClosedPort nowhere;
  // IMDS points nowhere: with IDENTITY_ENDPOINT/IDENTITY_HEADER set, it must not be used.
  fleet.agent_env = {absl::StrCat("IDENTITY_ENDPOINT=", fleet.MockEndpoint("a"), "/msi/token"),
                     "IDENTITY_HEADER=identity-header-secret"};
  ASSERT_TRUE(fleet
                  .StartAgent(EntraTopology("auth: { managed_identity: true, "
                                            "managed_identity_client_id: uami-1 }"),
                              "eastus2", {"--imds-endpoint", nowhere.url()})
                  .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = Chat(*client);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(Issued(fleet, "a", "app_service_identity"), 1);
  EXPECT_EQ(Issued(fleet, "a", "managed_identity"), 0);
  EXPECT_EQ(BackendStatus(fleet, "a/chat").at("entra_token").as_object().at("credential"),
            "managed identity (client id uami-1)");
  EXPECT_THAT(fleet.agent().Output(), Not(HasSubstr("identity-header-secret")));
}

TEST(AgentEntra, ClientCredentialsWithTheSecretInTheEnvironment) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "chat", "--entra-clients",
                                 absl::StrCat("contoso:app-1:", kSecret)})
                  .ok());
  fleet.agent_env = {absl::StrCat(kSecretEnv, "=", kSecret)};
  ASSERT_TRUE(fleet
                  .StartAgent(EntraTopology(ClientCredentialsAuth(
                                  absl::StrCat("client_secret_env: ", kSecretEnv))),
                              "eastus2", {"--entra-authority", fleet.MockEndpoint("a")})
                  .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 20; ++i) {
    HttpResponse r = Chat(*client);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(Issued(fleet, "a", "client_credentials"), 1);
  EXPECT_EQ(BackendStatus(fleet, "a/chat").at("entra_token").as_object().at("credential"),
            "client credentials (tenant contoso, client app-1)");
  const std::string log = AccessLog(fleet, "\"status\":200");
  for (const std::string& output : {log, fleet.agent().Output()}) {
    EXPECT_THAT(output, Not(HasSubstr(kSecret)));
    EXPECT_THAT(output, Not(HasSubstr(kTokenPrefix)));
  }
}

TEST(AgentEntra, ClientCredentialsWithASecretFileOverHttps) {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<TlsFiles> tls = MakeSelfSignedCert(dir->path());
  ASSERT_TRUE(tls.ok()) << tls.status();
  const std::string secret_file = dir->path() + "/client.secret";
  std::ofstream(secret_file) << kSecret << "\n";
  AgentFleet fleet;
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "chat", "--entra-clients",
                                 absl::StrCat("contoso:app-1:", kSecret), "--tls-cert",
                                 tls->cert_file, "--tls-key", tls->key_file})
                  .ok());
  const std::string https = absl::StrCat("https://127.0.0.1:", fleet.mock("a").port());
  const std::string yaml = absl::StrReplaceAll(
      EntraTopology(ClientCredentialsAuth("client_secret_file: " + secret_file)), {{"{a}", https}});
  ASSERT_TRUE(fleet
                  .StartAgent(yaml, "eastus2",
                              {"--entra-authority", https, "--upstream-ca-file", tls->cert_file})
                  .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 10; ++i) {
    HttpResponse r = Chat(*client);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  HttpClient mock_client("127.0.0.1", fleet.mock("a").port(), /*tls=*/true, tls->cert_file);
  absl::StatusOr<HttpResponse> stats = mock_client.Send("GET", "/mock/stats");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(stats->body, HasSubstr("\"client_credentials\":1}"));
}

TEST(AgentEntra, AWrongSecretSpillsToTheNextTierSaysWhyAndRecoversWhenRotated) {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok());
  const std::string secret_file = dir->path() + "/client.secret";
  constexpr char kWrongSecret[] = "wrong-secret-value";
  std::ofstream(secret_file) << kWrongSecret;
  AgentFleet fleet;
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "chat", "--entra-clients",
                                 absl::StrCat("contoso:app-1:", kSecret)})
                  .ok());
  ASSERT_TRUE(fleet.AddMock("b", {"--deployments", "chat"}).ok());
  ASSERT_TRUE(
      fleet
          .StartAgent(TwoTierTopology(ClientCredentialsAuth("client_secret_file: " + secret_file)),
                      "eastus2", {"--entra-authority", fleet.MockEndpoint("a")})
          .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = Chat(*client);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("x-spillway-backend"), "b/chat");
    EXPECT_EQ(r.Header("x-spillway-attempts"), "1") << "no request was sent without a token";
  }
  boost::json::object entra = BackendStatus(fleet, "a/chat").at("entra_token").as_object();
  EXPECT_EQ(entra.at("state").as_string(), "failing");
  const std::string reason(entra.at("last_error").as_string());
  EXPECT_THAT(reason, HasSubstr("answered 401: invalid_client: AADSTS7000215"));
  EXPECT_EQ(Issued(fleet, "a", "client_credentials"), 0);
  EXPECT_GE(Entra(fleet, "a").at("token_requests_refused").as_int64(), 1);

  // The operator fixes the secret file: a retry (with backoff) picks it up.
  std::ofstream(secret_file, std::ios::trunc) << kSecret;
  bool recovered = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(45);
  while (!recovered && absl::Now() < deadline) {
    HttpResponse r = Chat(*client);
    ASSERT_EQ(r.status, 200) << r.body;
    recovered = r.Header("x-spillway-backend") == "a/chat";
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(recovered) << "the rotated secret was never used";
  EXPECT_EQ(Issued(fleet, "a", "client_credentials"), 1);

  absl::StatusOr<HttpResponse> status = client->Send("GET", "/status");
  ASSERT_TRUE(status.ok());
  const std::string log = AccessLog(fleet, "a/chat");
  for (const std::string& output : {log, fleet.agent().Output(), status->body}) {
    EXPECT_THAT(output, Not(HasSubstr(kSecret)));
    EXPECT_THAT(output, Not(HasSubstr(kWrongSecret)));
    EXPECT_THAT(output, Not(HasSubstr(kTokenPrefix)));
  }
}

TEST(AgentEntra, NoTokenAndNoOtherBackendFailsFastWithTheReason) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "chat"}).ok());
  // Nothing listens there: every fetch fails at once.
  const ClosedPort imds;
  ASSERT_TRUE(
      fleet.StartAgent(EntraTopology(kManagedIdentity), "eastus2", {"--imds-endpoint", imds.url()})
          .ok());
  auto client = fleet.AgentClient();
  for (int i = 0; i < 3; ++i) {
    // 30 s: a guard against a request left hanging, not a measure of how fast it fails.
    absl::StatusOr<HttpResponse> r =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(), absl::Seconds(30));
    ASSERT_TRUE(r.ok()) << r.status() << " (a request must never hang for a token)";
    EXPECT_EQ(r->status, 502) << r->body;
    EXPECT_THAT(r->body, HasSubstr("no Microsoft Entra ID token for managed identity"));
    EXPECT_THAT(r->body, HasSubstr("cannot connect to " + imds.url()));
  }
  EXPECT_THAT(AccessLog(fleet, "no Microsoft Entra ID token"), HasSubstr("\"status\":502"));
  absl::StatusOr<std::string> stats = fleet.MockStats("a");
  ASSERT_TRUE(stats.ok());
  EXPECT_THAT(*stats, HasSubstr("\"deployments\":{}")) << "nothing was sent without a token";
}

TEST(AgentEntra, AnUnreadableSecretMakesTheBackendUnusable) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "chat"}).ok());
  ASSERT_TRUE(fleet.AddMock("b", {"--deployments", "chat"}).ok());
  ASSERT_TRUE(fleet
                  .StartAgent(TwoTierTopology(ClientCredentialsAuth(
                                  "client_secret_env: ENTRA_TEST_SECRET_NOT_SET")),
                              "eastus2", {"--entra-authority", fleet.MockEndpoint("a")})
                  .ok());
  EXPECT_TRUE(
      fleet.agent().WaitForLine("ENTRA_TEST_SECRET_NOT_SET is not set", absl::Seconds(30)).ok());
  HttpResponse r = Chat(*fleet.AgentClient());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("x-spillway-backend"), "b/chat");
  EXPECT_EQ(BackendStatus(fleet, "a/chat").at("state").as_string(), "unusable");
}

}  // namespace
}  // namespace spillway::test
