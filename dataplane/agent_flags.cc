// spillway-agent's flags (names, defaults and help as scripts and --help know them) and their
// reading into AgentFlags, checked before anything starts.
#include "dataplane/agent_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/secret_file.h"
#include "dataplane/sync/control_plane_targets.h"

ABSL_FLAG(std::string, region, "", "Azure region this agent serves (required), e.g. eastus2");
ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "host:port to serve the Azure OpenAI API on; port 0 picks a free port");
ABSL_FLAG(std::string, topology, "",
          "standalone mode: serve this topology YAML file (SIGHUP reloads it)");
ABSL_FLAG(std::string, control_plane, "",
          "host:port of spillway-cp, or of each of its replicas comma-separated: follow its "
          "routing tables, moving to another replica when one goes away (needs --state-dir)");
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
ABSL_FLAG(uint64_t, max_upload_bytes, 512ull * 1024 * 1024,
          "largest upload (files, audio, image edits; streamed, never held whole), bytes, for "
          "routes without their own max_upload_bytes (413 above)");
ABSL_FLAG(std::string, admin_listen, "",
          "host:port serving /healthz, /readyz, /status and /metrics (and nothing else) to "
          "anyone who reaches it; the API port answers /status and /metrics on loopback only");
ABSL_FLAG(int64_t, max_connections, 0,
          "client connections open at once, all threads together; more wait in the listen "
          "backlog (0: half the descriptor limit, which the agent raises to its hard maximum)");
ABSL_FLAG(uint64_t, body_memory_limit, 1024ull * 1024 * 1024,
          "request bodies held at once, all connections together, bytes (503 with retry-after "
          "above: a flood of large bodies cannot exhaust memory)");
ABSL_FLAG(int, max_attempts, 4, "backends tried per request before giving up");
ABSL_FLAG(int64_t, request_timeout_ms, 120000,
          "deadline for a request to start answering, all attempts together");
ABSL_FLAG(int64_t, first_byte_timeout_ms, 600000,
          "per-attempt wait for a backend's response headers, for routes that set none (a "
          "reasoning model can think for minutes; a timeout after the request went out is not "
          "retried)");
ABSL_FLAG(int64_t, stream_idle_timeout_ms, 60000,
          "longest silence allowed inside a backend's response");
ABSL_FLAG(bool, stream_delayed_acks, true,
          "acknowledge an event stream's reads from an HTTP/1.1 backend with TCP's delayed ACKs "
          "rather than one ACK per event (turn off for a backend that sends with Nagle's "
          "algorithm on, which would then wait ~40 ms for each ACK)");
ABSL_FLAG(bool, upstream_http2, false,
          "talk to backends over HTTP/2: h2c (prior knowledge) to http:// endpoints, ALPN h2 to "
          "https:// ones (HTTP/1.1 where the endpoint declines); one connection carries many "
          "requests and streams");
ABSL_FLAG(int64_t, connect_timeout_ms, 3000, "TCP connect + TLS handshake timeout per backend");
ABSL_FLAG(int64_t, client_idle_timeout_ms, 60000, "keep-alive idle timeout for client connections");
ABSL_FLAG(int64_t, header_timeout_ms, 10000,
          "time a client has to send a whole request head once it started (then it is closed)");
ABSL_FLAG(int64_t, client_write_timeout_ms, 60000, "timeout for each write to a client");
ABSL_FLAG(int64_t, realtime_idle_timeout_ms, 300000,
          "a Realtime WebSocket session without a message either way for this long is closed "
          "(1001) on both sides");
ABSL_FLAG(uint64_t, realtime_max_message_bytes, 16ull * 1024 * 1024,
          "largest Realtime WebSocket message relayed, either way; a larger one closes the "
          "session (1009)");
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
ABSL_FLAG(std::string, ptu_rates, "",
          "standalone mode: PTU rates file (JSON, as examples/ptu-rates.json), the tokens a "
          "minute one PTU of each model serves (headroom before spilling; default: the built-in "
          "rates, unless --tokens-per-ptu-minute is given). Following a control plane, its rates "
          "apply");
