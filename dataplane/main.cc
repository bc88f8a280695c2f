// spillway-agent: the process applications call instead of Azure OpenAI. Standalone it
// serves a topology file (SIGHUP reloads it); with a control plane it follows AgentSync.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/command_line.h"
#include "common/log_event.h"
#include "common/periodic_thread.h"
#include "common/topology_compile.h"
#include "common/topology_yaml.h"
#include "dataplane/agent_flags.h"
#include "dataplane/auth/entra_token_registry.h"
#include "dataplane/server/agent_server.h"
#include "dataplane/sync/sync_client.h"
#include "dataplane/tenants/demand_reporter.h"
#include "dataplane/usage/usage_shipper.h"

namespace spillway {
namespace {

[[noreturn]] void Die(absl::string_view reason) { DieWithReason("spillway-agent", reason); }

template <class T>
T ValueOrDie(absl::StatusOr<T> value) {
  if (!value.ok()) {
    Die(value.status().message());
  }
  return *std::move(value);
}

absl::StatusOr<RoutingSnapshotPtr> LoadStandalone(const AgentFlags& flags, uint64_t version,
                                                  BackendStateRegistry& states) {
  absl::StatusOr<v1::Topology> topology = LoadTopologyFile(flags.topology_path);
  if (!topology.ok()) {
    return topology.status();
  }
  CompileOptions options;
  if (absl::Status status =
          SetPtuThroughput(flags.ptu_rates_path, flags.tokens_per_ptu_minute, options);
      !status.ok()) {
    return status;
  }
  options.now_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  absl::StatusOr<v1::RoutingTable> table =
      CompileRoutingTable(*topology, flags.region, version, options);
  if (!table.ok()) {
    return table.status();
  }
  return RoutingSnapshot::Build(*std::move(table), states, flags.snapshot);
}

// A table the agent now serves; `source` says where it came from ("file" standalone,
// "persisted" from --state-dir until the control plane answers).
void LogTableApplied(const RoutingSnapshot& snapshot, absl::string_view source,
                     absl::string_view message = {}) {
  const v1::RoutingTable& table = snapshot.table();
  LogEvent(spdlog::level::info, "table_applied",
           {{"version", table.version()},
            {"region", table.region()},
            {"source", source},
            {"backends", table.backends_size()},
            {"routes", table.routes_size()}},
           message);
}

void LogUnusableBackends(const RoutingSnapshot& snapshot) {
  for (const SnapshotBackend& backend : snapshot.backends()) {
    if (!backend.unusable_reason.empty()) {
      spdlog::warn("backend {} is unusable: {}", backend.config->id(), backend.unusable_reason);
    }
  }
  if (snapshot.open_access()) {
    spdlog::warn("the topology defines no tenants: every client is admitted without a key");
  }
}

// The running agent, one step per member function in the order Run calls them. Members are
// declared so that each outlives those declared after it, which hold references to it.
class Agent {
 public:
  explicit Agent(AgentFlags flags)
      : flags_(std::move(flags)), states_(flags_.breaker), tenant_limiter_(flags_.limiter) {}

  // Everything a request needs, and the first routing table (or the way to get one).
  void Build();
  // Binds the port, starts the I/O threads and, with a control plane, the sync stream.
  void Start();
  // Returns on SIGTERM or SIGINT, which it returns; standalone, SIGHUP reloads the topology
  // and the wait between signals moves metered usage to /metrics.
  int WaitForStop();
  // Lets requests in flight finish (up to --drain-timeout-ms), then stops every part.
  void Drain(int signal);

 private:
  void StartEntra();
  void BuildContext();
  void LoadFirstTable();
  void ConnectControlPlane();
  void ReloadTopology();
  void SendIfConnected(v1::AgentMessage message) { sync_->SendIfConnected(std::move(message)); }

