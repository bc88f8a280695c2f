// What the agent sends upstream: its own backend credentials (never the client's), the
// deployment name in the path or the v1 body, over TLS with verification when asked; and
// what it passes back: the backend's headers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fstream>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/tls_files.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

const std::string kTopology = SingleBackendTopology({"gpt-4o-2024-08-06"});

TEST(AgentUpstream, RouteNameBecomesTheDeploymentAndTheBackendKeyIsUsed) {
  AgentFleet fleet;
  ASSERT_TRUE(
      fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o", "--region", "eastus2"})
          .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  auto client = fleet.AgentClient();
  // The client's own key must not reach the backend (the mock would answer 401).
  absl::StatusOr<HttpResponse> r =
      client->Send("POST", ChatTarget("gpt-4o"), {{"api-key", "client-key"}}, ChatBody());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->body, HasSubstr("\"chat.completion\""));
  EXPECT_EQ(r->Header("x-spillway-backend"), "a/gpt-4o-2024-08-06");
  // The backend's own headers pass through.
  EXPECT_TRUE(r->Header("x-request-id").has_value());
  EXPECT_TRUE(r->Header("apim-request-id").has_value());
  EXPECT_EQ(r->Header("x-ms-region"), "eastus2");
  EXPECT_TRUE(r->Header("x-ratelimit-remaining-tokens").has_value());
}

TEST(AgentUpstream, V1SurfaceRoutesByBodyModel) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> r = client->Send(
      "POST", "/openai/v1/chat/completions", {},
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":3})");
  ASSERT_TRUE(r.ok()) << r.status();
  // The mock knows only "gpt-4o-2024-08-06": a 200 proves the body's model was rewritten.
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->Header("x-spillway-backend"), "a/gpt-4o-2024-08-06");
}

TEST(AgentUpstream, HttpsBackendsAreVerified) {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<TlsFiles> tls = MakeSelfSignedCert(dir->path());
  ASSERT_TRUE(tls.ok()) << tls.status();
  AgentFleet fleet;
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o", "--tls-cert",
                                 tls->cert_file, "--tls-key", tls->key_file})
                  .ok());
  // The fixture would expand {a} to http://; this backend speaks https.
  const std::string yaml = absl::StrReplaceAll(
      kTopology, {{"{a}", "https://127.0.0.1:" + std::to_string(fleet.mock("a").port())}});
  ASSERT_TRUE(fleet.StartAgent(yaml, "eastus2", {"--upstream-ca-file", tls->cert_file}).ok());
  absl::StatusOr<HttpResponse> r =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->body;

  // Without the CA, the self-signed backend is refused: no silent downgrade.
  AgentFleet untrusting;
  ASSERT_TRUE(untrusting
                  .AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o", "--tls-cert",
                                 tls->cert_file, "--tls-key", tls->key_file})
                  .ok());
  const std::string yaml2 = absl::StrReplaceAll(
      kTopology, {{"{a}", "https://127.0.0.1:" + std::to_string(untrusting.mock("a").port())}});
  ASSERT_TRUE(untrusting.StartAgent(yaml2, "eastus2").ok());
  absl::StatusOr<HttpResponse> refused =
      untrusting.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 502);
  EXPECT_THAT(refused->body, HasSubstr("TLS handshake"));
}

TEST(AgentUpstream, HealthAndReadiness) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> health = client->Send("GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  absl::StatusOr<HttpResponse> ready = client->Send("GET", "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);
}

TEST(AgentUpstream, MissingBackendKeyMakesTheBackendUnusableNotTheAgent) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o"}).ok());
  const std::string yaml =
      absl::StrReplaceAll(kTopology, {{"AGENT_TEST_BACKEND_KEY", "NOT_SET_ANYWHERE"}});
  ASSERT_TRUE(fleet.StartAgent(yaml, "eastus2").ok());
  EXPECT_TRUE(fleet.agent().WaitForLine("NOT_SET_ANYWHERE is not set", absl::Seconds(5)).ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> ready = client->Send("GET", "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503);
  absl::StatusOr<HttpResponse> r = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
}

TEST(AgentUpstream, BackendKeyFromAFile) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o"}).ok());
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok());
  const std::string key_file = dir->path() + "/backend.key";
  std::ofstream(key_file) << kBackendKey << "\n";  // operators' files end with a newline
  const std::string yaml = absl::StrReplaceAll(
      kTopology, {{"api_key_env: AGENT_TEST_BACKEND_KEY", "api_key_file: " + key_file}});
  ASSERT_TRUE(fleet.StartAgent(yaml, "eastus2").ok());
  absl::StatusOr<HttpResponse> r =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->body;
}

