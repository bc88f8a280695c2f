// spillway-cp: the control plane. Holds the topology in SQLite, serves the Admin API to
// operators and the AgentSync stream to agents, and pushes each region its routing table.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/file_io.h"
#include "common/grpc_keepalive.h"
#include "common/log_event.h"
#include "common/periodic_thread.h"
#include "controlplane/admin/admin_service.h"
#include "controlplane/fleet/agent_sync_service.h"
#include "controlplane/fleet/fleet_metrics.h"
#include "controlplane/fleet/replica_sync.h"
#include "controlplane/ops/metrics_server.h"
#include "controlplane/store/replica_session.h"
#include "controlplane/store/store_location.h"
#include "proto/spillway/v1/grpc_limits.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070", "host:port for gRPC (port 0 picks a free one)");
ABSL_FLAG(std::string, store, "",
          "where the state is kept: sqlite:PATH (a file, created if missing) or "
          "postgres://USER@HOST:PORT/DB (required, or --db)");
ABSL_FLAG(std::string, db, "",
          "SQLite file holding the state: the shorthand of --store sqlite:PATH");
ABSL_FLAG(std::string, admin_token_file, "", "file with the operators' bearer token");
ABSL_FLAG(std::string, agent_token_file, "", "file with the agents' bearer token");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain: serve gRPC over TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA: require client certificates signed by it");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port serving Prometheus GET /metrics and /healthz over HTTP (port 0 picks a free "
          "one; empty: off)");
ABSL_FLAG(std::string, ptu_rates, "",
          "PTU rates file (JSON, as examples/ptu-rates.json): the tokens a minute one PTU of "
          "each model serves, compiled into routing tables as the agents' headroom on "
          "provisioned deployments (default: the built-in rates, unless "
          "--tokens-per-ptu-minute is given)");
ABSL_FLAG(uint64_t, tokens_per_ptu_minute, 0,
          "tokens per minute one PTU of a model the PTU rates do not list is assumed to serve "
          "(0: 2500); given without --ptu-rates, for every model");
ABSL_FLAG(int64_t, usage_minute_retention_days, 14,
          "days per-minute usage is kept (0: for ever); older ranges are answered from hours");
ABSL_FLAG(int64_t, usage_hour_retention_days, 400,
          "days per-hour usage is kept (0: for ever); older ranges are answered from days");
ABSL_FLAG(int64_t, usage_day_retention_days, 0, "days per-day usage is kept (0: for ever)");
ABSL_FLAG(std::string, log_format, "text",
          "process log lines: 'text', or 'json' for one JSON object per line with structured "
          "events (docs/operations.md#logs)");