  const AgentFlags flags_;
  uint64_t version_ = 1;  // of the table served; standalone, bumped by each reload
  sigset_t signals_{};
  BackendStateRegistry states_;
  // Declared before the snapshots' holders, so it outlives every token source they share.
  std::unique_ptr<EntraTokenRegistry> entra_tokens_;
  std::unique_ptr<ObjectPins> pins_;
  AgentContext context_;
  TenantLimiter tenant_limiter_;
  std::unique_ptr<DemandReporter> demand_reporter_;
  std::unique_ptr<PeriodicThread> traffic_reporter_;
  std::unique_ptr<AccessLog> access_log_;
  AgentMetrics metrics_;
  // Declared before the sync client, whose callbacks reach the shipper. Standalone agents
  // meter too: their usage goes to /metrics (spillway_tenant_tokens_total).
  UsageMeter usage_meter_;
  std::unique_ptr<UsageShipper> usage_shipper_;
  std::unique_ptr<SyncClient> sync_;  // null: standalone
  std::unique_ptr<AgentServer> server_;
};

void Agent::Build() {
  // Blocked before any thread starts (the Entra ID, pin and access log writers start here, the
  // I/O threads in Start), so every thread inherits the mask: this thread takes the signals
  // synchronously. A thread that did not block them would take a SIGTERM arriving while this
  // one is busy (a reload) and die of it, without draining.
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  StartEntra();
  BuildContext();
  if (flags_.standalone()) {
    LoadFirstTable();
  } else {
    ConnectControlPlane();
  }
}

void Agent::StartEntra() {
  entra_tokens_ = ValueOrDie(EntraTokenRegistry::Start(flags_.entra));
  states_.set_entra_lookup([registry = entra_tokens_.get()](const v1::InstanceAuth& auth) {
    return EntraSourceFor(auth, registry);
  });
}

void Agent::BuildContext() {
  context_.region = flags_.region;
  context_.body_limit = flags_.body_limit;
  context_.max_upload_bytes = flags_.max_upload_bytes;
  context_.body_memory_limit = static_cast<int64_t>(flags_.body_memory_limit);
  context_.max_connections = flags_.max_connections;
  context_.client_idle_timeout = flags_.client_idle_timeout;
  context_.header_timeout = flags_.header_timeout;
  context_.proxy = flags_.proxy;
  if (absl::Status loaded = tenant_limiter_.LoadPersistedBudgets(SteadyClock::now());
      !loaded.ok()) {
    spdlog::warn("ignoring the persisted tenant budget split: {}", std::string(loaded.message()));
  }
  context_.tenant_limiter = &tenant_limiter_;
  access_log_ = ValueOrDie(AccessLog::Open(flags_.access_log));
  context_.access_log = access_log_.get();
  context_.metrics = &metrics_;
  context_.usage_meter = &usage_meter_;
  // Without a state directory (standalone) pins live in memory only.
  ObjectPinsOptions pin_options;
  if (!flags_.state_dir.empty()) {
    pin_options.path = flags_.state_dir + "/object-pins.log";
  }
  pins_ = ValueOrDie(ObjectPins::Open(pin_options));
  context_.pins = pins_.get();
  context_.pin_retention = flags_.pin_retention;
}

void Agent::LoadFirstTable() {
  RoutingSnapshotPtr snapshot = ValueOrDie(LoadStandalone(flags_, version_, states_));
  LogTableApplied(*snapshot, "file",
                  absl::StrCat("loaded ", flags_.topology_path, ": table version ", version_));
  LogUnusableBackends(*snapshot);
  context_.snapshots.Publish(std::move(snapshot));
}

// Serves the table persisted by an earlier run (if any) until the control plane answers;
// usage not yet acknowledged waits in the spool under --state-dir.
void Agent::ConnectControlPlane() {
  SyncClientOptions sync_options = flags_.sync;
  sync_options.on_budgets = [this](const v1::TenantBudgets& budgets) {
    tenant_limiter_.ApplyBudgets(budgets, SteadyClock::now());
  };
  sync_options.on_stream_started = [this] { usage_shipper_->OnStreamStarted(); };
  sync_options.on_stream_ended = [this] { usage_shipper_->OnStreamEnded(); };
  sync_options.on_usage_ack = [this](uint64_t sequence) { usage_shipper_->OnUsageAck(sequence); };
  sync_options.pins = pins_.get();
  sync_ = std::make_unique<SyncClient>(std::move(sync_options), context_.snapshots, states_);
  // Pins learnt here reach the region's other agents through the control plane.
  pins_->set_listener(sync_.get());
  const uint64_t persisted = ValueOrDie(sync_->LoadState());
  UsageShipperOptions shipper_options;
  shipper_options.flush_interval = flags_.usage_flush;
  shipper_options.spool_warn_bytes = flags_.usage_spool_warn_bytes;
  // With a control plane too, /metrics counts tenants' tokens (chargeback stays the control
  // plane's: these restart from zero with the agent).
  shipper_options.on_collected = [this](const std::vector<v1::UsageAggregate>& usage) {
    metrics_.AddUsage(usage);
  };
  usage_shipper_ = std::make_unique<UsageShipper>(
      shipper_options, usage_meter_, ValueOrDie(UsageSpool::Open(flags_.state_dir)),
      sync_->agent_id(), [this](v1::AgentMessage message) { SendIfConnected(std::move(message)); });
  metrics_.WatchUsageShipper(usage_shipper_.get());
  version_ = persisted;
  if (version_ > 0) {
    LogTableApplied(*context_.snapshots.Load(), "persisted",
                    absl::StrCat("serving persisted routing table version ", version_, " until ",
                                 absl::StrJoin(flags_.control_planes, " or "), " answers"));
  }
  context_.backend_observer = sync_.get();
}

void Agent::Start() {
  server_ = ValueOrDie(AgentServer::Bind(context_, flags_.server));
  server_->Start();
  if (sync_ != nullptr) {
    usage_shipper_->Start();
    sync_->Start();
    demand_reporter_ = std::make_unique<DemandReporter>(
        tenant_limiter_, flags_.limiter.demand_window,
        [this](v1::AgentMessage message) { SendIfConnected(std::move(message)); });
    demand_reporter_->Start();
    // Drill reports read these; half a second keeps "when traffic left" sharp and costs one
    // small message per busy agent.
    traffic_reporter_ = std::make_unique<PeriodicThread>(std::chrono::milliseconds(500), [this] {
      v1::TrafficReport report = usage_meter_.CollectTraffic();
      if (report.slots_size() > 0 || report.dropped() > 0) {
        v1::AgentMessage message;
        *message.mutable_traffic() = std::move(report);
        SendIfConnected(std::move(message));
      }
    });
    traffic_reporter_->Start();
  }
  const int threads = flags_.server.threads;
  PrintEvent("listening",
             {{"host", flags_.server.listen_host},
              {"port", server_->port()},
              {"region", flags_.region},
              {"threads", threads},
              {"version", version_}},
             absl::StrCat("spillway-agent listening on ", flags_.server.listen_host, ":",
                          server_->port(), " (region ", flags_.region, ", ", threads, " thread",
                          threads == 1 ? "" : "s", ", table version ", version_, ")"));
  if (server_->admin_port() != 0) {
    PrintEvent("admin_listening",
               {{"host", flags_.server.admin_listen_host}, {"port", server_->admin_port()}},
               absl::StrCat("spillway-agent admin endpoints on ", flags_.server.admin_listen_host,
                            ":", server_->admin_port()));
  }
}

int Agent::WaitForStop() {
  const int64_t flush_ms = flags_.usage_flush.count();
  const timespec usage_tick{flush_ms / 1000, (flush_ms % 1000) * 1000000};
  for (;;) {
    int signal = 0;
    if (sync_ == nullptr) {
      signal = sigtimedwait(&signals_, nullptr, &usage_tick);
      if (signal < 0) {
        metrics_.AddUsage(usage_meter_.Collect());
        continue;
      }
    } else {
      sigwait(&signals_, &signal);
    }
    if (signal != SIGHUP) {
      return signal;
    }
    if (sync_ == nullptr) {
      ReloadTopology();
    }  // else tables come from the control plane
  }
}

// A topology that does not load or compile is refused whole: the current table stays.
void Agent::ReloadTopology() {
  absl::StatusOr<RoutingSnapshotPtr> reloaded = LoadStandalone(flags_, version_ + 1, states_);
  if (!reloaded.ok()) {
    LogEvent(spdlog::level::err, "table_refused",
             {{"version", version_ + 1},
              {"region", flags_.region},
              {"source", "file"},
              {"serving_version", version_},
              {"reason", reloaded.status().message()}},
             absl::StrCat("reload of ", flags_.topology_path, " refused, keeping version ",
                          version_, ": ", reloaded.status().message()));
    return;
  }
  ++version_;
  LogUnusableBackends(**reloaded);
  context_.snapshots.Publish(*reloaded);
  LogTableApplied(**reloaded, "file",
                  absl::StrCat("reloaded ", flags_.topology_path, ": table version ", version_));
}

void Agent::Drain(int signal) {
  if (traffic_reporter_ != nullptr) {
    traffic_reporter_->Stop();
  }
  if (demand_reporter_ != nullptr) {
    demand_reporter_->Stop();
  }
  const int64_t in_flight = context_.requests_in_flight.load();
  LogEvent(spdlog::level::info, "drain_started",
           {{"signal", signal == SIGINT ? "SIGINT" : "SIGTERM"},
            {"in_flight", in_flight},
            {"timeout_ms", flags_.drain_timeout.count()}},
           absl::StrCat("draining: no new connections, waiting for ", in_flight,
                        " request(s) in flight"));
  context_.draining = true;
  server_->StopAccepting();
  const auto drain_start = std::chrono::steady_clock::now();
  const auto drain_deadline = drain_start + flags_.drain_timeout;
  while (context_.requests_in_flight.load() > 0 &&
         std::chrono::steady_clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Requests still in flight now are cut off when the server stops.
  const int64_t left = context_.requests_in_flight.load();
  const int64_t waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - drain_start)
                                .count();
  LogEvent(left == 0 ? spdlog::level::info : spdlog::level::warn, "drain_finished",
           {{"in_flight", left}, {"waited_ms", waited_ms}},
           left == 0 ? absl::StrCat("drained in ", waited_ms, " ms")
                     : absl::StrCat("drain timed out after ", waited_ms, " ms: ", left,
                                    " request(s) still in flight are cut off"));
  server_->Stop();
  server_->Join();
  pins_->set_listener(nullptr);  // no request is left to pin anything; sync_ goes first
  if (absl::Status flushed = pins_->Flush(); !flushed.ok()) {
    spdlog::error("object pins not saved: {}", std::string(flushed.message()));
  }
  entra_tokens_->Stop();  // before the I/O threads' loops are destroyed with the server
  // Every request is counted now: seal and spool the rest, and give the control plane a
  // moment to take it (what it does not ack stays spooled for the next start).
  if (usage_shipper_ != nullptr) {
    usage_shipper_->Stop(std::chrono::milliseconds(3000));
  }
  if (sync_ != nullptr) {
    sync_->Stop();
  } else {
    metrics_.AddUsage(usage_meter_.Collect());
  }
}

int Run() {
  AgentFlags flags = ValueOrDie(ReadAgentFlags());
  SetUpProcessLog("spillway-agent", flags.log_format);  // before anything logs
  Agent agent(std::move(flags));
  agent.Build();
  agent.Start();
  agent.Drain(agent.WaitForStop());
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace
}  // namespace spillway

int main(int argc, char** argv) {
  spillway::ParseCommandLine(
      argc, argv,
      {"spillway-agent",
       "the Spillway agent, an Azure OpenAI-compatible gateway.\n"
       "  spillway-agent --region eastus2 --listen 127.0.0.1:8080 --topology topology.yaml",
       spillway::kAgentFlagsFile});
  return spillway::Run();
}
