// See agent_fixture.h.
#include "tests/dataplane/agent_fixture.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/file_io.h"

namespace spillway::test {

absl::Status AgentFleet::EnsureDir() {
  if (dir_.has_value()) {
    return absl::OkStatus();
  }
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  if (!dir.ok()) {
    return dir.status();
  }
  dir_.emplace(*std::move(dir));
  return absl::OkStatus();
}

absl::Status AgentFleet::AddMock(const std::string& name, std::vector<std::string> args) {
  args.push_back("--api-keys");
  args.push_back(kBackendKey);
  absl::StatusOr<std::unique_ptr<MockAoaiProcess>> mock = MockAoaiProcess::Start(args);
  if (!mock.ok()) {
    return mock.status();
  }
  mocks_[name] = *std::move(mock);
  return absl::OkStatus();
}

absl::Status AgentFleet::StartAgent(const std::string& yaml, const std::string& region,
                                    std::vector<std::string> extra_args) {
  if (absl::Status status = EnsureDir(); !status.ok()) {
    return status;
  }
  std::vector<std::pair<std::string, std::string>> replacements;
  for (const auto& [name, mock] : mocks_) {
    replacements.emplace_back(absl::StrCat("{", name, "}"),
                              absl::StrCat("http://", mock->address()));
  }
  topology_path_ = dir_->path() + "/topology.yaml";
  std::ofstream(topology_path_) << absl::StrReplaceAll(yaml, replacements);
  std::vector<std::string> args = {
      "--region",   region,         "--listen",     "127.0.0.1:0",
      "--topology", topology_path_, "--access-log", dir_->path() + "/access.log"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  ChildProcessOptions options;
  options.name = "agent";
  options.env.push_back(absl::StrCat(kBackendKeyEnv, "=", kBackendKey));
  options.env.insert(options.env.end(), agent_env.begin(), agent_env.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> agent =
      ChildProcess::Start(SPILLWAY_AGENT_BIN, args, options);
  if (!agent.ok()) {
    return agent.status();
  }
  agent_ = *std::move(agent);
  absl::StatusOr<int> port = agent_->WaitForListenPort(absl::Seconds(10));
  if (!port.ok()) {
    return port.status();
  }
  agent_port_ = *port;
  return absl::OkStatus();
}

std::unique_ptr<HttpClient> AgentFleet::AgentClient() const {
  return std::make_unique<HttpClient>("127.0.0.1", agent_port_);
}

std::unique_ptr<HttpClient> AgentFleet::MockClient(const std::string& name) {
  return std::make_unique<HttpClient>("127.0.0.1", mock(name).port());
}

absl::Status AgentFleet::SetFault(const std::string& name, const std::string& fault_json) {
  auto client = MockClient(name);
  absl::StatusOr<HttpResponse> response =
      fault_json.empty() ? client->Send("DELETE", "/mock/faults")
                         : client->Send("POST", "/mock/faults", {}, fault_json);
  if (!response.ok()) {
    return response.status();
  }
  if (response->status / 100 != 2) {
    return absl::InternalError(
        absl::StrCat("fault refused: ", response->status, " ", response->body));
  }
  return absl::OkStatus();
}

absl::Status AgentFleet::KillMock(const std::string& name) {
  MockAoaiProcess& killed = mock(name);
  // Bound beside the mock's listener (it sets SO_REUSEPORT too) before the kill, so the port
  // is never free for a moment.
  absl::StatusOr<PortHold> hold = PortHold::WhileOurProcessListens(killed.port());
  if (!hold.ok()) {
    return hold.status();
  }
  killed_mock_ports_.push_back(*std::move(hold));
  killed.process().Kill();
  // Gone for good before the next request: a dying listener still completes handshakes.
  return killed.process().Wait(absl::Seconds(60)).status();
}

absl::StatusOr<std::string> AgentFleet::MockStats(const std::string& name) {
  absl::StatusOr<HttpResponse> response = MockClient(name)->Send("GET", "/mock/stats");
  if (!response.ok()) {
    return response.status();
  }
  return response->body;
}

std::string ChatAndEmbeddingsTopology() {
  return absl::StrCat(kOneInstanceYaml, R"(deployments:
  - { instance: a, name: chat, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
  - { instance: a, name: embed, model: text-embedding-3-large, version: "1", sku: Standard, capacity: 1000 }
pools:
  - { name: chat-pool, members: [ { deployment: a/chat } ] }
  - { name: embed-pool, members: [ { deployment: a/embed } ] }
routes:
  - { name: gpt-4o, stamp: us, tiers: [ chat-pool ] }
  - { name: embeddings, stamp: us, tiers: [ embed-pool ] }
)");
}

std::string SingleBackendTopology(const std::vector<std::string>& deployments,
                                  const std::string& extra) {
  std::string yaml = absl::StrCat(kOneInstanceYaml, "deployments:\n");
  for (const std::string& deployment : deployments) {
    const std::size_t eq = deployment.find('=');
    const std::string name = deployment.substr(0, eq);
    const std::string model = eq == std::string::npos ? "gpt-4o" : deployment.substr(eq + 1);
    absl::StrAppend(&yaml, "  - { instance: a, name: ", name, ", model: ", model,
                    ", version: \"1\", sku: Standard, capacity: 100 }\n");
  }
  const std::string first = deployments.front().substr(0, deployments.front().find('='));
  absl::StrAppend(&yaml, "pools:\n  - { name: p, members: [ { deployment: a/", first,
                  " } ] }\nroutes:\n  - { name: gpt-4o, stamp: us, tiers: [ p ] }\n", extra);
  return yaml;
}

std::string ChatBody(int max_tokens, bool stream, bool include_usage) {
  return absl::StrCat(R"({"messages":[{"role":"user","content":"Hello, gateway."}],"max_tokens":)",
                      max_tokens, stream ? R"(,"stream":true)" : "",
                      include_usage ? R"(,"stream_options":{"include_usage":true})" : "", "}");
}

absl::StatusOr<std::string> WaitForFileContaining(const std::string& path,
                                                  absl::string_view substring,
                                                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string content;
  do {
    absl::StatusOr<std::string> read = ReadFile(path);
    if (read.ok()) {
      content = *std::move(read);
      if (absl::StrContains(content, substring)) {
        return content;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  return absl::DeadlineExceededError(
      absl::StrCat(path, " does not contain '", substring, "'; it holds: ", content));
}

std::string TieredTopology(const std::vector<std::string>& standard, const std::string& locality) {
  std::string yaml = R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us }, { name: westus3, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: ptu, region: eastus2, subscription: s, endpoint: "{ptu}", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }
)";
  for (const std::string& name : standard) {
    absl::StrAppend(&yaml, "  - { name: ", name,
                    ", region: westus3, subscription: s, endpoint: \"{", name,
                    "}\", insecure_http: true, auth: { api_key_env: AGENT_TEST_BACKEND_KEY } }\n");
  }
  absl::StrAppend(&yaml, R"(deployments:
  - { instance: ptu, name: gpt-4o-ptu, model: gpt-4o, version: "1", sku: ProvisionedManaged, capacity: 100 }
)");
  for (const std::string& name : standard) {
    absl::StrAppend(
        &yaml, "  - { instance: ", name,
        ", name: gpt-4o, model: gpt-4o, version: \"1\", sku: Standard, capacity: 100 }\n");
  }
  absl::StrAppend(&yaml,
                  "pools:\n  - { name: ptu-pool, members: [ { deployment: ptu/gpt-4o-ptu } ] }\n"
                  "  - name: std-pool\n    members:\n");
  for (const std::string& name : standard) {
    absl::StrAppend(&yaml, "      - { deployment: ", name, "/gpt-4o }\n");
  }
  absl::StrAppend(&yaml, "routes:\n  - { name: gpt-4o, stamp: us, locality: ", locality,
                  ", tiers: [ ptu-pool, std-pool ] }\n");
  return yaml;
}

boost::json::object MockStatsJson(AgentFleet& fleet, const std::string& mock) {
  absl::StatusOr<std::string> body = fleet.MockStats(mock);
  EXPECT_TRUE(body.ok()) << body.status();
  return boost::json::parse(body.value_or("{}")).as_object();
}

int64_t StatusCount(const boost::json::object& stats, const std::string& deployment, int status) {
  const auto* d = stats.at("deployments").as_object().if_contains(deployment);
  if (d == nullptr) {
    return 0;
  }
  const auto* count =
      d->as_object().at("by_status").as_object().if_contains(std::to_string(status));
  return count == nullptr ? 0 : count->as_int64();
}

int ConnectRaw(int port, int read_timeout_s) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return -1;
  }
  timeval timeout{read_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace spillway::test