namespace spillway {
namespace {

constexpr char kProgram[] = "spillway-cp";

[[noreturn]] void Die(const std::string& reason) { DieWithReason(kProgram, reason); }

std::string TokenFromFile(const std::string& path) {
  if (path.empty()) {
    return "";
  }
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  if (!token.ok()) {
    Die(std::string(token.status().message()));
  }
  return *token;
}

// Only literal loopback addresses count: a host name could resolve anywhere.
bool IsLoopback(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code error;
  const boost::asio::ip::address address = boost::asio::ip::make_address(host, error);
  return !error && address.is_loopback();
}

// Either audience without a token is open to anyone who can reach the port: the listening
// line says which, so an operator reading the log knows why the address must stay loopback.
const char* LoopbackOnlyNote(const std::string& admin_token, const std::string& agent_token) {
  if (admin_token.empty() && agent_token.empty()) {
    return ", no tokens: loopback only";
  }
  if (admin_token.empty()) {
    return ", no admin token: loopback only";
  }
  if (agent_token.empty()) {
    return ", no agent token: loopback only";
  }
  return "";
}

std::shared_ptr<grpc::ServerCredentials> Credentials() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  if (cert.empty() != key.empty()) {
    Die("--tls-cert and --tls-key go together");
  }
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() && !client_ca.empty()) {
    // Ignoring it would serve plaintext to an operator who asked for mutual TLS.
    Die("--tls-client-ca needs --tls-cert and --tls-key");
  }
  if (cert.empty()) {
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options;
  absl::StatusOr<std::string> cert_pem = ReadPemFile("--tls-cert", cert);
  absl::StatusOr<std::string> key_pem = ReadPemFile("--tls-key", key);
  if (!cert_pem.ok() || !key_pem.ok()) {
    Die(std::string((!cert_pem.ok() ? cert_pem.status() : key_pem.status()).message()));
  }
  options.pem_key_cert_pairs.push_back({*key_pem, *cert_pem});
  if (!client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile("--tls-client-ca", client_ca);
    if (!ca.ok()) {
      Die(std::string(ca.status().message()));
    }
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

// Applying a large fleet allocates and frees over a hundred MB (copies of the topology, one
// table per region, budget splits). By default glibc hands freed memory back to the kernel
// at once, so every apply faulted it all in again, page by page; keeping it makes repeated
// applies about a tenth cheaper. The resident size stays that of the largest apply.
void KeepFreedMemory() {
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
}

// Unique per process, readable in logs and the replica_agents table: host, pid, and random
// bits (a pid is reused across restarts and containers).
std::string ReplicaId() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  absl::BitGen random;
  return absl::StrCat(host, "-", getpid(), "-", absl::Hex(absl::Uniform<uint32_t>(random)));
}

constexpr int64_t kUsagePruneStep = 10'000;
constexpr int kUsagePruneStepsPerTick = 20;

int Run() {
  absl::StatusOr<LogFormat> log_format = ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    Die(std::string(log_format.status().message()));
  }
  SetUpProcessLog(kProgram, *log_format);  // before anything logs
  KeepFreedMemory();
  absl::StatusOr<StoreLocation> location =
      ParseStoreLocation(absl::GetFlag(FLAGS_store), absl::GetFlag(FLAGS_db));
  if (!location.ok()) {
    Die(std::string(location.status().message()));
  }
  const std::string db = location->Display();
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string admin_token = TokenFromFile(absl::GetFlag(FLAGS_admin_token_file));
  const std::string agent_token = TokenFromFile(absl::GetFlag(FLAGS_agent_token_file));
  if ((admin_token.empty() || agent_token.empty()) && !IsLoopback(listen)) {
    Die(absl::StrCat("refusing to listen on ", listen,
                     " without --admin-token-file and --agent-token-file; use a loopback "
                     "address or configure tokens"));
  }
  if (absl::GetFlag(FLAGS_tls_cert).empty() && !IsLoopback(listen)) {
    // Bearer tokens, and the API keys CreateKey mints, would cross the network in clear.
    Die(absl::StrCat("refusing to listen on ", listen,
                     " without TLS; use a loopback address or set --tls-cert and --tls-key"));
  }
  absl::StatusOr<std::unique_ptr<TopologyStore>> store = TopologyStore::Open(*location);
  if (!store.ok()) {
    Die(std::string(store.status().message()));
  }
  UsageRetention retention{absl::GetFlag(FLAGS_usage_minute_retention_days),
                           absl::GetFlag(FLAGS_usage_hour_retention_days),
                           absl::GetFlag(FLAGS_usage_day_retention_days)};
  if (retention.minute_days < 0 || retention.hour_days < 0 || retention.day_days < 0) {
    Die("--usage-*-retention-days must be 0 (for ever) or a number of days");
  }
  (*store)->SetUsageRetention(retention);
  CompileOptions compile;
  if (absl::Status status = SetPtuThroughput(absl::GetFlag(FLAGS_ptu_rates),
                                             absl::GetFlag(FLAGS_tokens_per_ptu_minute), compile);
      !status.ok()) {
    Die(std::string(status.message()));
  }
  Fleet fleet(**store, compile);
  if (absl::Status status = fleet.Init(); !status.ok()) {
    Die(std::string(status.message()));
  }
  DrillRunner drills(**store, fleet, compile);
  AdminService admin(fleet, **store, drills, TokenCheck(admin_token));
  AgentSyncService sync(fleet, **store, TokenCheck(agent_token));

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Started with the signals blocked, so only this thread takes them.
  if (absl::Status status = drills.Start(); !status.ok()) {
    Die(std::string(status.message()));
  }
  // Replicas on one PostgreSQL database: each hears the others' commits and pushes them to
  // its own agents, shares its agents' health reports and takes its part of the tenants'
  // limits; the fleet lease decides which one prunes usage and expired health.
  std::unique_ptr<ReplicaSync> replica_sync;
  std::unique_ptr<ReplicaSession> replica;
  if (location->kind == StoreLocation::Kind::kPostgres) {
    replica_sync = std::make_unique<ReplicaSync>(fleet, **store, ReplicaId());
    replica_sync->Attach();
    ReplicaSync& sync_ref = *replica_sync;
    replica = std::make_unique<ReplicaSession>(
        location->postgres_url, db,
        ReplicaSession::Listeners{[&sync_ref] { return sync_ref.OnTopologyCommitted(); },
                                  [&sync_ref] { return sync_ref.OnHealthChanged(); }});
    replica->Start();
    spdlog::info("replica {} of the fleet on {}", replica_sync->replica_id(), db);
  }
  TopologyStore& topology_store = **store;
  PeriodicThread budget_flush(
      Fleet::kBudgetFlushInterval, [&fleet, &replica, &replica_sync, &topology_store] {
        if (absl::Status status = topology_store.FlushAgentRecords(); !status.ok()) {
          spdlog::error("recording agents: {}", std::string(status.message()));
        }
        if (replica_sync != nullptr) {
          replica_sync->Tick(replica->holds_lease());
        }
        fleet.FlushBudgets();
      });
  budget_flush.Start();
  // Usage past its retention goes in transactions of 10k rows, so applies and usage writes
  // are never held up for long. Off the start-up path (a store upgraded with years of minutes
  // would delay listening), once a minute, and at most 20 steps a tick, so a backlog goes at
  // 200k rows a minute and stopping waits for one tick at most.
  PeriodicThread usage_prune(std::chrono::minutes(1), [&topology_store, &replica] {
    if (replica != nullptr && !replica->holds_lease()) {
      return;  // another replica prunes
    }
    // Tomorrow's partition (PostgreSQL) exists days before its first minute.
    if (absl::Status status = topology_store.PrepareUsageDays(absl::ToUnixMillis(absl::Now()));
        !status.ok()) {
      spdlog::error("preparing the coming days' usage partitions: {}",
                    std::string(status.message()));
    }
    for (int step = 0; step < kUsagePruneStepsPerTick; ++step) {
      absl::StatusOr<int64_t> deleted =
          topology_store.PruneUsage(absl::ToUnixMillis(absl::Now()), kUsagePruneStep);
      if (!deleted.ok()) {
        spdlog::error("pruning usage: {}", std::string(deleted.status().message()));
        return;
      }
      if (*deleted < kUsagePruneStep) {
        return;
      }
    }
  });
  usage_prune.Start();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, Credentials(), &port);
  builder.RegisterService(&admin);
  builder.RegisterService(&sync);
  // Agents hold one stream for their lifetime: keepalives notice a dead peer.
  AddKeepaliveArguments(builder);
  builder.SetMaxReceiveMessageSize(v1::kMaxGrpcMessageBytes);
  builder.SetMaxSendMessageSize(v1::kMaxGrpcMessageBytes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Die(absl::StrCat("cannot listen on ", listen));
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  PrintEvent(
      "listening", {{"host", host}, {"port", port}, {"db", db}, {"version", fleet.version()}},
      absl::StrCat("spillway-cp listening on ", host, ":", port, " (db ", db, ", topology version ",
                   fleet.version(), LoopbackOnlyNote(admin_token, agent_token), ")"));
  // After the gRPC line: tests and scripts take the first "listening on" line for gRPC.
  std::unique_ptr<MetricsServer> metrics;
  if (const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
      !metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> started =
        MetricsServer::Start(metrics_listen, [&fleet, &drills] {
          FleetSnapshot snapshot = fleet.Snapshot();
          snapshot.drill_running = drills.draining();
          return RenderFleetMetrics(snapshot, fleet.counters());
        });
    if (!started.ok()) {
      Die(std::string(started.status().message()));
    }
    metrics = *std::move(started);
    PrintEvent(
        "metrics_listening", {{"host", metrics->host()}, {"port", metrics->port()}},
        absl::StrCat("spillway-cp metrics endpoints on ", metrics->host(), ":", metrics->port()));
  }
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("stopping");
  metrics.reset();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  budget_flush.Stop();
  usage_prune.Stop();
  return 0;
}

}  // namespace
}  // namespace spillway

int main(int argc, char** argv) {
  spillway::ParseCommandLine(
      argc, argv,
      {"spillway-cp",
       "the Spillway control plane.\n"
       "  spillway-cp --listen 127.0.0.1:7070 --store sqlite:/var/lib/spillway/topology.db",
       "controlplane/main.cc"});
  return spillway::Run();
}
