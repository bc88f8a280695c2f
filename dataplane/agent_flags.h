// spillway-agent's command line, read and checked into the options main.cc builds the agent
// from. The flags themselves live in agent_flags.cc: scripts depend on their names.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/log_event.h"
#include "dataplane/auth/entra_token_registry.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/routing/circuit_breaker.h"
#include "dataplane/routing/routing_snapshot.h"
#include "dataplane/server/agent_server.h"
#include "dataplane/sync/sync_client.h"
#include "dataplane/tenants/tenant_limiter.h"

namespace spillway {

// The suffix ParseCommandLine uses to list the agent's own flags under --help.
inline constexpr char kAgentFlagsFile[] = "dataplane/agent_flags.cc";

struct AgentFlags {
  std::string region;
  // Standalone mode; exactly one of this and control_planes is set.
  std::string topology_path;
  std::vector<std::string> control_planes;  // host:port of each spillway-cp replica
  std::string state_dir;
  std::string listen;  // as given, host:port
  AgentServerOptions server;
  CircuitBreakerOptions breaker;
  EntraOptions entra;
  SnapshotOptions snapshot;  // how routing tables are built (--secrets-dir)
  ProxyOptions proxy;
  uint64_t body_limit = 0;
  uint64_t max_upload_bytes = 0;
  uint64_t body_memory_limit = 0;
  int64_t max_connections = 0;
  std::chrono::milliseconds client_idle_timeout{0};
  std::chrono::milliseconds header_timeout{0};
  TenantLimiterOptions limiter;
  std::string access_log;
  LogFormat log_format = LogFormat::kText;  // of the process log, not the access log
  std::chrono::milliseconds usage_flush{0};
  uint64_t usage_spool_warn_bytes = 0;
  uint64_t tokens_per_ptu_minute = 0;  // 0: not given (SetPtuThroughput)
  std::string ptu_rates_path;          // empty: the built-in rates
  std::chrono::milliseconds drain_timeout{0};
  std::chrono::seconds pin_retention{0};
  // Control-plane mode: the stream's options, token read and certificate files checked; the
  // callbacks are main.cc's to set.
  SyncClientOptions sync;

  bool standalone() const { return control_planes.empty(); }
};

// The parsed flags, checked; an error names the flag at fault (or the file it names).
absl::StatusOr<AgentFlags> ReadAgentFlags();

}  // namespace spillway
