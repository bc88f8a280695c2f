// spillway-agent: the process applications call instead of Azure OpenAI. Standalone it
// serves a topology file (SIGHUP reloads it); with a control plane it follows AgentSync.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/command_line.h"
#include "common/file_io.h"
#include "common/topology_compile.h"
#include "common/topology_yaml.h"
#include "dataplane/server/agent_server.h"
#include "dataplane/tenants/demand_reporter.h"
#include "dataplane/auth/entra_token_registry.h"
#include "dataplane/sync/sync_client.h"
#include "dataplane/usage/usage_shipper.h"

ABSL_FLAG(std::string, region, "", "Azure region this agent serves (required), e.g. eastus2");
ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "host:port to serve the Azure OpenAI API on; port 0 picks a free port");
ABSL_FLAG(std::string, topology, "",
          "standalone mode: serve this topology YAML file (SIGHUP reloads it)");
ABSL_FLAG(std::string, control_plane, "",
          "host:port of spillway-cp: follow its routing tables (needs --state-dir)");
ABSL_FLAG(std::string, state_dir, "",
          "directory for the agent id and the last applied routing table, served when the "
          "control plane is unreachable");
ABSL_FLAG(std::string, token_file, "", "file with the agents' bearer token for spillway-cp");
ABSL_FLAG(std::string, control_plane_ca, "",
          "PEM CA to verify spillway-cp with (TLS); empty: plaintext gRPC");
ABSL_FLAG(std::string, control_plane_cert, "",
          "PEM client certificate chain presented to spillway-cp (mutual TLS; needs "
          "--control-plane-ca and --control-plane-key)");
ABSL_FLAG(std::string, control_plane_key, "", "PEM private key of --control-plane-cert");
ABSL_FLAG(int, threads, 1, "I/O threads, each with its own event loop and connection pool");
ABSL_FLAG(uint64_t, body_limit, 32ull * 1024 * 1024,
          "largest request body accepted, bytes (413 above)");
ABSL_FLAG(int, max_attempts, 4, "backends tried per request before giving up");
ABSL_FLAG(int64_t, request_timeout_ms, 120000,
          "deadline for a request to start answering, all attempts together");
ABSL_FLAG(int64_t, first_byte_timeout_ms, 60000,
          "per-attempt wait for a backend's response headers");
ABSL_FLAG(int64_t, stream_idle_timeout_ms, 60000,
          "longest silence allowed inside a backend's response");
ABSL_FLAG(bool, upstream_http2, false,
          "talk to backends over HTTP/2: h2c (prior knowledge) to http:// endpoints, ALPN h2 to "
          "https:// ones (HTTP/1.1 where the endpoint declines); one connection carries many "
          "requests and streams");
ABSL_FLAG(int64_t, connect_timeout_ms, 3000, "TCP connect + TLS handshake timeout per backend");
ABSL_FLAG(int64_t, client_idle_timeout_ms, 60000, "keep-alive idle timeout for client connections");
ABSL_FLAG(int64_t, client_write_timeout_ms, 60000, "timeout for each write to a client");
ABSL_FLAG(int, failure_threshold, 3,
          "consecutive failures (5xx, timeouts, connect errors) that open a circuit");
ABSL_FLAG(int64_t, circuit_open_ms, 1000,
          "first open period of a circuit; doubles while failures continue");
ABSL_FLAG(int64_t, circuit_max_open_ms, 60000, "longest open period of a circuit");
ABSL_FLAG(int64_t, default_retry_after_ms, 1000,
          "how long a 429 without retry-after blocks a backend");
ABSL_FLAG(int64_t, default_max_tokens, 1024,
          "output tokens assumed (headroom, tenant quotas) when a request sets no max_tokens");
ABSL_FLAG(int64_t, demand_report_ms, 2000,
          "control-plane mode: how often each tenant's demand is reported, so the control "
          "plane can split tenants' TPM/RPM limits among the agents of a stamp");
ABSL_FLAG(uint64_t, tokens_per_ptu_minute, 2500,
          "tokens per minute one PTU is assumed to serve (headroom estimates)");
ABSL_FLAG(std::string, upstream_ca_file, "",
          "PEM CA bundle to verify backends with (default: system store)");
ABSL_FLAG(std::string, imds_endpoint, "http://169.254.169.254",
          "Azure instance metadata service for managed identity tokens (unless IDENTITY_ENDPOINT "
          "and IDENTITY_HEADER are set, as on App Service and Container Apps)");
ABSL_FLAG(std::string, entra_authority, "https://login.microsoftonline.com",
          "Microsoft Entra ID authority for client-credentials tokens");