// Issue 15, item 8: a key file outside --secrets-dir, or one that is not a regular file, makes
// its backend unusable (logged, 503) without the agent reading it, blocking or going down.
TEST(AgentUpstream, BackendKeyFilesAreConfinedAndMustBeRegularFiles) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o"}).ok());
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok());
  const std::string secrets = dir->path() + "/secrets";
  ASSERT_EQ(::mkdir(secrets.c_str(), 0700), 0);
  const std::string outside = dir->path() + "/backend.key";
  std::ofstream(outside) << kBackendKey << "\n";
  const std::string fifo = secrets + "/fifo.key";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string yaml = absl::StrReplaceAll(
      kTopology, {{"api_key_env: AGENT_TEST_BACKEND_KEY", "api_key_file: " + outside}});
  ASSERT_TRUE(fleet.StartAgent(yaml, "eastus2", {"--secrets-dir", secrets}).ok());
  EXPECT_TRUE(fleet.agent().WaitForLine("outside --secrets-dir", absl::Seconds(5)).ok());
  absl::StatusOr<HttpResponse> r =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_TRUE(MockStatsJson(fleet, "a").at("log").as_array().empty());

  AgentFleet fifo_fleet;
  ASSERT_TRUE(fifo_fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o"}).ok());
  const std::string fifo_yaml = absl::StrReplaceAll(
      kTopology, {{"api_key_env: AGENT_TEST_BACKEND_KEY", "api_key_file: " + fifo}});
  ASSERT_TRUE(fifo_fleet.StartAgent(fifo_yaml, "eastus2", {"--secrets-dir", secrets}).ok());
  EXPECT_TRUE(fifo_fleet.agent().WaitForLine("is not a regular file", absl::Seconds(5)).ok());
  absl::StatusOr<HttpResponse> ready = fifo_fleet.AgentClient()->Send("GET", "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 503);
}

TEST(AgentUpstream, AccessLogHasOneJsonLinePerRequestAndNoKeys) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o-2024-08-06:model=gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> ok =
      client->Send("POST", ChatTarget("gpt-4o"), {{"api-key", "client-secret-key"}}, ChatBody(5));
  ASSERT_TRUE(ok.ok() && ok->status == 200);
  absl::StatusOr<HttpResponse> missing = client->Send("POST", ChatTarget("nope"), {}, ChatBody());
  ASSERT_TRUE(missing.ok() && missing->status == 404);
  absl::StatusOr<std::string> log =
      WaitForFileContaining(fleet.temp_dir() + "/access.log", "\"status\":404", absl::Seconds(5));
  ASSERT_TRUE(log.ok()) << log.status();
  std::vector<std::string> lines = absl::StrSplit(*log, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  boost::json::object first = boost::json::parse(lines[0]).as_object();
  EXPECT_EQ(first.at("route").as_string(), "gpt-4o");
  EXPECT_EQ(first.at("backend").as_string(), "a/gpt-4o-2024-08-06");
  EXPECT_EQ(first.at("status").as_int64(), 200);
  EXPECT_EQ(first.at("attempts").as_int64(), 1);
  EXPECT_EQ(first.at("completion_tokens").as_int64(), 5);
  EXPECT_GT(first.at("prompt_tokens").as_int64(), 0);
  EXPECT_GE(first.at("latency_ms").to_number<double>(), 0.0);
  boost::json::object second = boost::json::parse(lines[1]).as_object();
  EXPECT_EQ(second.at("status").as_int64(), 404);
  EXPECT_EQ(second.at("route").as_string(), "nope");
  // Secrets never reach the log.
  EXPECT_THAT(*log, ::testing::Not(HasSubstr("client-secret-key")));
  EXPECT_THAT(*log, ::testing::Not(HasSubstr(kBackendKey)));
  EXPECT_THAT(fleet.agent().Output(), ::testing::Not(HasSubstr(kBackendKey)));
}

}  // namespace
}  // namespace spillway::test