ABSL_FLAG(uint64_t, tokens_per_ptu_minute, 0,
          "standalone mode: tokens per minute one PTU of a model the PTU rates do not list is "
          "assumed to serve (0: 2500); given without --ptu-rates, for every model");
ABSL_FLAG(std::string, upstream_ca_file, "",
          "PEM CA bundle to verify backends with (default: system store)");
ABSL_FLAG(std::string, secrets_dir, "",
          "if set, api_key_file and client_secret_file paths in the topology must resolve "
          "(symlinks followed) to files inside this directory");
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
ABSL_FLAG(std::string, log_format, "text",
          "process log lines: 'text', or 'json' for one JSON object per line with structured "
          "events (docs/operations.md#logs); the access log keeps its own format");
ABSL_FLAG(int64_t, usage_flush_ms, 10000,
          "how often per-minute usage is sealed: with a control plane into a batch, spooled in "
          "<state-dir>/usage-spool and sent; standalone into /metrics' tenant counters");
ABSL_FLAG(uint64_t, usage_spool_warn_mb, 256,
          "warn when unacknowledged usage batches in the spool exceed this size (nothing is "
          "ever dropped)");
ABSL_FLAG(int64_t, pin_retention_days, 30,
          "how long the agent remembers which backend holds a stateful object (a response...); "
          "Azure keeps responses 30 days");
ABSL_FLAG(int64_t, drain_timeout_ms, 20000,
          "on SIGTERM, how long in-flight requests may take to finish");

