// See fleet_fixture.h.
#include "tests/controlplane/fleet_fixture.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/topology_yaml.h"
#include "tests/support/reference_topology.h"

namespace spillway::test {
namespace {

ScopedTempDir MakeDir() {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  if (!dir.ok()) {
    std::abort();  // the test cannot run without a scratch directory
  }
  return *std::move(dir);
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::vector<uint64_t> AppliedVersions(const std::string& log) {
  std::vector<uint64_t> versions;
  constexpr absl::string_view kApplied = "applied routing table version ";
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    const std::size_t at = line.find(kApplied);
    if (at == absl::string_view::npos) {
      continue;
    }
    absl::string_view rest = line.substr(at + kApplied.size());
    uint64_t version = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &version)) {
      versions.push_back(version);
    }
  }
  return versions;
}

ControlPlaneFleet::ControlPlaneFleet() : dir_(MakeDir()) {}

absl::Status ControlPlaneFleet::StartControlPlane(std::vector<std::string> extra_args) {
  // Two control planes on one port would split the agents between them (SO_REUSEPORT).
  KillControlPlane();
  const bool restart = cp_port_ != 0;
  if (restart && !cp_port_hold_.held()) {
    return absl::FailedPreconditionError(
        absl::StrCat("port ", cp_port_,
                     " of the killed control plane was taken by another process; the "
                     "agents follow that address, so the control plane cannot come back on it"));
  }
  ChildProcessOptions options;
  options.name = "cp";
  if (!extra_args.empty()) {
    cp_args_ = std::move(extra_args);
  }
  std::vector<std::string> args = {"--listen", absl::StrCat("127.0.0.1:", cp_port_)};
  if (cp_store_.empty()) {
    args.insert(args.end(), {"--db", dir_.path() + "/topology.db"});
  } else {
    args.insert(args.end(), {"--store", cp_store_});
  }
  args.insert(args.end(), cp_args_.begin(), cp_args_.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> cp =
      ChildProcess::Start(SPILLWAY_CP_BIN, args, options);
  if (!cp.ok()) {
    return cp.status();
  }
  cp_ = *std::move(cp);
  absl::StatusOr<int> port = cp_->WaitForListenPort(kFleetWait);
  if (!port.ok()) {
    return port.status();
  }
  if (restart && *port != cp_port_) {
    return absl::InternalError(
        absl::StrCat("the control plane came back on port ", *port, ", not ", cp_port_));
  }
  cp_port_ = *port;
  cp_port_hold_.Release();  // the new process listens: the port is ours again
  admin_ = v1::Admin::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", cp_port_),
      admin_credentials_ != nullptr ? admin_credentials_ : grpc::InsecureChannelCredentials()));
  return absl::OkStatus();
}

void ControlPlaneFleet::SetAdminCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials,
                                            std::string token) {
  admin_credentials_ = std::move(credentials);
  admin_token_ = std::move(token);
  if (cp_port_ != 0) {
    admin_ = v1::Admin::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", cp_port_), admin_credentials_));
  }
}

std::unique_ptr<grpc::ClientContext> ControlPlaneFleet::AdminContext(
    std::chrono::seconds deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + deadline);
  if (!admin_token_.empty()) {
    context->AddMetadata("authorization", "Bearer " + admin_token_);
  }
  return context;
}

void ControlPlaneFleet::KillControlPlane() {
  if (cp_ == nullptr) {
    return;
  }
  if (cp_port_ == 0) {  // it never listened: no port to keep
    cp_.reset();
    return;
  }
  // Held before the kill, so the port is never free; should the kernel refuse that (a
  // listener without SO_REUSEPORT), held right after the exit if still nobody else's.
  absl::StatusOr<PortHold> hold = PortHold::WhileOurProcessListens(cp_port_);
  cp_->Kill();
  (void)cp_->Wait();
  cp_.reset();
  if (!hold.ok()) {
    hold = PortHold::IfFree(cp_port_);
  }
  if (hold.ok()) {
    cp_port_hold_ = *std::move(hold);
  }
}

