// Starts a small fleet for an agent test: mock backends on free ports, a topology YAML that
// points at them, and spillway-agent in standalone mode. Everything dies with the fixture.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/chat_target.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/mock_aoai_process.h"
#include "tests/support/port_hold.h"
#include "tests/support/temp_dir.h"

namespace spillway::test {

// The key the backend mocks accept; the agent reads it from this environment variable.
inline constexpr char kBackendKey[] = "backend-secret";
inline constexpr char kBackendKeyEnv[] = "AGENT_TEST_BACKEND_KEY";
// A tenant key and its SHA-256, for topologies with tenants.
inline constexpr char kTenantKey[] = "test";
inline constexpr char kTenantKeySha256[] =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

class AgentFleet {
 public:
  // Starts a mock named `name` (its deployments etc. in `args`; the key is added here).
  absl::Status AddMock(const std::string& name, std::vector<std::string> args);
  MockAoaiProcess& mock(const std::string& name) { return *mocks_.at(name); }
  // Kills mock `name` and waits until it is gone. Its port stays held (bound, never listening)
  // for the fleet's life, so the agent's connects there are refused: once freed, the port
  // could go to another test's process (ctest -j2) or to one of the agent's own outgoing
  // connections, which would then reach something other than a dead backend.
  absl::Status KillMock(const std::string& name);
  // "http://127.0.0.1:<port>" of a mock.
  std::string MockEndpoint(const std::string& name) { return "http://" + mock(name).address(); }

  // Writes `yaml` (with every "{name}" replaced by that mock's endpoint) and starts the agent.
  absl::Status StartAgent(const std::string& yaml, const std::string& region,
                          std::vector<std::string> extra_args = {});
  ChildProcess& agent() { return *agent_; }
  int agent_port() const { return agent_port_; }
  const std::string& topology_path() const { return topology_path_; }
  std::string temp_dir() const { return dir_->path(); }
  // More KEY=VALUE environment entries for the agent started next (e.g. client secrets).
  std::vector<std::string> agent_env;

  // A fresh client for the agent, or for a mock.
  std::unique_ptr<HttpClient> AgentClient() const;
  std::unique_ptr<HttpClient> MockClient(const std::string& name);

  // POST /mock/faults on a mock; DELETE when `fault_json` is empty.
  absl::Status SetFault(const std::string& name, const std::string& fault_json);
  // GET /mock/stats on a mock.
  absl::StatusOr<std::string> MockStats(const std::string& name);

 private:
  absl::Status EnsureDir();
  std::optional<ScopedTempDir> dir_;
  std::map<std::string, std::unique_ptr<MockAoaiProcess>> mocks_;
  std::vector<PortHold> killed_mock_ports_;
  std::unique_ptr<ChildProcess> agent_;
  int agent_port_ = 0;
  std::string topology_path_;
};

// One backend ("a") with a chat route (gpt-4o) and an embeddings route on it: answers that
// cannot be mistaken for one another, sharing the agent's pooled connections to "a".
std::string ChatAndEmbeddingsTopology();

inline constexpr char kEmbeddingsTarget[] =
    "/openai/deployments/embeddings/embeddings?api-version=2024-10-21";

// The start of a topology: one stamp "us", one region (eastus2), instance "a" at mock "{a}".
inline constexpr char kOneInstanceYaml[] = R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
)";

// The start of a topology: one stamp "us", one region (eastus2), instances "a" and "b" at
// mocks "{a}" and "{b}". A test appends its deployments, pools, routes and tenants.
inline constexpr char kTwoInstancesYaml[] = R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
  - { name: b, region: eastus2, subscription: s, endpoint: "{b}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
)";

// One stamp, one region (eastus2), one instance "a" at mock "{a}" with the given
// deployments (model gpt-4o unless "name=model"), one pool "p" of the first deployment
// behind route "gpt-4o". `extra` is appended verbatim (more routes, tenants, ...).
std::string SingleBackendTopology(const std::vector<std::string>& deployments = {"gpt-4o"},
                                  const std::string& extra = "");

// A chat completion request body.
std::string ChatBody(int max_tokens = 8, bool stream = false, bool include_usage = false);
// Polls until the file holds `substring` (logs are written asynchronously); returns it.
absl::StatusOr<std::string> WaitForFileContaining(const std::string& path,
                                                  absl::string_view substring,
                                                  absl::Duration timeout);

// A raw TCP connection to 127.0.0.1:`port` whose reads give up after `read_timeout_s`, for
// bytes no HTTP client would send; -1 when it cannot connect.
int ConnectRaw(int port, int read_timeout_s);

// Two tiers: a PTU pool with mock "{ptu}"'s deployment gpt-4o-ptu (eastus2), then a Standard
// pool of deployment gpt-4o on each mock in `standard` (westus3), behind route "gpt-4o".
std::string TieredTopology(const std::vector<std::string>& standard,
                           const std::string& locality = "any");
// GET /mock/stats of a mock, parsed (a failed fetch fails the test and gives {}).
boost::json::object MockStatsJson(AgentFleet& fleet, const std::string& mock);
// Answers of `status` the mock gave `deployment`.
int64_t StatusCount(const boost::json::object& stats, const std::string& deployment, int status);

}  // namespace spillway::test