namespace spillway {
namespace {

using std::chrono::milliseconds;

absl::Status Invalid(absl::string_view reason) { return absl::InvalidArgumentError(reason); }

// Which mode the agent runs in: a topology file or a control plane, never both.
absl::Status ReadMode(AgentFlags& flags) {
  flags.region = absl::GetFlag(FLAGS_region);
  flags.topology_path = absl::GetFlag(FLAGS_topology);
  if (flags.region.empty()) {
    return Invalid("--region is required");
  }
  const std::string control_plane = absl::GetFlag(FLAGS_control_plane);
  flags.state_dir = absl::GetFlag(FLAGS_state_dir);
  if (flags.topology_path.empty() == control_plane.empty()) {
    return Invalid("give exactly one of --topology FILE (standalone) or --control-plane HOST:PORT");
  }
  if (!control_plane.empty()) {
    absl::StatusOr<std::vector<std::string>> targets = ParseControlPlaneTargets(control_plane);
    if (!targets.ok()) {
      return targets.status();
    }
    flags.control_planes = *std::move(targets);
  }
  if (!flags.control_planes.empty() && flags.state_dir.empty()) {
    return Invalid("--control-plane needs --state-dir (where the last table is kept for restarts)");
  }
  return absl::OkStatus();
}

absl::Status ReadServer(AgentFlags& flags) {
  flags.listen = absl::GetFlag(FLAGS_listen);
  const std::size_t colon = flags.listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(flags.listen.substr(colon + 1), &port) ||
      port > 65535) {
    return Invalid(absl::StrCat("--listen must be host:port, got '", flags.listen, "'"));
  }
  AgentServerOptions& server = flags.server;
  server.listen_host = flags.listen.substr(0, colon);
  server.listen_port = static_cast<uint16_t>(port);
  if (const std::string admin = absl::GetFlag(FLAGS_admin_listen); !admin.empty()) {
    const std::size_t admin_colon = admin.rfind(':');
    uint32_t admin_port = 0;
    if (admin_colon == std::string::npos ||
        !absl::SimpleAtoi(admin.substr(admin_colon + 1), &admin_port) || admin_port > 65535) {
      return Invalid(absl::StrCat("--admin-listen must be host:port, got '", admin, "'"));
    }
    server.admin_listen_host = admin.substr(0, admin_colon);
    server.admin_listen_port = static_cast<uint16_t>(admin_port);
  }
  server.threads = absl::GetFlag(FLAGS_threads);
  if (server.threads < 1 || server.threads > 256) {
    return Invalid("--threads must be between 1 and 256");
  }
  server.upstream_ca_file = absl::GetFlag(FLAGS_upstream_ca_file);
  server.upstream.http2 = absl::GetFlag(FLAGS_upstream_http2);
  server.upstream.connect_timeout = milliseconds(absl::GetFlag(FLAGS_connect_timeout_ms));
  return absl::OkStatus();
}

// How requests are served: backends' circuits, their credentials, each request's limits.
absl::Status ReadRequests(AgentFlags& flags) {
  CircuitBreakerOptions& breaker = flags.breaker;
  breaker.failure_threshold = absl::GetFlag(FLAGS_failure_threshold);
  breaker.base_open = milliseconds(absl::GetFlag(FLAGS_circuit_open_ms));
  breaker.max_open = milliseconds(absl::GetFlag(FLAGS_circuit_max_open_ms));
  breaker.default_throttle = milliseconds(absl::GetFlag(FLAGS_default_retry_after_ms));
  EntraOptions& entra = flags.entra;
  entra.endpoints.imds = absl::GetFlag(FLAGS_imds_endpoint);
  entra.endpoints.authority = absl::GetFlag(FLAGS_entra_authority);
  entra.ca_file = flags.server.upstream_ca_file;
  if (std::string dir = absl::GetFlag(FLAGS_secrets_dir); !dir.empty()) {
    if (absl::Status usable = CheckSecretsDir(dir); !usable.ok()) {
      return Invalid(usable.message());
    }
    entra.secrets_dir = dir;
    flags.snapshot.secrets_dir = std::move(dir);
  }
  entra.timeout = milliseconds(absl::GetFlag(FLAGS_entra_timeout_ms));
  if (entra.timeout.count() < 1) {
    return Invalid("--entra-timeout-ms must be positive");
  }
  flags.body_limit = absl::GetFlag(FLAGS_body_limit);
  flags.max_upload_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  if (flags.max_upload_bytes == 0) {
    return Invalid("--max-upload-bytes must be positive");
  }
  flags.body_memory_limit = absl::GetFlag(FLAGS_body_memory_limit);
  flags.max_connections = absl::GetFlag(FLAGS_max_connections);
  if (flags.max_connections < 0) {
    return Invalid("--max-connections must not be negative");
  }
  if (flags.body_memory_limit < flags.body_limit) {
    return Invalid("--body-memory-limit must be at least --body-limit");
  }
  flags.client_idle_timeout = milliseconds(absl::GetFlag(FLAGS_client_idle_timeout_ms));
  flags.header_timeout = milliseconds(absl::GetFlag(FLAGS_header_timeout_ms));
  if (flags.header_timeout.count() < 1) {
    return Invalid("--header-timeout-ms must be positive");
  }
  ProxyOptions& proxy = flags.proxy;
  proxy.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  proxy.request_timeout = milliseconds(absl::GetFlag(FLAGS_request_timeout_ms));
  proxy.first_byte_timeout = milliseconds(absl::GetFlag(FLAGS_first_byte_timeout_ms));
  proxy.stream_idle_timeout = milliseconds(absl::GetFlag(FLAGS_stream_idle_timeout_ms));
  proxy.client_write_timeout = milliseconds(absl::GetFlag(FLAGS_client_write_timeout_ms));
  proxy.stream_delayed_acks = absl::GetFlag(FLAGS_stream_delayed_acks);
  proxy.default_max_output_tokens = absl::GetFlag(FLAGS_default_max_tokens);
  proxy.realtime_idle_timeout = milliseconds(absl::GetFlag(FLAGS_realtime_idle_timeout_ms));
  proxy.realtime_max_message_bytes = absl::GetFlag(FLAGS_realtime_max_message_bytes);
  if (proxy.realtime_idle_timeout.count() < 1) {
    return Invalid("--realtime-idle-timeout-ms must be positive");
  }
  if (proxy.realtime_max_message_bytes < 1024) {
    return Invalid("--realtime-max-message-bytes must be at least 1024");
  }
  flags.tokens_per_ptu_minute = absl::GetFlag(FLAGS_tokens_per_ptu_minute);
  flags.ptu_rates_path = absl::GetFlag(FLAGS_ptu_rates);
  flags.drain_timeout = milliseconds(absl::GetFlag(FLAGS_drain_timeout_ms));
  const int64_t retention_days = absl::GetFlag(FLAGS_pin_retention_days);
  if (retention_days < 1 || retention_days > 3650) {
    return Invalid("--pin-retention-days must be between 1 and 3650");
  }
  flags.pin_retention = std::chrono::seconds(retention_days * 24 * 3600);
  return absl::OkStatus();
}

// Tenants' quotas, the usage they are charged and the logs (access log, process log format).
absl::Status ReadTenantsAndUsage(AgentFlags& flags) {
  TenantLimiterOptions& limiter = flags.limiter;
  limiter.control_plane = !flags.standalone();
  limiter.demand_window = milliseconds(absl::GetFlag(FLAGS_demand_report_ms));
  limiter.zero_share_retry_after = limiter.demand_window;
  if (limiter.demand_window.count() < 100) {
    return Invalid("--demand-report-ms must be at least 100");
  }
  if (!flags.standalone()) {
    limiter.budgets_path = flags.state_dir + "/tenant-budgets.pb";
  }
  flags.access_log = absl::GetFlag(FLAGS_access_log);
  absl::StatusOr<LogFormat> log_format = ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    return log_format.status();
  }
  flags.log_format = *log_format;
  flags.usage_flush = milliseconds(absl::GetFlag(FLAGS_usage_flush_ms));
  if (flags.usage_flush.count() < 10) {
    return Invalid("--usage-flush-ms must be at least 10");
  }
  flags.usage_spool_warn_bytes = absl::GetFlag(FLAGS_usage_spool_warn_mb) << 20;
  return absl::OkStatus();
}