ABSL_FLAG(int64_t, entra_timeout_ms, 10000,
          "one Entra ID token request, connect included; also the longest a request waits for "
          "a token");
ABSL_FLAG(std::string, access_log, "-",
          "access log destination: a file path, '-' for stdout, 'off'");
ABSL_FLAG(int64_t, usage_flush_ms, 10000,
          "how often per-minute usage is sealed: with a control plane into a batch, spooled in "
          "<state-dir>/usage-spool and sent; standalone into /metrics' tenant counters");
ABSL_FLAG(uint64_t, usage_spool_warn_mb, 256,
          "warn when unacknowledged usage batches in the spool exceed this size (nothing is "
          "ever dropped)");
ABSL_FLAG(int64_t, drain_timeout_ms, 20000,
          "on SIGTERM, how long in-flight requests may take to finish");

namespace spillway {
namespace {

[[noreturn]] void Die(const std::string& reason) { DieWithReason("spillway-agent", reason); }

absl::StatusOr<RoutingSnapshotPtr> LoadStandalone(const std::string& path,
                                                  const std::string& region, uint64_t version,
                                                  BackendStateRegistry& states) {
  absl::StatusOr<v1::Topology> topology = LoadTopologyFile(path);
  if (!topology.ok()) {
    return topology.status();
  }
  CompileOptions options;
  options.tokens_per_ptu_minute = absl::GetFlag(FLAGS_tokens_per_ptu_minute);
  options.now_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  absl::StatusOr<v1::RoutingTable> table = CompileRoutingTable(*topology, region, version, options);
  if (!table.ok()) {
    return table.status();
  }
  return RoutingSnapshot::Build(*std::move(table), states);
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

int Run() {
  const std::string region = absl::GetFlag(FLAGS_region);
  const std::string topology_path = absl::GetFlag(FLAGS_topology);
  if (region.empty()) {
    Die("--region is required");
  }
  const std::string control_plane = absl::GetFlag(FLAGS_control_plane);
  const std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  if (topology_path.empty() == control_plane.empty()) {
    Die("give exactly one of --topology FILE (standalone) or --control-plane HOST:PORT");
  }
  if (!control_plane.empty() && state_dir.empty()) {
    Die("--control-plane needs --state-dir (where the last table is kept for restarts)");
  }
  AgentServerOptions server_options;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port > 65535) {
    Die(absl::StrCat("--listen must be host:port, got '", listen, "'"));
  }
  server_options.listen_host = listen.substr(0, colon);
  server_options.listen_port = static_cast<uint16_t>(port);
  server_options.threads = absl::GetFlag(FLAGS_threads);
  if (server_options.threads < 1 || server_options.threads > 256) {
    Die("--threads must be between 1 and 256");
  }
  server_options.upstream_ca_file = absl::GetFlag(FLAGS_upstream_ca_file);
  server_options.upstream.http2 = absl::GetFlag(FLAGS_upstream_http2);
  server_options.upstream.connect_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_connect_timeout_ms));