absl::Status ControlPlaneFleet::AddMock(const std::string& name, std::vector<std::string> args) {
  args.push_back("--api-keys");
  args.push_back(kFleetBackendKey);
  absl::StatusOr<std::unique_ptr<MockAoaiProcess>> mock = MockAoaiProcess::Start(args);
  if (!mock.ok()) {
    return mock.status();
  }
  mocks_[name] = *std::move(mock);
  return absl::OkStatus();
}

absl::Status ControlPlaneFleet::StartAgent(const std::string& name, const std::string& region,
                                           std::vector<std::string> extra_args) {
  Agent& agent = agents_[name];
  agent.process.reset();
  agent.region = region;
  agent.port = 0;  // none until it listens; on a fresh port, never the old one (see the .h)
  const std::string state_dir = absl::StrCat(dir_.path(), "/agent-", name);
  ::mkdir(state_dir.c_str(), 0700);
  ChildProcessOptions options;
  options.name = name;
  options.env.push_back(absl::StrCat("FLEET_BACKEND_KEY=", kFleetBackendKey));
  const std::string control_plane =
      agent_control_planes_.empty() ? absl::StrCat("127.0.0.1:", cp_port_) : agent_control_planes_;
  // Flag and value side by side.
  // clang-format off
  std::vector<std::string> args = {"--region",        region,
                                   "--listen",        "127.0.0.1:0",
                                   "--control-plane", control_plane,
                                   "--state-dir",     state_dir,
                                   "--access-log",    state_dir + "/access.log"};
  // clang-format on
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(SPILLWAY_AGENT_BIN, args, options);
  if (!process.ok()) {
    return process.status();
  }
  agent.process = *std::move(process);
  absl::StatusOr<int> port = agent.process->WaitForListenPort(kFleetWait);
  if (!port.ok()) {
    return port.status();
  }
  agent.port = *port;
  agent.killed_port.Release();
  return absl::OkStatus();
}

void ControlPlaneFleet::KillAgent(const std::string& name) {
  Agent& agent = agents_.at(name);
  if (agent.process != nullptr && agent.port == 0) {
    agent.process.reset();  // it never listened: no port to keep
  } else if (agent.process != nullptr) {
    // Held across the kill as for the control plane: until the restart, a client of the old
    // port is refused instead of reaching whatever another test started there.
    absl::StatusOr<PortHold> hold = PortHold::WhileOurProcessListens(agent.port);
    agent.process->Kill();
    (void)agent.process->Wait();
    agent.process.reset();
    if (hold.ok()) {
      agent.killed_port = *std::move(hold);
    }
  }
}

std::unique_ptr<HttpClient> ControlPlaneFleet::AgentClient(const std::string& name) const {
  return std::make_unique<HttpClient>("127.0.0.1", agents_.at(name).port);
}

absl::StatusOr<std::string> ControlPlaneFleet::AgentStatus(const std::string& name) const {
  absl::StatusOr<HttpResponse> response = AgentClient(name)->Send("GET", "/status");
  if (!response.ok()) {
    return response.status();
  }
  return response->body;
}

double ControlPlaneFleet::TenantShare(const std::string& name, const std::string& tenant) const {
  absl::StatusOr<std::string> status = AgentStatus(name);
  if (!status.ok()) {
    return -1;
  }
  const boost::json::value json = boost::json::parse(*status);
  const boost::json::value* quotas = json.as_object().if_contains("tenant_quotas");
  const boost::json::value* quota =
      quotas == nullptr ? nullptr : quotas->at("tenants").as_object().if_contains(tenant);
  if (quota == nullptr || !quota->at("share_from_control_plane").as_bool()) {
    return -1;
  }
  const boost::json::value* tpm = quota->as_object().if_contains("tokens_per_minute");
  return tpm == nullptr ? -1 : tpm->to_number<double>();
}

std::string ControlPlaneFleet::BackendState(const std::string& name,
                                            const std::string& backend_id) const {
  absl::StatusOr<std::string> status = AgentStatus(name);
  if (!status.ok()) {
    return "";
  }
  const boost::json::value parsed = boost::json::parse(*status);
  for (const auto& backend : parsed.at("backends").as_array()) {
    if (backend.at("id").as_string() == backend_id) {
      return std::string(backend.at("state").as_string());
    }
  }
  return "";
}