// The control-plane stream's options. The sync client rereads the certificate files on every
// reconnect; a path that is wrong from the start is a bad flag, not something to log on every
// retry.
absl::Status ReadSync(AgentFlags& flags) {
  SyncClientOptions& sync = flags.sync;
  sync.targets = flags.control_planes;
  sync.state_dir = flags.state_dir;
  sync.region = flags.region;
  sync.listen_address = flags.listen;
  sync.snapshot = flags.snapshot;
  sync.ca_file = absl::GetFlag(FLAGS_control_plane_ca);
  sync.cert_file = absl::GetFlag(FLAGS_control_plane_cert);
  sync.key_file = absl::GetFlag(FLAGS_control_plane_key);
  if (sync.cert_file.empty() != sync.key_file.empty()) {
    return Invalid("--control-plane-cert and --control-plane-key go together");
  }
  if (!sync.cert_file.empty() && sync.ca_file.empty()) {
    return Invalid(
        "--control-plane-cert needs --control-plane-ca: client certificates are sent over TLS");
  }
  for (const auto& [flag, path] : {std::pair{"--control-plane-ca", sync.ca_file},
                                   {"--control-plane-cert", sync.cert_file},
                                   {"--control-plane-key", sync.key_file}}) {
    if (!path.empty()) {
      if (absl::StatusOr<std::string> pem = ReadFile(path); !pem.ok()) {
        return Invalid(absl::StrCat(flag, ": ", pem.status().message()));
      }
    }
  }
  if (const std::string token_file = absl::GetFlag(FLAGS_token_file); !token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFile(token_file);
    if (!token.ok()) {
      return token.status();
    }
    sync.token = std::string(absl::StripAsciiWhitespace(*token));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AgentFlags> ReadAgentFlags() {
  AgentFlags flags;
  for (absl::Status (*read)(AgentFlags&) :
       {ReadMode, ReadServer, ReadRequests, ReadTenantsAndUsage}) {
    if (absl::Status status = read(flags); !status.ok()) {
      return status;
    }
  }
  if (!flags.standalone()) {
    if (absl::Status status = ReadSync(flags); !status.ok()) {
      return status;
    }
  }
  return flags;
}

}  // namespace spillway