  CircuitBreakerOptions breaker;
  breaker.failure_threshold = absl::GetFlag(FLAGS_failure_threshold);
  breaker.base_open = std::chrono::milliseconds(absl::GetFlag(FLAGS_circuit_open_ms));
  breaker.max_open = std::chrono::milliseconds(absl::GetFlag(FLAGS_circuit_max_open_ms));
  breaker.default_throttle = std::chrono::milliseconds(absl::GetFlag(FLAGS_default_retry_after_ms));
  BackendStateRegistry states(breaker);
  EntraOptions entra_options;
  entra_options.endpoints.imds = absl::GetFlag(FLAGS_imds_endpoint);
  entra_options.endpoints.authority = absl::GetFlag(FLAGS_entra_authority);
  entra_options.ca_file = server_options.upstream_ca_file;
  entra_options.timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_entra_timeout_ms));
  if (entra_options.timeout.count() < 1) {
    Die("--entra-timeout-ms must be positive");
  }
  // Declared before the snapshots' holders, so it outlives every token source they share.
  absl::StatusOr<std::unique_ptr<EntraTokenRegistry>> entra_tokens =
      EntraTokenRegistry::Start(entra_options);
  if (!entra_tokens.ok()) {
    Die(std::string(entra_tokens.status().message()));
  }
  states.set_entra_lookup([registry = entra_tokens->get()](const v1::InstanceAuth& auth) {
    return EntraSourceFor(auth, registry);
  });

  AgentContext context;
  context.region = region;
  context.body_limit = absl::GetFlag(FLAGS_body_limit);
  context.client_idle_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_client_idle_timeout_ms));
  context.proxy.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  context.proxy.request_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_request_timeout_ms));
  context.proxy.first_byte_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_first_byte_timeout_ms));
  context.proxy.stream_idle_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_stream_idle_timeout_ms));
  context.proxy.client_write_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_client_write_timeout_ms));
  context.proxy.default_max_output_tokens = absl::GetFlag(FLAGS_default_max_tokens);
  TenantLimiterOptions limiter_options;
  limiter_options.control_plane = !control_plane.empty();
  limiter_options.demand_window = std::chrono::milliseconds(absl::GetFlag(FLAGS_demand_report_ms));
  limiter_options.zero_share_retry_after = limiter_options.demand_window;
  if (limiter_options.demand_window.count() < 100) {
    Die("--demand-report-ms must be at least 100");
  }
  if (!control_plane.empty()) {
    limiter_options.budgets_path = state_dir + "/tenant-budgets.pb";
  }
  TenantLimiter tenant_limiter(limiter_options);
  if (absl::Status loaded = tenant_limiter.LoadPersistedBudgets(SteadyClock::now()); !loaded.ok()) {
    spdlog::warn("ignoring the persisted tenant budget split: {}", std::string(loaded.message()));
  }
  context.tenant_limiter = &tenant_limiter;
  std::unique_ptr<DemandReporter> demand_reporter;

  absl::StatusOr<std::unique_ptr<AccessLog>> access_log =
      AccessLog::Open(absl::GetFlag(FLAGS_access_log));
  if (!access_log.ok()) {
    Die(std::string(access_log.status().message()));
  }
  context.access_log = access_log->get();

  uint64_t version = 1;
  AgentMetrics metrics;
  context.metrics = &metrics;
  // Declared before the sync client, whose callbacks reach the shipper. Standalone agents
  // meter too: their usage goes to /metrics (spillway_tenant_tokens_total).
  UsageMeter usage_meter;
  context.usage_meter = &usage_meter;
  const auto usage_flush = std::chrono::milliseconds(absl::GetFlag(FLAGS_usage_flush_ms));
  if (usage_flush.count() < 10) {
    Die("--usage-flush-ms must be at least 10");
  }
  std::unique_ptr<UsageShipper> usage_shipper;
  std::unique_ptr<SyncClient> sync;
  if (control_plane.empty()) {
    absl::StatusOr<RoutingSnapshotPtr> snapshot =
        LoadStandalone(topology_path, region, version, states);
    if (!snapshot.ok()) {
      Die(std::string(snapshot.status().message()));
    }
    LogUnusableBackends(**snapshot);
    context.snapshots.Publish(*snapshot);
  } else {
    SyncClientOptions sync_options;
    sync_options.target = control_plane;
    sync_options.state_dir = state_dir;
    sync_options.region = region;
    sync_options.listen_address = listen;
    sync_options.ca_file = absl::GetFlag(FLAGS_control_plane_ca);
    sync_options.cert_file = absl::GetFlag(FLAGS_control_plane_cert);
    sync_options.key_file = absl::GetFlag(FLAGS_control_plane_key);
    if (sync_options.cert_file.empty() != sync_options.key_file.empty()) {
      Die("--control-plane-cert and --control-plane-key go together");
    }
    if (!sync_options.cert_file.empty() && sync_options.ca_file.empty()) {
      Die("--control-plane-cert needs --control-plane-ca: client certificates are sent over TLS");
    }
    // The sync client rereads these on every reconnect; a path that is wrong from the start
    // is a bad flag, not something to log on every retry.
    for (const auto& [flag, path] : {std::pair{"--control-plane-ca", sync_options.ca_file},
                                     {"--control-plane-cert", sync_options.cert_file},
                                     {"--control-plane-key", sync_options.key_file}}) {
      if (!path.empty()) {
        if (absl::StatusOr<std::string> pem = ReadFile(path); !pem.ok()) {
          Die(absl::StrCat(flag, ": ", pem.status().message()));
        }
      }
    }
    if (const std::string token_file = absl::GetFlag(FLAGS_token_file); !token_file.empty()) {
      absl::StatusOr<std::string> token = ReadFile(token_file);
      if (!token.ok()) {
        Die(std::string(token.status().message()));
      }
      sync_options.token = std::string(absl::StripAsciiWhitespace(*token));
    }
    sync_options.on_budgets = [&tenant_limiter](const v1::TenantBudgets& budgets) {
      tenant_limiter.ApplyBudgets(budgets, SteadyClock::now());
    };
    sync_options.on_stream_started = [&usage_shipper] { usage_shipper->OnStreamStarted(); };
    sync_options.on_stream_ended = [&usage_shipper] { usage_shipper->OnStreamEnded(); };
    sync_options.on_usage_ack = [&usage_shipper](uint64_t sequence) {
      usage_shipper->OnUsageAck(sequence);
    };
    sync = std::make_unique<SyncClient>(sync_options, context.snapshots, states);
    absl::StatusOr<uint64_t> persisted = sync->LoadState();
    if (!persisted.ok()) {
      Die(std::string(persisted.status().message()));
    }
    absl::StatusOr<UsageSpool> spool = UsageSpool::Open(state_dir);
    if (!spool.ok()) {
      Die(std::string(spool.status().message()));
    }
    UsageShipperOptions shipper_options;
    shipper_options.flush_interval = usage_flush;
    shipper_options.spool_warn_bytes = absl::GetFlag(FLAGS_usage_spool_warn_mb) << 20;
    usage_shipper = std::make_unique<UsageShipper>(
        shipper_options, usage_meter, *std::move(spool), sync->agent_id(),
        [&sync](v1::AgentMessage message) { sync->SendIfConnected(std::move(message)); });
    version = *persisted;
    if (version > 0) {
      spdlog::info("serving persisted routing table version {} until {} answers", version,
                   control_plane);
    }
    context.backend_observer = sync.get();
  }

  // Signals are taken synchronously by this thread; I/O threads never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<AgentServer>> server = AgentServer::Bind(context, server_options);
  if (!server.ok()) {
    Die(std::string(server.status().message()));
  }
  (*server)->Start();
  if (sync != nullptr) {
    usage_shipper->Start();
    sync->Start();
    demand_reporter = std::make_unique<DemandReporter>(
        tenant_limiter, limiter_options.demand_window,
        [&sync](v1::AgentMessage message) { sync->SendIfConnected(std::move(message)); });
    demand_reporter->Start();
  }
  std::printf("spillway-agent listening on %s:%u (region %s, %d thread%s, table version %llu)\n",
              server_options.listen_host.c_str(), (*server)->port(), region.c_str(),
              server_options.threads, server_options.threads == 1 ? "" : "s",
              static_cast<unsigned long long>(version));
  std::fflush(stdout);

  // Standalone, this thread also moves metered usage to /metrics between signals.
  const timespec usage_tick{usage_flush.count() / 1000, (usage_flush.count() % 1000) * 1000000};
  for (;;) {
    int signal = 0;
    if (sync == nullptr) {
      signal = sigtimedwait(&signals, nullptr, &usage_tick);
      if (signal < 0) {
        metrics.AddUsage(usage_meter.Collect());
        continue;
      }
    } else {
      sigwait(&signals, &signal);
    }
    if (signal == SIGHUP && sync == nullptr) {
      absl::StatusOr<RoutingSnapshotPtr> reloaded =
          LoadStandalone(topology_path, region, version + 1, states);
      if (!reloaded.ok()) {
        spdlog::error("reload of {} refused, keeping version {}: {}", topology_path, version,
                      std::string(reloaded.status().message()));
        continue;
      }
      ++version;
      LogUnusableBackends(**reloaded);
      context.snapshots.Publish(*reloaded);
      spdlog::info("reloaded {}: table version {}", topology_path, version);
      continue;
    }
    if (signal == SIGHUP) {
      continue;  // tables come from the control plane
    }
    break;
  }
  if (demand_reporter != nullptr) {
    demand_reporter->Stop();
  }
  spdlog::info("draining: no new connections, waiting for {} request(s) in flight",
               context.requests_in_flight.load());
  context.draining = true;
  (*server)->StopAccepting();
  const auto drain_deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(absl::GetFlag(FLAGS_drain_timeout_ms));
  while (context.requests_in_flight.load() > 0 &&
         std::chrono::steady_clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  (*server)->Stop();
  (*server)->Join();
  (*entra_tokens)->Stop();  // before the I/O threads' loops are destroyed with the server
  // Every request is counted now: seal and spool the rest, and give the control plane a
  // moment to take it (what it does not ack stays spooled for the next start).
  if (usage_shipper != nullptr) {
    usage_shipper->Stop(std::chrono::milliseconds(3000));
  }
  if (sync != nullptr) {
    sync->Stop();
  }
  if (sync == nullptr) {
    metrics.AddUsage(usage_meter.Collect());
  }
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
       "dataplane/main.cc"});
  return spillway::Run();
}