absl::Status ControlPlaneFleet::WaitForAgentVersion(const std::string& name, uint64_t version,
                                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string want = absl::StrCat("\"version\":", version, ",");
  std::string last;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> status = AgentStatus(name);
    if (status.ok()) {
      last = *status;
      if (absl::StrContains(last, want)) {
        return absl::OkStatus();
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("agent ", name, " never served version ", version, "; status: ", last));
}

absl::StatusOr<v1::ApplyResponse> ControlPlaneFleet::Apply(const v1::Topology& topology,
                                                           bool dry_run) {
  // Validating and compiling a topology of several MiB took over 10 s under ThreadSanitizer
  // with another test beside it: the deadline guards against a hang, not a slow machine.
  std::unique_ptr<grpc::ClientContext> context = AdminContext(std::chrono::seconds(60));
  v1::ApplyRequest request;
  *request.mutable_topology() = topology;
  request.set_dry_run(dry_run);
  v1::ApplyResponse response;
  if (absl::Status status = FromGrpc(admin_->Apply(context.get(), request, &response));
      !status.ok()) {
    return status;
  }
  return response;
}

absl::StatusOr<v1::ListAgentsResponse> ControlPlaneFleet::ListAgents() {
  std::unique_ptr<grpc::ClientContext> context = AdminContext();
  v1::ListAgentsResponse response;
  if (absl::Status status = FromGrpc(admin_->ListAgents(context.get(), {}, &response));
      !status.ok()) {
    return status;
  }
  return response;
}

absl::Status ControlPlaneFleet::WaitForAcks(uint64_t version, int agents, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::ListAgentsResponse> list = ListAgents();
    if (list.ok()) {
      int acked = 0;
      for (const v1::AgentInfo& agent : list->agents()) {
        acked += agent.connected() && agent.acked_version() == version;
      }
      last = list->DebugString();
      if (acked == agents) {
        return absl::OkStatus();
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(agents, " agents never acked version ", version, ": ", last));
}

std::map<std::string, int64_t> ControlPlaneFleet::MockRequestCounts(
    const std::vector<std::string>& names) {
  std::map<std::string, int64_t> seen;
  for (const std::string& name : names) {
    absl::StatusOr<HttpResponse> stats =
        HttpClient("127.0.0.1", mock(name).port()).Send("GET", "/mock/stats", {}, "");
    seen[name] =
        stats.ok() && stats->status == 200
            ? static_cast<int64_t>(boost::json::parse(stats->body).at("log").as_array().size())
            : -1;
  }
  return seen;
}

absl::Status ControlPlaneFleet::AddReferenceMocks() {
  const std::vector<std::pair<std::string, std::string>> mocks = {
      {"aoai-eus2-ptu", "gpt-4o-ptu:model=gpt-4o"},
      {"aoai-wus3-ptu", "gpt-4o-pool:model=gpt-4o"},
      {"aoai-eus2-std", "gpt-4o,gpt-4o-next:model=gpt-4o,embed-3:model=text-embedding-3-large"},
      {"aoai-wus3-std", "gpt-4o"},
      {"aoai-swc-std", "gpt-4o"},
      {"aoai-frc-std", "gpt-4o"}};
  for (const auto& [name, deployments] : mocks) {
    if (absl::Status status = AddMock(name, {"--deployments", deployments}); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat(name, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

v1::Topology ReferenceTopologyAt(absl::FunctionRef<std::string(const std::string&)> endpoint_of) {
  v1::Topology topology = ReferenceTopology();
  for (v1::Instance& instance : *topology.mutable_instances()) {
    instance.set_endpoint(endpoint_of(instance.name()));
    instance.set_insecure_http(true);  // the mocks speak plain HTTP
    instance.mutable_auth()->Clear();
    instance.mutable_auth()->set_api_key_env("FLEET_BACKEND_KEY");
  }
  return topology;
}

absl::StatusOr<v1::Topology> ReferenceTopologyOnMocks(ControlPlaneFleet& fleet) {
  return ReferenceTopologyAt(
      [&fleet](const std::string& instance) { return fleet.MockEndpoint(instance); });
}

}  // namespace spillway::test
